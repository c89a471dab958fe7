"""Graph views: functional primitives and their `BaseTransform`s, on single graphs and on whole batches.

Test graphs carry their own provenance: `x[:, 0]` is a node's id in the input batch and `x[:, 1]` its graph,
`edge_attr` holds the ids of an edge's two endpoints and `y` the graph's index, so every output can be checked
against the input it came from (rows that follow their nodes, attributes that follow their edges)."""
from __future__ import annotations

import copy
import math
import re

import pytest
import torch
from scipy.sparse.csgraph import connected_components
from torch_geometric.data import Batch, Data
from torch_geometric.transforms import BaseTransform
from torch_geometric.utils import cumsum, subgraph, to_scipy_sparse_matrix

from graphcl.graph import views as V
from graphcl.graph.views import (
    CORRUPTIONS, AddEdges, Compose, DropEdges, DropNodes, DropoutFeatures, MaskFeatureColumns, MaskNodeFeatures,
    RandomChoice, RandomChoicePerGraph, RandomWalkSubgraph, ShuffleFeatures, add_edges, drop_edges, drop_nodes,
    dropout_features, mask_feature_columns, mask_node_features, node_permutation, random_walk_subgraph,
    shuffle_features,
)


@pytest.fixture(scope="module", autouse=True)
def _one_thread(single_thread) -> None:
    """Before the module's runs: see `single_thread` in conftest.py."""


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_graphs(sizes: list[int], seed: int = 0, p_edge: float = 0.4, directed: bool = False) -> list[Data]:
    """Graphs of the given sizes with provenance features (see the module docstring)."""
    g = gen(seed)
    graphs, first = [], 0
    for i, n in enumerate(sizes):
        adj = torch.rand(n, n, generator=g) < p_edge
        adj = adj & ~torch.eye(n, dtype=torch.bool)
        if not directed:
            adj = adj.triu(1)
            adj = adj | adj.t()
        edge_index = adj.nonzero().t().contiguous()
        ids = torch.arange(first, first + n, dtype=torch.float)
        x = torch.stack([ids, torch.full((n,), float(i)), torch.rand(n, generator=g) + 1], dim=1)
        graphs.append(Data(x=x, edge_index=edge_index, edge_attr=(edge_index + first).t().float(),
                           pos=torch.randn(n, 3, generator=g), y=torch.tensor([i])))
        first += n
    return graphs


def tiny_batch(num_graphs: int = 300, seed: int = 0) -> Batch:
    sizes = torch.randint(1, 5, (num_graphs,), generator=gen(seed)).tolist()
    return Batch.from_data_list(random_graphs(sizes, seed, p_edge=0.7))


def snapshot(data: Data) -> dict:
    return {key: value.clone() if torch.is_tensor(value) else copy.deepcopy(value) for key, value in data}


def assert_same(a: Data, b: Data) -> None:
    assert set(a.keys()) == set(b.keys())
    for key, value in a:
        other = b[key]
        if torch.is_tensor(value):
            assert value.dtype == other.dtype and torch.equal(value, other), key
        else:
            assert value == other, key


def check_batch(out: Batch, num_graphs: int) -> list[Data]:
    """`out` is a well-formed Batch: consistent `batch`/`ptr`, edges inside graphs and grouped by graph,
    and bookkeeping that `to_data_list()` and re-batching agree with. Returns its graphs."""
    assert isinstance(out, Batch) and out.num_graphs == num_graphs
    n = out.num_nodes
    assert out.batch.numel() == n == out.x.size(0)
    assert bool((out.batch[1:] >= out.batch[:-1]).all())
    assert torch.equal(out.ptr, cumsum(torch.bincount(out.batch, minlength=num_graphs)))
    ei = out.edge_index
    if ei.numel():
        assert 0 <= int(ei.min()) and int(ei.max()) < n
    assert torch.equal(out.batch[ei[0]], out.batch[ei[1]]), "an edge between two graphs"
    owner = out.batch[ei[0]]
    assert bool((owner[1:] >= owner[:-1]).all()), "edges must stay grouped by graph"
    graphs = out.to_data_list()
    assert len(graphs) == num_graphs
    again = Batch.from_data_list(graphs)
    for key, value in out:
        assert torch.equal(again[key], value), f"to_data_list() disagrees with '{key}'"
    return graphs


