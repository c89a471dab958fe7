"""Contrastive multi-view representation learning on graphs (MVGRL; Hassani & Khasahmadi, ICML 2020), node level.

views: the adjacency A and its personalised-PageRank diffusion S (`graphcl.graph.diffusion`), each also
corrupted by shuffling node features; encoder: one GCN per view; energy: a shared bilinear discriminator
between the nodes of one view and the summary sigmoid(mean(h)) of the other; objective: `dgi_bce`
(real nodes vs. corrupted nodes, cross-view). Embedding: h_A + h_S.

The diffusion: the exact PPR matrix (`eps`/`top_k` None; MVGRL on Cora) or a sparsified one (`eps: auto`,
`scale: minmax`; MVGRL on CiteSeer), stored as a dense `[N, N]` tensor or as CSR (`layout`; "auto" picks by
density).

Training contrasts the whole graph at every step, or, with `sample_size`, `num_samples` windows of
`sample_size` consecutive node ids as the official code does (node/train.py: 4 windows of 2000 nodes), each
propagated with its diagonal blocks of the normalised A and of S (edges leaving the window dropped, the whole
graph's normalisation kept) and summarised on its own.
"""
from __future__ import annotations

import copy
import hashlib
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional, Union

import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import GCNConv
from torch_geometric.utils import to_torch_csr_tensor

from graphcl.core.checks import ArgumentError, check_choice, check_positive, check_size
from graphcl.core.energy import BilinearDiscriminator
from graphcl.core.losses import dgi_bce
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from graphcl.graph.diffusion import LAYOUTS, diffusion_adjacency, ppr_diffusion
from graphcl.graph.encoders import basic_gnn, build_encoder, reset_parameters, views_from_first_layer
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
        reset_parameters(self.gnn_diff)
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


def diagonal_blocks(a: Tensor, starts: Tensor, n: int) -> Tensor:
    """`[B, n, n]`: the dense diagonal blocks `a[i:i+n, i:i+n]` for every `i` of `starts [B]`, of a dense or CSR
    `a` (a CSR block is read from its rows' entries; `a` is never densified)."""
    if a.layout == torch.strided:
        return torch.stack([a[i:i + n, i:i + n] for i in starts.tolist()])
    crow, col, val = a.crow_indices(), a.col_indices(), a.values()
    out = val.new_zeros(starts.numel(), n, n)
    for b, i in enumerate(starts.tolist()):  # a loop over the few windows, not over nodes
        lo, hi = int(crow[i]), int(crow[i + n])
        rows = torch.repeat_interleave(torch.arange(n, device=a.device), crow[i + 1:i + n + 1] - crow[i:i + n],
                                       output_size=hi - lo)
        cols = col[lo:hi] - i
        inside = (cols >= 0) & (cols < n)
        out[b, rows[inside], cols[inside]] = val[lo:hi][inside]
    return out


