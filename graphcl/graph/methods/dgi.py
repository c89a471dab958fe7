"""Deep Graph Infomax (Velickovic et al., ICLR 2019).

views: the graph and a corruption of it (node features shuffled over nodes);
encoder: a GNN; energy: bilinear discriminator between node embeddings and the graph summary
sigmoid(mean(h)); objective: `dgi_bce` (real nodes vs. corrupted nodes against the real summary).
On a sampled subgraph the features are shuffled within the subgraph and the summary and the objective are over
its seed nodes.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import GCNConv
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from graphcl.core.energy import BilinearDiscriminator
from graphcl.core.losses import dgi_bce
from graphcl.graph.encoders import basic_gnn, views_from_first_layer
from graphcl.graph.sampling import seed_rows
from graphcl.graph.sparse import SparseOperand, graph_inputs, permute_rows
from graphcl.graph.views import node_permutation


class DGI(nn.Module):
    """`forward(batch) -> loss`, `embed(batch) -> [N, hidden]` (the encoder's output on the real graph).

    With a GCN encoder on a sparse (`adj_t`) batch, the first layer is computed once for both views:
    shuffling rows commutes with `X W`, so the corrupted view's `P X W` is a row gather of the real view's,
    and one sparse product propagates both views side by side.
    """

    static_graph = True  # never perturbs edges: a full-batch GCN may cache its normalised adjacency
    sparse_features = True  # never edits features: train on CSR features
    neighbor_sampling = True  # trains on NeighborLoader subgraphs (`data.loader: neighbor`)

    def __init__(self, encoder: nn.Module, hidden_channels: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.discriminator = BilinearDiscriminator(hidden_channels, bias=False)
        self._operands: Optional[tuple[Tensor, Tensor, SparseOperand, SparseOperand]] = None

    def forward(self, batch: Data) -> Tensor:
        x, adj = graph_inputs(batch)
        perm = node_permutation(batch.num_nodes, device=x.device)
        pos, neg = (seed_rows(batch, h) for h in self._encode_views(x, adj, perm))
        summary = torch.sigmoid(pos.mean(dim=0))
        return dgi_bce(self.discriminator(pos, summary), self.discriminator(neg, summary))

    def _encode_views(self, x: Tensor, adj: Any, perm: Tensor) -> tuple[Tensor, Tensor]:
        gnn = basic_gnn(self.encoder)
        conv = gnn.convs[0] if gnn is not None else None
        if not (isinstance(conv, GCNConv) and conv.normalize and isinstance(adj, Tensor) and adj.is_sparse_csr):
            return self.encoder(x, adj), self.encoder(permute_rows(x, perm), adj)
        x_op, adj_op = self._sparse_operands(x, adj, conv)
        h = x_op @ conv.lin.weight.t()  # [N, H], once for both views
        both = adj_op @ torch.cat([h, permute_rows(h, perm)], dim=1)  # [N, 2H]: real | corrupted
        if conv.bias is not None:
            both = both + conv.bias.repeat(2)
        return views_from_first_layer(self.encoder, both, lambda: self.encoder(x, adj))

    def _sparse_operands(self, x: Tensor, adj: Tensor, conv: GCNConv) -> tuple[SparseOperand, SparseOperand]:
        """X and the normalised adjacency with their transposes, built once per graph (full-batch)."""
        if self._operands is None or self._operands[0] is not x or self._operands[1] is not adj:
            norm, _ = gcn_norm(adj, None, x.size(0), conv.improved, conv.add_self_loops, conv.flow, h_dtype(x))
            self._operands = (x, adj, SparseOperand(x), SparseOperand(norm))
        return self._operands[2], self._operands[3]

    @torch.no_grad()
    def embed(self, batch: Data) -> Tensor:
        return self.encoder(*graph_inputs(batch))


def h_dtype(x: Tensor) -> torch.dtype:
    return x.dtype if x.is_floating_point() else torch.get_default_dtype()
