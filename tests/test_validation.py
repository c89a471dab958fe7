"""Bad input at the boundaries: method hyper-parameters, user graphs and datasets, labels and splits, names.

Every user mistake is one line naming the key, field, shape or value (exit status 2 from the CLI), raised before
training starts; degenerate but valid graphs (isolated nodes, self-loops, duplicate edges, no edges, single
nodes) train and evaluate. See docs/reliability.md for the whole matrix.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Data

import graphcl
from graphcl.config import ConfigError, load_config
from graphcl.core.checks import ArgumentError
from graphcl.data import make_synthetic_node_data
from graphcl.data.validate import InvalidDataError, check_graph_labels, validate_dataset, validate_graph
from graphcl.graph import build_encoder
from graphcl.graph.methods import BGRL, DGI, GRACE, GraphCL
from graphcl.train.build import build_method
from graphcl.train.tasks.node import prepare_nodes

REPO = Path(__file__).resolve().parents[1]
CORA = REPO / "configs" / "dgi" / "cora.yaml"
MUTAG = REPO / "configs" / "graphcl" / "mutag.yaml"
FAST = ["trainer.patience=null", "trainer.progress=false", "trainer.device=cpu", "seeds=[0]", "trainer.epochs=2",
        "model.encoder.hidden_channels=8", "eval.c_grid=[1.0]", "trainer.diagnostics_every=0"]
PRETRAIN = dict(trainer={"epochs": 2, "patience": None, "progress": False, "device": "cpu", "diagnostics_every": 1},
                model={"encoder": {"hidden_channels": 8}}, seeds=[0], eval={"c_grid": [1.0]})


@pytest.fixture(scope="module", autouse=True)
def _one_thread(single_thread) -> None:
    """See `single_thread` in conftest.py."""


def one_line_usage_error(code: int, err: str, *needles: str) -> str:
    """Exit status 2 and a single `graphcl: error:` line on stderr holding every needle; no traceback."""
    assert code == 2, f"exit {code}: {err}"
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("graphcl: error:"), err
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def holds_no_run(path: Path) -> bool:
    return not (path / "config.yaml").exists() and not (path / "checkpoint.pt").exists()


# -- method hyper-parameters: rejected when the method is built, naming the config key --------------------------
HYPERPARAMETERS = [
    ("grace", "tau=-1", "key 'model.params.tau' must be > 0, got -1"),
    ("grace", "tau=0", "key 'model.params.tau' must be > 0, got 0"),
    ("grace", "tau=hot", "key 'model.params.tau' must be > 0, got 'hot'"),
    ("graphcl", "temperature=0.0", "key 'model.params.temperature' must be > 0, got 0.0"),
    ("grace", "drop_edge_1=1.0", "key 'model.params.drop_edge_1' must be in [0, 1), got 1.0"),
    ("grace", "drop_feature_2=-0.1", "key 'model.params.drop_feature_2' must be in [0, 1), got -0.1"),
    ("bgrl", "drop_edge_2=1.5", "key 'model.params.drop_edge_2' must be in [0, 1), got 1.5"),
    ("ccassg", "drop_feature=1", "key 'model.params.drop_feature' must be in [0, 1), got 1"),
    ("graphmae", "replace_rate=1.0", "key 'model.params.replace_rate' must be in [0, 1), got 1.0"),
    ("graphmae", "mask_rate=0", "key 'model.params.mask_rate' must be in (0, 1), got 0"),
    ("bgrl", "momentum_start=1.5", "key 'model.params.momentum_start' must be in [0, 1], got 1.5"),
    ("bgrl", "momentum_start=-0.1", "key 'model.params.momentum_start' must be in [0, 1], got -0.1"),
    ("ccassg", "lambd=-1", "key 'model.params.lambd' must be >= 0, got -1"),
    ("mvgrl", "alpha=1.5", "key 'model.params.alpha' must be in (0, 1), got 1.5"),
    ("infograph", "pool=median", "key 'model.params.pool' must be one of sum, mean, max, got 'median'"),
    ("graphcl", "views.drop_nodes.p=1.5",
     "key 'model.params.views.drop_nodes' is rejected: DropNodes: drop rate must be in [0, 1), got 1.5"),
]


@pytest.mark.parametrize("method, override, message",
                         [pytest.param(*case, id=f"{case[0]}-{case[1]}") for case in HYPERPARAMETERS])
def test_method_hyperparameters_are_checked_when_built(method: str, override: str, message: str) -> None:
    cfg = load_config(None, [f"model.method={method}", "data.name=x", "model.encoder.hidden_channels=8",
                             f"model.params.{override}"])
    with pytest.raises(ConfigError) as info:
        build_method(cfg, 8)
    assert str(info.value) == message


def test_unknown_method_param_names_a_close_match() -> None:
    cfg = load_config(None, ["model.method=grace", "data.name=x", "model.params.tauu=0.5"])
    with pytest.raises(ConfigError, match=r"^unknown key 'model\.params\.tauu' for method 'grace' "
                                          r"\(did you mean 'tau'\?\)$"):
        build_method(cfg, 8)


def test_method_constructors_name_the_argument() -> None:
    """From Python, without a config: an `ArgumentError` (a ValueError) naming the method and the argument."""
    enc = build_encoder("gcn", 8, 8, 1)
    with pytest.raises(ArgumentError, match=r"^GRACE: tau must be > 0, got -1$"):
        GRACE(enc, 8, tau=-1)
    with pytest.raises(ValueError, match=r"^BGRL: momentum_start must be in \[0, 1\], got 2$"):
        BGRL(enc, 8, momentum_start=2)
    with pytest.raises(ValueError, match=r"^GraphCL: temperature must be > 0, got nan$"):
        GraphCL(enc, 8, temperature=float("nan"))


def test_bad_hyperparameter_exits_2_before_training(graphcl_cli, tmp_path: Path) -> None:
    run = tmp_path / "run"
    code, out, err = graphcl_cli("train", REPO / "configs/grace/cora.yaml", *FAST, "model.params.tau=-1",
                                 "--out", run)
    one_line_usage_error(code, err, "key 'model.params.tau' must be > 0, got -1")
    assert holds_no_run(run), "a config error must not leave a run behind (a second try would be refused)"


def test_init_a_momentum_method_cannot_take_exits_2_before_training(graphcl_cli, tmp_path: Path) -> None:
    run = tmp_path / "run"
    code, _, err = graphcl_cli("train", REPO / "configs/bgrl/cora.yaml", *FAST, "model.init=xavier_uniform",
                               "--out", run)
    one_line_usage_error(code, err, "key 'model.init' is 'xavier_uniform', but BGRL holds a momentum target")
    assert holds_no_run(run)


def test_unknown_dataset_exits_2_with_a_close_match(graphcl_cli, tmp_path: Path) -> None:
    code, _, err = graphcl_cli("train", CORA, "data.name=coraa", "--out", tmp_path / "run")
    one_line_usage_error(code, err, "key 'data.name'", "unknown dataset 'coraa'", "did you mean 'cora'?")
    assert not (tmp_path / "run").exists()


# -- user graphs: one line naming the field, shape or value ------------------------------------------------------
def graph(**changes) -> Data:
    data = make_synthetic_node_data(num_nodes=60, num_classes=2, train_per_class=5)
    for key, value in changes.items():
        data[key] = value
    return data


def _edges(*pairs) -> torch.Tensor:
    return torch.tensor(pairs, dtype=torch.long).t()


def _nan_at(row: int, col: int) -> torch.Tensor:
    x = graph().x.clone()
    x[row, col] = float("nan")
    return x


BAD_GRAPHS = {  # id: (fields to set, start of the expected message)
    "edge_index-out_of_range": ({"edge_index": _edges((0, 1), (1, 60))},
                                "data.edge_index holds node id 60, but data has 60 nodes"),
    "edge_index-negative": ({"edge_index": _edges((0, 1), (-1, 2))},
                            "data.edge_index holds node id -1; node ids must be in [0, 60)"),
    "edge_index-float": ({"edge_index": _edges((0, 1)).float()},
                         "data.edge_index has dtype torch.float32; it must be torch.long"),
    "edge_index-int32": ({"edge_index": _edges((0, 1)).int()},
                         "data.edge_index has dtype torch.int32; it must be torch.long"),
    "edge_index-transposed": ({"edge_index": _edges((0, 1), (1, 2), (2, 3)).t()},
                              "data.edge_index has shape [3, 2]; it must be [2, num_edges] "
                              "(transpose it: data.edge_index.t())"),
    "edge_index-three_rows": ({"edge_index": torch.zeros(3, 4, dtype=torch.long)},
                              "data.edge_index has shape [3, 4]; it must be [2, num_edges]"),
    "edge_index-1d": ({"edge_index": torch.arange(4)}, "data.edge_index has shape [4]; it must be [2, num_edges]"),
    "edge_index-missing": ({"edge_index": None}, "data has no edge_index; a graph without edges needs an empty one"),
    "x-nan": ({"x": _nan_at(3, 4)}, "data.x holds 1 non-finite value(s), NaN among them (first at index (3, 4))"),
    "x-inf": ({"x": torch.full((60, 32), float("inf"))}, "data.x holds 1920 non-finite value(s), Inf among them"),
    "x-missing": ({"x": None}, "data has no node features (data.x)"),
    "x-1d": ({"x": torch.ones(60)}, "data.x has shape [60]; node features must be 2-D [num_nodes, num_features]"),
    "x-integer": ({"x": torch.ones(60, 3, dtype=torch.long)},
                  "data.x has dtype torch.int64; node features must be floating point"),
    "x-no_columns": ({"x": torch.ones(60, 0)}, "data.x has shape [60, 0]: no feature columns"),
    "y-wrong_rows": ({"y": torch.zeros(59, dtype=torch.long)}, "data.y has shape [59]; it needs one row per node (60)"),
    "edge_weight-wrong_shape": ({"edge_weight": torch.ones(3)}, "data.edge_weight has shape [3]; with"),
}


@pytest.mark.parametrize("changes, message", list(BAD_GRAPHS.values()), ids=list(BAD_GRAPHS))
def test_bad_graphs_are_named_in_one_line(changes: dict, message: str) -> None:
    with pytest.raises(InvalidDataError) as info:
        validate_graph(graph(**changes), level="node")
    text = str(info.value)
    assert text.startswith(message), text
    assert "\n" not in text


def test_sparse_features_with_nan_are_caught() -> None:
    x = graph().x.clone()
    x[0, 0] = float("nan")
    with pytest.raises(InvalidDataError, match=r"^data\.x holds 1 non-finite value\(s\), NaN"):
        validate_graph(graph(x=x.to_sparse_csr()))


def test_pretrain_checks_the_graph_before_the_directory_becomes_a_run(tmp_path: Path) -> None:
    bad = graph(edge_index=_edges((0, 1), (2, 60)))
    with pytest.raises(InvalidDataError, match=r"^data\.edge_index holds node id 60, but data has 60 nodes$"):
        graphcl.pretrain(bad, "dgi", out=tmp_path / "run", **PRETRAIN)
    assert holds_no_run(tmp_path / "run")
    nan = graph(x=_nan_at(0, 0))
    with pytest.raises(InvalidDataError, match=r"^data\.x holds 1 non-finite"):
        graphcl.pretrain(nan, "grace", out=tmp_path / "run2", **PRETRAIN)


def test_graph_level_datasets_are_checked_graph_by_graph() -> None:
    good = [Data(x=torch.ones(3, 2), edge_index=_edges((0, 1)), y=torch.tensor([i % 2])) for i in range(4)]
    validate_dataset(good, level="graph")
    bad = [*good[:2], Data(x=torch.ones(3, 2), edge_index=_edges((0, 3)), y=torch.tensor([0]))]
    with pytest.raises(InvalidDataError, match=r"^dataset\[2\]\.edge_index holds node id 3, but dataset\[2\] has 3 "):
        validate_dataset(bad, level="graph")
    wide = [*good[:2], Data(x=torch.ones(3, 5), edge_index=_edges((0, 1)), y=torch.tensor([0]))]
    with pytest.raises(InvalidDataError, match=r"^dataset\[2\]\.x has 5 feature columns, other graphs have 2"):
        validate_dataset(wide, level="graph")
    with pytest.raises(InvalidDataError, match="node-level methods train on one graph, but the dataset holds 4"):
        validate_dataset(good, level="node")
    with pytest.raises(InvalidDataError, match="^expected a torch_geometric Data, a list of Data or a dataset"):
        validate_dataset(42, level="graph")


# -- degenerate but valid graphs train and evaluate --------------------------------------------------------------
def degenerate(kind: str) -> Data:
    data = graph()
    ei = data.edge_index
    if kind == "isolated_nodes":  # nodes 0-9 lose every edge
        data.edge_index = ei[:, (ei[0] >= 10) & (ei[1] >= 10)]
    elif kind == "self_loops":
        data.edge_index = torch.cat([ei, torch.arange(60).repeat(2, 1)], dim=1)
    elif kind == "duplicate_edges":
        data.edge_index = torch.cat([ei, ei[:, :50], ei[:, :50]], dim=1)
    elif kind == "no_edges":
        data.edge_index = torch.empty(2, 0, dtype=torch.long)
    return data


@pytest.mark.parametrize("kind", ["isolated_nodes", "self_loops", "duplicate_edges", "no_edges"])
@pytest.mark.parametrize("method", ["dgi", "grace"])
def test_degenerate_graphs_train_and_evaluate(method: str, kind: str, tmp_path: Path) -> None:
    data = degenerate(kind)
    run = graphcl.pretrain(data, method, out=tmp_path / "run", **PRETRAIN)
    assert 0 <= run.results["test"]["mean"] <= 100
    with torch.no_grad():
        z = run.encoder(data.x, data.edge_index)
    assert z.shape == (60, 8) and torch.isfinite(z).all()


@pytest.mark.parametrize("edges", ["none", "self_loop"])
@pytest.mark.parametrize("method", [DGI, GRACE])
def test_node_methods_train_on_a_single_node(method: type, edges: str) -> None:
    """One node: a finite loss, finite gradients and a `[1, D]` embedding. (A probe cannot split one node, which
    `pretrain` says before training: see test_empty_splits_are_named_before_training.)"""
    edge_index = torch.empty(2, 0, dtype=torch.long) if edges == "none" else _edges((0, 0))
    data = Data(x=torch.randn(1, 5), edge_index=edge_index)
    validate_graph(data)
    torch.manual_seed(0)
    model = method(build_encoder("gcn", 5, 8, 1), 8)
    loss = model(prepare_nodes(data, torch.device("cpu")))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert model.embed(data).shape == (1, 8)


def odd_graphs() -> list[Data]:
    """Single nodes, edgeless graphs, self-loops, duplicate edges and isolated nodes, two classes of 10."""
    gen = torch.Generator().manual_seed(0)
    graphs = []
    for i in range(20):
        n = (1, 1, 2, 5, 8)[i % 5]
        if n == 1:
            ei = torch.empty(2, 0, dtype=torch.long) if i % 2 else _edges((0, 0))
        elif i % 4 == 0:
            ei = torch.empty(2, 0, dtype=torch.long)
        else:  # random pairs: self-loops and duplicates included; nodes may stay isolated
            ei = torch.randint(0, n, (2, 2 * n), generator=gen)
        graphs.append(Data(x=torch.randn(n, 4, generator=gen), edge_index=ei, y=torch.tensor([i % 2])))
    return graphs


def test_graphcl_trains_and_evaluates_on_single_node_and_edgeless_graphs(tmp_path: Path) -> None:
    graphs = odd_graphs()
    validate_dataset(graphs, level="graph")
    run = graphcl.pretrain(graphs, "graphcl", out=tmp_path / "run", data={"batch_size": 8},
                           trainer={"epochs": 2, "progress": False, "device": "cpu", "diagnostics_every": 1},
                           model={"encoder": {"name": "gin", "hidden_channels": 8, "num_layers": 2}}, seeds=[0],
                           eval={"protocol": "svm_cv", "folds": 2, "c_grid": [1.0]})
    assert 0 <= run.results["test"]["mean"] <= 100


# -- empty datasets and splits, labels, batch sizes: named before training ----------------------------------------
@pytest.mark.parametrize("method", ["dgi", "graphcl"])
def test_empty_dataset_is_named(method: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidDataError, match="^the dataset is empty: it holds no graphs$"):
        graphcl.pretrain([], method, out=tmp_path / "run", **PRETRAIN)
    assert holds_no_run(tmp_path / "run")


def _no_train_nodes() -> Data:
    data = graph()
    data.train_mask = torch.zeros(60, dtype=torch.bool)
    return data


@pytest.mark.parametrize("data, overrides, message", [
    (_no_train_nodes(), {}, "data.train_mask selects no nodes: the train split is empty"),
    (graph(), {"eval": {"protocol": "random", "train_ratio": 0.001, "c_grid": [1.0]}},
     "the random train split of data's 60 nodes is empty (eval.train_ratio 0.001, eval.val_ratio 0.1)"),
    (Data(x=torch.randn(1, 4), edge_index=torch.empty(2, 0, dtype=torch.long), y=torch.tensor([0]),
          train_mask=torch.tensor([True]), val_mask=torch.tensor([False]), test_mask=torch.tensor([False])), {},
     "data.val_mask selects no nodes: the val split is empty"),
    (graph(y=torch.zeros(60, dtype=torch.long)), {}, "the train split of data holds a single class ([0])"),
], ids=["no_train_nodes", "random_split_too_small", "single_node", "single_class"])
def test_empty_splits_are_named_before_training(data: Data, overrides: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidDataError) as info:
        graphcl.pretrain(data, "dgi", out=tmp_path / "run", **{**PRETRAIN, **overrides})
    assert str(info.value).startswith(message), str(info.value)
    assert holds_no_run(tmp_path / "run")


def _without(data: Data, *keys: str) -> Data:
    for key in keys:
        del data[key]
    return data


@pytest.mark.parametrize("method, data, message", [
    ("dgi", _without(graph(), "y"),
     "data has no node labels (data.y), which the linear probe of eval.protocol 'public' needs"),
    ("grace", _without(graph(), "train_mask"),
     "eval.protocol 'public' needs data.train_mask, which data lacks; set eval.protocol=random for random splits"),
    ("graphcl", [_without(g, "y") if i == 3 else g for i, g in enumerate(odd_graphs())],
     "dataset[3] has no label (dataset[3].y), which the graph-classification probe needs"),
], ids=["node-no_y", "node-no_train_mask", "graph-no_y"])
def test_missing_labels_are_named_before_training(method: str, data, message: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidDataError) as info:
        graphcl.pretrain(data, method, out=tmp_path / "run", **PRETRAIN)
    assert str(info.value) == message
    assert holds_no_run(tmp_path / "run")


def test_graph_labels_need_two_classes_and_enough_graphs_per_fold() -> None:
    check_graph_labels(torch.tensor([0, 1] * 5), "svm_cv", 5, "toy")
    with pytest.raises(InvalidDataError, match=r"^dataset 'toy' has a single class \(\[1\]\); the svm_cv protocol "):
        check_graph_labels(torch.ones(20, dtype=torch.long), "svm_cv", 5, "toy")
    with pytest.raises(InvalidDataError, match=r"^eval\.folds is 10 but class 1 of dataset 'toy' has only 3 graphs"):
        check_graph_labels(torch.tensor([0] * 12 + [1] * 3), "svm_cv", 10, "toy")
    with pytest.raises(InvalidDataError, match=r"^dataset 'toy' has no graph labels \(y\)"):
        check_graph_labels(None, "svm_cv", 10, "toy")


def test_too_many_folds_for_a_class_exits_2(graphcl_cli, tmp_path: Path) -> None:
    code, _, err = graphcl_cli("train", MUTAG, *FAST, "eval.folds=100", "--out", tmp_path / "run")
    one_line_usage_error(code, err, "eval.folds is 100", "MUTAG", "has only 63 graphs")
    assert holds_no_run(tmp_path / "run")


def test_batch_size_larger_than_the_dataset_exits_2(graphcl_cli, tmp_path: Path) -> None:
    code, _, err = graphcl_cli("train", MUTAG, *FAST, "data.batch_size=500", "--out", tmp_path / "run")
    one_line_usage_error(code, err, "key 'data.batch_size' is 500 but dataset 'MUTAG' has only 188 graphs")
    assert holds_no_run(tmp_path / "run")


# -- dataset folders: a truncated raw file is bad input too ------------------------------------------------------
def test_truncated_raw_file_exits_2_naming_it(graphcl_cli, tmp_path: Path, shared_datasets: Path) -> None:
    root = tmp_path / "data"
    shutil.copytree(shared_datasets / "Cora", root / "Cora")
    raw = root / "Cora" / "raw" / "ind.cora.graph"
    raw.write_bytes(raw.read_bytes()[:1000])
    code, _, err = graphcl_cli("train", CORA, *FAST, f"data.root={root}", "--out", tmp_path / "run")
    one_line_usage_error(code, err, f"could not be read from {raw}")
    assert holds_no_run(tmp_path / "run")