def edge_ids(data: Data) -> set:
    """An output's edges as pairs of input node ids."""
    return set(map(tuple, data.x[:, 0].long()[data.edge_index].t().tolist()))


def check_follows(out: Data) -> None:
    """Edge attributes still name their edge's endpoints (through the node ids in `x[:, 0]`)."""
    ends = out.x[:, 0][out.edge_index].t()
    assert torch.equal(ends, out.edge_attr), "edge attributes no longer follow their edges"


VIEWS = {
    "drop_edges": lambda g: DropEdges(0.3, generator=g),
    "add_edges": lambda g: AddEdges(0.3, generator=g),
    "mask_columns": lambda g: MaskFeatureColumns(0.3, generator=g),
    "dropout_features": lambda g: DropoutFeatures(0.3, generator=g),
    "mask_nodes": lambda g: MaskNodeFeatures(0.3, generator=g),
    "drop_nodes": lambda g: DropNodes(0.3, generator=g),
    "subgraph": lambda g: RandomWalkSubgraph(walk_length=3, generator=g),
    "compose": lambda g: Compose([DropNodes(0.2, generator=g), AddEdges(0.2, generator=g),
                                  MaskFeatureColumns(0.2, generator=g)]),
    "choice": lambda g: RandomChoice([DropNodes(0.2, generator=g), DropEdges(0.2, generator=g)], generator=g),
    "choice_per_graph": lambda g: RandomChoicePerGraph(
        [DropNodes(0.2, generator=g), AddEdges(0.2, generator=g), MaskNodeFeatures(0.2, generator=g),
         RandomWalkSubgraph(4, generator=g), Compose([])], generator=g),
}


# -- node dropping ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_drop_nodes_keeps_every_graph_non_empty(seed: int) -> None:
    batch = tiny_batch(seed=seed)
    x, edge_index, edge_attr, new_batch, kept = drop_nodes(batch.x, batch.edge_index, 0.9, batch.batch, gen(seed),
                                                           batch.edge_attr)
    counts = torch.bincount(new_batch, minlength=batch.num_graphs)
    assert bool((counts >= 1).all()), "a graph lost all its nodes"
    assert int(counts.sum()) < 0.5 * batch.num_nodes, "p=0.9 must drop most nodes"
    assert torch.equal(x, batch.x[kept]) and torch.equal(new_batch, batch.batch[kept])
    # edges: valid ids, inside one graph, exactly the input edges between kept nodes
    assert edge_index.numel() == 0 or int(edge_index.max()) < x.size(0)
    assert torch.equal(new_batch[edge_index[0]], new_batch[edge_index[1]])
    expected, _ = subgraph(kept, batch.edge_index, relabel_nodes=True, num_nodes=batch.num_nodes)
    assert torch.equal(edge_index, expected)
    assert torch.equal(x[:, 0][edge_index].t(), edge_attr)


def test_drop_nodes_transform_on_a_batch() -> None:
    batch = tiny_batch(seed=3)
    before = {(int(a), int(b)) for a, b in batch.edge_attr.long().tolist()}
    out = DropNodes(0.5, generator=gen(3))(batch)
    graphs = check_batch(out, batch.num_graphs)
    assert torch.equal(out.y.view(-1), torch.arange(batch.num_graphs))
    assert all(graph.num_nodes >= 1 for graph in graphs)
    check_follows(out)
    kept = set(out.x[:, 0].long().tolist())
    assert edge_ids(out) == {(a, b) for a, b in before if a in kept and b in kept}
    assert torch.equal(out.pos, batch.pos[out.x[:, 0].long()]), "node-level attributes follow their nodes"
    for graph in graphs:
        assert bool((graph.x[:, 1] == graph.y).all()), "a node moved to another graph"


