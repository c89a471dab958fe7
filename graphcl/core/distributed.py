"""Cross-rank helpers for contrastive losses under DDP; every function is the identity without a process group.

Gradient convention of `gather_with_grad` (the one thing to get right):
    Each rank r computes its own loss `L_r` from the gathered tensor. The backward all-reduces (SUMS)
    the gradient of the gathered tensor over ranks and returns this rank's slice, so on rank r

        x_r.grad = d(L_0 + ... + L_{W-1}) / d x_r            (W = world size)

    i.e. exactly the gradient of the SUM of the per-rank losses. DDP then AVERAGES parameter
    gradients over ranks, so the parameters receive `d(mean_r L_r) / d theta`. Hence the training
    step matches one process on the concatenated batch with loss `L` whenever `mean_r L_r == L`:
      * every rank computes the same global loss over all gathered anchors, or
      * each rank takes its own rows as anchors and returns `sum(local terms) * W / N_global`
        (for equal per-rank sizes this is simply the mean over its local anchors).
    Every rank must backpropagate through the gather (it holds a collective), as DDP requires anyway.

`CrossRankBatchNorm` follows the same convention: its statistics come from an all-reduce whose backward
sums the gradient over ranks, so under DDP a batch-norm layer trains exactly as on the concatenated batch.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["is_distributed", "rank", "world_size", "gather_with_grad", "all_reduce_mean", "broadcast",
           "CrossRankBatchNorm", "sync_batch_norm"]


def is_distributed() -> bool:
    """True when a default process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if is_distributed() else 1


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        # Ranks may hold different numbers of rows: exchange sizes, pad to the largest, strip after.
        local = torch.tensor([x.shape[0]], device=x.device)
        sizes = [torch.empty_like(local) for _ in range(world_size())]
        dist.all_gather(sizes, local)
        sizes = [int(s) for s in sizes]
        padded = x.new_zeros((max(sizes), *x.shape[1:]))
        padded[: x.shape[0]] = x
        chunks = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(chunks, padded)
        ctx.start, ctx.stop = sum(sizes[: rank()]), sum(sizes[: rank() + 1])
        return torch.cat([c[:n] for c, n in zip(chunks, sizes)])

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        # Every rank's loss saw our rows, so their gradients add up (see the module docstring).
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.start : ctx.stop]


def gather_with_grad(x: Tensor) -> Tensor:
    """Concatenate `x` `[n_r, *]` from all ranks in rank order -> `[sum_r n_r, *]`, differentiably.

    `n_r` may differ between ranks. Backward returns this rank's slice of the gradient summed over ranks
    (module docstring). Without a process group (or with one rank) this returns `x` itself.
    """
    if world_size() == 1:
        return x
    return _GatherWithGrad.apply(x)


@torch.no_grad()
def all_reduce_mean(t: Tensor) -> Tensor:
    """Mean of `t` over ranks, as a new tensor (no autograd); `t` itself without a process group."""
    if world_size() == 1:
        return t
    out = t.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / world_size()  # true division: integer counts come back as floats


def broadcast(t: Tensor) -> Tensor:
    """Overwrite `t` in place with rank 0's values and return it (`t` itself without a process group).

    Under NCCL `t` must live on this process's GPU.
    """
    if world_size() > 1:
        dist.broadcast(t, src=0)
    return t


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; backward sums the gradient over ranks (every rank's loss saw the sum)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        x = x.clone()
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
        return x

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


class CrossRankBatchNorm(_BatchNorm):
    """Batch norm whose training statistics are those of the global batch: the rows of all ranks, whose counts
    may differ (e.g. the nodes of each rank's graphs). Works on any device and backend, CPU/gloo included,
    where `torch.nn.SyncBatchNorm` refuses CPU tensors.

    Input `[N, C]` or `[N, C, *]`. Each rank contributes (count, sum, sum of squared deviations from its own
    mean) per channel in one all-reduce; Chan's parallel formula combines them without the cancellation of
    E[x^2] - E[x]^2. Without a process group, and in eval mode, it is `BatchNorm` itself.
    """

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"CrossRankBatchNorm: expected input [N, C] or [N, C, *], got shape {tuple(x.shape)}")

    def forward(self, x: Tensor) -> Tensor:
        self._check_input_dim(x)
        if not self.training or world_size() == 1:
            return super().forward(x)
        c, ranks, dtype = x.shape[1], world_size(), x.dtype
        x = x.to(torch.promote_types(dtype, torch.float32))  # half-precision sums and counts would round
        dims = [0, *range(2, x.dim())]
        shape = (1, c, *[1] * (x.dim() - 2))
        count = x.numel() // c if c else 0
        total = x.sum(dims)
        squares = (x - (total / max(count, 1)).view(shape)).square().sum(dims)
        row = torch.cat([total.new_full((1,), count), total, squares])
        # each rank fills its own row, so the sum over ranks is the table of every rank's statistics
        table = torch.cat([row.new_zeros(rank(), len(row)), row[None], row.new_zeros(ranks - rank() - 1, len(row))])
        table = _AllReduceSum.apply(table)
        counts, totals, deviations = table[:, :1], table[:, 1:c + 1], table[:, c + 1:]
        n = int(counts.sum())
        if n <= 1:
            raise ValueError(f"CrossRankBatchNorm: expected more than 1 value per channel over all ranks, got {n}")
        mean = totals.sum(0) / n
        var = (deviations.sum(0) + (counts * (totals / counts.clamp_min(1) - mean).square()).sum(0)) / n
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        y = y.to(dtype)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.to(self.running_mean), factor)
                self.running_var.lerp_((var * n / (n - 1)).to(self.running_var), factor)  # unbiased, as torch
        return y


def sync_batch_norm(module: nn.Module) -> nn.Module:
    """Replace every `torch.nn.BatchNorm{1,2,3}d` in `module` (PyG's `BatchNorm` holds one in `.module`) by a batch
    norm over the global batch: `torch.nn.SyncBatchNorm` on CUDA, `CrossRankBatchNorm` elsewhere.

    The new layers keep the old ones' Parameter and buffer objects, so an optimiser built before still updates
    them. Returns `module` (changed in place), or the replacement when `module` is itself a batch norm.
    """
    if isinstance(module, _BatchNorm) and not isinstance(module, (CrossRankBatchNorm, nn.SyncBatchNorm)):
        on_gpu = any(t.is_cuda for t in [*module.parameters(), *module.buffers()])
        cls = nn.SyncBatchNorm if on_gpu else CrossRankBatchNorm
        new = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats,
                  device="meta")  # placeholders: the old tensors are put in below
        for name in ("weight", "bias"):
            setattr(new, name, getattr(module, name))
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            setattr(new, name, getattr(module, name))
        new.train(module.training)
        return new
    for name, child in module.named_children():
        new = sync_batch_norm(child)
        if new is not child:
            module.add_module(name, new)
    return module
