"""`graphcl plot`: PNGs of real short runs (graph level: GraphCL on MUTAG; node level: DGI on Cora), `--compare`,
and one-line errors for what is not a run. The CLI runs in this process (`graphcl_cli`), as in test_cli.py."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
QUICK = ["trainer.progress=false", "trainer.device=cpu", "eval.c_grid=[1.0]"]


def test_matplotlib_is_installed():
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        pytest.fail("graphcl plot needs matplotlib: pip install -e .[plot]")


@pytest.fixture(scope="module")
def runs(single_thread, tmp_path_factory: pytest.TempPathFactory, graphcl_env: dict) -> dict[str, Path]:
    """Two short real runs: GraphCL on MUTAG (2 epochs, 2 seeds) and DGI on Cora (3 epochs, 1 seed)."""
    from graphcl.config import load_config
    from graphcl.train.run import train_run

    root = tmp_path_factory.mktemp("plot-runs")
    specs = {
        "mutag": (REPO / "configs" / "graphcl" / "mutag.yaml",
                  ["trainer.epochs=2", "seeds=[0,1]", "eval.folds=3", *QUICK]),
        "cora": (REPO / "configs" / "dgi" / "cora.yaml",
                 ["trainer.epochs=3", "seeds=[0]", "model.encoder.hidden_channels=32", *QUICK]),
    }
    with pytest.MonkeyPatch.context() as mp:  # the shared datasets and the session cache, as the CLI tests use
        for key in ("GRAPHCL_DATA", "GRAPHCL_CACHE"):
            mp.setenv(key, graphcl_env[key])
        for name, (config, overrides) in specs.items():
            train_run(load_config(config, overrides), root / name, log=lambda *_: None)
    return {name: root / name for name in specs}


def assert_png(path: Path) -> None:
    assert path.is_file(), f"{path} was not written"
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 5000, f"{path} is not a non-empty PNG ({len(data)} bytes)"


def test_plot_graph_run(graphcl_cli, runs):
    code, out, err = graphcl_cli("plot", runs["mutag"])
    assert code == 0, err
    for name in ("curves.png", "tsne.png", "similarity.png"):
        assert_png(runs["mutag"] / name)
        assert f"wrote {runs['mutag'] / name}" in out


def test_plot_node_run_into_out_dir(graphcl_cli, runs, tmp_path):
    code, out, err = graphcl_cli("plot", runs["cora"], "--out", tmp_path / "figs", "--max-points", "300")
    assert code == 0, err
    for name in ("curves.png", "tsne.png", "similarity.png"):
        assert_png(tmp_path / "figs" / name)
    assert not list(runs["cora"].glob("*.png"))  # --out: nothing written into the run directory


def test_plot_compare(graphcl_cli, runs, tmp_path):
    code, out, err = graphcl_cli("plot", "--compare", runs["mutag"], runs["cora"], "--out", tmp_path)
    assert code == 0, err
    assert_png(tmp_path / "compare_loss.png")
    assert out.strip() == f"wrote {tmp_path / 'compare_loss.png'}"


@pytest.mark.parametrize("make", ["empty", "missing", "file"])
def test_not_a_run_is_a_one_line_usage_error(graphcl_cli, tmp_path, make):
    target = tmp_path / "x"
    if make == "empty":
        target.mkdir()
    elif make == "file":
        target.write_text("hello")
    code, out, err = graphcl_cli("plot", target)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("graphcl: error: ") and "is not a run directory" in err, err
    assert str(target) in err
    code, _, err = graphcl_cli("plot", "--compare", half_run(tmp_path), target)
    assert code == 2 and "is not a run directory" in err


def half_run(tmp_path: Path) -> Path:
    """A directory holding only a metrics file: still not a run (no config.yaml)."""
    path = tmp_path / "half"
    path.mkdir(exist_ok=True)
    (path / "metrics.jsonl").write_text('{"seed": 0, "epoch": 1, "loss": 1.0}\n')
    return path


def test_several_run_dirs_need_compare(graphcl_cli, tmp_path):
    code, _, err = graphcl_cli("plot", tmp_path, tmp_path)
    assert code == 2 and "--compare" in err


# -- the plotting functions on synthetic inputs (no training) --------------------------------------------------
def fake_run(path: Path, rows: list[dict]) -> Path:
    path.mkdir(parents=True)
    (path / "config.yaml").write_text("model: {method: dgi}\ndata: {name: Cora}\n")
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"seed": 0, "epo')
    return path


def test_curves_include_every_numeric_key(tmp_path):
    from graphcl.plot import plot_curves, read_metrics

    rows = [{"seed": s, "epoch": e, "loss": 1.0 / e, "seconds": 0.1, "note": "x", "flag": True,
             **({"effective_rank": 3.0 + e} if e % 2 == 0 else {})} for s in (0, 1) for e in range(1, 6)]
    run = fake_run(tmp_path / "run", rows)
    curves = read_metrics(run)  # the last, cut-short line is ignored
    assert sorted(curves) == [0, 1]
    assert sorted(curves[0]) == ["effective_rank", "loss", "seconds"]  # no strings, no booleans
    assert curves[1]["effective_rank"] == [(2, 5.0), (4, 7.0)]
    assert_png(plot_curves(run, tmp_path / "out"))


def test_curves_only_when_there_is_no_encoder(tmp_path):
    from graphcl.plot import plot_run

    run = fake_run(tmp_path / "run", [{"seed": 0, "epoch": 1, "loss": 1.0}])
    notes = []
    written = plot_run(run, log=notes.append)
    assert [p.name for p in written] == ["curves.png"] and "no encoder.pt" in notes[0]


def test_similarity_by_labels_and_subsampling(tmp_path):
    from graphcl.plot import _subsample, plot_similarity, plot_tsne

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=400)
    z = rng.normal(size=(400, 8)) + 3 * np.eye(8)[y]
    assert_png(plot_similarity(z, tmp_path / "sim.png", labels=y, title="synthetic"))
    assert_png(plot_tsne(z, y.astype(float), tmp_path / "tsne.png", max_points=100))
    keep = _subsample(5000, 2000)
    assert len(keep) == 2000 and len(np.unique(keep)) == 2000 and (np.diff(keep) > 0).all()
    assert len(_subsample(10, 2000)) == 10
    with pytest.raises(ValueError, match="z_view or labels"):
        plot_similarity(z, tmp_path / "none.png")


def test_run_on_own_data_needs_the_dataset(runs, tmp_path, shared_datasets):
    """A `graphcl.pretrain` run on a user's graph (data.name: custom) cannot reload its data: curves only, and a
    note naming `dataset=`; given the data, all three figures."""
    import shutil

    from graphcl.data import load_dataset
    from graphcl.plot import plot_run

    run = tmp_path / "custom"
    shutil.copytree(runs["cora"], run, ignore=shutil.ignore_patterns("*.png"))
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("name: Cora", "name: custom", 1))
    notes = []
    assert [p.name for p in plot_run(run, log=notes.append)] == ["curves.png"]
    assert "dataset=" in notes[0] and "'custom'" in notes[0]
    data = load_dataset("Cora", root=shared_datasets, normalize_features=True)[0]
    written = plot_run(run, out=tmp_path / "figs", dataset=[data], max_points=200)
    assert [p.name for p in written] == ["curves.png", "tsne.png", "similarity.png"]
    for path in written:
        assert_png(path)