def test_drop_nodes_rate_within_tolerance() -> None:
    batch = Batch.from_data_list(random_graphs([400] * 10, seed=4, p_edge=0.02))
    p = 0.3
    for seed in range(3):
        _, _, _, new_batch, kept = drop_nodes(batch.x, batch.edge_index, p, batch.batch, gen(seed))
        dropped = 1 - kept.float().mean().item()
        assert abs(dropped - p) < 4 * math.sqrt(p * (1 - p) / batch.num_nodes)
        per_graph = 1 - torch.bincount(new_batch, minlength=10).float() / 400
        assert bool(((per_graph - p).abs() < 0.1).all()), per_graph


def test_drop_nodes_zero_rate_and_single_graph() -> None:
    data = random_graphs([30], seed=5)[0]
    x, edge_index, edge_attr, batch, kept = drop_nodes(data.x, data.edge_index, 0.0, generator=gen(0),
                                                       edge_attr=data.edge_attr)
    assert bool(kept.all()) and batch is None
    assert torch.equal(x, data.x) and torch.equal(edge_index, data.edge_index)
    # without features: num_nodes says how many there are
    _, edge_index, attr, _, kept = drop_nodes(None, data.edge_index, 0.5, generator=gen(1), num_nodes=30)
    assert kept.shape == (30,) and attr is None and int(edge_index.max()) < int(kept.sum())


# -- feature views ---------------------------------------------------------------------------------------
def test_mask_feature_columns_masks_whole_columns_at_the_rate() -> None:
    x = torch.rand(50, 4000) + 1
    p = 0.3
    out = mask_feature_columns(x, p, gen(0))
    zero = out == 0
    col_zero = zero.all(dim=0)
    assert torch.equal(zero, col_zero.expand_as(zero)), "columns are masked whole"
    assert abs(col_zero.float().mean().item() - p) < 4 * math.sqrt(p * (1 - p) / 4000)
    assert torch.equal(out[:, ~col_zero], x[:, ~col_zero])
    # unchanged behaviour of the existing function: one draw of F uniforms, kept where >= p
    assert torch.equal(out, x * (torch.rand(4000, generator=gen(0)) >= p).float())


def test_mask_feature_columns_keeps_csr_and_draws_what_dense_draws() -> None:
    x = torch.rand(30, 200) * (torch.rand(30, 200) < 0.05)
    out = mask_feature_columns(x.to_sparse_csr(), 0.3, gen(0))
    assert out.layout == torch.sparse_csr and out.values().numel() == x.count_nonzero()
    assert torch.equal(out.to_dense(), mask_feature_columns(x, 0.3, gen(0)))


def test_mask_feature_columns_per_graph_in_a_batch() -> None:
    batch = Batch.from_data_list([Data(x=torch.rand(n, 500) + 1) for n in (3, 7, 5, 9)])
    out = mask_feature_columns(batch.x, 0.4, gen(0), batch=batch.batch)
    masks = []
    for graph in range(4):
        zero = out[batch.batch == graph] == 0
        assert torch.equal(zero, zero[:1].expand_as(zero)), "a graph masks whole columns"
        masks.append(zero[0])
        assert abs(zero[0].float().mean().item() - 0.4) < 0.1
    assert not torch.equal(masks[0], masks[1]), "every graph draws its own columns"
    transformed = MaskFeatureColumns(0.4, generator=gen(0))(batch)
    assert torch.equal(transformed.x, out)


def test_mask_node_features_zeroes_whole_rows() -> None:
    x = torch.rand(5000, 6) + 1
    x[0, 0] = float("nan")
    out = mask_node_features(x, 0.25, gen(0))
    row_zero = (out == 0).all(dim=1)
    assert torch.equal((out == 0).any(dim=1), row_zero), "rows are masked whole"
    assert abs(row_zero.float().mean().item() - 0.25) < 0.03
    kept = ~row_zero
    assert torch.equal(out[kept][1:], x[kept][1:])


