"""The `graphcl` command: as a user runs it (`python -m graphcl ...` in a subprocess) where the process matters
(exit status through `python -m`, start-up time, a real training run), else through `graphcl.cli.main` in this
process (every `python -m graphcl` start costs seconds of torch / PyG imports on a 2-core machine).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

import graphcl
from graphcl.data import load_dataset

REPO = Path(__file__).resolve().parents[2]
CORA = REPO / "configs" / "dgi" / "cora.yaml"
HIDDEN = 64
SHORT = [
    "trainer.epochs=3", "seeds=[0]", "trainer.patience=null", f"model.encoder.hidden_channels={HIDDEN}",
    "trainer.checkpoint_every=1", "trainer.progress=false", "trainer.device=cpu", "eval.c_grid=[0.1,1.0]",
]
TIMEOUT = 120
RESULT_KEYS = {"method", "dataset", "protocol", "metric", "test", "val", "train_seconds", "seconds_per_epoch",
               "peak_memory_mb", "epochs"}
ARTIFACTS = ("config.yaml", "metrics.jsonl", "results.json", "checkpoint.pt", "encoder.pt", "env.json")


@pytest.fixture(scope="module", autouse=True)
def _one_thread(single_thread) -> None:
    """Before the module's shared runs: see `single_thread` in conftest.py."""


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def error_line(self) -> str:
        lines = self.stderr.strip().splitlines()
        return lines[-1] if lines else ""

    def describe(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def run_one(args: list, env: dict, cwd: Path) -> Result:
    """`python -m graphcl ARGS` in a subprocess; wall time includes the interpreter's start-up."""
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "graphcl", *map(str, args)], capture_output=True, text=True,
                              env=env, cwd=cwd, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"graphcl {' '.join(map(str, args))} did not finish in {TIMEOUT} s:\n{e.stderr}")
    return Result(proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - start)


# -- bad usage and bad configs: exit 2, one line on stderr, no traceback ---------------------------------
def _assert_usage_error(returncode: int, stderr: str, *needles: str) -> str:
    where = f"exit {returncode}, stderr:\n{stderr}"
    assert returncode == 2, where
    assert "Traceback" not in stderr, where
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected a one-line cause on stderr; {where}"
    assert lines[0].startswith("graphcl: error:"), where
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def test_unknown_key_subprocess_exits_2_with_suggestion(tmp_path: Path, graphcl_env: dict) -> None:
    """The whole path a user sees: `python -m graphcl` start-up, exit status, a single stderr line."""
    r = run_one(["train", str(CORA), "data.nmae=x", "--out", str(tmp_path / "run")], graphcl_env, tmp_path)
    _assert_usage_error(r.returncode, r.stderr, "unknown key 'data.nmae' (did you mean 'data.name'?)")
    assert r.stdout == ""
    assert not (tmp_path / "run").exists()


@pytest.fixture
def cli(graphcl_cli):
    return graphcl_cli


@pytest.mark.parametrize("override, needles", [
    ("data.nmae=x", ["unknown key 'data.nmae' (did you mean 'data.name'?)"]),
    ("trainer.epochs=ten", ["trainer.epochs", "int"]),
    ("model.encoder.hiden_channels=3", ["model.encoder.hiden_channels", "model.encoder.hidden_channels"]),
    ("optim.lr=-1", ["optim.lr"]),
    ("model.encoder.name=gcnn", ["model.encoder.name", "gcn"]),
])
def test_config_errors_exit_2_naming_the_key(cli, tmp_path: Path, override: str, needles: list[str]) -> None:
    code, out, err = cli("train", CORA, override, "--out", tmp_path / "run")
    _assert_usage_error(code, err, *needles)
    assert not (tmp_path / "run").exists()


