"""Shared fixtures: the offline datasets and a per-session cache, so tests never write to ~/.cache."""
import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The read-only raw datasets: `$GRAPHCL_DATA`, else `<repo>/../shared/datasets`. Never write here."""
    path = Path(os.environ.get("GRAPHCL_DATA") or Path(__file__).resolve().parents[2] / "shared" / "datasets")
    if not path.is_dir():  # fail, never skip: CI always has the data
        pytest.fail(f"shared datasets not found at {path}; set GRAPHCL_DATA to the datasets folder")
    return path


@pytest.fixture(scope="session")
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("graphcl-cache")


@pytest.fixture(autouse=True)
def graphcl_cache(_session_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`GRAPHCL_CACHE` points at one tmp dir per session: processed files are reused across tests."""
    monkeypatch.setenv("GRAPHCL_CACHE", str(_session_cache))
    return _session_cache


@pytest.fixture(scope="session")
def graphcl_env(shared_datasets: Path, _session_cache: Path) -> dict:
    """Environment for `python -m graphcl` subprocesses: the shared datasets, the session cache, no debug
    tracebacks. Usable from module-scoped fixtures (the autouse `graphcl_cache` is per test)."""
    env = dict(os.environ)
    env.update(GRAPHCL_DATA=str(shared_datasets), GRAPHCL_CACHE=str(_session_cache), PYTHONUNBUFFERED="1",
               OMP_NUM_THREADS="1")  # as `single_thread` below, so in- and out-of-process runs compare exactly
    env.pop("GRAPHCL_DEBUG", None)
    return env


@pytest.fixture(scope="module")
def single_thread():
    """One torch intra-op thread for a module. On a small CPU machine shared with other jobs, a contended
    thread pool makes the tiny ops of test-sized graphs 10-300x slower; no result depends on it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def graphcl_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, shared_datasets: Path,
                tmp_path: Path):
    """`graphcl ARGS` in this process: the `main` that `python -m graphcl` runs, without the seconds of
    interpreter start-up. Returns (exit status, stdout, stderr). Runs in `tmp_path`, so a default `runs/...`
    output never lands in the repo."""
    from graphcl.cli import main

    monkeypatch.setenv("GRAPHCL_DATA", str(shared_datasets))
    monkeypatch.delenv("GRAPHCL_DEBUG", raising=False)
    monkeypatch.chdir(tmp_path)

    def call(*args: object) -> tuple:
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return call
