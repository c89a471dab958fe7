"""GraphCL: graph contrastive learning with augmentations (You et al., NeurIPS 2020), graph level.

views: every graph of a mini-batch gets one augmentation drawn from a pool (`RandomChoicePerGraph`: node
dropping, subgraphs, edge perturbation, attribute masking); as in the official unsupervised TU code the
other view is the original graph (`augment_both=True` augments both); encoder: a GNN whose node embeddings
are pooled per graph (GIN with per-layer sum pools concatenated); head: Linear-ReLU-Linear; energy: cosine;
objective: `info_nce` of each graph against the other view of every graph in the batch (gathered from all
processes); `exclude_positive=True` leaves the positive out of the denominator, as the paper's eq. 3 and the
official `loss_cal` do.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

from torch import Tensor, nn
from torch_geometric.data import Batch

from graphcl.core.checks import ArgumentError, check_choice, check_positive, check_size
from graphcl.core.distributed import gather_with_grad
from graphcl.core.heads import MLP
from graphcl.core.losses import info_nce
from graphcl.graph.readout import POOLS, graph_embeddings
from graphcl.graph.views import RandomChoicePerGraph, make_view

# GraphCL's "random2" pool with its 10 % / 20 % ratios (aug.py): node dropping and subgraphs.
DEFAULT_VIEWS = {"drop_nodes": {"p": 0.1}, "subgraph": {"walk_length": 10}}


def _view(name: str, kwargs: Optional[Mapping[str, Any]]):
    """`make_view(name, **kwargs)`; a bad view or setting is an `ArgumentError` naming `views.<name>`."""
    try:
        return make_view(name, **(kwargs or {}))
    except ValueError as e:
        raise ArgumentError("GraphCL", f"views.{name}", f"is rejected: {e}") from None


class GraphCL(nn.Module):
    """`forward(batch) -> loss`, `embed(batch) -> [G, D]` (pooled encoder output, no head)."""

    task = "graph"

    def __init__(self, encoder: nn.Module, hidden_channels: int,
                 views: Optional[Mapping[str, Mapping[str, Any]]] = None, temperature: float = 0.2,
                 pool: str = "sum", augment_both: bool = False, projector_hidden: Optional[int] = None,
                 exclude_positive: bool = False) -> None:
        check_positive("GraphCL", temperature=temperature)
        check_choice("GraphCL", "pool", pool, POOLS)
        check_size("GraphCL", projector_hidden=projector_hidden)
        super().__init__()
        views = DEFAULT_VIEWS if views is None else views
        if not views:
            raise ArgumentError("GraphCL", "views", "needs at least one augmentation")
        self.encoder = encoder
        self.augment = RandomChoicePerGraph([_view(name, kw) for name, kw in views.items()])
        hidden = projector_hidden or hidden_channels
        self.projector = MLP(hidden_channels, hidden, hidden_channels, num_layers=2, norm=None, act="relu")
        self.temperature, self.pool, self.augment_both = temperature, pool, augment_both
        self.exclude_positive = exclude_positive

    def forward(self, batch: Batch) -> Tensor:
        first = self.augment(batch) if self.augment_both else batch
        z1 = self.projector(graph_embeddings(self.encoder, first, self.pool))
        z2 = self.projector(graph_embeddings(self.encoder, self.augment(batch), self.pool))
        # negatives from every process's graphs: each computes the loss of the global batch (core.distributed)
        return info_nce(gather_with_grad(z1), gather_with_grad(z2), temperature=self.temperature,
                        exclude_positive=self.exclude_positive)

    def embed(self, batch: Batch) -> Tensor:
        return graph_embeddings(self.encoder, batch, self.pool)
