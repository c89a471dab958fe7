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
"""
import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["is_distributed", "rank", "world_size", "gather_with_grad", "all_reduce_mean"]


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
