"""Graph diffusion: personalised PageRank (PPR) as a second view of a graph (MVGRL, GDC).

S = alpha (I - (1 - alpha) T)^-1 with T = D^-1/2 (A + I) D^-1/2, the transition matrix GCN normalises with.
Convention: `S[i, j]` is what node j sends to node i, so `S @ H` aggregates; as PyG edges, `(j -> i)` with
weight `S[i, j]`. Small graphs get the exact dense inverse; large ones a sparse, pruned power iteration.
"""
from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor
from torch_geometric.utils.num_nodes import maybe_num_nodes

__all__ = ["ppr_matrix", "ppr_diffusion", "ppr_per_graph", "diffusion_adjacency", "sparse_top_k", "LAYOUTS"]

AUTO_EPS = (1e-5, 1e-4, 1e-3, 1e-2)  # MVGRL's candidates for eps="auto"
MAX_DENSE_NODES = 20_000  # beyond this, `ppr_diffusion` uses the sparse power iteration by default


def _transition(edge_index: Tensor, num_nodes: int, self_loops: bool, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Entries (row = target, col = source, value) of D^-1/2 (A [+ I]) D^-1/2 of the unweighted graph."""
    dst, src = edge_index[1], edge_index[0]
    key = torch.unique(dst * num_nodes + src)  # binary adjacency: duplicate edges count once
    if self_loops:
        loops = torch.arange(num_nodes, device=edge_index.device)
        key = torch.unique(torch.cat([key[key // num_nodes != key % num_nodes], loops * (num_nodes + 1)]))
    row, col = key // num_nodes, key % num_nodes
    deg = torch.zeros(num_nodes, dtype=dtype, device=edge_index.device).index_add_(
        0, row, torch.ones(row.numel(), dtype=dtype, device=edge_index.device))
    inv_sqrt = deg.pow(-0.5).masked_fill(deg == 0, 0.0)
    return row, col, inv_sqrt[row] * inv_sqrt[col]


def ppr_matrix(edge_index: Tensor, num_nodes: int, alpha: float = 0.2, self_loops: bool = True,
               dtype: torch.dtype = torch.float64) -> Tensor:
    """The exact dense PPR matrix `[N, N]`: alpha (I - (1 - alpha) D^-1/2 (A + I) D^-1/2)^-1, in `dtype`.

    As MVGRL's `compute_ppr`: binary adjacency, one self-loop per node when `self_loops`. O(N^3) time, O(N^2) memory.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"ppr: alpha must be in (0, 1), got {alpha}")
    row, col, val = _transition(edge_index, num_nodes, self_loops, dtype)
    m = torch.eye(num_nodes, dtype=dtype, device=edge_index.device)
    m.index_put_((row, col), -(1.0 - alpha) * val, accumulate=True)
    return alpha * torch.linalg.inv(m)


def _ppr_power(edge_index: Tensor, num_nodes: int, alpha: float, self_loops: bool, tol: float,
               max_iter: int, block: int = 4096) -> tuple[Tensor, Tensor, Tensor]:
    """Approximate sparse PPR: S = alpha sum_k ((1 - alpha) T)^k, by blocks of columns, dropping entries of each
    power term below `tol` (the error per entry is at most about tol / alpha). Returns (row, col, value)."""
    row, col, val = _transition(edge_index, num_nodes, self_loops, torch.float32)
    t = torch.sparse_coo_tensor(torch.stack([row, col]), (1.0 - alpha) * val, (num_nodes, num_nodes)).coalesce()
    rows, cols, vals = [], [], []
    for start in range(0, num_nodes, block):
        ids = torch.arange(start, min(start + block, num_nodes), device=edge_index.device)
        width = ids.numel()
        r = torch.sparse_coo_tensor(torch.stack([ids, ids - start]), torch.full((width,), alpha, device=ids.device),
                                    (num_nodes, width)).coalesce()
        s = r
        for _ in range(max_iter):
            r = torch.sparse.mm(t, r).coalesce()
            keep = r.values() >= tol
            r = torch.sparse_coo_tensor(r.indices()[:, keep], r.values()[keep], r.shape).coalesce()
            if r._nnz() == 0:
                break
            s = (s + r).coalesce()
        i = s.indices()
        rows.append(i[0])
        cols.append(i[1] + start)
        vals.append(s.values())
    return torch.cat(rows), torch.cat(cols), torch.cat(vals)


def sparse_top_k(row: Tensor, value: Tensor, k: int, num_rows: int) -> Tensor:
    """Positions of the `k` largest values of every row (all of a row with fewer); vectorised, no Python loop."""
    order = torch.argsort(value, descending=True, stable=True)
    order = order[torch.argsort(row[order], stable=True)]  # by row, descending value within a row
    sorted_rows = row[order]
    counts = torch.bincount(sorted_rows, minlength=num_rows)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(order.numel(), device=row.device) - starts[sorted_rows]
    return order[rank < k]


def _minmax_columns(col: Tensor, value: Tensor, num_nodes: int) -> Tensor:
    """scikit-learn's `MinMaxScaler` on the dense matrix (per column, implicit zeros included; a constant
    column scales to 0), computed on the stored entries only."""
    count = torch.bincount(col, minlength=num_nodes)
    cmax = torch.full((num_nodes,), -float("inf"), dtype=value.dtype, device=value.device)
    cmax = cmax.scatter_reduce(0, col, value, "amax")
    cmin = torch.full((num_nodes,), float("inf"), dtype=value.dtype, device=value.device)
    cmin = cmin.scatter_reduce(0, col, value, "amin")
    partial = count < num_nodes  # the column holds implicit zeros
    cmax = torch.where(partial, cmax.clamp(min=0), cmax)
    cmin = torch.where(partial, cmin.clamp(max=0), cmin)
    span = cmax - cmin
    span = torch.where(span == 0, torch.ones_like(span), span)
    return (value - cmin[col]) / span[col]


def ppr_diffusion(
    edge_index: Tensor,
    num_nodes: int,
    alpha: float = 0.2,
    eps: Union[float, str, None] = None,
    top_k: Optional[int] = None,
    scale: Optional[str] = None,
    self_loops: bool = True,
    exact: Optional[bool] = None,
    tol: float = 1e-6,
    max_iter: int = 100,
) -> tuple[Tensor, Tensor]:
    """PPR diffusion of a graph as a sparse weighted graph `(edge_index [2, E'], edge_weight [E'])`.

    `edge_index [2, E]`: the graph (treated as unweighted). Edge `(j -> i)` carries `S[i, j]`.
    - `exact`: the dense inverse (`ppr_matrix`, float64); default for graphs up to `MAX_DENSE_NODES` nodes. Else a
      sparse power iteration pruning power terms below `tol` (approximate: entries under ~tol / alpha may be lost).
    - `eps`: keep entries >= eps. `"auto"`: MVGRL's rule, the eps of `AUTO_EPS` whose kept entries per node are
      closest to the graph's mean degree (E / N).
    - `top_k`: then keep the k largest entries of every row (the k strongest senders of each node).
    - `scale`: `"minmax"` then rescales every column to [0, 1] as scikit-learn's MinMaxScaler on the dense
      matrix (MVGRL on CiteSeer); None leaves the values.
    """
    if exact is None:
        exact = num_nodes <= MAX_DENSE_NODES
    if exact:
        s = ppr_matrix(edge_index, num_nodes, alpha, self_loops)
        row, col = s.gt(0).nonzero(as_tuple=True)  # round-off can leave tiny negatives between components
        value = s[row, col].to(torch.get_default_dtype())
        del s
    else:
        row, col, value = _ppr_power(edge_index, num_nodes, alpha, self_loops, tol, max_iter)
    if eps == "auto":
        mean_degree = edge_index.size(1) / max(num_nodes, 1)
        per_node = torch.tensor([float((value >= e).sum()) / num_nodes for e in AUTO_EPS])
        eps = AUTO_EPS[int(torch.argmin((per_node - mean_degree).abs()))]
    if eps is not None:
        keep = value >= float(eps)
        row, col, value = row[keep], col[keep], value[keep]
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"ppr_diffusion: top_k must be >= 1, got {top_k}")
        keep = sparse_top_k(row, value, int(top_k), num_nodes)
        keep = keep.sort().values
        row, col, value = row[keep], col[keep], value[keep]
    if scale == "minmax":
        value = _minmax_columns(col, value, num_nodes)
    elif scale is not None:
        raise ValueError(f"ppr_diffusion: unknown scale {scale!r}; choose 'minmax' or None")
    return torch.stack([col, row]), value