def test_dropout_features_and_existing_names() -> None:
    x = torch.rand(200, 50) + 1
    out = dropout_features(x, 0.5, gen(0))
    assert abs((out == 0).float().mean().item() - 0.5) < 0.03
    assert torch.equal(DropoutFeatures(0.5, generator=gen(0))(Data(x=x)).x, out)
    # the names other modules use are still there and behave as before
    assert CORRUPTIONS["shuffle"] is shuffle_features
    assert node_permutation(5, gen(0)).sort().values.tolist() == list(range(5))
    assert torch.equal(ShuffleFeatures(gen(1))(Data(x=x)).x, shuffle_features(x, gen(1)))
    edge_index = torch.randint(0, 10, (2, 100), generator=gen(2))
    kept, attr = drop_edges(edge_index, 0.5, gen(3), edge_attr=torch.arange(100))
    assert torch.equal(edge_index[:, attr], kept)


# -- edge views ------------------------------------------------------------------------------------------
def test_add_edges_stay_within_graphs() -> None:
    batch = Batch.from_data_list(random_graphs([2, 60, 1, 0, 5, 40, 3], seed=6, p_edge=0.3))
    e = batch.edge_index.size(1)
    out = add_edges(batch.edge_index, batch.num_nodes, 0.5, gen(0), batch=batch.batch)
    assert torch.equal(out[:, :e], batch.edge_index), "the input edges come first, unchanged"
    new = out[:, e:]
    assert torch.equal(batch.batch[new[0]], batch.batch[new[1]]), "a new edge joins two graphs"
    per_graph = torch.bincount(batch.batch[new[0]], minlength=7)
    edges_per_graph = torch.bincount(batch.batch[batch.edge_index[0]], minlength=7)
    assert bool((per_graph[edges_per_graph == 0] == 0).all())
    for count, edges in zip(per_graph.tolist(), edges_per_graph.tolist()):
        assert abs(count - 0.5 * edges) <= 4 * math.sqrt(0.25 * edges) + 1
    assert bool((new[0] != new[1]).all()), "no self-loops in graphs of several nodes"


def test_add_edges_transform_keeps_a_valid_batch() -> None:
    batch = tiny_batch(seed=7)
    out = AddEdges(0.5, generator=gen(7), fill_value=-1.0)(batch)
    graphs = check_batch(out, batch.num_graphs)
    assert out.edge_index.size(1) > batch.edge_index.size(1)
    new = (out.edge_attr == -1).all(dim=1)
    assert torch.equal(out.edge_attr[~new], batch.edge_attr), "the input edges keep their order and attributes"
    assert torch.equal(out.x, batch.x)
    for graph, before in zip(graphs, batch.to_data_list()):
        e = before.edge_index.size(1)
        assert torch.equal(graph.edge_index[:, :e], before.edge_index), "a graph's own edges come first"


def test_drop_edges_transform_keeps_attributes_aligned() -> None:
    batch = tiny_batch(seed=8)
    out = DropEdges(0.5, generator=gen(8))(batch)
    check_batch(out, batch.num_graphs)
    check_follows(out)
    keep = torch.rand(batch.edge_index.size(1), generator=gen(8)) >= 0.5
    assert torch.equal(out.edge_index, batch.edge_index[:, keep])
    assert torch.equal(out.x, batch.x)


# -- random-walk subgraph --------------------------------------------------------------------------------
def components(data: Data) -> int:
    adj = to_scipy_sparse_matrix(data.edge_index, num_nodes=data.num_nodes)
    return connected_components(adj, directed=True, connection="weak")[0]


@pytest.mark.parametrize("directed", [False, True])
def test_random_walk_subgraph_is_connected_and_never_empty(directed: bool) -> None:
    graphs = random_graphs([1, 20, 6, 35, 2, 12] * 10, seed=9, p_edge=0.2, directed=directed)
    batch = Batch.from_data_list(graphs)
    keep = random_walk_subgraph(batch.edge_index, batch.num_nodes, batch.batch, walk_length=6, generator=gen(0))
    assert keep.dtype == torch.bool and keep.shape == (batch.num_nodes,)
    assert bool((torch.bincount(batch.batch[keep], minlength=batch.num_graphs) >= 1).all())
    assert keep.sum() < batch.num_nodes
    out = RandomWalkSubgraph(walk_length=6, generator=gen(0))(batch)
    assert torch.equal(out.x, batch.x[keep])
    for graph in check_batch(out, batch.num_graphs):
        assert graph.num_nodes >= 1
        assert components(graph) == 1, "one walk keeps a connected set of nodes"


