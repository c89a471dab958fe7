"""docs/reliability.md is the table of tests/reliability.py, and every test that table names exists."""
from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from tests import reliability


def _found(test_id: str, collected: set[str]) -> bool:
    """`path::function[id]` exactly; `path::function` as any of its parametrizations."""
    if "[" in test_id:
        return test_id in collected
    return test_id in collected or any(c.startswith(test_id + "[") for c in collected)


def collected_ids(request: pytest.FixtureRequest, wanted: list[str]) -> set[str]:
    """Node ids pytest collects: this session's, and for the files it did not collect (a run of this file
    alone, `-k`), those of a `pytest --collect-only` of them."""
    collected = {item.nodeid for item in request.session.items}
    files = sorted({t.split("::")[0] for t in wanted if not _found(t, collected)})
    if files:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-o", "addopts=", "-q", "--collect-only",
                               "-p", "no:cacheprovider", *files], cwd=reliability.ROOT, capture_output=True,
                              text=True, timeout=300)
        collected |= {line.strip() for line in proc.stdout.splitlines() if "::" in line}
    return collected


def test_every_listed_test_exists(request: pytest.FixtureRequest) -> None:
    wanted = reliability.listed_ids()
    collected = collected_ids(request, wanted)
    missing = [t for t in wanted if not _found(t, collected)]
    assert not missing, f"tests/reliability.py names tests that pytest does not collect: {missing}"


def test_docs_page_is_the_rendered_table() -> None:
    assert reliability.DOC.is_file(), "docs/reliability.md is missing: run `python tests/reliability.py`"
    assert reliability.DOC.read_text(encoding="utf-8") == reliability.render(), (
        "docs/reliability.md differs from the table in tests/reliability.py: run `python tests/reliability.py`")


@pytest.mark.parametrize("module", ["tests.test_validation", "tests.train.test_faults"])
def test_every_fault_and_validation_test_is_in_the_table(module: str) -> None:
    """The other direction: a new case in the fault or validation tests gets its row."""
    mod = __import__(module, fromlist=["_"])
    path = module.replace(".", "/") + ".py"
    listed = {t.split("[")[0] for t in reliability.listed_ids()}
    tests = [name for name, fn in inspect.getmembers(mod, inspect.isfunction)
             if name.startswith("test_") and fn.__module__ == mod.__name__]
    unlisted = [name for name in tests if f"{path}::{name}" not in listed]
    assert not unlisted, f"{path} has tests missing from tests/reliability.py: {unlisted}"


def test_the_suite_kills_training_at_10_points_or_more() -> None:
    from tests.train import test_faults

    forked = len(test_faults.KILL_POINTS) + 2  # + test_killed_twice_then_resumed_equals_uninterrupted
    cli = 2  # tests/train/test_run.py: resume_chain kills `graphcl train` during seed 0, then during seed 1
    assert forked + cli >= 10
    kinds = {point[0] for point in test_faults.KILL_POINTS.values()}
    assert {"step", "write"} <= kinds, "kills during an epoch and during a checkpoint write"
    assert any(p[:2] == ("write", "checkpoint.pt") for p in test_faults.KILL_POINTS.values())