def padded_sizes(sizes: Tensor) -> Tensor:
    """The square size each graph is padded to in `ppr_per_graph`: n rounded up to a multiple of
    max(8, next_pow2(n) / 8), so at most ~1/8 padding and a few dozen distinct sizes however many graphs.
    It depends on n alone, so a graph's diffusion does not depend on the other graphs of its batch."""
    pow2 = torch.exp2(torch.ceil(torch.log2(sizes.clamp_min(1).double()))).long()
    step = (pow2 // 8).clamp_min(8)
    return (sizes + step - 1) // step * step


def ppr_per_graph(
    edge_index: Tensor,
    batch: Optional[Tensor] = None,
    num_nodes: Optional[int] = None,
    num_graphs: Optional[int] = None,
    alpha: float = 0.2,
    eps: Optional[float] = None,
    self_loops: bool = True,
    max_entries: int = 1 << 26,
) -> tuple[Tensor, Tensor, Tensor]:
    """The exact PPR diffusion of every graph of a batch, each graph on its own (MVGRL, graph level).

    `edge_index [2, E]` (global node ids), `batch [N]` (sorted graph ids; None: one graph of `num_nodes`).
    Returns `(edge_index [2, E'], edge_weight [E'], entry_ptr [G+1])`: edge `(j -> i)` carries `S_g[i, j]` of
    the graph g holding both nodes, for the entries > 0 (round-off can leave tiny negatives) and >= `eps`
    when given; entries are grouped by graph (graph g owns `entry_ptr[g]:entry_ptr[g+1]`), then ordered by
    target, then source, so they are sorted by target overall (a CSR `adj_t` without a sort).

    As `ppr_matrix` graph by graph (float64), without a loop over graphs: graphs are padded to `padded_sizes`
    with isolated self-looped nodes -- a separate diagonal block of the system, so the graph's own block of the
    inverse is exact -- and inverted by size as `[B, m, m]` batches of at most `max_entries` entries.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"ppr_per_graph: alpha must be in (0, 1), got {alpha}")
    device = edge_index.device
    if batch is None:
        num_nodes = maybe_num_nodes(edge_index, num_nodes)
        batch = torch.zeros(num_nodes, dtype=torch.long, device=device)
    num_nodes = batch.numel()
    if num_graphs is None:
        num_graphs = int(batch.max()) + 1 if num_nodes else 0
    sizes = torch.bincount(batch, minlength=num_graphs)
    ptr = _cumsum(sizes)
    row, col, val = _transition(edge_index, num_nodes, self_loops, torch.float64)  # sorted by row: by graph
    entry_ptr = _cumsum(torch.bincount(batch[row], minlength=num_graphs))
    padded = padded_sizes(sizes)
    parts = []  # (graph ids [B], entries per graph [B], target, source, value), one per inverted batch
    for m in torch.unique(padded[sizes > 0]).tolist():  # a loop over the few padded sizes
        ids = (padded == m).logical_and_(sizes > 0).nonzero().view(-1)
        step = max(1, max_entries // (m * m))
        for start in range(0, ids.numel(), step):
            parts.append(_ppr_block(ids[start:start + step], m, ptr, sizes, entry_ptr, row, col, val, alpha, eps))
    counts = torch.zeros(num_graphs, dtype=torch.long, device=device)
    for ids, per_graph, *_ in parts:
        counts[ids] = per_graph
    out_ptr = _cumsum(counts)
    total = int(out_ptr[-1])
    out_index = torch.empty(2, total, dtype=torch.long, device=device)
    out_value = torch.empty(total, dtype=torch.get_default_dtype(), device=device)
    for ids, per_graph, dst, src, value in parts:  # place each block's entries at its graphs' positions
        graph = torch.repeat_interleave(torch.arange(ids.numel(), device=device), per_graph, output_size=dst.numel())
        pos = torch.arange(dst.numel(), device=device) - _cumsum(per_graph)[:-1][graph] + out_ptr[ids][graph]
        out_index[0, pos], out_index[1, pos], out_value[pos] = src, dst, value.to(out_value.dtype)
    return out_index, out_value, out_ptr


def _cumsum(counts: Tensor) -> Tensor:
    """`[0, c0, c0 + c1, ...]`: the `ptr [len + 1]` of segments of sizes `counts`."""
    return torch.cat([counts.new_zeros(1), counts.cumsum(0)])


def _ppr_block(ids: Tensor, m: int, ptr: Tensor, sizes: Tensor, entry_ptr: Tensor, row: Tensor, col: Tensor,
               val: Tensor, alpha: float, eps: Optional[float]) -> tuple[Tensor, ...]:
    """The diffusion of the graphs `ids [B]`, padded to `m` nodes: (ids, kept entries per graph [B], global
    target, global source, value), entries in graph, target, source order."""
    device = row.device
    b = ids.numel()
    counts = entry_ptr[ids + 1] - entry_ptr[ids]  # transition entries of each graph
    total = int(counts.sum())
    which = torch.repeat_interleave(torch.arange(b, device=device), counts, output_size=total)  # [T] graph slot
    take = torch.arange(total, device=device) - _cumsum(counts)[:-1][which] + entry_ptr[ids][which]
    offset = ptr[ids][which]
    system = torch.eye(m, dtype=torch.float64, device=device).repeat(b, 1, 1)  # I - (1 - alpha) T, padded
    system.index_put_((which, row[take] - offset, col[take] - offset), -(1.0 - alpha) * val[take], accumulate=True)
    s = alpha * torch.linalg.inv(system)  # [B, m, m]
    inside = torch.arange(m, device=device) < sizes[ids].unsqueeze(1)  # [B, m]: the graph's own nodes
    keep = inside.unsqueeze(2) & inside.unsqueeze(1) & (s > 0)
    if eps is not None:
        keep &= s >= float(eps)
    slot, i, j = keep.nonzero(as_tuple=True)
    start = ptr[ids][slot]
    return ids, torch.bincount(slot, minlength=b), start + i, start + j, s[slot, i, j]


LAYOUTS = ("auto", "dense", "sparse")


def diffusion_adjacency(edge_index: Tensor, edge_weight: Tensor, num_nodes: int,
                        dense_above: float = 0.1, layout: str = "auto") -> Tensor:
    """The weighted graph as the matrix that aggregates (`out = S @ h`).

    `layout`: "dense" (a strided `[N, N]` tensor), "sparse" (CSR, PyG's `adj_t`), or "auto": dense when more
    than `dense_above` of its entries are stored (a CSR product is ~8x slower per entry than a dense one).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"diffusion_adjacency: unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    src, dst = edge_index
    if layout == "dense" or (layout == "auto" and edge_weight.numel() > dense_above * num_nodes * num_nodes):
        s = torch.zeros(num_nodes, num_nodes, dtype=edge_weight.dtype, device=edge_weight.device)
        s[dst, src] = edge_weight
        return s
    coo = torch.sparse_coo_tensor(torch.stack([dst, src]), edge_weight, (num_nodes, num_nodes)).coalesce()
    return coo.to_sparse_csr()
