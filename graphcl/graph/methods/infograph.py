"""InfoGraph (Sun et al., ICLR 2020), unsupervised graph level.

views: none (the graph itself); encoder: GIN with per-layer outputs concatenated ("patch" = node embedding
`[N, D]`, graph = their sum per graph `[G, D]`); energy: dot product of feed-forward heads (`ShortcutMLP`) of
node and graph embeddings, for every node-graph pair of the batch; objective: `jsd_mi`, positives the pairs
of a node with its own graph, negatives the pairs with the other graphs.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch

from graphcl.core.checks import check_choice
from graphcl.core.heads import ShortcutMLP
from graphcl.core.losses import jsd_mi
from graphcl.graph.readout import POOLS, graph_embeddings, node_embeddings, readout


class InfoGraph(nn.Module):
    """`forward(batch) -> loss`, `embed(batch) -> [G, D]` (pooled encoder output)."""

    task = "graph"

    def __init__(self, encoder: nn.Module, hidden_channels: int, pool: str = "sum") -> None:
        check_choice("InfoGraph", "pool", pool, POOLS)
        super().__init__()
        self.encoder, self.pool = encoder, pool
        self.local_head = ShortcutMLP(hidden_channels, hidden_channels)
        self.global_head = ShortcutMLP(hidden_channels, hidden_channels)

    def forward(self, batch: Batch) -> Tensor:
        h = node_embeddings(self.encoder, batch)
        g = readout(h, batch.batch, batch.num_graphs, self.pool)
        scores = self.local_head(h) @ self.global_head(g).t()  # [N, G]
        own = torch.zeros_like(scores, dtype=torch.bool)
        own[torch.arange(scores.size(0), device=scores.device), batch.batch] = True
        return jsd_mi(scores[own], scores[~own])

    def embed(self, batch: Batch) -> Tensor:
        return graph_embeddings(self.encoder, batch, self.pool)
