"""GCN layers on edge-dropped views of one graph, as sparse products.

PyG's `GCNConv` on an `edge_index` normalises the adjacency in every layer (self-loops, degrees) and
propagates by gathering one message per edge and scattering them back. Views that only drop edges of one
fixed graph (GRACE's) all have the CSR structure of that graph with GCN's self-loops, so
`DropEdgeGCN` builds that structure once, in both orientations; a view is then a vector of kept edges: its
normalised adjacency is the structure with new values (dropped edges stored as zeros), built once per view
for all layers, and propagation is a CSR product whose backward uses the precomputed transpose.
`gcn_layers_on` runs an unchanged PyG GCN whose convs compute `A_view @ lin(x) + bias`, what `GCNConv`
computes, with the view's adjacency.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Optional

import torch
from torch import Tensor, nn
from torch_geometric.nn import GCNConv

from graphcl.graph.encoders import basic_gnn
from graphcl.graph.sparse import SparseOperand
from graphcl.graph.sampling import is_sampled
from graphcl.graph.views import keep_columns


def plain_gcn_convs(encoder: nn.Module) -> Optional[list[GCNConv]]:
    """The convs of a PyG GCN encoder when every one is a `GCNConv` that normalises as `DropEdgeGCN` does
    (symmetric normalisation with self-loops of weight 1, flow source -> target, no cache); else None."""
    gnn = basic_gnn(encoder)
    convs = list(gnn.convs) if gnn is not None else []
    ok = convs and all(
        type(c) is GCNConv and c.normalize and c.add_self_loops and not c.improved and not c.cached
        and c.flow == "source_to_target"
        for c in convs
    )
    return convs if ok else None


def _csr_structure(rows: Tensor, cols: Tensor, num_nodes: int) -> tuple[Tensor, Tensor, Tensor]:
    """(order, crow, col): `order` sorts the entries (rows, cols) by row, then column, into CSR order."""
    order = torch.argsort(rows * num_nodes + cols, stable=True)
    counts = torch.bincount(rows, minlength=num_nodes)
    crow = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    return order, crow, cols[order]


class DropEdgeGCN:
    """GCN-normalised adjacencies of edge-dropped views of the graph `edge_index` on `num_nodes` nodes.

    `view(keep)` is what `gcn_norm` makes of `edge_index[:, keep]` (no edge weights): the graph's own
    self-loops are replaced by one loop of weight 1 per node, and A_ij = d_i^-1/2 d_j^-1/2 for an edge
    j -> i, d the in-degree with the loop, as a `SparseOperand` (PyG's `adj_t`: row i lists the sources of i).
    """

    def __init__(self, edge_index: Tensor, num_nodes: int) -> None:
        src, dst = edge_index
        self.edges = (src != dst).nonzero().view(-1)  # the non-loop edges, in edge_index order
        loops = torch.arange(num_nodes, device=edge_index.device)
        self.src, self.dst = torch.cat([src[self.edges], loops]), torch.cat([dst[self.edges], loops])
        self.num_nodes = num_nodes
        self.order, self.crow, self.col = _csr_structure(self.dst, self.src, num_nodes)  # A = adj_t
        self.order_t, self.crow_t, self.col_t = _csr_structure(self.src, self.dst, num_nodes)  # A^T

    def view(self, keep: Tensor, dtype: torch.dtype = torch.float32) -> SparseOperand:
        """The normalised adjacency of the edges where `keep [E]` (bool, over `edge_index`) is True."""
        n = self.num_nodes
        weight = torch.cat([keep[self.edges].to(dtype), torch.ones(n, dtype=dtype, device=keep.device)])
        deg = torch.zeros(n, dtype=dtype, device=keep.device).scatter_add_(0, self.dst, weight)
        deg_inv_sqrt = deg.pow_(-0.5)  # every node has its loop: no zero degree
        value = deg_inv_sqrt[self.src] * weight * deg_inv_sqrt[self.dst]
        a = torch.sparse_csr_tensor(self.crow, self.col, value[self.order], (n, n))
        a_t = torch.sparse_csr_tensor(self.crow_t, self.col_t, value[self.order_t], (n, n))
        return SparseOperand(a, a_t)


@contextmanager
def gcn_layers_on(convs: list[GCNConv], adj: SparseOperand, first_linear: Optional[Tensor] = None) -> Iterator[None]:
    """Within the block each conv of `convs` (see `plain_gcn_convs`) computes `adj @ lin(x) + bias`, whatever
    graph it is called with; the first conv takes `first_linear` as its `lin(x)` when given (e.g. the
    products of several views computed at once)."""

    def forward(conv: GCNConv, given: Optional[Tensor]):
        def run(x: Tensor, *args, **kwargs) -> Tensor:
            out = adj @ (conv.lin(x) if given is None else given)
            return out if conv.bias is None else out + conv.bias

        return run

    for i, conv in enumerate(convs):
        conv.forward = forward(conv, first_linear if i == 0 else None)
    try:
        yield
    finally:
        for conv in convs:
            del conv.forward


class EdgeFeatureViews:
    """Encodes views drawn by `edge_feature_draws` (edges dropped, feature columns masked), the views of GRACE,
    BGRL and CCA-SSG. With a plain PyG GCN (`plain_gcn_convs`) on a whole graph the view runs as sparse
    products, so no `[E, D]` message tensor is ever built: the first layer's `(X mask) W^T` as `X (W mask^T)^T`
    against the graph's (CSR or dense) features, and every layer's propagation against the view's normalised
    CSR adjacency (`DropEdgeGCN`), whose structure is built once per graph and shared by every encoder called
    on it (BGRL's online and target networks). Other encoders, and sampled subgraphs (new at every step), get
    the view itself through PyG."""

    def __init__(self) -> None:
        self._cache: Optional[tuple] = None  # ((x, edge_index), SparseOperand(x), DropEdgeGCN)

    def __call__(self, encoder: nn.Module, batch, draws: tuple[Tensor, Tensor]) -> Tensor:
        """The encoder's output `[N, D]` on the view of `draws`: kept edges `[E]` and kept columns `[F]` (bool)."""
        edges, columns = draws
        convs = plain_gcn_convs(encoder)
        if convs is None or is_sampled(batch):
            return encoder(keep_columns(batch.x, columns), batch.edge_index[:, edges])
        features, graph = self._operands(batch)
        weight = convs[0].lin.weight
        first = features @ (weight * columns.to(weight.dtype)).t()
        with gcn_layers_on(convs, graph.view(edges, first.dtype), first_linear=first):
            return encoder(batch.x, batch.edge_index)

    def _operands(self, batch) -> tuple[SparseOperand, DropEdgeGCN]:
        """(x as a `SparseOperand`, the graph's `DropEdgeGCN`), built again only when the graph changes."""
        key = (batch.x, batch.edge_index)
        if self._cache is None or self._cache[0][0] is not key[0] or self._cache[0][1] is not key[1]:
            self._cache = (key, SparseOperand(batch.x), DropEdgeGCN(batch.edge_index, batch.num_nodes))
        return self._cache[1], self._cache[2]
