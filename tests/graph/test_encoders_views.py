"""GNN encoders (PyG BasicGNN models by name), DGI's feature-shuffling view, and the sparse full-batch inputs."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.nn import Sequential
from torch_geometric.nn.models import GAT, GCN, GIN, GraphSAGE
from torch_geometric.nn.models.basic_gnn import BasicGNN

from graphcl.config import ConfigError, load_config
from graphcl.data import make_synthetic_node_data
from graphcl.graph import ENCODERS, ShuffleFeatures, build_encoder, shuffle_features
from graphcl.graph.encoders import basic_gnn
from graphcl.graph.sparse import permute_rows, sparse_full_batch, to_sparse_features
from graphcl.train.build import build_method

PYG = {"gcn": GCN, "sage": GraphSAGE, "gat": GAT, "gin": GIN}


@pytest.fixture(scope="module", autouse=True)
def _one_thread(single_thread) -> None:
    """Before the module's shared runs: see `single_thread` in conftest.py."""


@pytest.fixture(scope="module")
def graph() -> Data:
    return make_synthetic_node_data(num_nodes=80, num_features=12, seed=1)


def sparse_graph(num_nodes: int = 80, num_features: int = 40, seed: int = 0) -> Data:
    """A graph with bag-of-words-like features (~5% ones, some nodes featureless) and isolated nodes."""
    data = make_synthetic_node_data(num_nodes=num_nodes, num_features=num_features, seed=seed, avg_degree=3)
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(num_nodes, num_features, generator=gen) < 0.05).float()
    x[:5] = 0  # empty rows, including the first one
    x[-1] = 0  # ... and the last one
    data.x = x
    return data


# -- encoders --------------------------------------------------------------------------------------------
def test_encoder_names() -> None:
    assert set(ENCODERS) == set(PYG) | {"mol_gin"}  # MolGIN: OGB molecules, imported on first use


@pytest.mark.parametrize("name", list(PYG))
def test_build_encoder_act_last_is_pyg_sequential(name: str, graph: Data) -> None:
    enc = build_encoder(name, graph.num_features, 16, 2)
    assert isinstance(enc, Sequential)
    gnn, act = list(enc.children())
    assert type(gnn) is PYG[name]
    assert gnn.in_channels == graph.num_features and gnn.out_channels == 16 and gnn.num_layers == 2
    z = enc(graph.x, graph.edge_index)
    assert z.shape == (graph.num_nodes, 16)
    # the output is the PyG model's output, activated
    torch.testing.assert_close(z, act(gnn(graph.x, graph.edge_index)))
    assert not torch.equal(z, gnn(graph.x, graph.edge_index)), "act_last must activate the output"


@pytest.mark.parametrize("name", list(PYG))
def test_build_encoder_bare_basic_gnn(name: str, graph: Data) -> None:
    enc = build_encoder(name.upper(), graph.num_features, 16, 2, out_channels=7, act_last=False)
    assert type(enc) is PYG[name] and isinstance(enc, BasicGNN)
    assert enc.out_channels == 7
    assert enc(graph.x, graph.edge_index).shape == (graph.num_nodes, 7)


def test_build_encoder_passes_options_to_pyg(graph: Data) -> None:
    enc = build_encoder("gat", graph.num_features, 16, 2, heads=4, dropout=0.5, norm="batch_norm", act="elu",
                        act_last=False)
    assert enc.convs[0].heads == 4 and enc.dropout.p == 0.5
    assert "BatchNorm" in type(enc.norms[0]).__name__
    enc.eval()
    assert enc(graph.x, graph.edge_index).shape == (graph.num_nodes, 16)


def test_gin_without_mlp_norm_is_the_graphcl_encoder(graph: Data) -> None:
    """`mlp_norm: False`: each conv is Linear-ReLU-Linear over `x + sum of neighbours`, then ReLU and batch
    norm (Shen-Lab/GraphCL's and InfoGraph's gin.py), layers concatenated; PyG's GIN has a norm inside the MLP."""
    torch.manual_seed(0)
    options = {"jk": "cat", "act_first": True}
    enc = build_encoder("gin", graph.num_features, 8, 2, act="relu", norm="batch_norm", act_last=False,
                        options={**options, "mlp_norm": False}).double()
    x, (src, dst) = graph.x.double(), graph.edge_index
    h, outs = x, []
    for conv, norm in zip(enc.convs, enc.norms):
        lin1, lin2 = conv.nn.lins
        agg = h + torch.zeros_like(h).index_add_(0, dst, h[src])
        h = torch.relu(lin2(torch.relu(lin1(agg))))
        bn = norm.module
        h = (h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + bn.eps) * bn.weight + bn.bias
        outs.append(h)
    torch.testing.assert_close(enc(x, graph.edge_index), torch.cat(outs, 1), rtol=1e-10, atol=1e-10)
    pyg = build_encoder("gin", graph.num_features, 8, 2, act="relu", norm="batch_norm", act_last=False, options=options)
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in pyg.convs[0].nn.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for conv in enc.convs for m in conv.nn.modules())
    with pytest.raises(ValueError, match="mlp_norm applies to the gin encoder only"):
        build_encoder("gcn", 4, 8, 2, options={"mlp_norm": False})


