"""Every Python block of the docs runs: blocks that include an example (`--8<--` snippets of `examples/`, run by
tests/test_examples.py) show tested code literally; every other block is run here as a program."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def blocks() -> list[tuple[str, str]]:
    found = []
    for page in sorted((REPO / "docs").rglob("*.md")):
        for i, code in enumerate(BLOCK.findall(page.read_text())):
            found.append((f"{page.relative_to(REPO)}#{i + 1}", code))
    return found


def test_docs_have_python_blocks_and_snippets_point_at_examples() -> None:
    found = blocks()
    assert len(found) >= 5
    for name, code in found:
        for target in re.findall(r'--8<-- "([^":]+)', code):
            assert target.startswith("examples/") and (REPO / target).is_file(), (name, target)


RUNNABLE = [b for b in blocks() if "--8<--" not in b[1]]


@pytest.mark.parametrize("name,code", RUNNABLE, ids=[name for name, _ in RUNNABLE])
def test_docs_python_block_runs(name: str, code: str, tmp_path: Path, shared_datasets: Path, graphcl_env: dict) -> None:
    script = tmp_path / "block.py"
    script.write_text(code)
    env = {**graphcl_env, "GRAPHCL_DATA": str(shared_datasets), "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, f"{name} failed:\n{out.stderr[-2000:]}"