def test_missing_config_file_names_path(cli, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-config.yaml"
    code, _, err = cli("train", missing, "--out", tmp_path / "run")
    _assert_usage_error(code, err, str(missing))


def test_malformed_yaml_names_file(cli, tmp_path: Path) -> None:
    bad = tmp_path / "malformed.yaml"
    bad.write_text("data:\n  name: [Cora\nmodel:\n  method: dgi\n")
    code, _, err = cli("train", bad, "--out", tmp_path / "run")
    line = _assert_usage_error(code, err, str(bad))
    assert "yaml" in line.lower()


def test_unknown_method_exits_2_and_suggests_dgi(cli, tmp_path: Path) -> None:
    code, _, err = cli("train", CORA, *SHORT, "model.method=dgii", "--out", tmp_path / "run")
    _assert_usage_error(code, err, "dgii", "did you mean 'dgi'")
    assert not (tmp_path / "run" / "config.yaml").exists()
    assert not (tmp_path / "runs").exists()


def test_resume_with_overrides_is_bad_usage(cli, tmp_path: Path) -> None:
    code, _, err = cli("train", CORA, "--resume", tmp_path / "run")
    _assert_usage_error(code, err, "--resume")


def test_resume_without_checkpoint_is_bad_usage(cli, tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    code, _, err = cli("train", "--resume", tmp_path / "run")
    _assert_usage_error(code, err, str(tmp_path / "run"))


def test_resume_appends_seeds_to_a_finished_run(cli, tmp_path: Path) -> None:
    """`--resume RUN seeds=[...]`: the run's seeds followed by more extend it; the finished seeds are not re-run,
    and the extended run equals one trained with all the seeds from the start."""
    run, fresh = tmp_path / "run", tmp_path / "fresh"
    assert cli("train", CORA, *SHORT, "--out", run)[0] == 0
    first = json.loads((run / "results.json").read_text())
    for bad, needles in (("seeds=[1,2]", ["key 'seeds' is [1, 2] but the run's seeds are [0]"]),
                         ("trainer.epochs=5", ["--resume", "seeds=[...]"]),
                         ("seeds=[0,x]", ["key 'seeds'"])):
        code, _, err = cli("train", "--resume", run, bad)
        _assert_usage_error(code, err, *needles)
        assert json.loads((run / "results.json").read_text()) == first  # a refused extension changes nothing
    code, _, err = cli("train", "--resume", run, "seeds=[0,1]")
    assert code == 0, err
    extended = json.loads((run / "results.json").read_text())
    assert extended["test"]["per_seed"][0] == first["test"]["per_seed"][0]
    assert yaml_seeds(run) == [0, 1]
    two = [a if a != "seeds=[0]" else "seeds=[0,1]" for a in SHORT]
    assert cli("train", CORA, *two, "--out", fresh)[0] == 0
    assert json.loads((fresh / "results.json").read_text())["test"] == extended["test"]


def yaml_seeds(run: Path) -> list:
    import yaml

    return yaml.safe_load((run / "config.yaml").read_text())["seeds"]


def test_list_names_methods_and_datasets(cli) -> None:
    code, out, _ = cli("list")
    assert code == 0
    assert "dgi" in out
    assert "cora" in out.lower()
    assert "configs/dgi/cora.yaml" in out


# -- a missing dataset is an immediate, clear error ------------------------------------------------------
def test_missing_dataset_fails_fast_naming_files(tmp_path: Path, graphcl_env: dict) -> None:
    empty = tmp_path / "empty-root"
    empty.mkdir()
    r = run_one(["train", str(CORA), *SHORT, f"data.root={empty}", "--out", str(tmp_path / "run")],
                graphcl_env, tmp_path)
    assert r.returncode != 0, r.describe()
    assert r.seconds < 5.0, f"missing dataset took {r.seconds:.1f} s (process start included) to report"
    line = r.error_line()
    assert line.startswith("graphcl: error:"), r.describe()
    assert "ind.cora.x" in line and "ind.cora.graph" in line, line
    assert str(empty) in line, line
    assert "Traceback" not in r.stderr
    assert not list(empty.iterdir()), "nothing may be written under the data root"


# -- a real (short) training run and what can be done with it --------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, graphcl_env: dict) -> tuple[Path, Result]:
    tmp = tmp_path_factory.mktemp("cli-train")
    run_dir = tmp / "run"
    r = run_one(["train", str(CORA), *SHORT, "--out", str(run_dir)], graphcl_env, tmp)
    assert r.returncode == 0, r.describe()
    return run_dir, r


def test_train_writes_every_artifact(trained: tuple[Path, Result]) -> None:
    run_dir, _ = trained
    for name in ARTIFACTS:
        assert (run_dir / name).is_file(), f"{name} missing from {sorted(p.name for p in run_dir.iterdir())}"
    assert not (run_dir / ".lock").exists(), "the lock must be released at the end of the run"
    env = json.loads((run_dir / "env.json").read_text())
    assert {"torch", "torch_geometric", "device"} <= set(env)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [(r["seed"], r["epoch"]) for r in rows] == [(0, 1), (0, 2), (0, 3)]
    config = (run_dir / "config.yaml").read_text()
    assert "hidden_channels: 64" in config and "epochs: 3" in config  # fully resolved, overrides applied


def test_results_json_has_design_keys(trained: tuple[Path, Result]) -> None:
    run_dir, _ = trained
    results = json.loads((run_dir / "results.json").read_text())
    assert RESULT_KEYS <= set(results), RESULT_KEYS - set(results)
    assert {"mean", "std", "per_seed"} <= set(results["test"])
    assert results["method"] == "dgi" and results["dataset"].lower() == "cora"
    assert results["protocol"] == "public" and results["metric"] == "accuracy"
    assert len(results["test"]["per_seed"]) == 1
    assert 0 < results["test"]["mean"] <= 100
    assert results["epochs"] == [3]
    assert results["train_seconds"] > 0 and results["seconds_per_epoch"] > 0 and results["peak_memory_mb"] > 0


def test_train_last_stdout_line_reports_test_accuracy(trained: tuple[Path, Result]) -> None:
    run_dir, r = trained
    mean = json.loads((run_dir / "results.json").read_text())["test"]["mean"]
    last = r.stdout.strip().splitlines()[-1]
    assert f"test accuracy {mean:.2f}" in last, last


def test_eval_reproduces_saved_test_mean(trained: tuple[Path, Result], cli) -> None:
    run_dir, _ = trained
    code, out, err = cli("eval", run_dir)
    assert code == 0, err
    mean = json.loads((run_dir / "results.json").read_text())["test"]["mean"]
    assert f"test accuracy {mean:.2f}" in out, out
    assert "identical" in out and "DIFFERENT" not in out, out


@pytest.fixture(scope="module")
def cora_reference(trained: tuple[Path, Result], shared_datasets: Path, _session_cache: Path) -> torch.Tensor:
    """`load_encoder(RUN)(x, edge_index)` on Cora, computed here with the plain PyG module."""
    run_dir, _ = trained
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRAPHCL_CACHE", str(_session_cache))
        data = load_dataset("cora", root=shared_datasets, normalize_features=True)[0]
    encoder = graphcl.load_encoder(run_dir)
    with torch.no_grad():
        return encoder(data.x, data.edge_index)


@pytest.mark.parametrize("suffix", ["pt", "npy"])
def test_embed_matches_load_encoder(suffix: str, trained: tuple[Path, Result], cli, tmp_path: Path,
                                    cora_reference: torch.Tensor) -> None:
    run_dir, _ = trained
    path = tmp_path / f"z.{suffix}"
    code, out, err = cli("embed", run_dir, "--out", path)
    assert code == 0, err
    assert str(path) in out
    z = torch.load(path) if suffix == "pt" else torch.from_numpy(np.load(path))
    assert tuple(z.shape) == (2708, HIDDEN)
    torch.testing.assert_close(z.float(), cora_reference, atol=1e-5, rtol=0)


def test_second_train_without_overwrite_refuses(trained: tuple[Path, Result], cli) -> None:
    run_dir, _ = trained
    before = {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()}
    code, _, err = cli("train", CORA, *SHORT, "--out", run_dir)
    _assert_usage_error(code, err, str(run_dir))
    assert {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()} == before, "the existing run was touched"


def test_train_with_overwrite_replaces_run(trained: tuple[Path, Result], cli, tmp_path: Path) -> None:
    run_dir, _ = trained
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    (copy / "metrics.jsonl").write_text('{"seed": 7, "epoch": 99, "loss": 1.0}\n')  # marks the old run
    code, out, err = cli("train", CORA, *SHORT, "model.encoder.hidden_channels=32", "--out", copy, "--overwrite")
    assert code == 0, err
    for name in ARTIFACTS:
        assert (copy / name).is_file()
    rows = [json.loads(line) for line in (copy / "metrics.jsonl").read_text().splitlines()]
    assert [(r["seed"], r["epoch"]) for r in rows] == [(0, 1), (0, 2), (0, 3)], "old metrics were kept"
    assert graphcl.load_encoder(copy)(torch.rand(4, 1433), torch.tensor([[0, 1], [1, 0]])).shape == (4, 32)
    mean = json.loads((copy / "results.json").read_text())["test"]["mean"]
    assert f"{mean:.2f}" in out.strip().splitlines()[-1]
