"""Graph-level MVGRL and GraphMAE: the per-graph diffusion, training on MUTAG, masked-only loss, saved encoders."""
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Batch, Data

from graphcl.config.load import load_config
from graphcl.core.losses import sce
from graphcl.graph.diffusion import ppr_matrix, ppr_per_graph
from graphcl.graph.encoders import build_encoder
from graphcl.graph.methods.graphmae_graph import GraphMAEGraph
from graphcl.graph.methods.mvgrl_graph import MVGRLGraph, diffusion_adj_t
from graphcl.graph.readout import graph_embeddings
from graphcl.graph.views import take_graphs
from graphcl.train.artifacts import builder as builder_of

pytestmark = pytest.mark.usefixtures("single_thread")
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TINY = {  # small models for quick runs of the shipped MUTAG configs
    "mvgrl_graph": ["model.encoder.hidden_channels=16", "model.encoder.num_layers=2"],
    "graphmae_graph": ["model.encoder.hidden_channels=16", "model.encoder.num_layers=2"],
}


def random_graphs(sizes, seed=0):
    """Graphs of the given node counts with random (possibly duplicate, possibly self-loop) directed edges, so
    some nodes are isolated; sizes span several padded sizes."""
    g = torch.Generator().manual_seed(seed)
    graphs = []
    for n in sizes:
        e = torch.randint(0, n, (2, 2 * n), generator=g)
        graphs.append(Data(x=torch.randn(n, 3, generator=g), edge_index=torch.cat([e, e.flip(0)], 1), num_nodes=n))
    return Batch.from_data_list(graphs)


def dense_per_graph(batch):
    """The prepared diffusion of every graph as a dense float64 matrix, read back from the collated attributes."""
    slices = batch._slice_dict["diff_index"]
    out = []
    for i in range(batch.num_graphs):
        n = int(batch.ptr[i + 1] - batch.ptr[i])
        lo, hi = int(slices[i]), int(slices[i + 1])
        src, dst = batch.diff_index[:, lo:hi]
        s = torch.zeros(n, n, dtype=torch.float64)
        s[dst, src] = batch.diff_weight[lo:hi].double()
        out.append(s)
    return out


def collate_mutag(shared_datasets, cache, features: str = "auto") -> Batch:
    """MUTAG collated as a user would: a plain PyG `Batch` (node features as `data.features` gives them)."""
    from graphcl.data import load_dataset

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRAPHCL_CACHE", str(cache))
        ds = load_dataset("MUTAG", root=str(shared_datasets), features=features)
    return Batch.from_data_list([Data(x=g.x, edge_index=g.edge_index, y=g.y, num_nodes=g.num_nodes) for g in ds])


@pytest.fixture(scope="module")
def mutag(shared_datasets, _session_cache):
    return collate_mutag(shared_datasets, _session_cache)


# -- the diffusion ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("eps", [None, 0.05])
def test_prepared_diffusion_equals_dense_reference(eps):
    batch = random_graphs([1, 3, 8, 9, 17, 40, 70, 9])
    prepared = MVGRLGraph.prepare_graphs(batch, alpha=0.2, eps=eps)
    assert "diff_index" not in batch  # the input is left alone
    for i, s in enumerate(dense_per_graph(prepared)):
        graph = batch.get_example(i)
        ref = ppr_matrix(graph.edge_index, graph.num_nodes, alpha=0.2)  # float64, the graph alone
        ref = ref * (ref > 0) if eps is None else ref * (ref >= eps)
        torch.testing.assert_close(s, ref, atol=1e-6, rtol=1e-5)


def test_mutag_diffusion_equals_dense_reference(mutag):
    prepared = MVGRLGraph.prepare_graphs(mutag)
    for i, s in enumerate(dense_per_graph(prepared)):
        graph = mutag.get_example(i)
        torch.testing.assert_close(s, ppr_matrix(graph.edge_index, graph.num_nodes).clamp_min(0), atol=1e-6, rtol=1e-5)


