"""Run semantics: determinism, resume after SIGKILL, the NaN guard, read-only data roots, the run lock, learning.

Only the SIGKILL test needs real `graphcl train` processes; the rest runs `train_run` / `graphcl.cli.main` here.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

import graphcl
from graphcl.config import ConfigError, config_from_dict, load_config
from graphcl.data import load_dataset, make_synthetic_node_data
from graphcl.evaluate import evaluate_nodes
from graphcl.graph import build_encoder
from graphcl.graph.methods.dgi import DGI
from graphcl.train.build import build_method, encoder_spec, initialise
from graphcl.train.checkpoint import load_torch
from graphcl.train.rundir import RunDirError
from graphcl.train.run import train_run
from graphcl.train.tasks.node import embed_nodes, prepare_nodes
from graphcl.train.trainer import NonFiniteLossError

REPO = Path(__file__).resolve().parents[2]
CORA = REPO / "configs" / "dgi" / "cora.yaml"
TIMEOUT = 120
COMMON = ["trainer.patience=null", "trainer.progress=false", "trainer.device=cpu", "eval.c_grid=[0.1,1.0]"]
RESUME = ["trainer.epochs=40", "trainer.checkpoint_every=5", "seeds=[0,1]", "model.encoder.hidden_channels=16", *COMMON]


@pytest.fixture(scope="module", autouse=True)
def _one_thread(single_thread) -> None:
    """Before the module's shared runs: see `single_thread` in conftest.py."""


def encoder_states(run_dir: Path) -> list[dict]:
    return torch.load(run_dir / "encoder.pt", weights_only=False)["state_dicts"]


