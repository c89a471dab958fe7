"""Graph views: small functional primitives plus PyG `BaseTransform` wrappers.

Functions take tensors and an optional `torch.Generator` so views are reproducible and vectorised.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform


def node_permutation(num_nodes: int, generator: Optional[torch.Generator] = None,
                     device: Optional[torch.device] = None) -> Tensor:
    """A random permutation of the node ids `[num_nodes]` (DGI's corruption is `x[perm]`)."""
    return torch.randperm(num_nodes, generator=generator, device=device)


def shuffle_features(x: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
    """Row-shuffled features `[N, F]`: every node gets another node's features, the graph is unchanged."""
    return x[node_permutation(x.size(0), generator, x.device)]


class ShuffleFeatures(BaseTransform):
    """DGI's corruption as a transform: permute the rows of `data.x`."""

    def __init__(self, generator: Optional[torch.Generator] = None) -> None:
        self.generator = generator

    def forward(self, data: Data) -> Data:
        data = data.clone()
        data.x = shuffle_features(data.x, self.generator)
        return data


CORRUPTIONS = {"shuffle": shuffle_features}