def test_diffusion_entries_sorted_by_target_per_graph():
    batch = random_graphs([5, 30, 12])
    index, weight, ptr = ppr_per_graph(batch.edge_index, batch.batch)
    key = index[1] * batch.num_nodes + index[0]
    assert bool((key[1:] > key[:-1]).all())  # by target, then source: a CSR adj_t without sorting
    assert int(ptr[-1]) == weight.numel() and weight.dtype == torch.get_default_dtype()
    graph = batch.batch[index[0]]
    assert torch.equal(graph, batch.batch[index[1]])  # no entry between graphs
    assert torch.equal(torch.bincount(graph, minlength=3), ptr.diff())


def test_take_graphs_carries_the_diffusion(mutag):
    prepared = MVGRLGraph.prepare_graphs(mutag)
    encoder = MVGRLGraph(build_encoder("gcn", 7, 8, 2, act_last=False, options={"jk": "cat"}), 16).encoder
    sub = take_graphs(prepared, torch.tensor([100, 3, 57, 3]))
    carried = diffusion_adj_t(sub).to_dense()
    computed = encoder.diffusion(sub.edge_index, sub.batch).to_dense()  # padding depends on n alone
    assert torch.equal(carried, computed)


@pytest.mark.parametrize("kwargs, key", [({"alpha": 1.0}, "alpha"), ({"eps": -1.0}, "eps")])
def test_bad_diffusion_settings_name_the_key(kwargs, key):
    with pytest.raises(ValueError, match=f"'{key}'"):
        MVGRLGraph.prepare_graphs(random_graphs([4]), **kwargs)


def test_mvgrl_graph_needs_a_cat_gcn():
    with pytest.raises(ValueError, match="jk: cat"):
        MVGRLGraph(build_encoder("gcn", 3, 8, 2, act_last=False), 8)
    with pytest.raises(ValueError, match="GCN encoder"):
        MVGRLGraph(build_encoder("gin", 3, 8, 2, act_last=False, options={"jk": "cat"}), 16)


# -- training ------------------------------------------------------------------------------------------------
def _task(method: str, *overrides: str):
    from graphcl.train.tasks.graph import GraphTask

    cfg = load_config(CONFIGS / method / "mutag.yaml", overrides=[*TINY[method], *overrides])
    return GraphTask(cfg, torch.device("cpu"))