def test_random_walk_roots_and_walk_length() -> None:
    batch = Batch.from_data_list(random_graphs([10, 0, 30, 1], seed=10, p_edge=0.3))
    only_roots = random_walk_subgraph(batch.edge_index, batch=batch.batch, walk_length=0, generator=gen(0))
    assert torch.bincount(batch.batch[only_roots], minlength=4).tolist() == [1, 0, 1, 1]
    ratio = random_walk_subgraph(batch.edge_index, batch=batch.batch, walk_length=0, root_ratio=0.5,
                                 generator=gen(0))
    counts = torch.bincount(batch.batch[ratio], minlength=4).tolist()
    assert 1 <= counts[0] <= 5 and counts[1] == 0 and 1 <= counts[2] <= 15 and counts[3] == 1
    long_walks = random_walk_subgraph(batch.edge_index, batch=batch.batch, walk_length=200, generator=gen(0))
    assert torch.bincount(batch.batch[long_walks], minlength=4)[2] > 20, "long walks cover a connected graph"
    # a path 0 -> 1 -> ... -> 9: a single walk from 0 keeps exactly a prefix of it
    path = torch.stack([torch.arange(9), torch.arange(1, 10)])
    for seed in range(5):
        keep = random_walk_subgraph(path, 10, walk_length=4, generator=gen(seed))
        kept = keep.nonzero().view(-1)
        assert torch.equal(kept, torch.arange(kept[0], kept[0] + kept.numel()))
        assert kept.numel() == min(5, 10 - int(kept[0])), "a walker on a node without out-edges stays there"


# -- reproducibility, single graph vs. batch, no mutation ------------------------------------------------
@pytest.mark.parametrize("name", list(VIEWS))
def test_views_are_reproducible_with_a_generator(name: str) -> None:
    batch = Batch.from_data_list(random_graphs([8, 12, 5, 20] * 4, seed=11))
    a = VIEWS[name](gen(1))(batch)
    b = VIEWS[name](gen(1))(batch)
    c = VIEWS[name](gen(2))(batch)
    assert_same(a, b)
    with pytest.raises(AssertionError):
        assert_same(a, c)
    check_batch(a, batch.num_graphs)


@pytest.mark.parametrize("name", list(VIEWS))
def test_single_graph_equals_batch_of_one(name: str) -> None:
    data = random_graphs([25], seed=12)[0]
    single = VIEWS[name](gen(3))(data)
    batched = VIEWS[name](gen(3))(Batch.from_data_list([data]))
    assert type(single) is Data
    assert_same(single, check_batch(batched, 1)[0])


def test_transforms_on_one_graph_equal_the_functions() -> None:
    data = random_graphs([40], seed=13)[0]
    out = DropNodes(0.4, generator=gen(0))(data)
    x, edge_index, edge_attr, _, _ = drop_nodes(data.x, data.edge_index, 0.4, generator=gen(0),
                                                edge_attr=data.edge_attr)
    assert torch.equal(out.x, x) and torch.equal(out.edge_index, edge_index)
    assert torch.equal(out.edge_attr, edge_attr)
    out = DropEdges(0.4, generator=gen(0))(data)
    assert torch.equal(out.edge_index, drop_edges(data.edge_index, 0.4, gen(0))[0])
    out = AddEdges(0.4, generator=gen(0))(data)
    assert torch.equal(out.edge_index, add_edges(data.edge_index, 40, 0.4, gen(0)))
    out = MaskFeatureColumns(0.4, generator=gen(0))(data)
    assert torch.equal(out.x, mask_feature_columns(data.x, 0.4, gen(0)))
    out = MaskNodeFeatures(0.4, generator=gen(0))(data)
    assert torch.equal(out.x, mask_node_features(data.x, 0.4, gen(0)))
    out = RandomWalkSubgraph(3, generator=gen(0))(data)
    keep = random_walk_subgraph(data.edge_index, 40, walk_length=3, generator=gen(0))
    assert torch.equal(out.x, data.x[keep])
    assert torch.equal(out.edge_index, subgraph(keep, data.edge_index, relabel_nodes=True)[0])


