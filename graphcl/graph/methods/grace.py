"""GRACE: Deep Graph Contrastive Representation Learning (Zhu et al., 2020).

views: two perturbations of the graph, each dropping edges and masking feature columns at its own rates;
encoder: a shared GNN, then a projection head fc -> ELU -> fc; energy: cosine / tau; objective: `info_nce`
with in-batch negatives from both views (`intra_view`), symmetrised over the two views (= `nt_xent`).
On a sampled subgraph the views are drawn on the subgraph and the seed nodes are the batch of the objective.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from graphcl.core.checks import check_positive, check_rate, check_size
from graphcl.core.heads import projection_head
from graphcl.core.losses import info_nce, nt_xent
from graphcl.graph.gcn_views import EdgeFeatureViews
from graphcl.graph.sampling import seed_rows
from graphcl.graph.sparse import graph_inputs
from graphcl.graph.views import edge_feature_draws


class GRACE(nn.Module):
    """`forward(batch) -> loss`, `embed(batch) -> [N, hidden]` (the encoder's output on the whole graph).

    Args:
        tau: temperature of the cosine energy.
        drop_edge_1, drop_edge_2, drop_feature_1, drop_feature_2: per-view augmentation rates.
        proj_hidden: hidden width of the projection head (whose output width is the encoder's).
        chunk_size: rows of the N x N score matrix alive at once in `info_nce` (None: all).
        num_negatives: subsample negatives (None: all nodes of both views). Each step draws this many nodes,
            whose projections in both views are every other node's negatives; the drawn nodes themselves are
            not anchors, so no anchor meets itself. O(N x num_negatives) scores instead of O(N^2).
    """

    static_graph = False  # perturbs edges: a GCN must not cache its normalised adjacency
    sparse_features = True  # masks whole feature columns, which CSR features support
    neighbor_sampling = True  # trains on NeighborLoader subgraphs (`data.loader: neighbor`)

    def __init__(self, encoder: nn.Module, hidden_channels: int, tau: float = 0.5, drop_edge_1: float = 0.2,
                 drop_edge_2: float = 0.4, drop_feature_1: float = 0.3, drop_feature_2: float = 0.4,
                 proj_hidden: Optional[int] = None, chunk_size: Optional[int] = None,
                 num_negatives: Optional[int] = None) -> None:
        check_positive("GRACE", tau=tau)
        check_rate("GRACE", drop_edge_1=drop_edge_1, drop_edge_2=drop_edge_2, drop_feature_1=drop_feature_1,
                   drop_feature_2=drop_feature_2)
        check_size("GRACE", proj_hidden=proj_hidden, chunk_size=chunk_size, num_negatives=num_negatives)
        super().__init__()
        self.encoder = encoder
        self.projector = projection_head(hidden_channels, hidden_channels, proj_hidden or hidden_channels,
                                         norm=None, act="elu")
        self.tau, self.chunk_size, self.num_negatives = tau, chunk_size, num_negatives
        self.rates = ((drop_edge_1, drop_feature_1), (drop_edge_2, drop_feature_2))
        self.views = EdgeFeatureViews()  # sparse GCN products on whole graphs

    def forward(self, batch: Data) -> Tensor:
        z1, z2 = (self.projector(seed_rows(batch, self.views(self.encoder, batch, edge_feature_draws(batch, *rates))))
                  for rates in self.rates)
        return self.loss(z1, z2)

    def loss(self, z1: Tensor, z2: Tensor) -> Tensor:
        """½ (info_nce(z1, z2) + info_nce(z2, z1)) over projections `[N, D]`, both views as negatives: `nt_xent`,
        which computes each of the three N x N score matrices once for both directions; with `num_negatives`,
        the same over the undrawn anchors against the drawn nodes' projections in both views."""
        if self.num_negatives is None or self.num_negatives >= len(z1):
            return nt_xent(z1, z2, temperature=self.tau, chunk_size=self.chunk_size)
        perm = torch.randperm(len(z1), device=z1.device)
        drawn, anchors = perm[: self.num_negatives], perm[self.num_negatives:]
        negatives = torch.cat([z1[drawn], z2[drawn]])
        a1, a2 = z1[anchors], z2[anchors]
        return (info_nce(a1, a2, negatives, self.tau, chunk_size=self.chunk_size)
                + info_nce(a2, a1, negatives, self.tau, chunk_size=self.chunk_size)) / 2

    @torch.no_grad()
    def embed(self, batch: Data) -> Tensor:
        return self.encoder(*graph_inputs(batch))