def prelus(module: torch.nn.Module) -> list[torch.nn.PReLU]:
    """The distinct PReLU modules of `module`."""
    return list({id(m): m for m in module.modules() if isinstance(m, torch.nn.PReLU)}.values())


@pytest.mark.parametrize("name, options, per_use", [
    ("gin", {}, 3 + 2 + 1),  # MLPs, between layers, output
    ("gin", {"jk": "cat"}, 3 + 3),  # MLPs, after every layer (no act_last with jk here)
    ("gat", {"heads": 2}, 2),
    ("gcn", {}, 2),
])
def test_own_activations_one_prelu_per_use(name: str, options: dict, per_use: int, graph: Data) -> None:
    """`shared_act=False`: PyG reuses one PReLU after every layer (GIN also inside every conv's MLP); the
    official GraphMAE/MVGRL encoders learn a slope per use. Same function at initialisation, separate slopes."""
    kwargs = dict(act="prelu", norm="batch_norm", act_last="jk" not in options, options=options)
    torch.manual_seed(0)
    shared = build_encoder(name, graph.num_features, 8, 3 if name == "gin" else 2, **kwargs).eval()
    torch.manual_seed(0)
    own = build_encoder(name, graph.num_features, 8, 3 if name == "gin" else 2, shared_act=False, **kwargs).eval()
    assert len(prelus(shared)) == 1 and len(prelus(own)) == per_use
    assert type(basic_gnn(own)) is PYG[name] and basic_gnn(own).act is None
    torch.testing.assert_close(own(graph.x, graph.edge_index), shared(graph.x, graph.edge_index))
    own.train()
    own(graph.x, graph.edge_index).square().sum().backward()
    grads = torch.stack([p.weight.grad.squeeze() for p in prelus(own)])
    assert grads.unique().numel() == per_use, "each PReLU must get its own gradient"


def test_own_activations_rejects_what_pyg_orders_otherwise() -> None:
    with pytest.raises(ValueError, match="shared_act false needs act_first false"):
        build_encoder("gcn", 4, 8, 2, shared_act=False, options={"act_first": True})
    with pytest.raises(ValueError, match="norm without a batch argument .*'graph_norm'"):
        build_encoder("gcn", 4, 8, 2, norm="graph_norm", shared_act=False)
    cfg = load_config(None, ["model.method=dgi", "data.name=x", "model.encoder.norm=graph_norm",
                             "model.encoder.shared_act=false"])
    with pytest.raises(ConfigError, match=r"key 'model\.encoder': shared_act false .*'graph_norm'"):
        build_method(cfg, 4)


def test_concatenated_layers_get_contiguous_gradients(graph: Data) -> None:
    """With `jk: cat` each layer's output receives a contiguous gradient (a strided slice of the concatenation's
    gradient slows batch norm's backward ~2.5x on CPU); the gradients are the same as without the hook."""
    torch.manual_seed(0)
    enc = build_encoder("gin", graph.num_features, 8, 3, norm="batch_norm", act_last=False, options={"jk": "cat"})
    seen = []
    enc.jk.register_forward_pre_hook(lambda jk, args: [x.register_hook(lambda g: seen.append(g.is_contiguous()))
                                                       for x in args[0]] and None)
    out = enc(graph.x, graph.edge_index)
    grads = torch.autograd.grad(out.square().sum(), list(enc.parameters()))
    assert seen == [True, True, True]
    enc.jk._forward_pre_hooks.clear()
    reference = torch.autograd.grad(enc(graph.x, graph.edge_index).square().sum(), list(enc.parameters()))
    for g, r in zip(grads, reference):
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-6)


