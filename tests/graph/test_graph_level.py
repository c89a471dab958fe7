"""Graph-level SSL: batched views graph by graph, the GIN readout encoder, GraphCL and InfoGraph on MUTAG, the
graph task (collated dataset, `take_graphs` batches) and `svm_cv`'s model selection."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler
from torch_geometric.data import Batch
from torch_geometric.nn.models import GIN

import graphcl
from graphcl.config import load_config
from graphcl.data import load_dataset
from graphcl.evaluate import svm_cv
from graphcl.graph.encoders import build_encoder, output_channels
from graphcl.graph.readout import readout
from graphcl.graph.views import (AddEdges, DropEdges, DropNodes, MaskNodeFeatures, RandomChoicePerGraph,
                                 RandomWalkSubgraph, make_view, take_graphs)
from graphcl.train.run import train_run
from graphcl.train.tasks.graph import GraphTask
from graphcl.train.reproduce import run_suite, with_section

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def _one_thread(single_thread) -> None:
    """Before the module's runs: see `single_thread` in conftest.py."""


@pytest.fixture(scope="module")
def mutag(shared_datasets: Path) -> list:
    dataset = load_dataset("MUTAG", root=shared_datasets)
    return [dataset[i] for i in range(len(dataset))]


def mutag_cfg(method: str, *overrides: str):
    return load_config(REPO / f"configs/{method}/mutag.yaml",
                       ["trainer.progress=false", "seeds=[0]", *overrides])


