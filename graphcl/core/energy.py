"""Energies: similarity scores between two sets of representations."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["cosine", "dot", "ENERGIES", "get_energy", "BilinearDiscriminator"]

Energy = Callable[[Tensor, Tensor], Tensor]


def dot(a: Tensor, b: Tensor) -> Tensor:
    """Dot products: a `[N, D]`, b `[M, D]` -> `[N, M]`, entry (i, j) = a_i . b_j."""
    return a @ b.T


def cosine(a: Tensor, b: Tensor) -> Tensor:
    """Cosine similarities: a `[N, D]`, b `[M, D]` -> `[N, M]`, entry (i, j) = a_i . b_j / (|a_i| |b_j|)."""
    return dot(F.normalize(a, dim=-1), F.normalize(b, dim=-1))


ENERGIES: dict[str, Energy] = {"cosine": cosine, "dot": dot}


def get_energy(name: str) -> Energy:
    """The energy function registered as `name` in `ENERGIES`."""
    if name not in ENERGIES:
        raise ValueError(f"unknown energy {name!r}; choose from {sorted(ENERGIES)}")
    return ENERGIES[name]


class BilinearDiscriminator(nn.Module):
    """DGI's discriminator: logits_i = h_i^T W s (+ b), W `[D, D]`.

    `forward(h [N, D], summary [D] or [N, D]) -> logits [N]`.
    """

    def __init__(self, dim: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim, dim))
        self.bias = nn.Parameter(torch.empty(1)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, h: Tensor, summary: Tensor) -> Tensor:
        # W s first: one (or N) D-vectors instead of an [N, D] product h W
        ws = summary @ self.weight.T
        logits = h @ ws if ws.dim() == 1 else (h * ws).sum(-1)
        return logits if self.bias is None else logits + self.bias