def _epoch_losses(task, method, epochs):
    optimizer = torch.optim.Adam(method.parameters(), lr=task.cfg.optim.lr)
    losses = []
    for _ in range(epochs):
        total = []
        for batch in task.batches():
            loss = method(batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total.append(loss.item())
        losses.append(sum(total) / len(total))
    return losses


def test_mvgrl_graph_trains_and_its_saved_encoder_matches(shared_datasets, monkeypatch):
    monkeypatch.setenv("GRAPHCL_DATA", str(shared_datasets))
    torch.manual_seed(0)
    task = _task("mvgrl_graph")
    method = task.build_method()
    losses = _epoch_losses(task, method, 6)
    assert losses[-1] < losses[0] - 0.05, losses
    # rebuilt as `load_encoder` does, computing the diffusion itself: the prepared model's embeddings
    builder, spec = task.encoder_spec()
    assert builder == "mvgrl_graph"
    encoder = builder_of(builder)(**spec)
    encoder.load_state_dict(method.encoder.state_dict())
    method.eval()
    torch.testing.assert_close(task.embed(encoder), method.embed(task.graphs), atol=1e-5, rtol=1e-5)


def test_graphmae_graph_trains(shared_datasets, monkeypatch):
    monkeypatch.setenv("GRAPHCL_DATA", str(shared_datasets))
    torch.manual_seed(0)
    task = _task("graphmae_graph", "optim.lr=0.005")
    method = task.build_method()
    losses = _epoch_losses(task, method, 6)
    assert losses[-1] < losses[0] - 0.05, losses
    assert method.embed(task.graphs).shape == (188, 16)


def test_graphmae_graph_loss_uses_masked_nodes_only(mutag):
    torch.manual_seed(0)
    method = GraphMAEGraph(build_encoder("gin", 7, 16, 2, norm="batch_norm"), 16, mask_rate=0.5,
                           replace_rate=0.1, pool="sum")
    outputs = []

    def keep(module, inputs, out):  # returns None: the output is unchanged
        out.retain_grad()
        outputs.append(out)

    method.decoder.register_forward_hook(keep)
    loss = method(mutag)
    loss.backward()
    recon, masked = outputs[0], method.last_masked
    assert masked.numel() == int(0.5 * mutag.num_nodes)
    touched = recon.grad.abs().sum(1) > 0
    assert set(touched.nonzero().view(-1).tolist()) == set(masked.tolist())
    torch.testing.assert_close(loss, sce(recon[masked], mutag.x[masked], method.alpha))


def test_graphmae_graph_keeps_node_level_decoder():
    from graphcl.graph.methods.graphmae import GraphMAE

    torch.manual_seed(0)
    node = GraphMAE(build_encoder("gat", 3, 8, 2), 8)
    assert type(node.decoder).__name__ == "GAT"
    graph = GraphMAEGraph(build_encoder("gin", 3, 8, 2, norm="batch_norm"), 8)
    assert type(graph.decoder).__name__ == "GINConv"
    with pytest.raises(ValueError, match="'pool'"):
        GraphMAEGraph(build_encoder("gin", 3, 8, 2), 8, pool="median")


# -- saved encoders ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["mvgrl_graph", "graphmae_graph"])
def test_load_encoder_round_trip(method, graphcl_cli, tmp_path, shared_datasets, _session_cache):
    import graphcl

    run = tmp_path / "run"
    code, out, err = graphcl_cli("train", CONFIGS / method / "mutag.yaml", *TINY[method], "trainer.epochs=2",
                                 "seeds=[0]", "trainer.progress=false", "eval.c_grid=[1.0]", "--out", run)
    assert code == 0, err
    code, out, err = graphcl_cli("embed", run, "--out", tmp_path / "z.pt")
    assert code == 0, err
    task_z = torch.load(tmp_path / "z.pt")
    encoder = graphcl.load_encoder(run)  # the plain module, on a user's own collated graphs
    mutag = collate_mutag(shared_datasets, _session_cache, load_config(run / "config.yaml").data.features)
    pool = "sum"  # both MUTAG configs pool by sum (MVGRL's encoder pools itself)
    with torch.no_grad():
        z = graph_embeddings(encoder, mutag, pool)
    assert getattr(encoder, "graph_level", False) == (method == "mvgrl_graph")
    torch.testing.assert_close(z, task_z, atol=1e-5, rtol=1e-5)


# -- OGB molecules -------------------------------------------------------------------------------------------
def test_mol_gin_embeds_atoms_and_bonds():
    from graphcl.graph.molecules import MolGIN

    torch.manual_seed(0)
    gnn = MolGIN(9, 16, 2, norm="batch_norm").eval()
    x = torch.randint(0, 2, (5, 9))
    edge_index = torch.tensor([[0, 1, 1, 2, 3], [1, 0, 2, 1, 4]])
    single, double = torch.zeros(5, 3, dtype=torch.long), torch.ones(5, 3, dtype=torch.long)
    h = gnn(x, edge_index, edge_attr=single)
    assert h.shape == (5, 16)
    assert not torch.allclose(h, gnn(x, edge_index, edge_attr=double))  # bonds matter
    assert gnn(x, edge_index).shape == (5, 16)  # no bond features: zero bond embeddings
    with pytest.raises(ValueError, match="in_channels is 7"):
        MolGIN(7, 16, 2)
    with pytest.raises(ValueError, match=r"integer atom features, got \[5, 9\] torch.float32"):
        gnn(x.float(), edge_index)


def test_ogb_graph_probe_picks_c_on_valid():
    from ogb.graphproppred import Evaluator

    from graphcl.graph.molecules import ogb_graph_probe

    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (200, 1), generator=g).float()
    z = torch.randn(200, 4, generator=g) + 2 * y  # informative embeddings
    split = {"train": torch.arange(120), "valid": torch.arange(120, 160), "test": torch.arange(160, 200)}
    result = ogb_graph_probe(z.numpy(), y.numpy(), split, Evaluator("ogbg-molbace"), c_grid=[0.01, 1.0])
    assert result["metric"] == "rocauc" and result["C"] in (0.01, 1.0)
    assert 0.85 < result["test"] <= 1.0 and 0.85 < result["val"] <= 1.0


