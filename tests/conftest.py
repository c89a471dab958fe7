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