@pytest.mark.parametrize("name", list(VIEWS))
def test_views_do_not_mutate_their_input(name: str) -> None:
    batch = Batch.from_data_list(random_graphs([8, 12, 5, 20] * 4, seed=14))
    data = random_graphs([30], seed=15)[0]
    for item in (batch, data):
        before = snapshot(item)
        slices = copy.deepcopy(getattr(item, "_slice_dict", None))
        view = VIEWS[name](gen(0))
        out = view(item)
        out2 = view.forward(item)
        assert out is not item and out2 is not item
        assert_same(item, Data(**before))
        assert getattr(item, "_slice_dict", None) == slices if slices is None else all(
            torch.equal(item._slice_dict[k], v) for k, v in slices.items())


# -- edge cases ------------------------------------------------------------------------------------------
def odd_graphs() -> list[Data]:
    """An empty graph, a single node, isolated nodes without edges, and isolated nodes beside an edge."""
    return [
        Data(x=torch.zeros(0, 3), edge_index=torch.zeros(2, 0, dtype=torch.long), edge_attr=torch.zeros(0, 2),
             y=torch.tensor([0])),
        Data(x=torch.ones(1, 3), edge_index=torch.zeros(2, 0, dtype=torch.long), edge_attr=torch.zeros(0, 2),
             y=torch.tensor([1])),
        Data(x=torch.ones(4, 3), edge_index=torch.zeros(2, 0, dtype=torch.long), edge_attr=torch.zeros(0, 2),
             y=torch.tensor([2])),
        Data(x=torch.ones(5, 3), edge_index=torch.tensor([[0, 1], [1, 0]]), edge_attr=torch.ones(2, 2),
             y=torch.tensor([3])),
    ]


@pytest.mark.parametrize("name", list(VIEWS))
def test_views_handle_empty_and_edgeless_graphs(name: str) -> None:
    graphs = odd_graphs()
    for i, data in enumerate(graphs):
        out = VIEWS[name](gen(i))(data)
        assert out.x.size(1) == 3 and out.edge_index.size(0) == 2
        assert out.edge_attr.size(0) == out.edge_index.size(1)
        assert (out.num_nodes >= 1) == (data.num_nodes >= 1), "non-empty graphs stay non-empty"
        if out.edge_index.numel():
            assert int(out.edge_index.max()) < out.num_nodes
    out = VIEWS[name](gen(0))(Batch.from_data_list(graphs * 3))
    result = check_batch(out, len(graphs) * 3)
    assert [int(graph.y) for graph in result] == [0, 1, 2, 3] * 3
    assert [graph.num_nodes >= 1 for graph in result] == [False, True, True, True] * 3


def test_views_without_features_or_edges() -> None:
    data = Data(edge_index=torch.tensor([[0, 1, 2], [1, 2, 3]]), num_nodes=6)
    out = DropNodes(0.5, generator=gen(0))(data)
    assert 1 <= out.num_nodes <= 6 and "x" not in out
    assert out.edge_index.numel() == 0 or int(out.edge_index.max()) < out.num_nodes
    batch = Batch.from_data_list([data, Data(edge_index=torch.zeros(2, 0, dtype=torch.long), num_nodes=3)])
    out = DropNodes(0.5, generator=gen(0))(batch)
    sizes = [graph.num_nodes for graph in out.to_data_list()]
    assert sum(sizes) == out.num_nodes == out.batch.numel() and min(sizes) >= 1
    assert MaskNodeFeatures(0.5)(data).edge_index is not None  # no `x`: feature views change nothing
    no_edges = Data(x=torch.ones(3, 2))
    for view in (DropEdges(0.5), AddEdges(0.5), DropNodes(0.5), RandomWalkSubgraph(3)):
        assert view(no_edges).num_nodes >= 1