def test_graph_task_ogb_graph_protocol(shared_datasets, monkeypatch):
    from graphcl.train.tasks.graph import GraphTask

    monkeypatch.setenv("GRAPHCL_DATA", str(shared_datasets))
    cfg = load_config(CONFIGS / "graphcl" / "ogbg_molbace.yaml",
                      overrides=["model.encoder.hidden_channels=8", "model.encoder.num_layers=2", "eval.c_grid=[1.0]"])
    task = GraphTask(cfg, torch.device("cpu"))
    torch.manual_seed(0)
    result = task.evaluate(task.build_method().encoder, seed=0)
    assert result["protocol"] == "ogb_graph" and result["metric"] == "rocauc" and 0.0 <= result["test"] <= 1.0
    bad = load_config(CONFIGS / "graphmae_graph" / "mutag.yaml", overrides=["eval.protocol=ogb_graph"])
    with pytest.raises(ValueError, match="no official split"):
        GraphTask(bad, torch.device("cpu"))


def test_mol_gin_reads_bond_features_in_training_views_and_embeddings(shared_datasets, monkeypatch):
    """The GraphCL molecule configs: every encoder call gets the (view's) bond features, aligned with its edges;
    none falls back to zero bond embeddings."""
    from graphcl.graph.molecules import MolGIN
    from graphcl.train.tasks.graph import GraphTask

    monkeypatch.setenv("GRAPHCL_DATA", str(shared_datasets))
    cfg = load_config(CONFIGS / "graphcl" / "ogbg_molbbbp.yaml",
                      overrides=["model.encoder.hidden_channels=8", "model.encoder.num_layers=2", "data.batch_size=16"])
    task = GraphTask(cfg, torch.device("cpu"))
    torch.manual_seed(0)
    method = task.build_method()
    seen = []
    original = MolGIN.forward

    def spy(self, x, edge_index, *args, **kwargs):
        seen.append((edge_index.size(1), kwargs.get("edge_attr")))
        return original(self, x, edge_index, *args, **kwargs)

    monkeypatch.setattr(MolGIN, "forward", spy)
    batch = next(iter(task.batches()))
    method(batch).backward()  # two augmented views (node dropping / subgraphs change the edges)
    method.eval()
    full = method.embed(batch)
    assert len(seen) == 3
    for edges, attr in seen:
        assert attr is not None and attr.shape == (edges, 3) and not attr.is_floating_point()
    assert seen[-1][0] == batch.edge_index.size(1) and torch.equal(seen[-1][1], batch.edge_attr)
    monkeypatch.setattr(MolGIN, "forward", original)
    batch.edge_attr = torch.zeros_like(batch.edge_attr)
    assert not torch.allclose(full, method.embed(batch))  # the bonds change the embeddings
    with pytest.raises(ValueError, match="reads edge features"):
        build_encoder("mol_gin", 9, 8, 2, act_last=True)
    from graphcl.config import ConfigError

    with pytest.raises(ConfigError, match=r"key 'model\.encoder': the mol_gin encoder reads edge features"):
        GraphTask(load_config(CONFIGS / "graphcl" / "ogbg_molbbbp.yaml", overrides=["model.encoder.act_last=true"]),
                  torch.device("cpu")).build_method()
