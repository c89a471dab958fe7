"""Contrastive multi-view representation learning on graphs (MVGRL; Hassani & Khasahmadi, ICML 2020), node level.

views: the adjacency A and its personalised-PageRank diffusion S (`graphcl.graph.diffusion`), each also
corrupted by shuffling node features; encoder: one GCN per view; energy: a shared bilinear discriminator
between the nodes of one view and the summary sigmoid(mean(h)) of the other; objective: `dgi_bce`
(real nodes vs. corrupted nodes, cross-view). Embedding: h_A + h_S.

The diffusion: the exact PPR matrix (`eps`/`top_k` None; MVGRL on Cora) or a sparsified one (`eps: auto`,
`scale: minmax`; MVGRL on CiteSeer), stored as a dense `[N, N]` tensor or as CSR (`layout`; "auto" picks by
density).
"""
from __future__ import annotations

import copy
import hashlib
from contextlib import contextmanager
from typing import Any, Iterator, Optional, Union

import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import GCNConv

from graphcl.core.checks import ArgumentError, check_choice, check_positive, check_size
from graphcl.core.energy import BilinearDiscriminator
from graphcl.core.losses import dgi_bce
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from graphcl.graph.diffusion import LAYOUTS, diffusion_adjacency, ppr_diffusion
from graphcl.graph.encoders import basic_gnn, build_encoder, views_from_first_layer
from graphcl.graph.sparse import SparseOperand, graph_inputs, permute_rows
from graphcl.graph.views import node_permutation

# Diffusion settings; the method and the encoder builder share these defaults.
DIFFUSION_DEFAULTS: dict[str, Any] = {"alpha": 0.2, "eps": None, "top_k": None, "scale": None}


def as_edge_index(adj: Tensor) -> Tensor:
    """`edge_index [2, E]` of an `edge_index` or of a sparse `adj_t` (row = target, PyG's transposed layout)."""
    if adj.layout == torch.strided:
        return adj
    coo = adj.to_sparse_coo().coalesce() if adj.layout != torch.sparse_coo else adj.coalesce()
    dst, src = coo.indices()
    return torch.stack([src, dst])


_LAST_DIFFUSION: dict[str, Any] = {}  # {"key", "s"}: the diffusion matrix of the last graph, shared by encoders


def graph_key(edge_index: Tensor, num_nodes: int) -> tuple:
    """A content key of a graph's edge set (order-free): node count, device and a digest of the sorted edges."""
    ids = torch.unique(edge_index[1] * num_nodes + edge_index[0])
    return num_nodes, str(edge_index.device), hashlib.sha1(ids.cpu().numpy().tobytes()).hexdigest()


