"""The training loop shared by every method: `loss = method(batch)`, backward, step, `after_step`.

Early stopping on the training loss (DGI's rule: keep the best model, stop after `patience` epochs
without improvement, restore the best), periodic checkpoints through a callback, a NaN/Inf guard,
a tqdm progress bar, and timing that excludes evaluation and checkpoint writes.

Every loss is computed with PyG's `GATConv` layers aggregating by sparse products (`graph.attention.fused_gat`;
the same function, no `[E, heads, C]` message tensor).

Under a process group (torchrun) the method runs wrapped in DistributedDataParallel with its batch norms over the
global batch (`train.distributed.data_parallel`); the logged loss is the mean over ranks, so every rank takes
the same early-stopping and NaN decisions; only rank 0 shows progress.
"""
from __future__ import annotations

import copy
import math
import resource
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

import torch
from torch import nn
from tqdm import tqdm

from graphcl.core.distributed import all_reduce_mean, world_size
from graphcl.core.losses import NonFiniteInputError
from graphcl.graph.attention import StructureCache, fused_gat
from graphcl.train.checkpoint import rng_state, set_rng_state
from graphcl.train.distributed import data_parallel, is_main


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or Inf; the run stops and keeps its last good checkpoint."""


@dataclass
class FitResult:
    epochs: int  # epochs trained
    best_epoch: int
    best_loss: float
    train_seconds: float
    seconds_per_epoch: float


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("trainer.device is 'cuda' but no CUDA device is available")
    return torch.device(name)


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak-memory window (CUDA allocator peak; on Linux the process's peak RSS, VmHWM)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:  # not Linux: the peak then counts from process start
        pass


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory since `reset_peak_memory`: CUDA allocator peak on GPU, peak resident set size on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


class Trainer:
    def __init__(
        self,
        method: nn.Module,
        optimizer: torch.optim.Optimizer,
        batches: Callable[[], Iterable],
        *,
        epochs: int,
        patience: Optional[int] = None,
        device: torch.device = torch.device("cpu"),
        amp: bool = True,
        checkpoint_every: int = 10,
        on_checkpoint: Optional[Callable[[dict], None]] = None,
        on_epoch: Optional[Callable[[dict], None]] = None,
        progress: bool = True,
        desc: str = "train",
        scheduler: Optional[torch.optim.lr_scheduler.LRScheduler] = None,
        steps_per_epoch: Optional[int] = None,
    ) -> None:
        self.method, self.optimizer, self.batches = method, optimizer, batches
        # what computes the loss: the method itself, or its DDP wrapper (state and `after_step` stay on the method)
        self.model = method
        if world_size() > 1:
            self.model = data_parallel(method, device)
            progress = progress and is_main()
        self.scheduler = scheduler  # stepped once per epoch
        # batches per epoch, for `after_step(step, total_steps)` schedules; None: learnt from the first epoch
        self.steps_per_epoch = steps_per_epoch
        self.epochs, self.patience, self.device = epochs, patience, device
        # bf16 autocast on CUDA only: CPU autocast is slow for sparse ops and brings no memory win here
        self.autocast = torch.autocast("cuda", dtype=torch.bfloat16) if amp and device.type == "cuda" else nullcontext()
        self.attention_structures = StructureCache()  # GAT layers aggregate by sparse products (`fused_gat`)
        self.checkpoint_every, self.on_checkpoint, self.on_epoch = checkpoint_every, on_checkpoint, on_epoch
        self.progress = progress and sys.stderr.isatty()
        self.desc = desc
        self.epoch = 0  # epochs completed
        self.step = 0
        self.best_loss = math.inf
        self.best_epoch = 0
        self.bad_epochs = 0
        self.best_state: Optional[dict] = None
        self.train_seconds = 0.0

    # -- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "method": self.method.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "epoch": self.epoch,
            "step": self.step,
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "best_state": self.best_state,
            "train_seconds": self.train_seconds,
            "rng": rng_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.method.load_state_dict(state["method"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        for key in ("epoch", "step", "best_loss", "best_epoch", "bad_epochs", "best_state", "train_seconds"):
            setattr(self, key, state[key])
        set_rng_state(state["rng"])

    # -- loop --------------------------------------------------------------------------------
    def _train_epoch(self, epoch: int, total_steps: int) -> float:
        self.model.train()
        total, count = 0.0, 0
        for i, batch in enumerate(self.batches()):
            try:
                with self.autocast, fused_gat(self.method, self.attention_structures):
                    loss = self.model(batch)
            except NonFiniteInputError as e:  # embeddings blew up before the loss could be formed
                raise NonFiniteLossError(f"non-finite values at epoch {epoch}, step {i + 1}: {e}") from None
            value = all_reduce_mean(loss.detach()).item()  # the same on every rank
            terms = getattr(self.method, "last_terms", None)
            extra = f", terms {terms}" if terms else ""
            if not math.isfinite(value):
                raise NonFiniteLossError(f"non-finite loss {value} at epoch {epoch}, step {i + 1}{extra}")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            bad = self._nonfinite_gradients()
            if bad:
                more = f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""
                raise NonFiniteLossError(f"non-finite gradient of {bad[0]}{more} at epoch {epoch}, step {i + 1}, "
                                         f"loss {value}{extra}")
            self.optimizer.step()
            self.step += 1
            if hasattr(self.method, "after_step"):
                self.method.after_step(self.step, total_steps)
            total, count = total + value, count + 1
        return total / max(count, 1)

    def _nonfinite_gradients(self) -> list[str]:
        """Names of the parameters whose gradient holds NaN or Inf (one fused norm, one sync, when all are fine)."""
        grads = [p.grad for p in self.method.parameters() if p.grad is not None]
        if not grads or math.isfinite(torch.nn.utils.get_total_norm(grads).item()):
            return []
        return [name for name, p in self.method.named_parameters()
                if p.grad is not None and not bool(torch.isfinite(p.grad).all())]

    def fit(self) -> FitResult:
        steps_per_epoch = self.steps_per_epoch or (self.step // self.epoch if self.epoch else None)
        bar = tqdm(total=self.epochs, initial=self.epoch, desc=self.desc, disable=not self.progress, leave=False)
        stopped = self.patience is not None and self.bad_epochs >= self.patience
        while self.epoch < self.epochs and not stopped:
            epoch = self.epoch + 1
            start = time.perf_counter()
            total_steps = self.epochs * (steps_per_epoch or 1)
            loss = self._train_epoch(epoch, total_steps)
            if self.scheduler is not None:
                self.scheduler.step()
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            seconds = time.perf_counter() - start
            steps_per_epoch = steps_per_epoch or self.step
            self.train_seconds += seconds
            self.epoch = epoch
            if loss < self.best_loss:
                self.best_loss, self.best_epoch, self.bad_epochs = loss, epoch, 0
                if self.patience is not None:
                    self.best_state = copy.deepcopy(self.method.state_dict())
            else:
                self.bad_epochs += 1
            stopped = self.patience is not None and self.bad_epochs >= self.patience
            if self.on_epoch:
                self.on_epoch({"epoch": epoch, "loss": loss, "seconds": seconds, "best_loss": self.best_loss})
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", it_s=f"{1 / max(seconds, 1e-9):.1f}")
            if self.on_checkpoint and (epoch % self.checkpoint_every == 0 or stopped or epoch == self.epochs):
                self.on_checkpoint(self.state_dict())
        bar.close()
        if self.best_state is not None:  # early stopping keeps the best model, as DGI does
            self.method.load_state_dict(self.best_state)
        return FitResult(
            epochs=self.epoch,
            best_epoch=self.best_epoch,
            best_loss=self.best_loss,
            train_seconds=self.train_seconds,
            seconds_per_epoch=self.train_seconds / max(self.epoch, 1),
        )