def test_node_id_attributes_are_refused_not_left_stale() -> None:
    data = random_graphs([10], seed=16)[0]
    data.anchor_index = torch.tensor([0, 3])
    with pytest.raises(ValueError, match="DropNodes: the attribute 'anchor_index' holds node ids"):
        DropNodes(0.5)(data)
    batch = Batch.from_data_list([data] * 20)
    for pool in ([DropNodes(0.1), MaskNodeFeatures(0.1)], [AddEdges(0.1), MaskNodeFeatures(0.1)]):
        with pytest.raises(ValueError, match="RandomChoicePerGraph: the attribute 'anchor_index'"):
            RandomChoicePerGraph(pool, generator=gen(0))(batch)
    # edges dropped and features masked graph by graph in place: the node ids stay valid
    out = RandomChoicePerGraph([DropEdges(0.1), MaskNodeFeatures(0.1)], generator=gen(0))(batch)
    assert out.anchor_index is batch.anchor_index
    assert DropEdges(0.5)(data).anchor_index is data.anchor_index  # node ids stay valid there


BAD_RATES = [-0.1, 1.0, 1.5, float("nan")]
CALLS = {
    "drop_nodes": lambda p: drop_nodes(torch.ones(3, 2), torch.zeros(2, 0, dtype=torch.long), p),
    "add_edges": lambda p: add_edges(torch.zeros(2, 0, dtype=torch.long), 3, p),
    "mask_node_features": lambda p: mask_node_features(torch.ones(3, 2), p),
    "mask_feature_columns": lambda p: mask_feature_columns(torch.ones(3, 2), p),
    "dropout_features": lambda p: dropout_features(torch.ones(3, 2), p),
    "drop_edges": lambda p: drop_edges(torch.zeros(2, 0, dtype=torch.long), p),
    "DropNodes": lambda p: DropNodes(p),
    "DropEdges": lambda p: DropEdges(p),
    "AddEdges": lambda p: AddEdges(p),
    "MaskFeatureColumns": lambda p: MaskFeatureColumns(p),
    "DropoutFeatures": lambda p: DropoutFeatures(p),
    "MaskNodeFeatures": lambda p: MaskNodeFeatures(p),
}


@pytest.mark.parametrize("p", BAD_RATES)
@pytest.mark.parametrize("name", list(CALLS))
def test_rates_outside_zero_one_are_refused(name: str, p: float) -> None:
    with pytest.raises(ValueError, match=rf"^{name}: .*\[0, 1\), got {re.escape(str(p))}$"):
        CALLS[name](p)


def test_walk_and_choice_arguments_are_validated() -> None:
    edge_index = torch.zeros(2, 0, dtype=torch.long)
    with pytest.raises(ValueError, match="random_walk_subgraph: walk_length must be an integer >= 0, got -1"):
        random_walk_subgraph(edge_index, 3, walk_length=-1)
    with pytest.raises(ValueError, match="RandomWalkSubgraph: num_roots must be an integer >= 1, got 0"):
        RandomWalkSubgraph(num_roots=0)
    with pytest.raises(ValueError, match=r"RandomWalkSubgraph: root_ratio must be in \(0, 1\], got 1.5"):
        RandomWalkSubgraph(root_ratio=1.5)
    with pytest.raises(ValueError, match="RandomChoice: needs at least one view"):
        RandomChoice([])
    with pytest.raises(ValueError, match="RandomChoicePerGraph: weights must be 2 non-negative numbers"):
        RandomChoicePerGraph([DropEdges(0.1), DropNodes(0.1)], weights=[1.0, -1.0])


# -- choosing views --------------------------------------------------------------------------------------
class Shift(BaseTransform):
    """A feature-only view that names itself: adds `c` to every feature."""

    def __init__(self, c: float) -> None:
        self.c = c

    def forward(self, data: Data) -> Data:
        out = copy.copy(data)
        out.x = data.x + self.c
        return out