def test_build_encoder_single_layer_gcn(graph: Data) -> None:
    enc = build_encoder("gcn", graph.num_features, 32, 1)
    assert enc(graph.x, graph.edge_index).shape == (graph.num_nodes, 32)
    # the 1-layer model is one GCNConv and its output activation
    assert len(list(enc.children())[0].convs) == 1


def test_build_encoder_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown encoder 'gcnn'"):
        build_encoder("gcnn", 8, 16, 1)


def test_built_encoder_state_dict_round_trip(graph: Data) -> None:
    a = build_encoder("gcn", graph.num_features, 16, 2)
    b = build_encoder("gcn", graph.num_features, 16, 2)
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a(graph.x, graph.edge_index), b(graph.x, graph.edge_index), rtol=0, atol=0)


# -- views -----------------------------------------------------------------------------------------------
def _row_ids(x: torch.Tensor) -> torch.Tensor:
    """Rows of `x = arange(N * F).view(N, F)` identify themselves by their first entry."""
    return (x[:, 0] / x.size(1)).long()


def test_shuffle_features_permutes_rows() -> None:
    x = torch.arange(50 * 3, dtype=torch.float).view(50, 3)
    original = x.clone()
    out = shuffle_features(x, torch.Generator().manual_seed(0))
    assert torch.equal(x, original), "the input must not change"
    ids = _row_ids(out)
    assert sorted(ids.tolist()) == list(range(50)), "same multiset of rows"
    assert torch.equal(out, x[ids]), "whole rows move, their entries stay together"
    assert not torch.equal(ids, torch.arange(50))