# -- batched views, graph by graph ----------------------------------------------------------------------
class Replay:
    """`torch.rand` that records the draws of a batched view, then serves each graph its own share of them.

    Every draw of graphcl's views is one number per node, edge or walker, laid out graph after graph; so when the
    view then runs graph by graph, the k-th draw of graph j is the next slice of the batch's k-th draw."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.real, self.recorded, self.offsets, self.calls = torch.rand, [], [], 0
        monkeypatch.setattr(torch, "rand", self)
        self.replaying = False

    def __call__(self, *size, generator=None, device=None, dtype=None, **kwargs):
        if not self.replaying:
            out = self.real(*size, generator=generator, device=device, dtype=dtype, **kwargs)
            self.recorded.append(out)
            return out
        shape = size[0] if len(size) == 1 and not isinstance(size[0], int) else size
        n = int(np.prod(tuple(shape)))
        k, self.calls = self.calls, self.calls + 1
        out = self.recorded[k][self.offsets[k]:self.offsets[k] + n]
        self.offsets[k] += n
        return out.reshape(shape)

    def start_graph(self) -> None:
        if not self.replaying:
            self.replaying, self.offsets = True, [0] * len(self.recorded)
        self.calls = 0

    def all_used(self) -> bool:
        return all(off == rec.numel() for off, rec in zip(self.offsets, self.recorded))


VIEWS = {
    "drop_nodes": lambda: DropNodes(0.3),
    "drop_edges": lambda: DropEdges(0.3),
    "add_edges": lambda: AddEdges(0.3),
    "mask_nodes": lambda: MaskNodeFeatures(0.3),
    "subgraph": lambda: RandomWalkSubgraph(walk_length=4, num_roots=2),
}


def assert_same_graph(a, b) -> None:
    assert a.num_nodes == b.num_nodes
    assert torch.equal(a.edge_index, b.edge_index)
    assert torch.equal(a.x, b.x)
    assert torch.equal(a.y, b.y)


@pytest.mark.parametrize("name", VIEWS)
def test_batched_view_equals_the_view_graph_by_graph_under_the_same_draws(name, mutag, monkeypatch) -> None:
    graphs = mutag[:40]
    view = VIEWS[name]()
    replay = Replay(monkeypatch)
    batched = view(Batch.from_data_list(graphs)).to_data_list()
    for graph, out in zip(graphs, batched):
        replay.start_graph()
        assert_same_graph(view(Batch.from_data_list([graph])).to_data_list()[0], out)
    assert replay.all_used()  # every graph consumed exactly its share of every draw


@pytest.mark.parametrize("name", VIEWS)
def test_batched_views_keep_every_graph_valid(name, mutag) -> None:
    batch = Batch.from_data_list(mutag)
    torch.manual_seed(0)
    out = RandomChoicePerGraph([VIEWS[name]()])(batch)
    sizes = torch.bincount(out.batch, minlength=batch.num_graphs)
    assert out.num_graphs == batch.num_graphs and bool((sizes >= 1).all())  # no empty graph
    assert bool((sizes <= torch.bincount(batch.batch)).all()) or name == "add_edges"
    src, dst = out.edge_index
    assert int(out.edge_index.max()) < out.num_nodes and int(out.edge_index.min()) >= 0
    assert torch.equal(out.batch[src], out.batch[dst])  # no edge between two graphs
    assert torch.equal(out.y, batch.y)
    assert int(out.ptr[-1]) == out.num_nodes == out.x.size(0)


def test_per_graph_choice_is_reproducible_under_a_generator(mutag) -> None:
    batch = Batch.from_data_list(mutag)

    def run():
        g = torch.Generator().manual_seed(3)
        views = [DropNodes(0.2, generator=g), RandomWalkSubgraph(5, generator=g), make_view("identity")]
        return RandomChoicePerGraph(views, generator=g)(batch)

    a, b = run(), run()
    assert torch.equal(a.edge_index, b.edge_index) and torch.equal(a.batch, b.batch)
    assert not torch.equal(torch.bincount(a.batch), torch.bincount(batch.batch))  # something was dropped


def test_make_view_errors_name_the_view() -> None:
    with pytest.raises(ValueError, match="unknown graph view 'drop_node'"):
        make_view("drop_node")
    with pytest.raises(ValueError, match="graph view 'drop_nodes' does not take"):
        make_view("drop_nodes", rate=0.1)


def test_take_graphs_equals_pyg_index_select(mutag) -> None:
    batch = Batch.from_data_list(mutag)
    index = torch.tensor([5, 0, 17, 3, 3])
    ours, pyg = take_graphs(batch, index).to_data_list(), batch.index_select(index)
    assert len(ours) == len(pyg) == 5
    for a, b in zip(ours, pyg):
        assert_same_graph(a, b)


# -- encoder and readout --------------------------------------------------------------------------------
def test_gin_with_concatenated_layers_is_a_plain_pyg_gin() -> None:
    enc = build_encoder("gin", 7, 16, 3, act="relu", norm="batch_norm", act_last=False,
                        options={"jk": "cat", "act_first": True})
    assert isinstance(enc, GIN) and not hasattr(enc, "lin") and output_channels(enc) == 48
    x, edge_index = torch.randn(6, 7), torch.tensor([[0, 1, 2, 3], [1, 0, 3, 2]])
    enc.eval()
    h = enc(x, edge_index)
    assert h.shape == (6, 48)
    # the first 16 columns are the first layer's output: conv -> act -> norm
    first = enc.norms[0](enc.act(enc.convs[0](x, edge_index)))
    torch.testing.assert_close(h[:, :16], first)
    pooled = readout(h, torch.tensor([0, 0, 0, 1, 1, 1]), 2, "sum")
    torch.testing.assert_close(pooled, torch.stack([h[:3].sum(0), h[3:].sum(0)]))


def test_graphcl_exclude_positive_leaves_the_positive_out_of_the_denominator(mutag) -> None:
    """GraphCL's own loss (`loss_cal`): -log(e^{s_ii} / sum_{j != i} e^{s_ij}), s = cos / T, anchors from the
    original graphs, candidates from the views."""
    from graphcl.graph.methods.graphcl import GraphCL
    from graphcl.graph.readout import graph_embeddings

    batch = Batch.from_data_list(mutag[:12])
    batch.x = batch.x.double()
    torch.manual_seed(0)
    enc = build_encoder("gin", batch.num_features, 8, 2, act="relu", norm="batch_norm", act_last=False,
                        options={"jk": "cat", "act_first": True, "mlp_norm": False})
    method = GraphCL(enc, output_channels(enc), exclude_positive=True).double()
    torch.manual_seed(1)
    loss = method(batch)
    torch.manual_seed(1)
    z1 = method.projector(graph_embeddings(method.encoder, batch))
    z2 = method.projector(graph_embeddings(method.encoder, method.augment(batch)))
    s = torch.nn.functional.normalize(z1, dim=1) @ torch.nn.functional.normalize(z2, dim=1).T / 0.2
    e = s.exp()
    expected = -torch.log(e.diagonal() / (e.sum(1) - e.diagonal())).mean()
    torch.testing.assert_close(loss, expected, rtol=1e-10, atol=1e-12)


# -- svm_cv never sees a test fold while choosing C ---------------------------------------------------
def test_svm_cv_model_selection_never_fits_on_a_test_fold(monkeypatch) -> None:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 20)
    # column 0: the row id, so every fit can be traced; column 1: the label itself, a deliberately leaky
    # feature that would make any look at the test fold profitable
    x = np.column_stack([np.arange(60), y, rng.normal(size=(60, 3))]).astype(float)
    fitted: list[set] = []
    real_fit = StandardScaler.fit

    def spy(self, X, *args, **kwargs):
        fitted.append(set(np.asarray(X)[:, 0].astype(int).tolist()))
        return real_fit(self, X, *args, **kwargs)

    monkeypatch.setattr(StandardScaler, "fit", spy)
    result = svm_cv(x, y, folds=5, c_grid=[0.01, 1.0], seed=3)
    tests = [set(test.tolist()) for _, test in StratifiedKFold(5, shuffle=True, random_state=3).split(x, y)]
    assert len(fitted) == 5 * (2 * 5 + 1)  # per outer fold: 2 C x 5 inner fits, then the refit
    for rows in fitted:  # every fit lies inside one outer fold's training part
        assert any(not (rows & test) for test in tests)
    for i, test in enumerate(tests):  # and the fits of outer fold i never touch its test rows
        assert all(not (rows & test) for rows in fitted[i * 11:(i + 1) * 11])
    assert result["mean"] > 0.9 and 0 < result["val"] <= 1


def test_svm_cv_rbf_and_bad_arguments() -> None:
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 15)
    x = rng.normal(size=(30, 4)) + y[:, None] * 2
    assert svm_cv(x, y, folds=3, kernel="rbf")["mean"] > 0.8
    with pytest.raises(ValueError, match="kernel must be"):
        svm_cv(x, y, kernel="poly")
    with pytest.raises(ValueError, match="at least folds=20"):
        svm_cv(x, y, folds=20)


# -- methods on MUTAG ---------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["graphcl", "infograph"])
def test_method_loss_falls_and_the_probe_learns(method, tmp_path, shared_datasets) -> None:
    # (a random GIN is already a strong MUTAG featuriser, ~86 %: WL-like; the bar here is the majority class)
    cfg = mutag_cfg(method, f"data.root={shared_datasets}", "trainer.epochs=6", "eval.params.kernel=linear")
    results = train_run(cfg, tmp_path / "run", log=lambda *_: None)
    losses = [json.loads(line)["loss"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert results["test"]["mean"] > 75  # majority class: 66.5 %
    task = GraphTask(cfg, torch.device("cpu"))
    # the saved encoder is the plain PyG GIN; pooled, it gives the embeddings the task evaluated
    encoder = graphcl.load_encoder(tmp_path / "run")
    assert isinstance(encoder, GIN)
    batch = task.graphs
    expected = task.embed(encoder)
    torch.testing.assert_close(readout(encoder(batch.x, batch.edge_index), batch.batch, batch.num_graphs), expected)


def test_graph_task_batches_cover_the_dataset_once(shared_datasets) -> None:
    cfg = mutag_cfg("graphcl", f"data.root={shared_datasets}", "data.batch_size=50")
    task = GraphTask(cfg, torch.device("cpu"))
    torch.manual_seed(0)
    batches = list(task.batches())
    assert [b.num_graphs for b in batches] == [50, 50, 50, 38] and task.steps_per_epoch == 4
    seen = torch.cat([b.y for b in batches])
    assert torch.equal(torch.sort(seen).values, torch.sort(task.graphs.y).values)
    with pytest.raises(ValueError, match="'data.batch_size' is 500 but dataset 'MUTAG' has only 188 graphs"):
        GraphTask(mutag_cfg("graphcl", f"data.root={shared_datasets}", "data.batch_size=500"), torch.device("cpu"))
    with pytest.raises(ValueError, match="graph-level runs use svm_cv"):
        GraphTask(mutag_cfg("graphcl", f"data.root={shared_datasets}", "eval.protocol=public"), torch.device("cpu"))
    with pytest.raises(ValueError, match="unknown key 'eval.params.kernal'"):
        GraphTask(mutag_cfg("graphcl", f"data.root={shared_datasets}", "eval.params.kernal=rbf"), torch.device("cpu"))


# -- reproduce: suites share a results page, each owning its section ----------------------------------
def test_suites_rewrite_only_their_own_section(tmp_path, shared_datasets) -> None:
    text = with_section(with_section("# Results\n", "a", "## a\nold a\n"), "b", "## b\nold b\n")
    text = with_section(text, "a", "## a\nnew a\n")
    assert "new a" in text and "old a" not in text and "old b" in text
    assert text.index("## a") < text.index("## b")

    suite = tmp_path / "suite.yaml"
    suite.write_text(f"name: mini\nruns:\n  - config: {REPO}/configs/graphcl/mutag.yaml\n"
                     "    published: {mean: 86.8}\n    source: GraphCL paper\n")
    page = tmp_path / "results.md"
    page.write_text(text)
    table = run_suite(suite, tmp_path / "runs", ["trainer.epochs=1", "seeds=[0]", "trainer.progress=false",
                                                 f"data.root={shared_datasets}"],
                      output=str(page), log=lambda *_: None)
    assert "| graphcl | MUTAG |" in table and "| 1 | svm_cv (accuracy) | 86.8 |" in table
    assert "old b" in page.read_text() and "<!-- suite mini -->" in page.read_text()

    # a finished run is reused when its saved config lacks keys added to the schema since (they take their
    # defaults) and differs only in display settings; a changed setting makes it another run
    saved = tmp_path / "runs" / "mini" / "graphcl-mutag" / "config.yaml"
    cfg = yaml.safe_load(saved.read_text())
    del cfg["eval"]["inference"]
    cfg["trainer"]["progress"] = True
    saved.write_text(yaml.safe_dump(cfg))
    again = lambda extra=(): run_suite(suite, tmp_path / "runs", ["trainer.epochs=1", "seeds=[0]",  # noqa: E731
                                                                  "trainer.progress=false",
                                                                  f"data.root={shared_datasets}", *extra],
                                       output=str(page), only=["none"], log=lambda *_: None)
    assert again() == table
    assert "not run yet" in again(["optim.lr=0.5"])
