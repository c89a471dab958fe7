"""Graph views: small functional primitives plus PyG `BaseTransform` wrappers.

Functions take tensors and an optional `torch.Generator` so views are reproducible and vectorised. Views that
act per graph take PyG's batch assignment vector `batch [N]` (sorted: each graph's nodes contiguous) and treat a
whole mini-batch at once; `batch=None` means one graph. No function loops over nodes or graphs.

The transforms accept a `Data` (one graph) or a `Batch`. A `Data` is a batch of one graph and takes the same
path; on a `Batch` every graph gets its own independent view, the distribution of applying the view graph by
graph, without the loop. A transform returns a new object and never changes its input; on a `Batch` it keeps
`batch`, `ptr` and the bookkeeping that `to_data_list()` / `index_select()` read consistent, so views compose.
Node-, edge- and graph-level attributes (`x`, `pos`, `edge_attr`, `y`, ...) are told apart by their sizes, graph
by graph on a `Batch` (a tie between node and edge counts goes to edge-level when the key names 'edge', as in
PyG). Structural views handle `edge_index`-based graphs; attributes that hold node ids (other than
`edge_index`) or sparse tensors make them raise instead of going stale.
"""
from __future__ import annotations

import copy
from typing import Any, Callable, NamedTuple, Optional, Sequence, Union

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data, HeteroData
from torch_geometric.transforms import BaseTransform, Compose
from torch_geometric.utils import cumsum, scatter
from torch_geometric.utils.num_nodes import maybe_num_nodes

__all__ = [
    "node_permutation", "shuffle_features", "ShuffleFeatures", "mask_feature_columns", "dropout_features",
    "drop_edges", "CORRUPTIONS", "add_edges", "drop_nodes", "random_walk_subgraph", "mask_node_features",
    "DropEdges", "AddEdges", "MaskFeatureColumns", "DropoutFeatures", "MaskNodeFeatures", "DropNodes",
    "RandomWalkSubgraph", "Compose", "RandomChoice", "RandomChoicePerGraph", "take_graphs",
    "VIEWS", "make_view",
]


def node_permutation(num_nodes: int, generator: Optional[torch.Generator] = None,
                     device: Optional[torch.device] = None) -> Tensor:
    """A random permutation of the node ids `[num_nodes]` (DGI's corruption is `x[perm]`)."""
    return torch.randperm(num_nodes, generator=generator, device=device)


