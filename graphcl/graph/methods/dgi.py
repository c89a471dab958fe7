"""Deep Graph Infomax (Velickovic et al., ICLR 2019).

views: the graph and a corruption of it (node features shuffled over nodes);
encoder: a GNN; energy: bilinear discriminator between node embeddings and the graph summary
sigmoid(mean(h)); objective: `dgi_bce` (real nodes vs. corrupted nodes against the real summary).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from graphcl.core.energy import BilinearDiscriminator
from graphcl.core.losses import dgi_bce
from graphcl.graph.sparse import permute_rows
from graphcl.graph.views import node_permutation


def graph_inputs(batch: Data) -> tuple[Tensor, Any]:
    """(x, adjacency) of a batch: `adj_t` when the batch carries a sparse adjacency, else `edge_index`."""
    adj = batch.adj_t if "adj_t" in batch else batch.edge_index
    return batch.x, adj


class DGI(nn.Module):
    """`forward(batch) -> loss`, `embed(batch) -> [N, hidden]` (the encoder's output on the real graph)."""

    static_graph = True  # never perturbs edges: a full-batch GCN may cache its normalised adjacency

    def __init__(self, encoder: nn.Module, hidden_channels: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.discriminator = BilinearDiscriminator(hidden_channels, bias=False)

    def forward(self, batch: Data) -> Tensor:
        x, adj = graph_inputs(batch)
        perm = node_permutation(batch.num_nodes, device=x.device)
        pos = self.encoder(x, adj)
        neg = self.encoder(permute_rows(x, perm), adj)
        summary = torch.sigmoid(pos.mean(dim=0))
        return dgi_bce(self.discriminator(pos, summary), self.discriminator(neg, summary))

    @torch.no_grad()
    def embed(self, batch: Data) -> Tensor:
        return self.encoder(*graph_inputs(batch))
