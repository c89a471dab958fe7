"""GRACE: Deep Graph Contrastive Representation Learning (Zhu et al., 2020).

views: two perturbations of the graph, each dropping edges and masking feature columns at its own rates;
encoder: a shared GNN, then a projection head fc -> ELU -> fc; energy: cosine / tau; objective: `info_nce`
with in-batch negatives from both views (`intra_view`), symmetrised over the two views (= `nt_xent`).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from graphcl.core.checks import check_positive, check_rate, check_size
from graphcl.core.heads import projection_head
from graphcl.core.losses import nt_xent
from graphcl.graph.gcn_views import DropEdgeGCN, gcn_layers_on, plain_gcn_convs
from graphcl.graph.sparse import SparseOperand, graph_inputs
from graphcl.graph.views import edge_feature_draws, edge_feature_view


class GRACE(nn.Module):
    """`forward(batch) -> loss`, `embed(batch) -> [N, hidden]` (the encoder's output on the whole graph).

    Args:
        tau: temperature of the cosine energy.
        drop_edge_1, drop_edge_2, drop_feature_1, drop_feature_2: per-view augmentation rates.
        proj_hidden: hidden width of the projection head (whose output width is the encoder's).
        chunk_size: rows of the N x N score matrix alive at once in `info_nce` (None: all).
    """

    static_graph = False  # perturbs edges: a GCN must not cache its normalised adjacency
    sparse_features = True  # masks whole feature columns, which CSR features support

    def __init__(self, encoder: nn.Module, hidden_channels: int, tau: float = 0.5, drop_edge_1: float = 0.2,
                 drop_edge_2: float = 0.4, drop_feature_1: float = 0.3, drop_feature_2: float = 0.4,
                 proj_hidden: Optional[int] = None, chunk_size: Optional[int] = None) -> None:
        check_positive("GRACE", tau=tau)
        check_rate("GRACE", drop_edge_1=drop_edge_1, drop_edge_2=drop_edge_2, drop_feature_1=drop_feature_1,
                   drop_feature_2=drop_feature_2)
        check_size("GRACE", proj_hidden=proj_hidden, chunk_size=chunk_size)
        super().__init__()
        self.encoder = encoder
        self.projector = projection_head(hidden_channels, hidden_channels, proj_hidden or hidden_channels,
                                         norm=None, act="elu")
        self.tau, self.chunk_size = tau, chunk_size
        self.rates = ((drop_edge_1, drop_feature_1), (drop_edge_2, drop_feature_2))
        self._cache: Optional[tuple] = None  # ((x, edge_index), SparseOperand(x), DropEdgeGCN): see _operands

    def forward(self, batch: Data) -> Tensor:
        z1, z2 = (self.projector(self._encode_view(batch, *rates)) for rates in self.rates)
        return self.loss(z1, z2)

    def _encode_view(self, batch: Data, drop_edge: float, drop_feature: float) -> Tensor:
        """The encoder on one random view (`edge_feature_view`). With a plain PyG GCN (`plain_gcn_convs`) the
        same draws run as sparse products: the first layer's (X mask) W^T as X (W mask^T)^T against the
        graph's CSR features, and every layer's propagation against the view's normalised CSR adjacency, with
        transposes built once per graph (`DropEdgeGCN`)."""
        convs = plain_gcn_convs(self.encoder)
        if convs is None:
            return self.encoder(*edge_feature_view(batch, drop_edge, drop_feature))
        edges, columns = edge_feature_draws(batch, drop_edge, drop_feature)
        x, features, graph = self._operands(batch)
        first = features @ (convs[0].lin.weight * columns.to(x.dtype)).t()
        with gcn_layers_on(convs, graph.view(edges, first.dtype), first_linear=first):
            return self.encoder(x, batch.edge_index)

    def _operands(self, batch: Data) -> tuple[Tensor, SparseOperand, DropEdgeGCN]:
        """(x, x as a `SparseOperand`, the graph's `DropEdgeGCN`), built once per graph (full-batch)."""
        key = (batch.x, batch.edge_index)
        if self._cache is None or self._cache[0][0] is not key[0] or self._cache[0][1] is not key[1]:
            self._cache = (key, SparseOperand(batch.x), DropEdgeGCN(batch.edge_index, batch.num_nodes))
        return batch.x, self._cache[1], self._cache[2]

    def loss(self, z1: Tensor, z2: Tensor) -> Tensor:
        """½ (info_nce(z1, z2) + info_nce(z2, z1)) over projections `[N, D]`, both views as negatives: `nt_xent`,
        which computes each of the three N x N score matrices once for both directions."""
        return nt_xent(z1, z2, temperature=self.tau, chunk_size=self.chunk_size)

    @torch.no_grad()
    def embed(self, batch: Data) -> Tensor:
        return self.encoder(*graph_inputs(batch))