def shuffle_features(x: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
    """Row-shuffled features `[N, F]`: every node gets another node's features, the graph is unchanged."""
    return x[node_permutation(x.size(0), generator, x.device)]


class ShuffleFeatures(BaseTransform):
    """DGI's corruption as a transform: permute the rows of `data.x`."""

    def __init__(self, generator: Optional[torch.Generator] = None) -> None:
        self.generator = generator

    def forward(self, data: Data) -> Data:
        data = data.clone()
        data.x = shuffle_features(data.x, self.generator)
        return data


def _check_rate(name: str, p: float, what: str = "drop rate") -> None:
    if not 0.0 <= p < 1.0:
        raise ValueError(f"{name}: {what} must be in [0, 1), got {p}")


def mask_feature_columns(x: Tensor, p: float, generator: Optional[torch.Generator] = None,
                         batch: Optional[Tensor] = None) -> Tensor:
    """Zero a random subset of feature columns (each with probability `p`), the same for every node.

    `x [N, F] -> [N, F]` (GRACE/BGRL feature masking). With `batch [N]`, every graph draws its own columns
    (the same for all its nodes); a batch of one graph draws what `batch=None` draws. A CSR `x` (one graph)
    stays CSR, with the same sparsity pattern and the masked entries stored as zeros."""
    _check_rate("mask_feature_columns", p)
    if batch is None:
        return keep_columns(x, torch.rand(x.size(1), generator=generator, device=x.device) >= p)
    return _mask_columns(x, p, generator, batch, _num_graphs(batch))


def keep_columns(x: Tensor, keep: Tensor) -> Tensor:
    """x `[N, F]` (dense or CSR) with the columns where `keep [F]` is False zeroed."""
    keep = keep.to(x.dtype)
    if x.layout == torch.sparse_csr:
        values = x.values() * keep[x.col_indices()]
        return torch.sparse_csr_tensor(x.crow_indices(), x.col_indices(), values, x.shape)
    return x * keep


def _mask_columns(x: Tensor, p: float, generator: Optional[torch.Generator], batch: Tensor,
                  num_graphs: int) -> Tensor:
    keep = torch.rand(num_graphs, x.size(1), generator=generator, device=x.device) >= p  # [B, F]
    return x * keep.to(x.dtype)[batch]


def dropout_features(x: Tensor, p: float, generator: Optional[torch.Generator] = None) -> Tensor:
    """Zero entries independently with probability `p` (no rescaling): `x [N, F] -> [N, F]`."""
    _check_rate("dropout_features", p)
    keep = torch.rand(x.shape, generator=generator, device=x.device) >= p
    return x * keep.to(x.dtype)


def drop_edges(edge_index: Tensor, p: float, generator: Optional[torch.Generator] = None,
               edge_attr: Optional[Tensor] = None) -> tuple[Tensor, Optional[Tensor]]:
    """Remove each directed edge independently with probability `p`.

    `edge_index [2, E] -> [2, E']`, `edge_attr [E, *] -> [E', *]` (None stays None)."""
    _check_rate("drop_edges", p)
    keep = _edge_keep(edge_index, p, generator)
    return edge_index[:, keep], None if edge_attr is None else edge_attr[keep]


def _edge_keep(edge_index: Tensor, p: float, generator: Optional[torch.Generator]) -> Tensor:
    return torch.rand(edge_index.size(1), generator=generator, device=edge_index.device) >= p


# -- functional primitives -------------------------------------------------------------------------------
def _num_graphs(batch: Tensor) -> int:
    return int(batch.max()) + 1 if batch.numel() else 0


def _ptr(batch: Optional[Tensor], num_nodes: int, device: torch.device) -> Tensor:
    """`ptr [B+1]`: graph b holds the nodes `ptr[b]:ptr[b+1]` (one graph of `num_nodes` when `batch` is None)."""
    if batch is None:
        return torch.tensor([0, num_nodes], device=device)
    return cumsum(torch.bincount(batch))


def _uniform_below(high: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    """One uniform integer in `[0, high)` per entry of `high` (`torch.randint` with a per-entry bound; 0 where
    `high` is 0). Float64 draws, so bounds up to ~2**50 are reached evenly."""
    u = torch.rand(high.shape, generator=generator, device=high.device, dtype=torch.float64)
    return (u * high).long().minimum((high - 1).clamp_min(0))


def add_edges(edge_index: Tensor, num_nodes: Optional[int], p: float,
              generator: Optional[torch.Generator] = None, batch: Optional[Tensor] = None) -> Tensor:
    """Add random edges, each inside one graph: every edge spawns, with probability `p`, a new edge between
    two uniformly drawn nodes of its own graph (so ~p * E_g new edges in graph g; none in a graph without
    edges). Endpoints differ unless the graph has one node; a new edge may repeat an existing one and is not
    mirrored.

    `edge_index [2, E] -> [2, E + K]`: the input edges first, unchanged and in order, then the K new ones.
    `batch [N]` (sorted) gives the graphs; None: one graph of `num_nodes` nodes (inferred when None)."""
    _check_rate("add_edges", p, "rate")
    num_nodes = maybe_num_nodes(edge_index, num_nodes) if batch is None else batch.numel()
    return _add_edges(edge_index, p, generator, batch, _ptr(batch, num_nodes, edge_index.device))


def _add_edges(edge_index: Tensor, p: float, generator: Optional[torch.Generator], batch: Optional[Tensor],
               ptr: Tensor) -> Tensor:
    spawn = torch.rand(edge_index.size(1), generator=generator, device=edge_index.device) < p
    graph = edge_index[0, spawn]  # the source of each spawning edge names its graph ...
    graph = torch.zeros_like(graph) if batch is None else batch[graph]  # ... graph ids, [K]
    low, size = ptr[graph], ptr[graph + 1] - ptr[graph]
    src = _uniform_below(size, generator)
    dst = (src + 1 + _uniform_below(size - 1, generator)) % size.clamp_min(1)  # a shift in [1, size): dst != src
    return torch.cat([edge_index, torch.stack([low + src, low + dst])], dim=1)


def _drop_node_mask(num_nodes: int, p: float, batch: Optional[Tensor], num_graphs: Optional[int],
                    generator: Optional[torch.Generator], device: torch.device) -> Tensor:
    """Keep each node with probability 1 - p, and always each graph's node of highest score."""
    score = torch.rand(num_nodes, generator=generator, device=device)
    keep = score >= p
    if num_nodes == 0 or p == 0.0:
        return keep
    if batch is None:
        return keep | (score == score.max())
    best = scatter(score, batch, dim=0, dim_size=num_graphs, reduce="max")  # [B]
    return keep | (score == best[batch])


def _induced_edges(edge_index: Tensor, keep: Tensor, edge_keep: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    """The edges between kept nodes (and kept themselves, where `edge_keep [E]` is given), relabelled to the kept
    nodes' new ids, and their ids in `edge_index`."""
    kept = keep[edge_index[0]] & keep[edge_index[1]]
    take = (kept if edge_keep is None else kept & edge_keep).nonzero().view(-1)
    new_id = keep.cumsum(0) - 1  # old node id -> its rank among the kept nodes
    return new_id[edge_index.index_select(1, take)], take


def drop_nodes(x: Optional[Tensor], edge_index: Tensor, p: float, batch: Optional[Tensor] = None,
               generator: Optional[torch.Generator] = None, edge_attr: Optional[Tensor] = None, *,
               num_nodes: Optional[int] = None
               ) -> tuple[Optional[Tensor], Tensor, Optional[Tensor], Optional[Tensor], Tensor]:
    """GraphCL's node dropping: remove each node with probability `p`, but never a graph's last node (the
    node of highest random score in every graph is kept), with its edges; the rest are relabelled.

    `x [N, F]` (or None, then `num_nodes`), `edge_index [2, E]`, `batch [N]` (None: one graph),
    `edge_attr [E, *]` -> `(x [N', F], edge_index [2, E'], edge_attr [E', *], batch [N'], kept_mask [N])`;
    None inputs stay None. Node order is kept, so a sorted `batch` stays sorted."""
    _check_rate("drop_nodes", p)
    if x is not None:
        num_nodes = x.size(0)
    num_nodes = maybe_num_nodes(edge_index, num_nodes)
    keep = _drop_node_mask(num_nodes, p, batch, None if batch is None else _num_graphs(batch), generator,
                           edge_index.device)
    edge_index, edge_take = _induced_edges(edge_index, keep)
    return (None if x is None else x[keep], edge_index, None if edge_attr is None else edge_attr[edge_take],
            None if batch is None else batch[keep], keep)


def _check_walk(name: str, walk_length: int, num_roots: int, root_ratio: Optional[float]) -> None:
    if isinstance(walk_length, bool) or not isinstance(walk_length, int) or walk_length < 0:
        raise ValueError(f"{name}: walk_length must be an integer >= 0, got {walk_length!r}")
    if isinstance(num_roots, bool) or not isinstance(num_roots, int) or num_roots < 1:
        raise ValueError(f"{name}: num_roots must be an integer >= 1, got {num_roots!r}")
    if root_ratio is not None and not 0.0 < root_ratio <= 1.0:
        raise ValueError(f"{name}: root_ratio must be in (0, 1], got {root_ratio}")


def random_walk_subgraph(edge_index: Tensor, num_nodes: Optional[int] = None, batch: Optional[Tensor] = None,
                         walk_length: int = 10, num_roots: int = 1, root_ratio: Optional[float] = None,
                         generator: Optional[torch.Generator] = None) -> Tensor:
    """GraphCL's subgraph view, as the mask of the nodes it keeps: those visited by random walks of
    `walk_length` steps started from `num_roots` uniformly drawn nodes of every graph (or, with `root_ratio`,
    `max(1, round(root_ratio * n_g))` of them). Walks follow out-edges (`edge_index[0] -> edge_index[1]`); a
    walker on a node without out-edges stays there. Every non-empty graph keeps at least its roots.

    All walkers step together over a CSR view of the edges (neighbour = `col[rowptr[v] + randint(deg[v])]`),
    so the cost is `walk_length` vector steps, whatever the number of graphs; no torch_cluster needed.
    `edge_index [2, E]`, `batch [N]` (None: one graph of `num_nodes`) -> `kept_mask [N]` bool. The view itself
    is the induced subgraph: `drop_nodes`'s relabelling, e.g. `torch_geometric.utils.subgraph(mask,
    edge_index, relabel_nodes=True)` and `batch[mask]`, or the `RandomWalkSubgraph` transform."""
    _check_walk("random_walk_subgraph", walk_length, num_roots, root_ratio)
    num_nodes = maybe_num_nodes(edge_index, num_nodes) if batch is None else batch.numel()
    ptr = _ptr(batch, num_nodes, edge_index.device)
    return _random_walk_mask(edge_index, num_nodes, ptr, walk_length, num_roots, root_ratio, generator)


def _random_walk_mask(edge_index: Tensor, num_nodes: int, ptr: Tensor, walk_length: int, num_roots: int,
                      root_ratio: Optional[float], generator: Optional[torch.Generator]) -> Tensor:
    sizes = ptr[1:] - ptr[:-1]  # nodes per graph, [B]
    if root_ratio is None:
        roots = torch.where(sizes > 0, num_roots, 0)
    else:
        roots = (sizes * root_ratio).round().long().clamp_min(1) * (sizes > 0)
    graph = torch.repeat_interleave(roots)  # the graph of every walker
    here = ptr[graph] + _uniform_below(sizes[graph], generator)  # [W] walker positions
    visited = torch.zeros(num_nodes, dtype=torch.bool, device=edge_index.device)
    visited[here] = True
    num_edges = edge_index.size(1)
    if num_edges == 0 or walk_length == 0 or here.numel() == 0:
        return visited
    row, col = edge_index
    if not bool((row[1:] >= row[:-1]).all()):  # CSR: the out-neighbours of v are col[rowptr[v]:rowptr[v+1]]
        col = col[torch.sort(row, stable=True).indices]
    rowptr = cumsum(torch.bincount(row, minlength=num_nodes))
    for _ in range(walk_length):  # a loop over steps; every walker of every graph moves at once
        start = rowptr[here]
        degree = rowptr[here + 1] - start
        nxt = col[(start + _uniform_below(degree, generator)).clamp_max(num_edges - 1)]
        here = torch.where(degree > 0, nxt, here)
        visited[here] = True
    return visited


def mask_node_features(x: Tensor, p: float, generator: Optional[torch.Generator] = None) -> Tensor:
    """GraphCL's attribute masking: zero the whole feature row of each node with probability `p`.

    `x [N, *] -> [N, *]` (a masked row is exactly 0, even where it held inf/NaN)."""
    _check_rate("mask_node_features", p)
    drop = torch.rand(x.size(0), generator=generator, device=x.device) < p
    return x.masked_fill(drop.view(-1, *([1] * (x.dim() - 1))), 0)


# -- Data / Batch bookkeeping ----------------------------------------------------------------------------
_NODE, _EDGE, _GRAPH = "node", "edge", "graph"
_OWN = ("edge_index", "batch", "ptr", "num_nodes")  # rewritten by the views themselves


def _diff(ptr: Tensor) -> Tensor:
    return ptr[1:] - ptr[:-1]


def _segment_take(ptr: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
    """Rows of the segments `index` (segment i = rows `ptr[i]:ptr[i+1]`), concatenated in that order, and
    their new `ptr` -- a vectorised `cat([arange(ptr[i], ptr[i+1]) for i in index])`."""
    sizes = _diff(ptr)[index]
    new_ptr = cumsum(sizes)
    total = int(new_ptr[-1])
    rows = torch.arange(total, device=ptr.device)
    return rows + torch.repeat_interleave(ptr[index] - new_ptr[:-1], sizes, output_size=total), new_ptr


def _cat_dim(data: Data, key: str, value: Tensor) -> int:
    """The dimension PyG batches `value` along (None, stacked per graph, counts as 0)."""
    dim = data.__cat_dim__(key, value)
    return 0 if dim is None else dim


def _device(data: Data) -> torch.device:
    for _, value in data:
        if isinstance(value, Tensor):
            return value.device
    return torch.device("cpu")


class _Graphs:
    """A `Data` (one graph; several if it carries a `batch` vector) or a `Batch`, seen graph by graph."""

    def __init__(self, data: Any) -> None:
        if isinstance(data, HeteroData) or not isinstance(data, Data):
            raise TypeError(f"graph views take a homogeneous Data or Batch, got {type(data).__name__}")
        self.data = data
        self.is_batch = isinstance(data, Batch)
        self.slices = getattr(data, "_slice_dict", None) if self.is_batch else None
        self.incs = getattr(data, "_inc_dict", None) if self.is_batch else None
        self.device = _device(data)
        self.edge_index: Optional[Tensor] = data.edge_index if "edge_index" in data else None
        self.num_edges = 0 if self.edge_index is None else self.edge_index.size(1)
        self.num_nodes = int(data.num_nodes or 0)
        batch = data.batch
        if batch is None:
            batch = torch.zeros(self.num_nodes, dtype=torch.long, device=self.device)
            self.num_graphs = data.num_graphs if self.is_batch else 1
        else:
            self.num_graphs = data.num_graphs if self.is_batch else max(_num_graphs(batch), 1)
        self.batch = batch
        if self.is_batch and "ptr" in data:
            self.ptr = data.ptr
        else:
            self.ptr = cumsum(torch.bincount(batch, minlength=self.num_graphs))

    def edge_ptr(self) -> Tensor:
        """Edges per graph as `ptr` (a batch's edges are grouped by graph)."""
        if self.slices is not None and "edge_index" in self.slices:
            return self.slices["edge_index"].to(self.device)
        if self.edge_index is None:
            return self.ptr.new_zeros(self.num_graphs + 1)
        return cumsum(torch.bincount(self.batch[self.edge_index[0]], minlength=self.num_graphs))

    def levels(self) -> dict[str, str]:
        """Every attribute but `_OWN` -> 'node', 'edge' or 'graph' (per-graph sizes on a `Batch`)."""
        data, sd = self.data, self.slices
        if sd is not None:
            node_sizes, edge_sizes = _diff(self.ptr).cpu(), _diff(self.edge_ptr()).cpu()
        levels = {}
        for key, value in data:
            if key in _OWN:
                continue
            if not isinstance(value, Tensor) or value.dim() == 0:
                levels[key] = _GRAPH
                continue
            dim = data.__cat_dim__(key, value)
            if not isinstance(dim, int):
                levels[key] = _GRAPH
                continue
            slices = None if sd is None else sd.get(key)
            if isinstance(slices, Tensor) and slices.dim() == 1:
                sizes = _diff(slices)
                is_node, is_edge = torch.equal(sizes, node_sizes), torch.equal(sizes, edge_sizes)
            else:
                is_node, is_edge = value.size(dim) == self.num_nodes, value.size(dim) == self.num_edges
            if is_node and not (is_edge and "edge" in key):
                levels[key] = _NODE
            elif is_edge:
                levels[key] = _EDGE
            else:
                levels[key] = _GRAPH
        return levels

    def check(self, name: str, nodes_change: bool) -> None:
        """Refuse what a structural view would leave stale: sparse attributes, and node-id attributes
        (PyG increments them on batching, like `edge_index`) when node ids change."""
        for key, value in self.data:
            if key in _OWN or not isinstance(value, Tensor):
                continue
            if value.layout != torch.strided:
                raise ValueError(f"{name}: cannot re-index the sparse attribute '{key}'; views work on edge_index")
            if nodes_change and self._holds_node_ids(key, value):
                raise ValueError(f"{name}: the attribute '{key}' holds node ids (PyG increments it on batching) "
                                 f"and would go stale; remove it before this view")

    def _holds_node_ids(self, key: str, value: Tensor) -> bool:
        if self.incs is not None:
            inc = self.incs.get(key)
            return isinstance(inc, Tensor) and bool(inc.ne(0).any())
        if value.numel() == 0:
            return False
        inc = self.data.__inc__(key, value)
        return bool(torch.as_tensor(inc).ne(0).any())


def _take_rows(value: Tensor, take: Tensor, dim: int, fill: float) -> Tensor:
    """`value.index_select(dim, take)`, where `take == -1` gives a row filled with `fill`."""
    if not bool((take < 0).any()):
        return value.index_select(dim, take)
    shape = list(value.shape)
    shape[dim] = 1
    padded = torch.cat([value, value.new_full(shape, fill)], dim=dim)
    return padded.index_select(dim, torch.where(take < 0, value.size(dim), take))


def _restructure(g: _Graphs, *, node_take: Optional[Tensor], edge_take: Optional[Tensor],
                 edge_index: Optional[Tensor], batch: Tensor,
                 fill: Union[float, dict[str, float]] = 0.0) -> Data:
    """A new object with `g.data`'s node-level rows taken by `node_take` (old node ids; None: unchanged), its
    edge-level rows by `edge_take` (old edge ids, -1 for a new edge filled with `fill`; None: unchanged), the
    new `edge_index` and node `batch` (same graphs, same order; edges grouped by graph), and on a `Batch` the
    bookkeeping (`ptr`, slices, increments, per-graph `num_nodes`) rebuilt to match."""
    data = g.data
    out = copy.copy(data)
    levels = g.levels()
    for key, level in levels.items():
        value = data[key]
        if level == _NODE and node_take is not None:
            out[key] = value.index_select(data.__cat_dim__(key, value), node_take)
        elif level == _EDGE and edge_take is not None:
            value_fill = fill.get(key, 0.0) if isinstance(fill, dict) else fill
            out[key] = _take_rows(value, edge_take, data.__cat_dim__(key, value), value_fill)
    if g.edge_index is not None:
        out.edge_index = edge_index
    node_ptr = cumsum(torch.bincount(batch, minlength=g.num_graphs))
    if "batch" in data:
        out.batch = batch
    if "ptr" in data:
        out.ptr = node_ptr
    if "num_nodes" in data:
        out.num_nodes = batch.numel()
    if g.slices is not None:
        node_ptr = node_ptr.cpu()
        if edge_index is None:
            edge_ptr = torch.zeros(g.num_graphs + 1, dtype=torch.long)
        else:
            edge_ptr = cumsum(torch.bincount(batch[edge_index[0]], minlength=g.num_graphs)).cpu()
        slices = {}
        for key, old in g.slices.items():
            level = levels.get(key)
            slices[key] = (edge_ptr if key == "edge_index" or level == _EDGE
                           else node_ptr if level == _NODE else old)
        incs = dict(g.incs or {})
        if incs.get("edge_index") is not None or "edge_index" in slices:
            incs["edge_index"] = node_ptr[:-1]
        out._slice_dict, out._inc_dict = slices, incs
        if "_num_nodes" in data._store.__dict__:
            out._store._num_nodes = _diff(node_ptr).tolist()
    return out


class _Draw(NamedTuple):
    """What a masking view drew for a whole graph or batch: the nodes kept (`[N]` bool; None: all), the edges
    kept (`[E]` bool; None: all between kept nodes) and new features (`[N, *]`; None: unchanged)."""

    nodes: Optional[Tensor] = None
    edges: Optional[Tensor] = None
    x: Optional[Tensor] = None


def _apply(g: _Graphs, draw: _Draw, name: str) -> Data:
    """`g.data` with `draw` applied, as a new Data/Batch."""
    if draw.x is not None:
        data = copy.copy(g.data)
        data.x = draw.x
        g = copy.copy(g)
        g.data = data
    if draw.nodes is None and (draw.edges is None or g.edge_index is None):
        return copy.copy(g.data)
    if draw.nodes is None:  # edges only: node ids stay valid
        g.check(name, nodes_change=False)
        take = draw.edges.nonzero().view(-1)
        return _restructure(g, node_take=None, edge_take=take, edge_index=g.edge_index[:, take], batch=g.batch)
    g.check(name, nodes_change=True)
    node_take = draw.nodes.nonzero().view(-1)
    edge_index = edge_take = None
    if g.edge_index is not None:
        edge_index, edge_take = _induced_edges(g.edge_index, draw.nodes, draw.edges)
    return _restructure(g, node_take=node_take, edge_take=edge_take, edge_index=edge_index,
                        batch=g.batch[node_take])


def take_graphs(data: Batch, index: Tensor) -> Batch:
    """The graphs `index [B']` of a `Batch`, in that order, as a `Batch`: PyG's `index_select` without its loop
    over graphs (a mini-batch of a collated dataset is one gather per attribute)."""
    return _take_graphs(data, index, "take_graphs")


def _take_graphs(data: Batch, index: Tensor, name: str) -> Batch:
    """The graphs `index [B']` (old graph ids) of a `Batch`, as a `Batch` in that order -- `index_select` without
    the per-graph Python loop. Every collated attribute is cut by its own slices."""
    g = _Graphs(data)
    if g.slices is None:
        raise ValueError(f"{name}: a Batch made by Batch.from_data_list (with its slices) is needed")
    g.check(name, nodes_change=True)
    out = copy.copy(data)
    new_slices = dict(g.slices)
    for key, value in data:
        if key in _OWN or key not in g.slices:  # not collated per graph: kept as it is
            continue
        slices = g.slices[key]
        if isinstance(value, Tensor) and isinstance(slices, Tensor) and slices.dim() == 1:
            rows, key_slices = _segment_take(slices.to(value.device), index)
            out[key] = value.index_select(_cat_dim(data, key, value), rows)
            new_slices[key] = key_slices.cpu()
        elif isinstance(value, list) and isinstance(slices, Tensor) and len(value) == slices.numel() - 1:
            positions = index.tolist()
            out[key] = [value[i] for i in positions]
            new_slices[key] = torch.arange(len(positions) + 1)
        else:
            raise ValueError(f"{name}: cannot regroup the attribute '{key}' ({type(value).__name__})")
    node_take, node_ptr = _segment_take(g.ptr, index)
    sizes = _diff(node_ptr)
    graphs = torch.arange(index.numel(), device=g.device)
    out.batch = torch.repeat_interleave(graphs, sizes, output_size=node_take.numel())
    out.ptr = node_ptr
    if g.edge_index is not None:
        edge_take, edge_ptr = _segment_take(g.edge_ptr(), index)
        edge_graph = torch.repeat_interleave(graphs, _diff(edge_ptr), output_size=edge_take.numel())
        shift = (node_ptr[:-1] - g.ptr[index])[edge_graph]
        out.edge_index = g.edge_index[:, edge_take] + shift
        new_slices["edge_index"] = edge_ptr.cpu()
    out._slice_dict, out._inc_dict = new_slices, _new_incs(g.incs, node_ptr)
    if "num_nodes" in data:
        out.num_nodes = node_take.numel()
    if "_num_nodes" in data._store.__dict__:
        out._store._num_nodes = sizes.tolist()
    out._num_graphs = index.numel()
    return out


def _new_incs(incs: Optional[dict], node_ptr: Tensor) -> dict:
    """Batching increments for regrouped graphs: `edge_index` shifts by the nodes before its graph; every
    other attribute by nothing (`check` refused attributes holding node ids)."""
    node_ptr = node_ptr.cpu()
    out = {key: None if inc is None else torch.zeros(node_ptr.numel() - 1, dtype=torch.long)
           for key, inc in (incs or {}).items()}
    if "edge_index" in out:
        out["edge_index"] = node_ptr[:-1]
    return out


def _check_bookkeeping(batch: Batch, name: str) -> None:
    sd = getattr(batch, "_slice_dict", None) if isinstance(batch, Batch) else None
    ok = sd is not None and "ptr" in batch and int(batch.ptr[-1]) == (batch.num_nodes or 0)
    for key, slices in (sd or {}).items():
        value = batch[key] if key in batch else None
        if ok and isinstance(value, Tensor) and isinstance(slices, Tensor) and value.dim():
            ok = int(slices[-1]) == value.size(_cat_dim(batch, key, value))
    if not ok:
        raise ValueError(f"{name}: a view returned a Batch whose slices do not match its tensors; per-graph "
                         f"choice needs views that keep Batch bookkeeping (graphcl's views do)")


def _cat_graphs(parts: list[Batch], name: str) -> Batch:
    """The graphs of several `Batch`es with the same attributes, one after another, as one `Batch`."""
    for part in parts:
        _check_bookkeeping(part, name)
    keys = set(parts[0].keys())
    if any(set(part.keys()) != keys for part in parts):
        raise ValueError(f"{name}: the views returned different attributes: "
                         f"{sorted(sorted(part.keys()) for part in parts)}")
    first = parts[0]
    out = copy.copy(first)
    slices = {}
    for key in first._slice_dict:
        slices[key] = cumsum(torch.cat([_diff(part._slice_dict[key]) for part in parts]))
        if key == "edge_index":
            continue
        values = [part[key] for part in parts]
        if isinstance(values[0], Tensor):
            out[key] = torch.cat(values, dim=_cat_dim(first, key, values[0]))
        elif isinstance(values[0], list):
            out[key] = [item for value in values for item in value]
        else:
            raise ValueError(f"{name}: cannot join the attribute '{key}' ({type(values[0]).__name__})")
    graphs = [_Graphs(part) for part in parts]
    node_ptr = cumsum(torch.cat([_diff(part.ptr) for part in graphs]))
    graph_offsets = cumsum(torch.tensor([part.num_graphs for part in graphs], device=node_ptr.device))
    node_offsets = node_ptr[graph_offsets[:-1]]
    if "edge_index" in first:
        out.edge_index = torch.cat([part.edge_index + off for part, off in zip(parts, node_offsets)], dim=1)
    out.batch = torch.cat([part.batch + off for part, off in zip(graphs, graph_offsets)])
    out.ptr = node_ptr
    if "num_nodes" in first:
        out.num_nodes = int(node_ptr[-1])
    if "_num_nodes" in first._store.__dict__:
        out._store._num_nodes = [n for part in parts for n in part._store._num_nodes]
    out._slice_dict, out._inc_dict = slices, _new_incs(first._inc_dict, node_ptr)
    out._num_graphs = int(graph_offsets[-1])
    return out


# -- transforms ------------------------------------------------------------------------------------------
class _View(BaseTransform):
    """A view holding an optional generator; `forward` returns a new object (also when called directly)."""

    def __init__(self, generator: Optional[torch.Generator] = None) -> None:
        self.generator = generator

    def _args(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._args()})"


class _RateView(_View):
    _what = "drop rate"

    def __init__(self, p: float, generator: Optional[torch.Generator] = None) -> None:
        _check_rate(type(self).__name__, p, self._what)
        super().__init__(generator)
        self.p = p

    def _args(self) -> str:
        return f"p={self.p}"


class _MaskView(_View):
    """A view that keeps some nodes and edges and may replace the features. Each subclass defines
    `draw(g: _Graphs) -> _Draw`, its draw for the whole input, which `forward` applies. `RandomChoicePerGraph`
    combines the draws of several such views graph by graph and applies them once."""

    def forward(self, data: Data) -> Data:
        g = _Graphs(data)
        return _apply(g, self.draw(g), type(self).__name__)


class _RateMaskView(_MaskView, _RateView):
    """A masking view with a rate `p`."""


class DropEdges(_RateMaskView):
    """Remove each edge with probability `p` (per edge, so per graph of a batch); edge-level attributes follow.
    On one graph it draws what `drop_edges` draws."""

    def draw(self, g: _Graphs) -> _Draw:
        return _Draw() if g.edge_index is None else _Draw(edges=_edge_keep(g.edge_index, self.p, self.generator))


class AddEdges(_RateView):
    """`add_edges` as a transform: ~p * E_g random edges in every graph g, appended after the graph's own edges.
    Edge-level attributes of the new edges are `fill_value` (a float, or {key: float} with 0 elsewhere)."""

    _what = "rate"

    def __init__(self, p: float, generator: Optional[torch.Generator] = None,
                 fill_value: Union[float, dict[str, float]] = 0.0) -> None:
        super().__init__(p, generator)
        self.fill_value = fill_value

    def forward(self, data: Data) -> Data:
        g = _Graphs(data)
        if g.edge_index is None:
            return copy.copy(data)
        g.check(type(self).__name__, nodes_change=False)
        edge_index = _add_edges(g.edge_index, self.p, self.generator, g.batch, g.ptr)
        new = edge_index.size(1) - g.num_edges
        take = torch.cat([torch.arange(g.num_edges, device=g.device), torch.full((new,), -1, device=g.device)])
        if g.num_graphs > 1 and new:  # regroup the edges graph by graph: own edges, then new ones
            order = _merge_by_graph(g, edge_index)
            edge_index, take = edge_index[:, order], take[order]
        return _restructure(g, node_take=None, edge_take=take, edge_index=edge_index, batch=g.batch,
                            fill=self.fill_value)


def _merge_by_graph(g: _Graphs, edge_index: Tensor) -> Tensor:
    """The order that groups `edge_index` (the batch's E edges, then new ones, both grouped by graph) graph by
    graph, each graph's own edges before its new ones: a merge by position arithmetic, no sort."""
    num_edges = g.num_edges
    owner = g.batch[edge_index[0, num_edges:]]  # graphs of the new edges, non-decreasing
    new_before = cumsum(torch.bincount(owner, minlength=g.num_graphs))  # new edges in graphs < b
    old_before = g.edge_ptr()  # own edges in graphs < b
    position = torch.cat([
        torch.arange(num_edges, device=g.device) + new_before[g.batch[edge_index[0, :num_edges]]],
        torch.arange(owner.numel(), device=g.device) + old_before[owner + 1],
    ])
    order = torch.empty_like(position)
    order[position] = torch.arange(position.numel(), device=g.device)
    return order


class MaskFeatureColumns(_RateMaskView):
    """Zero each feature column with probability `p`, independently for every graph (all its nodes alike).
    On one graph it draws what `mask_feature_columns` draws."""

    def draw(self, g: _Graphs) -> _Draw:
        x = g.data.x
        return _Draw(x=None if x is None else _mask_columns(x, self.p, self.generator, g.batch, g.num_graphs))


class DropoutFeatures(_RateMaskView):
    """Zero each feature entry with probability `p` (`dropout_features`, no rescaling)."""

    def draw(self, g: _Graphs) -> _Draw:
        x = g.data.x
        return _Draw(x=None if x is None else dropout_features(x, self.p, self.generator))


class MaskNodeFeatures(_RateMaskView):
    """GraphCL's attribute masking: zero the feature row of each node with probability `p`."""

    def draw(self, g: _Graphs) -> _Draw:
        x = g.data.x
        return _Draw(x=None if x is None else mask_node_features(x, self.p, self.generator))


class DropNodes(_RateMaskView):
    """GraphCL's node dropping (`drop_nodes`): remove ~p of every graph's nodes, never all of them, with their
    edges; node- and edge-level attributes follow."""

    def draw(self, g: _Graphs) -> _Draw:
        return _Draw(nodes=_drop_node_mask(g.num_nodes, self.p, g.batch, g.num_graphs, self.generator, g.device))


class RandomWalkSubgraph(_MaskView):
    """GraphCL's subgraph view: keep the nodes that random walks from roots in every graph visit
    (`random_walk_subgraph`), as the induced subgraph."""

    def __init__(self, walk_length: int = 10, num_roots: int = 1, root_ratio: Optional[float] = None,
                 generator: Optional[torch.Generator] = None) -> None:
        _check_walk(type(self).__name__, walk_length, num_roots, root_ratio)
        super().__init__(generator)
        self.walk_length, self.num_roots, self.root_ratio = walk_length, num_roots, root_ratio

    def _args(self) -> str:
        return f"walk_length={self.walk_length}, num_roots={self.num_roots}, root_ratio={self.root_ratio}"

    def draw(self, g: _Graphs) -> _Draw:
        edge_index = g.edge_index if g.edge_index is not None else g.batch.new_zeros(2, 0)
        return _Draw(nodes=_random_walk_mask(edge_index, g.num_nodes, g.ptr, self.walk_length, self.num_roots,
                                             self.root_ratio, self.generator))


def _choices(num_views: int, size: int, weights: Optional[Sequence[float]],
             generator: Optional[torch.Generator]) -> Tensor:
    device = generator.device if generator is not None else torch.device("cpu")
    if weights is None:
        return torch.randint(num_views, (size,), generator=generator, device=device)
    return torch.multinomial(torch.as_tensor(weights, dtype=torch.float, device=device), size,
                             replacement=True, generator=generator)


class _Choice(_View):
    def __init__(self, views: Sequence[Callable], generator: Optional[torch.Generator] = None,
                 weights: Optional[Sequence[float]] = None) -> None:
        name = type(self).__name__
        views = list(views)
        if not views:
            raise ValueError(f"{name}: needs at least one view")
        if weights is not None:
            weights = [float(w) for w in weights]
            if len(weights) != len(views) or any(not w >= 0 for w in weights) or sum(weights) <= 0:
                raise ValueError(f"{name}: weights must be {len(views)} non-negative numbers with a positive "
                                 f"sum, got {weights}")
        super().__init__(generator)
        self.views, self.weights = views, weights

    def __repr__(self) -> str:
        args = "".join(f"\n  {view}," for view in self.views)
        return f"{type(self).__name__}([{args}\n])"


class RandomChoice(_Choice):
    """Apply one view drawn at random (uniformly, or by `weights`) to the whole input, Data or Batch."""

    def forward(self, data: Data) -> Data:
        k = int(_choices(len(self.views), 1, self.weights, self.generator))
        return self.views[k](copy.copy(data))


class RandomChoicePerGraph(_Choice):
    """GraphCL's augmentation sampling: every graph of a batch gets its own randomly drawn view. When every
    drawn view masks (node and edge dropping, subgraphs, feature masking; `Compose([])`, the identity), each
    draws for the whole batch in turn, every graph takes its own view's draw, and the combined draw is applied
    once: graph i gets what view k applied to the batch gives graph i. Other views (edge adding, your own)
    run once on the sub-`Batch` of the graphs that drew them, and the results are put back in the original
    graph order. Either way a loop over the few views, never over graphs. On one graph it is `RandomChoice`.
    Views must keep a `Batch`'s bookkeeping (graphcl's views do; most PyG transforms do not)."""

    def forward(self, data: Data) -> Data:
        name = type(self).__name__
        g = _Graphs(data)
        choice = _choices(len(self.views), g.num_graphs, self.weights, self.generator).to(g.device)
        used = torch.bincount(choice, minlength=len(self.views)).nonzero().view(-1).tolist()
        if len(used) <= 1:  # one graph, or every graph drew the same view
            return self.views[used[0] if used else 0](copy.copy(data))
        if not g.is_batch:
            raise ValueError(f"{name}: several graphs in one Data; pass a Batch (Batch.from_data_list)")
        if all(_masks(self.views[k]) for k in used):
            draws = {k: _draw(self.views[k], g) for k in used}
            return _apply(g, _per_graph(g, choice, draws), name)
        groups = [(choice == k).nonzero().view(-1) for k in used]
        parts = [self.views[k](_take_graphs(data, index, name)) for k, index in zip(used, groups)]
        joined = _cat_graphs(parts, name)
        return _take_graphs(joined, torch.argsort(torch.cat(groups)), name)


def _masks(view: Callable) -> bool:
    """Whether `view` is a masking view with graphcl's own `forward` (not overridden), or the identity."""
    if isinstance(view, Compose):
        return not view.transforms
    return isinstance(view, _MaskView) and type(view).forward is _MaskView.forward


def _draw(view: Callable, g: _Graphs) -> _Draw:
    return _Draw() if isinstance(view, Compose) else view.draw(g)


def _per_graph(g: _Graphs, choice: Tensor, draws: dict[int, _Draw]) -> _Draw:
    """One draw for the batch: every graph's nodes, edges and features as the draw of its view `choice [B]`."""
    node_view = choice[g.batch]
    edge_view = None if g.edge_index is None else node_view[g.edge_index[0]]
    nodes = edges = x = None
    for k, d in draws.items():
        if d.nodes is not None:
            nodes = torch.where(node_view == k, d.nodes, True if nodes is None else nodes)
        if d.edges is not None and edge_view is not None:
            edges = torch.where(edge_view == k, d.edges, True if edges is None else edges)
        if d.x is not None:
            here = (node_view == k).view(-1, *([1] * (d.x.dim() - 1)))
            x = torch.where(here, d.x, g.data.x if x is None else x)
    return _Draw(nodes, edges, x)


def edge_feature_view(batch: Data, drop_edge: float, drop_feature: float) -> tuple[Tensor, Tensor]:
    """One random view of a full-batch graph (global RNG): `x [N, F]` with feature columns masked at rate
    `drop_feature` (CSR when `batch.x` is), and `edge_index [2, E']` with directed edges dropped at rate
    `drop_edge`."""
    edges, columns = edge_feature_draws(batch, drop_edge, drop_feature)
    return keep_columns(batch.x, columns), batch.edge_index[:, edges]


def edge_feature_draws(batch: Data, drop_edge: float, drop_feature: float) -> tuple[Tensor, Tensor]:
    """The draws of `edge_feature_view` (global RNG, edges first): the kept edges `[E]` and the kept feature
    columns `[F]`, as bool masks."""
    _check_rate("drop_edges", drop_edge)
    _check_rate("mask_feature_columns", drop_feature)
    edges = _edge_keep(batch.edge_index, drop_edge, None)
    return edges, torch.rand(batch.x.size(1), device=batch.x.device) >= drop_feature


CORRUPTIONS = {"shuffle": shuffle_features}

# Views by config name (GraphCL's augmentation pool); `make_view` builds one from its keyword arguments.
VIEWS: dict[str, Callable[..., Callable]] = {
    "identity": lambda: Compose([]),
    "drop_nodes": DropNodes,
    "drop_edges": DropEdges,
    "add_edges": AddEdges,
    "mask_nodes": MaskNodeFeatures,
    "mask_columns": MaskFeatureColumns,
    "dropout_features": DropoutFeatures,
    "subgraph": RandomWalkSubgraph,
}


def make_view(name: str, **kwargs: Any) -> Callable:
    """The view `name` of `VIEWS` built with `kwargs` (e.g. `make_view("drop_nodes", p=0.1)`)."""
    if name not in VIEWS:
        raise ValueError(f"unknown graph view {name!r}; choose from {', '.join(VIEWS)}")
    try:
        return VIEWS[name](**kwargs)
    except TypeError as e:
        raise ValueError(f"graph view {name!r} does not take {sorted(kwargs)}: {e}") from None
