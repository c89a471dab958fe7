"""Several processes: `torchrun --nproc_per_node=N -m graphcl train CONFIG` trains one model with N processes.

What each piece does (docs/cli.md, "Several processes", says it for users):
* `process_group_from_env`: torchrun's RANK / WORLD_SIZE / LOCAL_RANK -> the default process group (gloo for CPU
  tensors, NCCL for CUDA ones), destroyed at the end; a collective that waits longer than `GRAPHCL_DIST_TIMEOUT`
  seconds (default 1800) fails instead of hanging.
* `data_parallel`: batch norms over the global batch (`core.distributed.sync_batch_norm`), then
  `DistributedDataParallel`.
* `shard`, `same_order`, `min_batch`: every rank takes a contiguous slice of each global batch, in rank order, of
  the same global order, so the gathered rows are the global batch in one process's order.
* `main_first`: rank 0 runs a block (loading, hence processing, the dataset) before the others do.
* `own_view_stream`: after every rank built the same model from the same seed, ranks 1.. get their own RNG
  streams, so their views (drawn from the global RNG) are not copies of rank 0's.
"""
from __future__ import annotations

import gc
import inspect
import os
from contextlib import contextmanager
from datetime import timedelta
from typing import Iterator

import torch
import torch.distributed as dist
from torch import Tensor, nn

from graphcl.core.distributed import broadcast, is_distributed, rank, sync_batch_norm, world_size
from graphcl.train.checkpoint import seed_everything

TIMEOUT_ENV = "GRAPHCL_DIST_TIMEOUT"
DEFAULT_TIMEOUT = 1800  # seconds; rank 0's evaluation between seeds must fit in it


def launched() -> bool:
    """True in a process started by torchrun (or any launcher that sets RANK and WORLD_SIZE)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def is_main() -> bool:
    """Rank 0 (or no process group, or a torchrun process before the group exists): the one that writes."""
    return rank() == 0 if is_distributed() else int(os.environ.get("RANK", 0)) == 0


def timeout() -> timedelta:
    """The collective timeout: `GRAPHCL_DIST_TIMEOUT` seconds, default 1800."""
    value = os.environ.get(TIMEOUT_ENV, str(DEFAULT_TIMEOUT))
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ValueError(f"environment variable {TIMEOUT_ENV} is {value!r}; it must be a positive number of seconds")
    return timedelta(seconds=seconds)


@contextmanager
def process_group_from_env() -> Iterator[None]:
    """Open the default process group from torchrun's environment, and destroy it on leaving.

    A no-op outside torchrun, and when a group already exists (the caller's: tests, notebooks). With CUDA the
    current device becomes `cuda:LOCAL_RANK` first, as NCCL wants.
    """
    if is_distributed() or not launched():
        yield
        return
    backend = "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        backend = "cpu:gloo,cuda:nccl"  # CPU tensors (a cpu run, control values) through gloo
    dist.init_process_group(backend, timeout=timeout())
    finished = False
    try:
        yield
        finished = True
    finally:
        # DDP wrappers sit in reference cycles: collected after the group is gone, their reducers abort the
        # process at exit ("terminate called without an active exception"), so collect them while it lives
        gc.collect()
        if finished:  # leave together: a rank tearing gloo down under a peer's last message aborts the peer
            dist.barrier()
        dist.destroy_process_group()


def local_device(device: torch.device) -> torch.device:
    """Under a process group, a CUDA device means this process's own GPU, `cuda:LOCAL_RANK`."""
    if device.type != "cuda" or not is_distributed():
        return device
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    torch.cuda.set_device(device)
    return device


def data_parallel(method: nn.Module, device: torch.device) -> nn.Module:
    """`method` (changed in place: batch norms over the global batch) wrapped in `DistributedDataParallel`.

    Buffers are not re-broadcast every step: batch-norm statistics are already global, and queues and banks
    are kept identical by enqueueing gathered rows (a MoCo queue would cost megabytes per step). Parameters that
    get no gradient in some steps (SwAV's frozen prototypes) are allowed.
    """
    from torch.nn.parallel import DistributedDataParallel as DDP

    sync_batch_norm(method)
    no_rebroadcast = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(DDP).parameters
                      else {"broadcast_buffers": False})
    return DDP(method, device_ids=[device.index] if device.type == "cuda" else None,
               find_unused_parameters=True, **no_rebroadcast)


def shard(index: Tensor) -> Tensor:
    """This rank's contiguous part of a global batch `index [B]` -> `[B_r]` (sizes differ by at most one; rank
    order, so gathering the parts in rank order gives back the global batch)."""
    n, r, w = len(index), rank(), world_size()
    return index[n * r // w: n * (r + 1) // w]


def same_order(order: Tensor) -> Tensor:
    """`order` as rank 0 drew it, on every rank (the global order of an epoch; views may consume different
    amounts of each rank's RNG, so the ranks' own draws would drift apart)."""
    return broadcast(order)


def min_batch() -> int:
    """The fewest items a global batch may hold: two per rank, so no rank ever holds a batch of one."""
    return 2 * world_size()


def own_view_stream() -> None:
    """Give ranks 1.. RNG streams of their own (rank 0 keeps its stream, that of one process). Call it after the
    model is built from the shared seed, and after a resumed checkpoint restored rank 0's RNG state."""
    if rank() > 0:
        seed_everything(int(torch.randint(0, 2**62, ())) + rank())


def results_from_main(results: dict | None) -> dict:
    """Rank 0's `results` on every rank (`results` itself without a process group)."""
    if world_size() == 1:
        return results
    box = [results]
    dist.broadcast_object_list(box, src=0)
    return box[0]


@contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first, the other ranks after it: e.g. loading a dataset, which processes it into the
    cache the first time (two processes writing and reading the same cache file at once would corrupt it)."""
    if not is_main():
        wait_for_main()
    yield
    if is_main():
        wait_for_main()


def wait_for_main() -> None:
    """Every rank waits here until rank 0 arrives (e.g. after its evaluation)."""
    if world_size() > 1:
        dist.barrier()