def assert_same_weights(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for sa, sb in zip(a, b):
        assert sa.keys() == sb.keys()
        for key in sa:
            assert torch.equal(sa[key], sb[key]), f"encoder weight {key!r} differs"


def metric_rows(path: Path) -> list[dict]:
    """The complete lines of a metrics.jsonl that may be being written."""
    rows = []
    try:
        text = path.read_text()
    except FileNotFoundError:
        return rows
    for line in text.splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return rows


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def synthetic_cfg(*overrides: str):
    return load_config(None, ["model.method=dgi", "data.name=synthetic", "model.encoder.hidden_channels=16",
                              "trainer.epochs=5", "trainer.checkpoint_every=1", "seeds=[0,1]", *COMMON, *overrides])


# -- determinism -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic") / "run"
    train_run(synthetic_cfg(), out, dataset=[make_synthetic_node_data()], log=lambda *_: None)
    return out


def test_same_seed_same_results_and_weights(synthetic_run: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    train_run(synthetic_cfg(), again, dataset=[make_synthetic_node_data()], log=lambda *_: None)
    assert results(again)["test"]["per_seed"] == results(synthetic_run)["test"]["per_seed"]
    assert results(again)["val"]["per_seed"] == results(synthetic_run)["val"]["per_seed"]
    assert_same_weights(encoder_states(again), encoder_states(synthetic_run))
    # ... and the seed matters: the two seeds of one run trained different weights
    s0, s1 = encoder_states(synthetic_run)
    assert any(not torch.equal(s0[k], s1[k]) for k in s0)


def test_pretrain_same_seed_is_deterministic(tmp_path: Path) -> None:
    data = make_synthetic_node_data(seed=3)
    kwargs = dict(trainer={"epochs": 4, "patience": None, "progress": False, "device": "cpu"},
                  model={"encoder": {"hidden_channels": 16}}, seeds=[5])
    a = graphcl.pretrain(data, "dgi", out=tmp_path / "a", **kwargs)
    b = graphcl.pretrain(data, "dgi", out=tmp_path / "b", **kwargs)
    assert a.results["test"]["per_seed"] == b.results["test"]["per_seed"]
    assert a.results["epochs"] == [4]
    assert_same_weights([a.encoder.state_dict()], [b.encoder.state_dict()])
    with torch.no_grad():
        assert torch.equal(a.encoder(data.x, data.edge_index), b.encoder(data.x, data.edge_index))


# -- resume after SIGKILL --------------------------------------------------------------------------------
def _popen(args: list, env: dict, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "graphcl", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)


def _kill_when(proc: subprocess.Popen, metrics: Path, ready: Callable[[list[dict]], bool]) -> None:
    """SIGKILL `proc` as soon as its metrics.jsonl satisfies `ready`."""
    deadline = time.monotonic() + TIMEOUT
    while not ready(metric_rows(metrics)):
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"graphcl exited ({proc.returncode}) before the kill point:\n{out}\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("kill point not reached in time")
        time.sleep(0.003)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL


def _after_kill(run_dir: Path, pid: int) -> dict:
    ckpt = load_torch(run_dir / "checkpoint.pt", "checkpoint")
    lock = run_dir / ".lock"
    return {
        "pid": pid,
        "lock": lock.read_text() if lock.exists() else None,
        "results_exists": (run_dir / "results.json").exists(),
        "completed": [s["seed"] for s in ckpt["completed"]],
        "current": None if ckpt["current"] is None else (ckpt["current"]["seed"], ckpt["current"]["epoch"]),
    }


def _reached(seed: int, epoch: int) -> Callable[[list[dict]], bool]:
    # epoch 5's checkpoint is written before epoch 6 starts, so epoch 7 logged means one exists
    return lambda rows: any(r.get("seed") == seed and r.get("epoch", 0) >= epoch for r in rows)


@pytest.fixture(scope="module")
def resume_chain(tmp_path_factory: pytest.TempPathFactory, graphcl_env: dict, shared_datasets: Path) -> dict:
    """train (SIGKILL during seed 0) -> train --resume (SIGKILL during seed 1) -> train --resume (finishes)."""
    tmp = tmp_path_factory.mktemp("resume")
    run_dir = tmp / "run"
    proc = _popen(["train", CORA, *RESUME, f"data.root={shared_datasets}", "--out", run_dir], graphcl_env, tmp)
    _kill_when(proc, run_dir / "metrics.jsonl", _reached(0, 7))
    first = _after_kill(run_dir, proc.pid)
    proc = _popen(["train", "--resume", run_dir], graphcl_env, tmp)
    _kill_when(proc, run_dir / "metrics.jsonl", _reached(1, 7))
    second = _after_kill(run_dir, proc.pid)
    final = subprocess.run([sys.executable, "-m", "graphcl", "train", "--resume", str(run_dir)],
                           capture_output=True, text=True, env=graphcl_env, cwd=tmp, timeout=TIMEOUT)
    return {"run_dir": run_dir, "first": first, "second": second, "final": final}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory, shared_datasets: Path, _session_cache: Path) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRAPHCL_CACHE", str(_session_cache))
        train_run(load_config(CORA, [*RESUME, f"data.root={shared_datasets}"]), out, log=lambda *_: None)
    return out


def test_kill_points_are_mid_run(resume_chain: dict) -> None:
    first, second = resume_chain["first"], resume_chain["second"]
    assert not first["results_exists"] and not second["results_exists"]
    assert first["completed"] == [] and first["current"][0] == 0 and first["current"][1] >= 5, first
    assert second["completed"] == [0] and second["current"][0] == 1 and second["current"][1] >= 5, second


def test_resume_finishes_past_stale_lock(resume_chain: dict) -> None:
    for killed in (resume_chain["first"], resume_chain["second"]):
        assert killed["lock"] is not None and killed["lock"].strip() == str(killed["pid"]), (
            "a SIGKILLed run leaves its lock behind (that is what a stale lock is)")
    final = resume_chain["final"]
    assert final.returncode == 0, final.stderr
    assert "Traceback" not in final.stderr
    assert not (resume_chain["run_dir"] / ".lock").exists()


def test_resumed_run_equals_uninterrupted(resume_chain: dict, uninterrupted: Path) -> None:
    run_dir = resume_chain["run_dir"]
    assert resume_chain["final"].returncode == 0, resume_chain["final"].stderr
    got, want = results(run_dir), results(uninterrupted)
    assert got["test"]["per_seed"] == want["test"]["per_seed"]
    assert got["val"]["per_seed"] == want["val"]["per_seed"]
    assert got["epochs"] == want["epochs"] == [40, 40]
    assert_same_weights(encoder_states(run_dir), encoder_states(uninterrupted))


def test_resumed_metrics_have_one_line_per_epoch(resume_chain: dict, uninterrupted: Path) -> None:
    rows = metric_rows(resume_chain["run_dir"] / "metrics.jsonl")
    assert [(r["seed"], r["epoch"]) for r in rows] == [(s, e) for s in (0, 1) for e in range(1, 41)]
    # the losses themselves continue exactly where the killed process left off
    want = metric_rows(uninterrupted / "metrics.jsonl")
    assert [r["loss"] for r in rows] == [r["loss"] for r in want]


# -- non-finite loss -------------------------------------------------------------------------------------
NAN_RUN = ["trainer.epochs=5", "seeds=[0]", "model.encoder.hidden_channels=16", "trainer.checkpoint_every=1", *COMMON]


def _assert_checkpoint_usable(run_dir: Path, epoch: int) -> None:
    ckpt = load_torch(run_dir / "checkpoint.pt", "checkpoint")
    assert ckpt["current"]["epoch"] == epoch
    for key, value in ckpt["current"]["method"].items():
        assert torch.isfinite(value).all(), f"checkpointed {key} is not finite"
    cfg = config_from_dict(ckpt["config"])
    method = build_method(cfg, 1433)
    method.load_state_dict(ckpt["current"]["method"])


def test_diverging_run_exits_1_naming_epoch_and_step(graphcl_cli, tmp_path: Path) -> None:
    """lr=1e30: epoch 1 is fine, its update blows the weights up, epoch 2's loss is not finite."""
    run_dir = tmp_path / "run"
    code, _, err = graphcl_cli("train", CORA, *NAN_RUN, "optim.lr=1e30", "--out", run_dir)
    assert code == 1, err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("graphcl: error:"), err
    assert "epoch 2" in line and "step" in line, f"the error should name the epoch and step: {line!r}"
    assert not (run_dir / "results.json").exists()
    _assert_checkpoint_usable(run_dir, epoch=1)


def test_nan_loss_exits_1_naming_epoch_and_step(graphcl_cli, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    forward = DGI.forward

    def nan_on_third_epoch(self, batch):
        calls["n"] += 1
        loss = forward(self, batch)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(DGI, "forward", nan_on_third_epoch)
    run_dir = tmp_path / "run"
    code, _, err = graphcl_cli("train", CORA, *NAN_RUN, "--out", run_dir)
    assert code == 1, err
    line = err.strip().splitlines()[-1]
    assert "epoch 3" in line and "step 1" in line and "nan" in line.lower(), line
    _assert_checkpoint_usable(run_dir, epoch=2)
    assert not (run_dir / ".lock").exists(), "a failed run must release its lock"


def test_nan_loss_raises_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DGI, "forward", lambda self, batch: self.discriminator.weight.sum() * float("inf"))
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, step 1"):
        train_run(synthetic_cfg(), tmp_path / "run", dataset=[make_synthetic_node_data()], log=lambda *_: None)


# -- read-only data roots --------------------------------------------------------------------------------
def _tree(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def test_read_only_data_root(tmp_path: Path, shared_datasets: Path) -> None:
    root = tmp_path / "ro"
    shutil.copytree(shared_datasets / "Cora", root / "Cora")
    paths = [root, *root.rglob("*")]
    for p in paths:
        p.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH | (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
                                                               if p.is_dir() else 0))
    before = _tree(root)
    try:
        cfg = load_config(CORA, ["trainer.epochs=2", "seeds=[0]", "model.encoder.hidden_channels=16", *COMMON,
                                 f"data.root={root}"])
        out = tmp_path / "run"
        res = train_run(cfg, out, log=lambda *_: None)
        assert res["dataset"].lower() == "cora" and len(res["test"]["per_seed"]) == 1
        assert (out / "encoder.pt").is_file()
        assert _tree(root) == before, "files were created or changed under the read-only data root"
    finally:
        for p in paths:
            p.chmod(0o755 if p.is_dir() else 0o644)


# -- the run lock ----------------------------------------------------------------------------------------
def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_stale_lock_does_not_block_resume(synthetic_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(synthetic_run, run_dir)
    (run_dir / ".lock").write_text(str(_dead_pid()))
    res = train_run(None, run_dir, mode="resume", dataset=[make_synthetic_node_data()], log=lambda *_: None)
    assert res["test"]["per_seed"] == results(synthetic_run)["test"]["per_seed"]
    assert not (run_dir / ".lock").exists()


def test_live_lock_blocks_train(graphcl_cli, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    holder = os.getppid()  # alive for as long as this test runs, and not this process
    (run_dir / ".lock").write_text(str(holder))
    code, _, err = graphcl_cli("train", CORA, *NAN_RUN, "--out", run_dir)
    assert code != 0
    assert "in use" in err and str(holder) in err, err
    assert (run_dir / ".lock").read_text() == str(holder), "another process's lock must be left alone"
    assert not (run_dir / "checkpoint.pt").exists()


def test_live_lock_blocks_resume(synthetic_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(synthetic_run, run_dir)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run_dir / ".lock").write_text(str(sleeper.pid))
        with pytest.raises(RunDirError, match="in use"):
            train_run(None, run_dir, mode="resume", dataset=[make_synthetic_node_data()], log=lambda *_: None)
    finally:
        sleeper.kill()
        sleeper.wait()


# -- it learns -------------------------------------------------------------------------------------------
def test_dgi_learns_on_cora(tmp_path: Path, shared_datasets: Path) -> None:
    cfg = load_config(CORA, ["trainer.epochs=30", "seeds=[0]", "model.encoder.hidden_channels=128",
                             "trainer.checkpoint_every=100", *COMMON, f"data.root={shared_datasets}"])
    out = tmp_path / "run"
    train_run(cfg, out, log=lambda *_: None)
    rows = metric_rows(out / "metrics.jsonl")
    assert len(rows) == 30
    assert rows[-1]["loss"] < rows[0]["loss"] - 0.02, (rows[0]["loss"], rows[-1]["loss"])

    data = load_dataset("cora", root=shared_datasets, normalize_features=True)[0]
    batch = prepare_nodes(data, torch.device("cpu"))

    def probe(encoder: torch.nn.Module) -> float:
        return evaluate_nodes(embed_nodes(encoder, batch), data, protocol="public", seed=0,
                              c_grid=list(cfg.eval.c_grid), max_iter=cfg.eval.max_iter)["test"]

    trained = probe(graphcl.load_encoder(out))
    assert trained == pytest.approx(results(out)["test"]["per_seed"][0] / 100, abs=1e-9)
    random = []
    for seed in range(3):
        torch.manual_seed(seed)
        random.append(probe(build_encoder(**encoder_spec(cfg, data.num_features))))
    assert trained > np.mean(random) + 0.08, f"DGI {trained:.3f} vs random encoders {random}"


@pytest.mark.parametrize("encoder", ["sage", "gat", "gin"])
def test_every_encoder_trains_on_cora(encoder: str, tmp_path: Path, shared_datasets: Path) -> None:
    """The schema offers gcn|sage|gat|gin; each must run full-batch on Cora (sparse bag-of-words features)."""
    cfg = load_config(CORA, [f"model.encoder.name={encoder}", "trainer.epochs=2", "seeds=[0]",
                             "model.encoder.hidden_channels=16", *COMMON, f"data.root={shared_datasets}"])
    res = train_run(cfg, tmp_path / "run", log=lambda *_: None)
    assert 0 < res["test"]["mean"] <= 100
    assert type(graphcl.load_encoder(tmp_path / "run")).__name__ == "Sequential"


def test_pretrain_on_a_networkx_graph(tmp_path: Path) -> None:
    """A networkx graph with numeric node attributes `x` and `y` is converted with PyG's `from_networkx`."""
    import networkx as nx

    graph = nx.karate_club_graph()
    for v in graph.nodes:
        graph.nodes[v]["x"] = [float(graph.degree[v]), 1.0]
        graph.nodes[v]["y"] = int(graph.nodes[v].pop("club") == "Officer")
    run = graphcl.pretrain(graph, method="dgi", out=tmp_path / "run", trainer={"epochs": 3, "progress": False},
                           model={"encoder": {"hidden_channels": 16}},
                           eval={"protocol": "random", "train_ratio": 0.3, "val_ratio": 0.3}, seeds=[0])
    assert 0 <= run.results["test"]["mean"] <= 100 and run.results["dataset"] == "custom"
    assert run.encoder(torch.ones(34, 2), torch.tensor([[0, 1], [1, 0]])).shape == (34, 16)


def test_xavier_uniform_init_reaches_every_linear_layer() -> None:
    """`model.init: xavier_uniform` (InfoGraph's and GraphCL's init_emb): every Linear of the method, PyTorch's
    (heads) and PyG's (GIN's MLPs), Glorot-uniform with zero bias; batch norms and the default are untouched."""
    cfg = load_config(str(REPO / "configs/infograph/mutag.yaml"), ["model.init=xavier_uniform"])
    torch.manual_seed(0)
    method = build_method(cfg, 7)
    before = {k: v.clone() for k, v in method.state_dict().items()}
    assert initialise(method, "default") is method
    assert all(torch.equal(v, method.state_dict()[k]) for k, v in before.items())
    initialise(method, "xavier_uniform")
    linears = [m for m in method.modules() if hasattr(m, "weight") and m.weight is not None and m.weight.dim() == 2]
    assert len(linears) >= 8 and {type(m).__module__.split(".")[0] for m in linears} == {"torch", "torch_geometric"}
    for m in linears:
        fan_out, fan_in = m.weight.shape
        bound = (6 / (fan_in + fan_out)) ** 0.5
        assert m.weight.abs().max() <= bound and m.weight.abs().max() > 0.8 * bound
        assert m.bias is None or not m.bias.any()
    norms = [k for k in before if "norms" in k and k.endswith("weight")]
    assert norms and all(torch.equal(before[k], method.state_dict()[k]) for k in norms)


def test_xavier_uniform_init_is_refused_where_a_momentum_target_was_copied() -> None:
    cfg = load_config(str(REPO / "configs/bgrl/cora.yaml"), ["model.init=xavier_uniform"])
    with pytest.raises(ConfigError, match="key 'model.init' is 'xavier_uniform', but BGRL holds a momentum target"):
        initialise(build_method(cfg, 16), cfg.model.init)


def test_dgl_init_starts_gat_convs_as_dgl_does() -> None:
    """`model.init: dgl` (GraphMAE's published DGL runs): every GAT conv's weight and attention vectors
    Xavier-normal with ReLU gain, zero bias; the other layers (encoder-to-decoder map, mask token) untouched."""
    from torch_geometric.nn import GATConv

    cfg = load_config(str(REPO / "configs/graphmae/cora.yaml"), ["model.init=dgl", "model.encoder.hidden_channels=256"])
    torch.manual_seed(0)
    method = build_method(cfg, 500)
    before = {k: v.clone() for k, v in method.state_dict().items()}
    initialise(method, "dgl")
    convs = [m for m in method.modules() if isinstance(m, GATConv)]
    assert len(convs) == 3  # two encoder layers and the decoder
    for conv in convs:
        w = conv.lin.weight
        fan_out, fan_in = w.shape
        expected = 2 ** 0.5 * (2 / (fan_in + fan_out)) ** 0.5
        assert abs(w.std().item() / expected - 1) < 0.05
        assert not conv.bias.any() and conv.att_src.abs().sum() > 0
    after = method.state_dict()
    for key in ("encoder_to_decoder.weight", "mask_token"):
        assert torch.equal(before[key], after[key])
