"""CCA-SSG: From Canonical Correlation Analysis to Self-supervised Graph Neural Networks (Zhang et al., 2021).

views: two perturbations of the graph at the same rates (edges dropped, feature columns masked);
encoder: a shared GNN, no heads; energy / objective: `cca_ssg` -- per-dimension standardised embeddings,
an invariance term between the views plus a penalty pulling each view's feature correlation to identity.
On a sampled subgraph the views are drawn on the subgraph and the statistics are over its seed nodes.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from graphcl.core.checks import check_nonnegative, check_rate
from graphcl.core.losses import cca_ssg
from graphcl.graph.sampling import seed_rows
from graphcl.graph.sparse import graph_inputs
from graphcl.graph.gcn_views import EdgeFeatureViews
from graphcl.graph.views import edge_feature_draws


class CCASSG(nn.Module):
    """`forward(batch) -> loss`, `embed(batch) -> [N, hidden]` (the raw encoder output, not standardised).

    Args:
        lambd: weight of the decorrelation term (the authors' code's scale, see `cca_ssg`).
        drop_edge, drop_feature: augmentation rates, shared by both views (`der`, `dfr` in the code).
    """

    static_graph = False  # perturbs edges: a GCN must not cache its normalised adjacency
    neighbor_sampling = True  # trains on NeighborLoader subgraphs (`data.loader: neighbor`)

    def __init__(self, encoder: nn.Module, hidden_channels: int, lambd: float = 1e-3, drop_edge: float = 0.4,
                 drop_feature: float = 0.1) -> None:
        check_nonnegative("CCASSG", lambd=lambd)
        check_rate("CCASSG", drop_edge=drop_edge, drop_feature=drop_feature)
        super().__init__()
        self.encoder = encoder
        self.views = EdgeFeatureViews()  # sparse GCN products on whole graphs
        self.lambd, self.drop_edge, self.drop_feature = lambd, drop_edge, drop_feature

    def forward(self, batch: Data) -> Tensor:
        draws = (edge_feature_draws(batch, self.drop_edge, self.drop_feature) for _ in range(2))
        h1, h2 = (seed_rows(batch, self.views(self.encoder, batch, d)) for d in draws)
        return cca_ssg(h1, h2, self.lambd)

    @torch.no_grad()
    def embed(self, batch: Data) -> Tensor:
        return self.encoder(*graph_inputs(batch))