def test_random_choice_per_graph_keeps_order_and_applies_each_graphs_view() -> None:
    graphs = random_graphs(torch.randint(1, 15, (80,), generator=gen(17)).tolist(), seed=17)
    batch = Batch.from_data_list(graphs)
    view = RandomChoicePerGraph([Shift(1000.0), Shift(2000.0), DropNodes(0.5, generator=gen(1))],
                                generator=gen(5))
    out = view(batch)
    result = check_batch(out, len(graphs))
    assert torch.equal(out.y.view(-1), torch.arange(len(graphs))), "graphs keep their order"
    choice = torch.randint(3, (len(graphs),), generator=gen(5))
    assert set(choice.tolist()) == {0, 1, 2}
    for k, before, after in zip(choice.tolist(), graphs, result):
        if k < 2:
            assert torch.equal(after.x, before.x + 1000.0 * (k + 1))
            assert torch.equal(after.edge_index, before.edge_index)
        else:
            ids = after.x[:, 0].long() - int(before.x[0, 0])
            assert 1 <= ids.numel() <= before.num_nodes and bool((ids[1:] > ids[:-1]).all())
            assert torch.equal(after.x, before.x[ids])
            check_follows(after)
    # one graph: the same draw as RandomChoice
    single = graphs[3]
    for seed in range(6):
        a = RandomChoicePerGraph([Shift(1.0), Shift(2.0), Shift(3.0)], generator=gen(seed))(single)
        b = RandomChoice([Shift(1.0), Shift(2.0), Shift(3.0)], generator=gen(seed))(single)
        assert torch.equal(a.x, b.x)


def masking_pool(g: torch.Generator) -> list:
    return [DropNodes(0.3, generator=g), DropEdges(0.3, generator=g), MaskFeatureColumns(0.3, generator=g),
            RandomWalkSubgraph(3, generator=g), MaskNodeFeatures(0.3, generator=g),
            DropoutFeatures(0.3, generator=g), Compose([])]


def test_masking_views_chosen_per_graph_give_each_graph_its_view_of_the_batch(monkeypatch) -> None:
    """With masking views only, every view draws for the whole batch in turn and graph i keeps the draw of its
    own view: graph i of the output is graph i of its view applied to the batch under the same draws. The
    batch is not regrouped by view."""
    graphs = random_graphs(torch.randint(1, 15, (70,), generator=gen(21)).tolist(), seed=21)
    batch = Batch.from_data_list(graphs)
    monkeypatch.setattr(V, "_take_graphs", None)  # the per-view sub-batches of other views are not built
    g = gen(4)
    out = RandomChoicePerGraph(masking_pool(g), generator=g)(batch)
    monkeypatch.undo()
    replay = gen(4)
    views = masking_pool(replay)
    choice = torch.randint(len(views), (len(graphs),), generator=replay)
    assert set(choice.tolist()) == set(range(len(views)))
    whole = [view(batch).to_data_list() for view in views]
    result = check_batch(out, len(graphs))
    for k, got, before, i in zip(choice.tolist(), result, graphs, range(len(graphs))):
        assert_same(got, whole[k][i])
        if k in (0, 3):  # nodes dropped: the edge attributes still follow their edges
            check_follows(got)
        elif k == 1:
            assert torch.equal(got.x, before.x) and edge_ids(got) <= edge_ids(before)


def test_random_choice_uses_the_generator_and_weights() -> None:
    data = Data(x=torch.zeros(2, 1))
    picks = [RandomChoice([Shift(1.0), Shift(2.0)], generator=g)(data).x[0, 0].item()
             for g in [gen(0)] for _ in range(200)]
    assert 60 < picks.count(1.0) < 140 and picks.count(1.0) + picks.count(2.0) == 200
    weighted = RandomChoicePerGraph([Shift(1.0), Shift(2.0)], generator=gen(0), weights=[0.0, 1.0])
    out = weighted(Batch.from_data_list([data] * 10))
    assert bool((out.x == 2.0).all())


def test_compose_chains_views_on_a_batch() -> None:
    batch = tiny_batch(seed=18)
    out = Compose([DropNodes(0.3, generator=gen(0)), DropEdges(0.3, generator=gen(1)),
                   MaskNodeFeatures(0.3, generator=gen(2))])(batch)
    check_batch(out, batch.num_graphs)
    assert out.num_nodes < batch.num_nodes and out.edge_index.size(1) < batch.edge_index.size(1)
    assert Compose([])(batch) is not batch


def test_public_api() -> None:
    for name in V.__all__:
        assert hasattr(V, name), name
