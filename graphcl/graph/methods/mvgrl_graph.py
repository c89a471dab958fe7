"""Contrastive multi-view representation learning on graphs (MVGRL; Hassani & Khasahmadi, ICML 2020), graph level.

views: every graph's adjacency A and its own exact personalised-PageRank diffusion S (alpha 0.2; no entry
between graphs), computed once for the whole collated dataset (`prepare_graphs`); encoder: one GCN per view
(PReLU), every layer's output sum-pooled per graph and concatenated, then a shared graph head (`ShortcutMLP`);
nodes: the last layer's output through a shared node head; energy: dot product of node and graph codes;
objective: local-global `jsd_mi` across views (nodes of A against graphs of S, and nodes of S against graphs
of A), positives the pairs of a node with its own graph. Embedding: g_A + g_S (the graph head's outputs, as the
official `embed` computes them).

S is stored on the collated batch as a second edge set with graph-local node ids (`diff_index [2, E_S]`,
`diff_weight [E_S]`, batching increment 0): `take_graphs` refuses attributes that hold global node ids (they
would go stale), and cuts these like any edge-level attribute; `diffusion_adj_t` adds each graph's node offset.
Views that drop nodes would leave these local ids stale too: MVGRL applies none.
"""
from __future__ import annotations

import copy
from typing import Optional

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch
from torch_geometric.nn import GCNConv, global_add_pool
from torch_geometric.nn.models.basic_gnn import BasicGNN

from graphcl.core.heads import ShortcutMLP
from graphcl.core.losses import jsd_mi
from graphcl.graph.diffusion import ppr_per_graph
from graphcl.graph.encoders import build_encoder, reset_parameters
from graphcl.graph.methods.mvgrl import as_edge_index

DIFF_KEYS = ("diff_index", "diff_weight")  # the attributes `prepare_graphs` adds


def _check_gnn(gnn: nn.Module) -> BasicGNN:
    """MVGRL's graph encoder is a PyG GCN whose per-layer outputs are concatenated (`options: {jk: cat}`) with no
    final linear map and no extra output activation (the last layer is already activated)."""
    if not isinstance(gnn, BasicGNN) or not all(isinstance(c, GCNConv) for c in gnn.convs):
        raise ValueError("MVGRLGraph needs a GCN encoder (model.encoder.name: gcn) without an extra output "
                         "activation (model.encoder.act_last: false)")
    if gnn.jk_mode != "cat" or hasattr(gnn, "lin"):
        raise ValueError("MVGRLGraph needs per-layer outputs: model.encoder.options: {jk: cat} and no out_channels")
    return gnn


def _check_alpha_eps(alpha: float, eps: Optional[float]) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"MVGRLGraph: key 'alpha' must be in (0, 1), got {alpha}")
    if eps is not None and not float(eps) >= 0.0:
        raise ValueError(f"MVGRLGraph: key 'eps' must be >= 0 or null, got {eps}")


def csr_adj_t(edge_index: Tensor, weight: Tensor, num_nodes: int) -> Tensor:
    """The weighted graph as a CSR `adj_t [N, N]` (row = target), for edges already sorted by target."""
    crow = torch.cat([edge_index.new_zeros(1), torch.bincount(edge_index[1], minlength=num_nodes).cumsum(0)])
    return torch.sparse_csr_tensor(crow, edge_index[0], weight, (num_nodes, num_nodes))


def diffusion_adj_t(batch: Batch) -> Tensor:
    """The prepared diffusion of `batch`'s graphs (`prepare_graphs`) as one block-diagonal CSR `adj_t [N, N]`."""
    counts = batch._slice_dict["diff_index"].diff().to(batch.diff_index.device)  # entries per graph
    graph = torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts,
                                    output_size=batch.diff_index.size(1))
    return csr_adj_t(batch.diff_index + batch.ptr[graph], batch.diff_weight, batch.num_nodes)