def test_shuffle_features_is_reproducible_with_a_generator() -> None:
    x = torch.randn(40, 5)
    a = shuffle_features(x, torch.Generator().manual_seed(3))
    b = shuffle_features(x, torch.Generator().manual_seed(3))
    c = shuffle_features(x, torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    torch.manual_seed(7)
    d = shuffle_features(x)
    torch.manual_seed(7)
    assert torch.equal(d, shuffle_features(x)), "without a generator it follows the global RNG"


def test_shuffle_features_transform(graph: Data) -> None:
    x = torch.arange(graph.num_nodes * 4, dtype=torch.float).view(graph.num_nodes, 4)
    data = Data(x=x, edge_index=graph.edge_index, y=graph.y)
    out = ShuffleFeatures(torch.Generator().manual_seed(11))(data)
    assert out is not data and torch.equal(data.x, x), "the input Data must not change"
    assert torch.equal(out.edge_index, data.edge_index) and torch.equal(out.y, data.y)
    assert sorted(_row_ids(out.x).tolist()) == list(range(graph.num_nodes))
    assert torch.equal(out.x, shuffle_features(x, torch.Generator().manual_seed(11)))


# -- sparse inputs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_permute_rows_csr_equals_dense_indexing(seed: int) -> None:
    x = sparse_graph(seed=seed).x
    perm = torch.randperm(x.size(0), generator=torch.Generator().manual_seed(seed))
    out = permute_rows(x.to_sparse_csr(), perm)
    assert out.layout == torch.sparse_csr and out.shape == x.shape
    assert torch.equal(out.to_dense(), x[perm])
    # a valid CSR matrix: the same components pass PyTorch's invariant checks
    torch.sparse_csr_tensor(out.crow_indices(), out.col_indices(), out.values(), out.shape, check_invariants=True)


def test_permute_rows_edge_cases() -> None:
    empty = torch.zeros(6, 4)
    perm = torch.tensor([5, 0, 3, 1, 4, 2])
    assert torch.equal(permute_rows(empty.to_sparse_csr(), perm).to_dense(), empty)
    one = torch.zeros(6, 4)
    one[5, 2] = 3.0  # only the last row holds anything
    assert torch.equal(permute_rows(one.to_sparse_csr(), perm).to_dense(), one[perm])
    dense = torch.randn(6, 4)
    assert torch.equal(permute_rows(dense, perm), dense[perm])


def test_permute_rows_dense_gradient() -> None:
    x = torch.randn(7, 3, dtype=torch.double, requires_grad=True)
    perm = torch.randperm(7, generator=torch.Generator().manual_seed(0))
    torch.autograd.gradcheck(lambda t: permute_rows(t, perm), (x,))
    w = torch.randn(7, 3, dtype=torch.double)
    (permute_rows(x, perm) * w).sum().backward()
    expected = torch.zeros_like(w)
    expected[perm] = w
    torch.testing.assert_close(x.grad, expected)


def test_to_sparse_features_threshold() -> None:
    x = sparse_graph().x
    assert to_sparse_features(x).layout == torch.sparse_csr
    dense = torch.randn(10, 4)
    assert to_sparse_features(dense) is dense


def test_sparse_full_batch_layout() -> None:
    data = sparse_graph()
    batch = sparse_full_batch(data)
    assert batch.x.layout == torch.sparse_csr and torch.equal(batch.x.to_dense(), data.x)
    assert "adj_t" in batch and batch.adj_t.layout == torch.sparse_csr
    if "edge_index" in batch:  # may be kept beside adj_t (methods that perturb edges start from it)
        assert set(map(tuple, batch.edge_index.t().tolist())) == set(map(tuple, data.edge_index.t().tolist()))
    assert batch.num_nodes == data.num_nodes
    assert torch.equal(batch.y, data.y)
    assert "edge_index" in data and data.x.layout == torch.strided, "the input Data must not change"
    assert batch.adj_t._nnz() == data.edge_index.size(1)
    # dense features stay dense
    assert sparse_full_batch(make_synthetic_node_data(num_nodes=80)).x.layout == torch.strided


@pytest.mark.parametrize("name", list(PYG))
def test_sparse_adjacency_gives_same_encoder_output(name: str) -> None:
    """Every encoder accepts the CSR `adj_t` in place of `edge_index` (features kept dense)."""
    data = sparse_graph()
    batch = sparse_full_batch(data, max_density=0.0)
    assert batch.x.layout == torch.strided and batch.adj_t.layout == torch.sparse_csr
    torch.manual_seed(0)
    enc = build_encoder(name, data.num_features, 16, 2).eval()
    torch.testing.assert_close(enc(batch.x, batch.adj_t), enc(data.x, data.edge_index), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ["gcn", "gat"])
def test_sparse_full_batch_gives_same_encoder_output(name: str) -> None:
    """CSR features and CSR adjacency together (GCN's and GAT's first op is a linear layer)."""
    data = sparse_graph()
    batch = sparse_full_batch(data)
    assert batch.x.layout == torch.sparse_csr
    torch.manual_seed(0)
    enc = build_encoder(name, data.num_features, 16, 2).eval()
    torch.testing.assert_close(enc(batch.x, batch.adj_t), enc(data.x, data.edge_index), atol=1e-5, rtol=1e-4)


def test_sparse_full_batch_gcn_gradients_match() -> None:
    data = sparse_graph()
    batch = sparse_full_batch(data)
    torch.manual_seed(0)
    enc = build_encoder("gcn", data.num_features, 16, 2)
    enc(data.x, data.edge_index).square().sum().backward()
    dense = {k: p.grad.clone() for k, p in enc.named_parameters()}
    enc.zero_grad()
    enc(batch.x, batch.adj_t).square().sum().backward()
    for k, p in enc.named_parameters():
        torch.testing.assert_close(p.grad, dense[k], atol=1e-4, rtol=1e-4, msg=k)


def test_norm_last_normalises_the_output_layer_before_its_activation() -> None:
    """BGRL's encoder: batch norm (with the model's norm_kwargs) then PReLU after the last layer too."""
    from torch_geometric.nn.norm import BatchNorm

    torch.manual_seed(0)
    x, edge_index = torch.randn(30, 5), torch.randint(0, 30, (2, 90))
    enc = build_encoder("gcn", 5, 8, 2, out_channels=6, norm="batch_norm", norm_last=True,
                        options={"norm_kwargs": {"momentum": 0.5}})
    gnn, norm, act = list(enc.children())
    assert isinstance(norm, BatchNorm) and norm.module.momentum == 0.5 and act is gnn.act
    enc.train()
    out = enc(x, edge_index)
    raw = gnn(x, edge_index)
    normed = (raw - raw.mean(0)) / torch.sqrt(raw.var(0, unbiased=False) + norm.module.eps)
    torch.testing.assert_close(out, gnn.act(normed), rtol=1e-5, atol=1e-5)
    plain = build_encoder("gcn", 5, 8, 2, norm="batch_norm", act_last=False, norm_last=True)
    assert [type(m).__name__ for m in plain.children()] == ["GCN", "BatchNorm"]
    with pytest.raises(ValueError, match="norm_last needs a norm"):
        build_encoder("gcn", 5, 8, 2, norm_last=True)