class MVGRL(nn.Module):
    """`forward(batch) -> loss`, `embed(batch) -> [N, hidden]` (h_A + h_S on the real graph).

    Full batch (`sample_size` None): every step contrasts the whole graph. With `sample_size`: `num_samples`
    windows of consecutive node ids per step, as the official code trains (1-layer encoders, as MVGRL's). On a
    sparse
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
                 scale: Optional[str] = None, layout: str = "auto", sample_size: Optional[int] = None,
                 num_samples: int = 4) -> None:
        if not (isinstance(alpha, (int, float)) and 0.0 < alpha < 1.0):
            raise ArgumentError("MVGRL", "alpha", f"must be in (0, 1), got {alpha!r}")
        if eps != "auto":
            check_positive("MVGRL", allow_none=True, eps=eps)
        check_size("MVGRL", top_k=top_k, sample_size=sample_size)
        check_size("MVGRL", allow_none=False, num_samples=num_samples)
        if sample_size is not None and getattr(basic_gnn(encoder), "num_layers", None) != 1:
            raise ArgumentError("MVGRL", "sample_size", "needs a 1-layer GCN encoder (MVGRL's; "
                                                        "model.encoder.num_layers: 1)")
        check_choice("MVGRL", "scale", scale, (None, "minmax"))
        check_choice("MVGRL", "layout", layout, LAYOUTS)
        super().__init__()
        self.encoder = MVGRLEncoder(encoder, alpha=alpha, eps=eps, top_k=top_k, scale=scale, layout=layout)
        self.discriminator = BilinearDiscriminator(hidden_channels, bias=True)
        self.sample_size, self.num_samples = sample_size, num_samples
        self._operands: Optional[tuple] = None  # (x, adj, s, X, normalised A, S as SparseOperands)

    def forward(self, batch: Data) -> Tensor:
        x, adj = graph_inputs(batch)
        enc = self.encoder
        s = enc.diffusion(adj, batch.num_nodes)
        if self.sample_size is not None:
            return self._window_loss(x, adj, s)
        perm = node_permutation(batch.num_nodes, device=x.device)
        conv = basic_gnn(enc.gnn_adj).convs[0]
        if conv.normalize and isinstance(adj, Tensor) and adj.is_sparse_csr:
            x_op, adj_op, s_op = self._sparse_operands(x, adj, s)

            def side_by_side(op: SparseOperand) -> Callable[[Tensor], Tensor]:  # [N, 2H]: real | shuffled
                return lambda h: op @ torch.cat([h, permute_rows(h, perm)], dim=1)

            (h1, h3), (h2, h4) = self._encode_views(x, adj, s, side_by_side(adj_op), side_by_side(s_op), x_op)
        else:
            corrupted = permute_rows(x, perm)
            h1, h2 = enc.gnn_adj(x, adj), enc.encode_diffusion(x, s)  # real: adjacency, diffusion
            h3, h4 = enc.gnn_adj(corrupted, adj), enc.encode_diffusion(corrupted, s)  # corrupted
        c1, c2 = torch.sigmoid(h1.mean(dim=0)), torch.sigmoid(h2.mean(dim=0))
        d = self.discriminator
        pos = torch.cat([d(h2, c1), d(h1, c2)])  # each view's nodes against the other view's summary
        neg = torch.cat([d(h4, c1), d(h3, c2)])
        return dgi_bce(pos, neg)

    def _window_loss(self, x: Tensor, adj: Tensor, s: Tensor) -> Tensor:
        """The loss of `num_samples` random windows of `sample_size` consecutive node ids (official node/train.py):
        each window's nodes are shuffled alike for the corrupted view, propagated with the window's diagonal
        blocks of the normalised A and S, and scored against the window's own summaries."""
        n, num_nodes = self.sample_size, x.size(0)
        if n > num_nodes:
            raise ValueError(f"MVGRL: model.params.sample_size is {n} but the graph has only {num_nodes} nodes")
        if not (isinstance(adj, Tensor) and adj.is_sparse_csr):
            adj = to_torch_csr_tensor(adj.flip(0), size=(num_nodes, num_nodes))
        starts = torch.randint(0, num_nodes - n + 1, (self.num_samples,), device=x.device)
        rows = (starts[:, None] + torch.arange(n, device=x.device)).view(-1)
        shuffled = (starts[:, None] + node_permutation(n, device=x.device)).view(-1)
        x_op, adj_op, s_op = self._sparse_operands(x, adj, s)

        def windows(op: SparseOperand) -> Callable[[Tensor], Tensor]:
            blocks = diagonal_blocks(op.a, starts, n)  # [B, n, n]
            return lambda h: torch.bmm(blocks, torch.cat([h[rows], h[shuffled]], dim=1).view(blocks.size(0), n, -1))

        (h1, h3), (h2, h4) = self._encode_views(x, adj, s, windows(adj_op), windows(s_op), x_op)
        h1, h2, h3, h4 = (h.view(self.num_samples, n, -1) for h in (h1, h2, h3, h4))
        c1 = torch.sigmoid(h1.mean(dim=1, keepdim=True))  # [B, 1, H]: each window's summary
        c2 = torch.sigmoid(h2.mean(dim=1, keepdim=True))
        d = self.discriminator
        pos = torch.cat([d(h2, c1).view(-1), d(h1, c2).view(-1)])
        neg = torch.cat([d(h4, c1).view(-1), d(h3, c2).view(-1)])
        return dgi_bce(pos, neg)

    def _encode_views(self, x: Tensor, adj: Tensor, s: Tensor, propagate_adj: Callable[[Tensor], Tensor],
                      propagate_diff: Callable[[Tensor], Tensor],
                      x_op: SparseOperand) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
        """((h_A, h_A of the shuffled features), (h_S, h_S of the shuffled features)): each encoder's first layer
        computes `X W` once; `propagate_*(X W)` returns the real and the shuffled view's propagations side by
        side (`[M, 2H]`, or `[B, n, 2H]` for windows)."""
        enc = self.encoder

        def first_layer(gnn: nn.Module, propagate: Callable[[Tensor], Tensor]) -> Tensor:
            conv = basic_gnn(gnn).convs[0]
            both = propagate(x_op @ conv.lin.weight.t())  # X W: [N, H], once for both views
            both = both.reshape(-1, both.size(-1))
            return both if conv.bias is None else both + conv.bias.repeat(2)

        adj_views = views_from_first_layer(enc.gnn_adj, first_layer(enc.gnn_adj, propagate_adj),
                                           lambda: enc.gnn_adj(x, adj))
        diff_views = views_from_first_layer(enc.gnn_diff, first_layer(enc.gnn_diff, propagate_diff),
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