class MVGRLGraphEncoder(nn.Module):
    """`forward(x [N, F], edge_index [2, E], batch [N]) -> [G, H]`: head(g_A) + head(g_S) (`graph_level`).

    `gnn_adj`: the given GCN (`jk: cat`, GCN-normalised A + I); `gnn_diff`: a re-initialised copy that
    propagates S as given; `graph_head`: `ShortcutMLP(L * H -> H)` on the concatenated per-layer sum pools.
    `forward` computes S of the given graphs itself (`ppr_per_graph`), as `prepare_graphs` did for training.
    PyG's GCN shares one PReLU across its layers (the official code has one per layer: `shared_act=False`).
    """

    graph_level = True

    def __init__(self, gnn: nn.Module, alpha: float = 0.2, eps: Optional[float] = None) -> None:
        super().__init__()
        _check_alpha_eps(alpha, eps)
        self.gnn_adj = _check_gnn(gnn)
        self.gnn_diff = copy.deepcopy(gnn)
        for conv in self.gnn_diff.convs:
            conv.normalize, conv.add_self_loops, conv.cached = False, False, False
        reset_parameters(self.gnn_diff)
        self.hidden = gnn.hidden_channels
        self.graph_head = ShortcutMLP(gnn.num_layers * gnn.hidden_channels, gnn.hidden_channels, act="prelu")
        self.alpha, self.eps = alpha, eps

    def diffusion(self, edge_index: Tensor, batch: Tensor, num_graphs: Optional[int] = None) -> Tensor:
        """S of every graph as one block-diagonal CSR `adj_t [N, N]`."""
        index, weight, _ = ppr_per_graph(edge_index, batch, num_graphs=num_graphs, alpha=self.alpha, eps=self.eps)
        return csr_adj_t(index, weight, batch.numel())

    def views(self, x: Tensor, edge_index: Tensor, diff_adj_t: Tensor) -> tuple[Tensor, Tensor]:
        """Per-layer node outputs of both views, each `[N, L * H]` (the last layer is the last H columns)."""
        return self.gnn_adj(x, edge_index), self.gnn_diff(x, diff_adj_t)

    def pool(self, h: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        """`[G, H]`: the graph head on the per-layer sum pools (a sum pool of the concatenation)."""
        return self.graph_head(global_add_pool(h, batch, num_graphs))

    def forward(self, x: Tensor, edge_index: Tensor, batch: Optional[Tensor] = None) -> Tensor:
        if batch is None:
            batch = torch.zeros(x.size(0), dtype=torch.long, device=x.device)
        edge_index = as_edge_index(edge_index)
        num_graphs = int(batch.max()) + 1 if batch.numel() else 0
        h_adj, h_diff = self.views(x, edge_index, self.diffusion(edge_index, batch, num_graphs))
        return self.pool(h_adj, batch, num_graphs) + self.pool(h_diff, batch, num_graphs)


def mvgrl_graph_encoder(alpha: float = 0.2, eps: Optional[float] = None, **spec) -> MVGRLGraphEncoder:
    """Builder of `load_encoder`: `build_encoder(**spec)` wrapped as an `MVGRLGraphEncoder`."""
    return MVGRLGraphEncoder(build_encoder(**spec), alpha=alpha, eps=eps)


def local_global_jsd(local: Tensor, graphs: Tensor, batch: Tensor) -> Tensor:
    """`jsd_mi` of the scores `local [N, D] @ graphs [G, D]^T`: each node with its own graph (positive) and with
    every other graph of the batch (negatives)."""
    scores = local @ graphs.t()  # [N, G]
    own = torch.zeros_like(scores, dtype=torch.bool)
    own[torch.arange(scores.size(0), device=scores.device), batch] = True
    return jsd_mi(scores[own], scores[~own])


class MVGRLGraph(nn.Module):
    """`forward(batch) -> loss`, `embed(batch) -> [G, H]` (head(g_A) + head(g_S)).

    `alpha`: PPR teleport probability; `eps`: keep only diffusion entries >= eps (None: every entry, the exact
    S; large graphs, e.g. REDDIT-BINARY, need it to fit in memory).
    """

    task = "graph"
    encoder_builder = "mvgrl_graph"  # `load_encoder` rebuilds `self.encoder` with `mvgrl_graph_encoder`
    encoder_params = ("alpha", "eps")  # the `model.params` that builder takes
    prepare_params = ("alpha", "eps")  # the `model.params` that `prepare_graphs` takes

    def __init__(self, encoder: nn.Module, hidden_channels: int, alpha: float = 0.2,
                 eps: Optional[float] = None) -> None:
        super().__init__()
        self.encoder = MVGRLGraphEncoder(encoder, alpha=alpha, eps=eps)
        hidden = self.encoder.hidden
        self.local_head = ShortcutMLP(hidden, hidden, act="prelu")

    @staticmethod
    def prepare_graphs(batch: Batch, alpha: float = 0.2, eps: Optional[float] = None) -> Batch:
        """`batch` (a collated `Batch`) with every graph's diffusion as `diff_index [2, E_S]` (graph-local node
        ids) and `diff_weight [E_S]`, collated per graph so that `take_graphs` carries them."""
        _check_alpha_eps(alpha, eps)
        if getattr(batch, "_slice_dict", None) is None:
            raise ValueError("MVGRLGraph.prepare_graphs: needs a Batch made by Batch.from_data_list (with its slices)")
        index, weight, entry_ptr = ppr_per_graph(batch.edge_index, batch.batch, num_graphs=batch.num_graphs,
                                                 alpha=alpha, eps=eps)
        graph = torch.repeat_interleave(torch.arange(batch.num_graphs, device=index.device), entry_ptr.diff(),
                                        output_size=index.size(1))
        out = copy.copy(batch)
        out.diff_index, out.diff_weight = index - batch.ptr[graph], weight
        slices, zeros = entry_ptr.cpu(), torch.zeros(batch.num_graphs, dtype=torch.long)
        out._slice_dict = {**batch._slice_dict, "diff_index": slices, "diff_weight": slices}
        out._inc_dict = {**batch._inc_dict, "diff_index": zeros, "diff_weight": zeros}
        return out

    def _diffusion(self, batch: Batch) -> Tensor:
        if all(key in batch for key in DIFF_KEYS):
            return diffusion_adj_t(batch)
        return self.encoder.diffusion(batch.edge_index, batch.batch, batch.num_graphs)

    def forward(self, batch: Batch) -> Tensor:
        enc, g = self.encoder, batch.num_graphs
        h_adj, h_diff = enc.views(batch.x, batch.edge_index, self._diffusion(batch))
        g_adj, g_diff = enc.pool(h_adj, batch.batch, g), enc.pool(h_diff, batch.batch, g)
        l_adj = self.local_head(h_adj[:, -enc.hidden:])  # last layer's node outputs
        l_diff = self.local_head(h_diff[:, -enc.hidden:])
        return local_global_jsd(l_adj, g_diff, batch.batch) + local_global_jsd(l_diff, g_adj, batch.batch)

    @torch.no_grad()
    def embed(self, batch: Batch) -> Tensor:
        enc, g = self.encoder, batch.num_graphs
        h_adj, h_diff = enc.views(batch.x, batch.edge_index, self._diffusion(batch))
        return enc.pool(h_adj, batch.batch, g) + enc.pool(h_diff, batch.batch, g)
