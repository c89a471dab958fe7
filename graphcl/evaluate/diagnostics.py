"""Embedding-health diagnostics: is the representation aligned, spread out, or collapsed?

Every function takes `[N, D]` embeddings (any float dtype, any device) and returns a Python float.
"""
import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["alignment", "uniformity", "effective_rank", "feature_std"]


def _rows(name: str, z: Tensor, min_rows: int = 1) -> Tensor:
    if z.dim() != 2 or z.shape[0] < min_rows:
        raise ValueError(f"{name} must have shape [N, D] with N >= {min_rows}, got {list(z.shape)}")
    return z.detach().float()


@torch.no_grad()
def alignment(z1: Tensor, z2: Tensor, alpha: float = 2) -> float:
    """Mean `||z1_i - z2_i||^alpha` over positive pairs of L2-normalised rows (Wang & Isola, 2020); 0 is best."""
    z1, z2 = _rows("z1", z1), _rows("z2", z2)
    if z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must have the same shape, got {list(z1.shape)} and {list(z2.shape)}")
    return (F.normalize(z1, dim=1) - F.normalize(z2, dim=1)).norm(dim=1).pow(alpha).mean().item()


@torch.no_grad()
def uniformity(z: Tensor, t: float = 2, max_rows: int = 4096, seed: int = 0) -> float:
    """`log mean_{i<j} exp(-t ||z_i - z_j||^2)` on normalised rows (Wang & Isola, 2020); lower is more uniform.

    Above `max_rows` rows a fixed random subset (`seed`) is used, bounding memory to `max_rows^2 / 2` pairs.
    """
    z = _rows("z", z, min_rows=2)
    if z.shape[0] > max_rows:
        keep = torch.randperm(z.shape[0], generator=torch.Generator().manual_seed(seed))[:max_rows]
        z = z[keep.to(z.device)]
    sq_dists = torch.pdist(F.normalize(z, dim=1)).pow(2)
    # log-mean-exp through logsumexp: exp(-t d^2) underflows for well-spread embeddings.
    return (torch.logsumexp(-t * sq_dists, dim=0) - math.log(sq_dists.numel())).item()


@torch.no_grad()
def effective_rank(z: Tensor, eps: float = 1e-7) -> float:
    """RankMe (Garrido et al., 2023): `exp(entropy(p))` with `p_k = sigma_k / sum(sigma) + eps`.

    Ranges from ~1 (collapsed to a line) to `min(N, D)` (all singular values equal); 0 for an all-zero input.
    """
    sigma = torch.linalg.svdvals(_rows("z", z))
    if sigma.sum() == 0:
        return 0.0
    p = sigma / sigma.sum() + eps
    return torch.exp(-(p * p.log()).sum()).item()


@torch.no_grad()
def feature_std(z: Tensor) -> float:
    """Mean over dimensions of the per-dimension std of normalised rows: ~0 when collapsed, ~1/sqrt(D) when spread."""
    return F.normalize(_rows("z", z, min_rows=2), dim=1).std(dim=0).mean().item()
