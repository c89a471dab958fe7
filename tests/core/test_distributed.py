"""gather_with_grad against a single process: 2 gloo ranks on CPU, each holding a different-sized chunk.

The loss is written out here (a symmetric InfoNCE over cosine logits) so the test does not depend on
graphcl.core.losses.
"""
import gc
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import Tensor, nn

from graphcl.core.distributed import all_reduce_mean, gather_with_grad, is_distributed, rank, world_size

TAU = 0.5
WORLD = 2


def info_nce(z1: Tensor, z2: Tensor, all1: Tensor, all2: Tensor, offset: int) -> Tensor:
    """Summed (not averaged) symmetric InfoNCE of local anchors z1, z2 `[n, D]` against all rows `[N, D]`.

    Local row i is global row `offset + i`, whose positive is the same row of the other view.
    """
    targets = torch.arange(offset, offset + z1.shape[0])
    logits1 = F.normalize(z1, dim=1) @ F.normalize(all2, dim=1).T / TAU
    logits2 = F.normalize(z2, dim=1) @ F.normalize(all1, dim=1).T / TAU
    return F.cross_entropy(logits1, targets, reduction="sum") + F.cross_entropy(logits2, targets, reduction="sum")


def data(sizes: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(0)
    n = sum(sizes)
    return torch.randn(n, 4, generator=gen, dtype=torch.float64), torch.randn(n, 4, generator=gen, dtype=torch.float64)


def local_slice(sizes: tuple[int, ...]) -> slice:
    start = sum(sizes[: rank()])
    return slice(start, start + sizes[rank()])


def check_input_gradients(sizes: tuple[int, ...]) -> None:
    """Loss_r = sum over local anchors / N: sum_r loss_r is the single-process mean loss, x.grad its slice."""
    x1, x2 = data(sizes)
    n, part = sum(sizes), local_slice(sizes)
    ref1, ref2 = x1.clone().requires_grad_(), x2.clone().requires_grad_()
    ref_loss = info_nce(ref1, ref2, ref1, ref2, 0) / n
    ref_loss.backward()

    a, b = x1[part].clone().requires_grad_(), x2[part].clone().requires_grad_()
    all1, all2 = gather_with_grad(a), gather_with_grad(b)
    assert torch.equal(all1, x1) and torch.equal(all2, x2)  # rank order, padding stripped
    loss = info_nce(a, b, all1, all2, part.start) / n
    loss.backward()
    summed = loss.detach().clone()
    dist.all_reduce(summed)
    torch.testing.assert_close(summed, ref_loss.detach(), rtol=0, atol=1e-12)
    torch.testing.assert_close(a.grad, ref1.grad[part], rtol=0, atol=1e-12)
    torch.testing.assert_close(b.grad, ref2.grad[part], rtol=0, atol=1e-12)


def check_ddp_parameter_gradients(sizes: tuple[int, ...], recipe: str) -> None:
    """Under DDP (gradient averaging), both documented loss recipes reproduce the single-process gradient."""
    x1, x2 = data(sizes)
    n, part = sum(sizes), local_slice(sizes)
    torch.manual_seed(1)
    reference = nn.Linear(4, 3).double()
    encoder = nn.parallel.DistributedDataParallel(nn.Linear(4, 3).double())
    encoder.module.load_state_dict(reference.state_dict())

    ref_z1, ref_z2 = reference(torch.cat([x1, x2])).split(n)
    (info_nce(ref_z1, ref_z2, ref_z1, ref_z2, 0) / n).backward()

    z1, z2 = encoder(torch.cat([x1[part], x2[part]])).split(sizes[rank()])
    all1, all2 = gather_with_grad(z1), gather_with_grad(z2)
    if recipe == "local":  # own rows as anchors: sum * W / N (the local mean when sizes are equal)
        loss = info_nce(z1, z2, all1, all2, part.start) * world_size() / n
    else:  # "global": every rank computes the same loss over all gathered anchors
        loss = info_nce(all1, all2, all1, all2, 0) / n
    loss.backward()
    for p_ref, p in zip(reference.parameters(), encoder.parameters()):
        torch.testing.assert_close(p.grad, p_ref.grad, rtol=0, atol=1e-12)


def check_edge_cases() -> None:
    """An empty rank, trailing dimensions, the backward sum rule on a simple loss, all_reduce_mean."""
    sizes = (0, 3)
    full = torch.arange(3 * 2 * 5, dtype=torch.float64).view(3, 2, 5)
    part = local_slice(sizes)
    x = full[part].clone().requires_grad_()
    gathered = gather_with_grad(x)
    assert torch.equal(gathered, full)
    weights = torch.linspace(-1, 1, full.numel(), dtype=torch.float64).view_as(full)
    (gathered * weights).sum().backward()  # the same loss on both ranks: gradients add up, W times
    assert torch.equal(x.grad, world_size() * weights[part])
    mean = all_reduce_mean(torch.tensor([rank(), 10]))
    assert torch.equal(mean, torch.tensor([0.5, 10.0]))


def worker(rank_: int, init_method: str) -> None:
    torch.set_num_threads(1)
    # A short timeout: a rank that fails an assertion must not leave its peer waiting for 30 minutes.
    dist.init_process_group(
        "gloo", init_method=init_method, rank=rank_, world_size=WORLD, timeout=timedelta(seconds=30)
    )
    try:
        assert is_distributed() and rank() == rank_ and world_size() == WORLD
        for sizes in [(3, 5), (4, 4)]:  # unequal and equal chunks
            check_input_gradients(sizes)
            check_ddp_parameter_gradients(sizes, "local")
            check_ddp_parameter_gradients(sizes, "global")
        check_edge_cases()
        # The DDP wrappers sit in reference cycles: freed after the group is gone, their reducers abort the
        # process at exit, so collect them while it lives (as graphcl.train.distributed does).
        gc.collect()
        # Both ranks leave together: a rank tearing gloo down while its peer still has traffic in flight
        # aborts the peer ("terminate called without an active exception", seen as SIGABRT ~1 run in 3).
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_two_ranks_match_single_process(tmp_path):
    # One spawn for every case: starting the two processes dominates the run time.
    mp.spawn(worker, args=(f"file://{tmp_path / 'process_group'}",), nprocs=WORLD, join=True)


def test_identity_without_process_group():
    assert not is_distributed() and rank() == 0 and world_size() == 1
    x = torch.randn(3, 2, requires_grad=True)
    assert gather_with_grad(x) is x
    t = torch.randn(4)
    assert all_reduce_mean(t) is t