class _DenseGCN(nn.Module):
    """A GCNConv without normalisation whose propagation is a dense product `s @ (x W) + b`."""

    def __init__(self, conv: GCNConv, s: Tensor) -> None:
        super().__init__()
        self.conv, self.s = conv, s

    def forward(self, x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        out = self.s @ self.conv.lin(x)
        return out if self.conv.bias is None else out + self.conv.bias


@contextmanager
def _dense_propagation(gnn: nn.Module, s: Tensor) -> Iterator[None]:
    """Within the block every GCN conv of `gnn` propagates with the dense matrix `s` (PyG has no dense adjacency);
    a conv already replaced (`first_layer_output`) stays as it is."""
    convs = basic_gnn(gnn).convs
    originals = list(convs)
    for i, conv in enumerate(originals):
        if isinstance(conv, GCNConv):
            convs[i] = _DenseGCN(conv, s)
    try:
        yield
    finally:
        for i, conv in enumerate(originals):
            convs[i] = conv


class MVGRLEncoder(nn.Module):
    """`forward(x [N, F], edge_index [2, E] or adj_t) -> [N, D]`: gnn_adj(x, A) + gnn_diff(x, S).

    S, the PPR diffusion of the given graph, is computed on first use and cached for that adjacency tensor.
    `gnn_diff` is a re-initialised copy of `gnn_adj` whose GCN layers propagate S as given (no normalisation).
    `layout`: how S is stored, "dense" (`[N, N]`, dense products), "sparse" (CSR) or "auto" (dense when more
    than a tenth of its entries are stored); the same S either way, up to float rounding of the products.
    """

    def __init__(self, gnn: nn.Module, alpha: float = 0.2, eps: Union[float, str, None] = None,
                 top_k: Optional[int] = None, scale: Optional[str] = None, layout: str = "auto") -> None:
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"MVGRL: unknown diffusion layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
        model = basic_gnn(gnn)
        if model is None or not all(isinstance(c, GCNConv) for c in model.convs):
            raise ValueError("MVGRL needs a GCN encoder (model.encoder.name: gcn)")
        self.gnn_adj = gnn
        self.gnn_diff = copy.deepcopy(gnn)
        for conv in basic_gnn(self.gnn_diff).convs:
            conv.normalize, conv.add_self_loops, conv.cached = False, False, False
        for m in self.gnn_diff.modules():
            if m is not self.gnn_diff and hasattr(m, "reset_parameters"):
                m.reset_parameters()
        self.diffusion_kwargs = {"alpha": alpha, "eps": eps, "top_k": top_k, "scale": scale}
        self.layout = layout
        self._cache: Optional[tuple[Tensor, Tensor]] = None  # (adjacency it was computed for, S)

    def diffusion(self, adj: Tensor, num_nodes: int) -> Tensor:
        """S `[N, N]` (dense when dense enough, else CSR) of the graph `adj`, cached by tensor identity, and
        process-wide by content for the last graph (every seed's encoder of a run evaluates the same graph)."""
        if self._cache is None or self._cache[0] is not adj:
            edge_index = as_edge_index(adj)
            key = (graph_key(edge_index, num_nodes), tuple(sorted(self.diffusion_kwargs.items(), key=str)),
                   self.layout, torch.get_default_dtype())
            if _LAST_DIFFUSION.get("key") != key:
                _LAST_DIFFUSION.clear()  # drop the old matrix before building the new one
                ei, weight = ppr_diffusion(edge_index, num_nodes, **self.diffusion_kwargs)
                _LAST_DIFFUSION.update(key=key, s=diffusion_adjacency(ei, weight, num_nodes, layout=self.layout))
            self._cache = (adj, _LAST_DIFFUSION["s"])
        return self._cache[1]

    def encode_diffusion(self, x: Tensor, s: Tensor) -> Tensor:
        if s.layout == torch.strided:
            with _dense_propagation(self.gnn_diff, s):
                return self.gnn_diff(x, s)
        return self.gnn_diff(x, s)

    def views(self, x: Tensor, adj: Tensor) -> tuple[Tensor, Tensor]:
        """(h_A, h_S), each `[N, D]`."""
        return self.gnn_adj(x, adj), self.encode_diffusion(x, self.diffusion(adj, x.size(0)))

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        h_adj, h_diff = self.views(x, edge_index)
        return h_adj + h_diff


def mvgrl_encoder(alpha: float = DIFFUSION_DEFAULTS["alpha"], eps: Union[float, str, None] = None,
                  top_k: Optional[int] = None, scale: Optional[str] = None, layout: str = "auto",
                  **spec: Any) -> MVGRLEncoder:
    """Builder of `load_encoder`: `build_encoder(**spec)` wrapped as an `MVGRLEncoder`."""
    return MVGRLEncoder(build_encoder(**spec), alpha=alpha, eps=eps, top_k=top_k, scale=scale, layout=layout)


class MVGRL(nn.Module):
    """`forward(batch) -> loss`, `embed(batch) -> [N, hidden]` (h_A + h_S on the real graph).

    Full batch: every step contrasts the whole graph (the paper samples 2000-node subgraphs). On a sparse
    (`adj_t`) batch each encoder's first layer is computed once for the real and the shuffled view (as DGI's):
    `X W` once (shuffling rows commutes with it), then one product with the normalised adjacency, resp. S,
    propagates both views side by side; the transposes the backward needs are built once per graph.
    """

    static_graph = True  # never perturbs edges
    sparse_features = True  # only shuffles feature rows, which CSR features support
    encoder_builder = "mvgrl"  # `load_encoder` rebuilds `self.encoder` with `mvgrl_encoder`
    encoder_params = (*DIFFUSION_DEFAULTS, "layout")  # the `model.params` that `mvgrl_encoder` takes

    def __init__(self, encoder: nn.Module, hidden_channels: int, alpha: float = DIFFUSION_DEFAULTS["alpha"],
                 eps: Union[float, str, None] = None, top_k: Optional[int] = None,
                 scale: Optional[str] = None, layout: str = "auto") -> None:
        if not (isinstance(alpha, (int, float)) and 0.0 < alpha < 1.0):
            raise ArgumentError("MVGRL", "alpha", f"must be in (0, 1), got {alpha!r}")
        if eps != "auto":
            check_positive("MVGRL", allow_none=True, eps=eps)
        check_size("MVGRL", top_k=top_k)
        check_choice("MVGRL", "scale", scale, (None, "minmax"))
        check_choice("MVGRL", "layout", layout, LAYOUTS)
        super().__init__()
        self.encoder = MVGRLEncoder(encoder, alpha=alpha, eps=eps, top_k=top_k, scale=scale, layout=layout)
        self.discriminator = BilinearDiscriminator(hidden_channels, bias=True)
        self._operands: Optional[tuple] = None  # (x, adj, s, X, normalised A, S as SparseOperands)

    def forward(self, batch: Data) -> Tensor:
        x, adj = graph_inputs(batch)
        enc = self.encoder
        s = enc.diffusion(adj, batch.num_nodes)
        perm = node_permutation(batch.num_nodes, device=x.device)
        conv = basic_gnn(enc.gnn_adj).convs[0]
        if conv.normalize and isinstance(adj, Tensor) and adj.is_sparse_csr:
            (h1, h3), (h2, h4) = self._encode_views(x, adj, s, perm)
        else:
            corrupted = permute_rows(x, perm)
            h1, h2 = enc.gnn_adj(x, adj), enc.encode_diffusion(x, s)  # real: adjacency, diffusion
            h3, h4 = enc.gnn_adj(corrupted, adj), enc.encode_diffusion(corrupted, s)  # corrupted
        c1, c2 = torch.sigmoid(h1.mean(dim=0)), torch.sigmoid(h2.mean(dim=0))
        d = self.discriminator
        pos = torch.cat([d(h2, c1), d(h1, c2)])  # each view's nodes against the other view's summary
        neg = torch.cat([d(h4, c1), d(h3, c2)])
        return dgi_bce(pos, neg)

    def _encode_views(self, x: Tensor, adj: Tensor, s: Tensor,
                      perm: Tensor) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
        """((h_A, h_A of the shuffled features), (h_S, h_S of the shuffled features))."""
        enc = self.encoder
        x_op, adj_op, s_op = self._sparse_operands(x, adj, s)

        def first_layer(gnn: nn.Module, prop: SparseOperand) -> Tensor:
            conv = basic_gnn(gnn).convs[0]
            h = x_op @ conv.lin.weight.t()  # [N, H], once for both views
            both = prop @ torch.cat([h, permute_rows(h, perm)], dim=1)  # [N, 2H]: real | shuffled
            return both if conv.bias is None else both + conv.bias.repeat(2)

        adj_views = views_from_first_layer(enc.gnn_adj, first_layer(enc.gnn_adj, adj_op),
                                           lambda: enc.gnn_adj(x, adj))
        diff_views = views_from_first_layer(enc.gnn_diff, first_layer(enc.gnn_diff, s_op),
                                            lambda: enc.encode_diffusion(x, s))
        return adj_views, diff_views

    def _sparse_operands(self, x: Tensor, adj: Tensor, s: Tensor) -> tuple[SparseOperand, ...]:
        """X, the GCN-normalised adjacency and S with their transposes, built once per graph (full batch)."""
        ops = self._operands
        if ops is None or ops[0] is not x or ops[1] is not adj or ops[2] is not s:
            conv = basic_gnn(self.encoder.gnn_adj).convs[0]
            dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
            norm, _ = gcn_norm(adj, None, x.size(0), conv.improved, conv.add_self_loops, conv.flow, dtype)
            self._operands = ops = (x, adj, s, SparseOperand(x), SparseOperand(norm), SparseOperand(s))
        return ops[3:]

    @torch.no_grad()
    def embed(self, batch: Data) -> Tensor:
        return self.encoder(*graph_inputs(batch))
