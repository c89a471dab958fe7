"""GAT attention aggregated by sparse products: PyG's `GATConv` without its `[E, heads, C]` message tensor.

PyG's `GATConv` gathers every edge's source features into an `[E, heads, C]` tensor, scales it by the edge's
attention and scatters it to the targets; forward and backward read and write that tensor several times
(GraphMAE's 3703-wide decoder on CiteSeer: 46 million floats per layer). Here the attention coefficients are
the values of a CSR matrix whose rows are the targets: the aggregation is one sparse-dense product per head,
its backward a product with the transpose (structure built once per graph) and a sampled dense-dense product
(`torch.sparse.sampled_addmm`) for the coefficients' gradient. The coefficients themselves (`[E, heads]`:
leaky ReLU, softmax over each target's incoming edges, dropout) are computed as `GATConv` computes them.

`fused_gat(module)` routes every plain `GATConv` of `module` through this path within a `with` block (the
trainer computes every loss in one, with a `StructureCache` kept across steps); the modules stay PyG's own, so
saved encoders are plain PyG models. Dropout on the coefficients draws its mask in the CSR order of the edges,
not in PyG's edge order: the same seed gives another (equally distributed) mask than PyG's forward.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GATConv
from torch_geometric.utils import softmax

from graphcl.graph.encoders import forwards_replaced, has_propagation_hooks
import graphcl.graph.sparse  # noqa: F401  (sets how CSR tensors are built: no invariant checks, no beta warning)


@dataclass
class AttentionStructure:
    """The edges a `GATConv` attends over (self-loops removed, one added per node, as `GATConv` does) as a CSR
    pattern with target rows (`crow`, `col` = sources, `row` = each entry's target), and its transpose
    (`crow_t`, `col_t`; `perm_t`: the entry of the pattern that each entry of the transpose is)."""

    num_nodes: int
    crow: Tensor
    col: Tensor
    row: Tensor
    crow_t: Tensor
    col_t: Tensor
    perm_t: Tensor


def _csr_rows(keys: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
    """(order sorting `keys` stably, crow of the CSR whose row ids are `keys`)."""
    order = torch.argsort(keys, stable=True)
    crow = torch.zeros(num_nodes + 1, dtype=torch.long, device=keys.device)
    torch.cumsum(torch.bincount(keys, minlength=num_nodes), 0, out=crow[1:])
    return order, crow


def attention_structure(adj: Tensor, num_nodes: int) -> AttentionStructure:
    """The `AttentionStructure` of `edge_index [2, E]` (flow source -> target) or of a sparse CSR `adj_t` (row =
    target, PyG's transposed layout; its values are ignored, as `GATConv` ignores edge weights)."""
    if adj.layout == torch.sparse_csr:
        dst = torch.repeat_interleave(torch.arange(num_nodes, device=adj.device),
                                      adj.crow_indices().diff(), output_size=adj.col_indices().numel())
        src = adj.col_indices()
    else:
        src, dst = adj
    keep = src != dst
    loops = torch.arange(num_nodes, device=src.device)
    src, dst = torch.cat([src[keep], loops]), torch.cat([dst[keep], loops])
    order, crow = _csr_rows(dst, num_nodes)
    col, row = src[order], dst[order]
    perm_t, crow_t = _csr_rows(col, num_nodes)
    return AttentionStructure(num_nodes, crow, col, row, crow_t, row[perm_t], perm_t)


def _matrix(crow: Tensor, col: Tensor, values: Tensor, n: int) -> Tensor:
    return torch.sparse_csr_tensor(crow, col, values, (n, n))


class _AttentionSpMM(torch.autograd.Function):
    """`out[i, k] = sum_j alpha[(i, j), k] h[j, k]` over the structure's entries: `alpha [E, H]`, `h [N, H, C]`."""

    @staticmethod
    def forward(ctx, alpha: Tensor, h: Tensor, s: AttentionStructure) -> Tensor:
        ctx.save_for_backward(alpha, h)
        ctx.s = s
        n = s.num_nodes
        return torch.stack([_matrix(s.crow, s.col, alpha[:, k].contiguous(), n) @ h[:, k].contiguous()
                            for k in range(h.size(1))], dim=1)

    @staticmethod
    def backward(ctx, grad: Tensor):
        alpha, h = ctx.saved_tensors
        s, n = ctx.s, ctx.s.num_nodes
        grad_alpha = grad_h = None
        heads = range(h.size(1))
        if ctx.needs_input_grad[1]:  # h's gradient: the transposed attention matrix times grad
            grad_h = torch.stack([_matrix(s.crow_t, s.col_t, alpha[s.perm_t, k].contiguous(), n)
                                  @ grad[:, k].contiguous() for k in heads], dim=1)
        if ctx.needs_input_grad[0]:  # alpha's gradient: <grad[i, k], h[j, k]> at every entry (i, j)
            grad_alpha = torch.stack([
                torch.sparse.sampled_addmm(_matrix(s.crow, s.col, alpha[:, k].contiguous(), n),
                                           grad[:, k].contiguous(), h[:, k].t().contiguous(), beta=0.0).values()
                for k in heads], dim=1)
        return grad_alpha, grad_h, None


def gat_conv_forward(conv: GATConv, x: Tensor, s: AttentionStructure) -> Tensor:
    """What `conv(x, edge_index)` computes (a plain `GATConv`, no edge features), aggregated by sparse products."""
    heads, channels = conv.heads, conv.out_channels
    res = conv.res(x) if conv.res is not None else None
    if conv.lin is not None:
        x_src = x_dst = conv.lin(x).view(-1, heads, channels)
    else:
        x_src, x_dst = conv.lin_src(x).view(-1, heads, channels), conv.lin_dst(x).view(-1, heads, channels)
    a_src, a_dst = (x_src * conv.att_src).sum(-1), (x_dst * conv.att_dst).sum(-1)  # [N, H]
    alpha = F.leaky_relu(a_src[s.col] + a_dst[s.row], conv.negative_slope)
    alpha = softmax(alpha, s.row, num_nodes=s.num_nodes)
    alpha = F.dropout(alpha, p=conv.dropout, training=conv.training)
    out = _AttentionSpMM.apply(alpha, x_src, s)
    out = out.reshape(-1, heads * channels) if conv.concat else out.mean(dim=1)
    if res is not None:
        out = out + res
    return out if conv.bias is None else out + conv.bias


def fusable_gat_convs(module: nn.Module) -> list[GATConv]:
    """The convs of `module` that `gat_conv_forward` computes exactly: plain `GATConv`s (not a subclass), no edge
    features, self-loops added, source-to-target flow, no explainer or propagation hooks."""
    return [m for m in module.modules()
            if type(m) is GATConv and m.edge_dim is None and m.add_self_loops and m.flow == "source_to_target"
            and not m.explain and not has_propagation_hooks(m)]


class StructureCache:
    """The structures of the last few graphs seen, by tensor identity (the tensors are held, so an id is never
    reused while cached): a full-batch graph's is built once."""

    def __init__(self, size: int = 4) -> None:
        self.size, self.items = size, []

    def get(self, adj: Tensor, num_nodes: int) -> AttentionStructure:
        for held, n, s in self.items:
            if held is adj and n == num_nodes:
                return s
        s = attention_structure(adj, num_nodes)
        self.items = [(adj, num_nodes, s)] + self.items[:self.size - 1]
        return s


def _is_adjacency(adj: Any) -> bool:
    """An `edge_index [2, E]` or a CSR `adj_t`."""
    if not isinstance(adj, Tensor):
        return False
    if adj.layout == torch.sparse_csr:
        return True
    return adj.layout == torch.strided and adj.dim() == 2 and adj.size(0) == 2 and not adj.is_floating_point()


@contextmanager
def fused_gat(module: nn.Module, structures: Optional[StructureCache] = None) -> Iterator[None]:
    """Within the block every fusable `GATConv` of `module` (`fusable_gat_convs`) aggregates by sparse products
    (`gat_conv_forward`) when called as `conv(x, adj)` with a dense `x [N, F]` or CSR features, outside autocast;
    any other call (edge features, attention weights returned, bipartite inputs) runs PyG's own forward."""
    convs = fusable_gat_convs(module)
    structures = structures if structures is not None else StructureCache()

    def forward(conv: GATConv):
        def run(x: Any, edge_index: Any, edge_attr: Any = None, size: Any = None,
                return_attention_weights: Any = None) -> Any:
            if (isinstance(x, Tensor) and x.dim() == 2 and _is_adjacency(edge_index) and edge_attr is None
                    and size is None and return_attention_weights is None
                    and not torch.is_autocast_enabled(x.device.type)):
                return gat_conv_forward(conv, x, structures.get(edge_index, x.size(0)))
            return GATConv.forward(conv, x, edge_index, edge_attr, size, return_attention_weights)

        return run

    with forwards_replaced(convs, forward):
        yield
