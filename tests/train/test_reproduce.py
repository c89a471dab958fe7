"""`graphcl reproduce`'s table: baselines.json and results.json's extra figures beside each row (no training:
results.json / baselines.json are written by hand)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from graphcl.config import ConfigError, load_config, to_yaml
from graphcl.train.reproduce import (BASELINES, baseline_figures, merge_results, read_baselines, read_records,
                                     read_suite, records_path, render, run_suite, save_baselines, write_records)

REPO = Path(__file__).resolve().parents[2]
MSE = ["mse_24", "mse_48", "mse_168", "mse_336", "mse_720"]


def stats(mean: float, std: float = 0.0) -> dict:
    return {"mean": mean, "std": std, "per_seed": [mean - std, mean + std]}


def results(dataset: str, metric: str, test: float, **extra: float) -> dict:
    return {"method": "cpc", "dataset": dataset, "protocol": "p", "metric": metric, "seeds": [0, 1],
            "test": stats(test, 0.3), "val": stats(test), "extra": {k: stats(v, 0.2) for k, v in extra.items()},
            "train_seconds": 2.0, "seconds_per_epoch": 0.5, "peak_memory_mb": 1.0, "epochs": [1, 1],
            "device": "cpu"}


def test_rows_show_extra_figures_and_baselines() -> None:
    fsdd = results("FSDD", "accuracy", 96.1, speaker_test=99.6, few_shot=80.1, speaker_C=100.0)
    ett = results("ETTh1", "mse", 0.0912, **{k: 0.04 + i / 100 for i, k in enumerate(MSE)})
    baselines = {
        "FSDD": {"random init": {"metric": "accuracy", "test": 50.04, "speaker_test": 60.0, "few_shot": 30.0},
                 "MFCC + logistic regression": {"metric": "accuracy", "test": 90.0, "speaker_test": 95.0}},
        "ETTh1": {"ridge on raw window": {"metric": "mse", "test": 0.1, "window": 96.0,
                                          **{k: 0.05 + i / 100 for i, k in enumerate(MSE)}}},
    }
    rows = [({"show": {"speaker": "speaker_test", "10-shot": "few_shot"}}, fsdd),
            ({"show": {"MSE 24/48/168/336/720": MSE}, "source": "TS2Vec"}, ett),
            ({"show": {"MSE 24/48/168/336/720": MSE}}, {"method": "cpc", "dataset": "etth1"})]  # not run yet
    lines = render("sequences", rows, baselines=baselines).splitlines()
    assert lines[4] == ("| method | dataset | ours | seeds | other figures (ours) | protocol | published | "
                        "baselines (same protocol) | source | s/epoch | device |")
    assert lines[6] == ("| cpc | FSDD | 96.10 ± 0.30 | 2 | speaker 99.6 ± 0.2 · 10-shot 80.1 ± 0.2 | p (accuracy) | — | "
                        "random init 50.0 (speaker 60.0, 10-shot 30.0) · "
                        "MFCC + logistic regression 90.0 (speaker 95.0, 10-shot —) | | 0.5000 | cpu |")
    assert lines[7] == ("| cpc | ETTh1 | 0.091 ± 0.300 | 2 | MSE 24/48/168/336/720: 0.040 / 0.050 / 0.060 / 0.070 / "
                        "0.080 | p (mse) | — | ridge on raw window 0.100 (MSE 24/48/168/336/720: 0.050 / 0.060 / "
                        "0.070 / 0.080 / 0.090) | TS2Vec | 0.5000 | cpu |")
    # a row not run yet has the config's dataset name ("etth1"): its baselines are listed all the same
    assert lines[8].startswith("| cpc | etth1 | not run yet | | | | — | ridge on raw window 0.100 (MSE")


def test_suites_without_show_or_baselines_keep_their_columns() -> None:
    row = results("MUTAG", "accuracy", 86.8)
    table = render("tu", [({"published": {"mean": 86.8}, "source": "GraphCL paper"}, row)])
    assert "| method | dataset | ours | seeds | protocol | published | source | s/epoch | device |" in table
    assert "| cpc | MUTAG | 86.80 ± 0.30 | 2 | p (accuracy) | 86.8 | GraphCL paper | 0.5000 | cpu |" in table
    assert "baselines" not in table.lower() and "other figures" not in table
    # baselines of other datasets only: the column is there, the row has none
    with_other = render("tu", [({}, row)], baselines={"PROTEINS": {"raw": {"test": 70.0}}})
    assert "| p (accuracy) | — | — | | 0.5000 |" in with_other


def test_save_baselines_merges_per_dataset_and_label(tmp_path) -> None:
    root = tmp_path / "runs" / "vision"
    save_baselines(root, "Fashion-MNIST", {"raw pixels": {"metric": "accuracy", "test": 84.1}})
    save_baselines(root, "MNIST", {"raw pixels": {"metric": "accuracy", "test": 92.0}})
    path = save_baselines(root, "Fashion-MNIST", {"random backbone": {"metric": "accuracy", "test": 78.2},
                                                  "raw pixels": {"metric": "accuracy", "test": 84.3}})
    assert path == root / BASELINES
    assert json.loads(path.read_text()) == read_baselines(root) == {
        "Fashion-MNIST": {"raw pixels": {"metric": "accuracy", "test": 84.3},
                          "random backbone": {"metric": "accuracy", "test": 78.2}},
        "MNIST": {"raw pixels": {"metric": "accuracy", "test": 92.0}}}
    assert not list(root.glob(".*.tmp"))  # written through atomic_write, no temporary left
    assert read_baselines(tmp_path / "nowhere") == {}


def test_baseline_figures_are_in_results_json_units() -> None:
    seeds = [{"protocol": "fsdd_linear", "metric": "accuracy", "test": 0.9, "speaker_test": 0.5, "C": "inf",
              "cv": False},
             {"protocol": "fsdd_linear", "metric": "accuracy", "test": 0.8, "speaker_test": 0.7, "C": 1.0,
              "cv": True}]
    assert baseline_figures(seeds) == pytest.approx({"metric": "accuracy", "seeds": 2, "test": 85.0,
                                                     "speaker_test": 60.0})
    ett = baseline_figures([{"metric": "mse", "test": 0.1, "mse_24": 0.05, "window": 96}])
    assert ett == {"metric": "mse", "seeds": 1, "test": 0.1, "mse_24": 0.05, "window": 96.0}


@pytest.mark.parametrize("text", ["{not json", '{"FSDD": {"random init": {"speaker_test": 60.0}}}',
                                  '{"FSDD": ["random init", 50.0]}', '[1, 2]'])
def test_malformed_baselines_file_is_a_one_line_config_error(tmp_path, text) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"name: mini\nruns:\n  - config: {REPO}/configs/cpc/fsdd.yaml\n")
    (tmp_path / "runs" / "mini").mkdir(parents=True)
    (tmp_path / "runs" / "mini" / BASELINES).write_text(text)
    # before any run starts (nothing is trained: the error comes first)
    with pytest.raises(ConfigError, match="malformed baselines file") as e:
        run_suite(suite, tmp_path / "runs", output=str(tmp_path / "results.md"), log=lambda *_: None)
    assert str(tmp_path / "runs" / "mini" / BASELINES) in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "runs" / "mini" / "cpc-fsdd").exists()
    with pytest.raises(ConfigError, match="malformed baselines file"):  # and when saving into it
        save_baselines(tmp_path / "runs" / "mini", "FSDD", {"random init": {"test": 1.0}})


def test_show_must_name_extra_keys(tmp_path) -> None:
    suite = tmp_path / "suite.yaml"
    for show in ("[speaker_test]", "{speaker: 3}", "{mse: []}"):
        suite.write_text(f"name: mini\nruns:\n  - config: configs/cpc/fsdd.yaml\n    show: {show}\n")
        with pytest.raises(ConfigError, match=r"runs\[0\]\.show must map labels"):
            read_suite(suite)


def _finished_fsdd(root: Path) -> Path:
    """A finished cpc-fsdd run under `root/mini` and the one-entry suite file that lists it."""
    config = REPO / "configs" / "cpc" / "fsdd.yaml"
    run_dir = root / "runs" / "mini" / "cpc-fsdd"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(to_yaml(load_config(config)))
    (run_dir / "results.json").write_text(json.dumps(results("FSDD", "accuracy", 96.1, speaker_test=99.6)))
    suite = root / "suite.yaml"
    suite.write_text(f"name: mini\nruns:\n  - config: {config}\n    show: {{speaker: speaker_test}}\n")
    return suite


def test_run_suite_prints_baselines_beside_a_finished_run(tmp_path) -> None:
    """A finished run (results.json + its config.yaml) is reused and its row gets the saved baselines."""
    suite = _finished_fsdd(tmp_path)
    save_baselines(tmp_path / "runs" / "mini", "FSDD",
                   {"MFCC + logistic regression": {"metric": "accuracy", "test": 91.27, "speaker_test": 95.0}})
    page = tmp_path / "results.md"
    table = run_suite(suite, tmp_path / "runs", output=str(page), only=["none"], log=lambda *_: None)
    assert ("| 96.10 ± 0.30 | 2 | speaker 99.6 ± 0.2 | p (accuracy) | — | "
            "MFCC + logistic regression 91.3 (speaker 95.0) |") in table
    assert table in page.read_text()


def test_records_regenerate_the_table_without_run_directories(tmp_path) -> None:
    """The records beside the page hold each row's config, results and baselines: a fresh clone (no runs/)
    prints the same table, and a config that no longer matches its record is not reused."""
    suite = _finished_fsdd(tmp_path)
    save_baselines(tmp_path / "runs" / "mini", "FSDD", {"MFCC": {"metric": "accuracy", "test": 91.27}})
    page = tmp_path / "docs" / "results.md"
    first = run_suite(suite, tmp_path / "runs", output=str(page), only=["none"], log=lambda *_: None)
    records = read_records(records_path(page, "mini"))
    assert records["runs"]["cpc-fsdd"]["results"]["test"]["mean"] == 96.1
    assert records["baselines"]["FSDD"]["MFCC"]["test"] == 91.27
    again = run_suite(suite, tmp_path / "fresh-clone-runs", output=str(page), only=["none"], log=lambda *_: None)
    assert again == first and "| 96.10 ± 0.30 | 2 |" in again and "MFCC 91.3" in again
    changed = run_suite(suite, tmp_path / "fresh-clone-runs", overrides=["trainer.epochs=1"], output=str(page),
                        only=["none"], log=lambda *_: None)
    assert "| cpc | fsdd | not run yet |" in changed
    resources = run_suite(suite, tmp_path / "fresh-clone-runs", overrides=["eval.jobs=2", "trainer.progress=false"],
                          output=str(page), only=["none"], log=lambda *_: None)
    assert "| 96.10 ± 0.30 | 2 |" in resources  # settings that cannot change a figure still reuse the record


def test_transcribed_records_are_marked(tmp_path, monkeypatch) -> None:
    suite = _finished_fsdd(tmp_path)
    page = tmp_path / "results.md"
    run_suite(suite, tmp_path / "runs", output=str(page), only=["none"], log=lambda *_: None)
    path = records_path(page, "mini")
    records = read_records(path)
    records["runs"]["cpc-fsdd"]["results"] = {
        "method": "cpc", "dataset": "FSDD", "protocol": "p", "metric": "accuracy", "test": {"mean": 95.0, "std": 0.5,
        "seeds": 3}, "seconds_per_epoch": 1.0, "device": "cpu", "transcribed": "an earlier table"}
    write_records(path, records)
    (tmp_path / "runs" / "mini" / "cpc-fsdd" / "results.json").unlink()
    lines = []
    table = run_suite(suite, tmp_path / "runs", output=str(page), only=["none"], log=lines.append)
    assert "| 95.00 ± 0.50 † | 3 |" in table and "†: figures transcribed" in table
    assert any("an earlier table" in line for line in lines)
    trained = []  # --only cpc measures a transcribed entry again
    monkeypatch.setattr("graphcl.train.run.train_run", lambda cfg, run_dir, **kw: trained.append(run_dir) or
                        results("FSDD", "accuracy", 97.0, speaker_test=99.0))
    table = run_suite(suite, tmp_path / "runs", output=str(page), only=["cpc"], log=lambda *_: None)
    assert trained == [tmp_path / "runs" / "mini" / "cpc-fsdd"] and "| 97.00 ± 0.30 | 2 |" in table
    assert "transcribed" not in read_records(path)["runs"]["cpc-fsdd"]["results"]


def one_seed(seed: int, test: float, seconds_per_epoch: float = 2.0, peak: float = 5.0) -> dict:
    one = lambda v: {"mean": v, "std": 0.0, "per_seed": [v]}  # noqa: E731
    return {"method": "cpc", "dataset": "FSDD", "protocol": "p", "metric": "accuracy", "seeds": [seed],
            "test": one(test), "val": one(test - 1), "extra": {"speaker_test": one(90.0)}, "train_seconds": 8.0,
            "seconds_per_epoch": seconds_per_epoch, "peak_memory_mb": peak, "epochs": [4], "device": "cpu",
            "world_size": 1}


def test_merge_results_is_the_summary_of_all_seeds() -> None:
    first = results("FSDD", "accuracy", 96.0, speaker_test=99.0)  # seeds 0, 1: test 95.7 and 96.3
    merged = merge_results(first, one_seed(2, 99.0, seconds_per_epoch=2.0, peak=5.0))
    assert merged["seeds"] == [0, 1, 2] and merged["test"]["per_seed"] == [95.7, 96.3, 99.0]
    assert merged["test"]["mean"] == pytest.approx(97.0)
    assert merged["test"]["std"] == pytest.approx(((1.3 ** 2 + 0.7 ** 2 + 2.0 ** 2) / 3) ** 0.5)
    assert merged["extra"]["speaker_test"]["per_seed"] == [98.8, 99.2, 90.0]
    assert merged["seconds_per_epoch"] == pytest.approx((2 * 0.5 + 2.0) / 3)  # per seed, as summarise averages
    assert merged["train_seconds"] == 10.0 and merged["peak_memory_mb"] == 5.0 and merged["epochs"] == [1, 1, 4]


def _recorded_two_seeds(tmp_path: Path, record_changes: dict | None = None) -> tuple[Path, Path]:
    """A suite whose cpc-fsdd row is recorded for seeds [0, 1] (no run directory), and its page."""
    suite = _finished_fsdd(tmp_path)
    (tmp_path / "runs" / "mini" / "cpc-fsdd" / "config.yaml").write_text(
        to_yaml(load_config(REPO / "configs" / "cpc" / "fsdd.yaml", ["seeds=[0,1]"])))
    page = tmp_path / "docs" / "results.md"
    run_suite(suite, tmp_path / "runs", overrides=["seeds=[0,1]"], output=str(page), only=["none"],
              log=lambda *_: None)
    path = records_path(page, "mini")
    records = read_records(path)
    records["runs"]["cpc-fsdd"]["results"].update(record_changes or {})
    write_records(path, records)
    return suite, page


def test_more_seeds_train_only_the_new_ones_beside_the_record(tmp_path, monkeypatch) -> None:
    """A suite asking for more seeds than its record holds trains only the seeds that follow, and the row, the
    printed line and the record then cover all of them; a fresh clone reuses that record."""
    suite, page = _recorded_two_seeds(tmp_path)
    trained = []
    monkeypatch.setattr("graphcl.train.run.train_run", lambda cfg, run_dir, **kw: trained.append(list(cfg.seeds))
                        or one_seed(2, 99.0))
    lines = []
    table = run_suite(suite, tmp_path / "fresh", overrides=["seeds=[0,1,2]"], output=str(page), only=["cpc"],
                      log=lines.append)
    assert trained == [[2]]
    assert any("(seeds [2]; seeds [0, 1] from the record)" in line for line in lines)
    assert "| 97.07 ± 1.39 | 3 |" in table
    assert any("3 seeds): test accuracy 97.07 +- 1.39" in line for line in lines)
    record = read_records(records_path(page, "mini"))["runs"]["cpc-fsdd"]
    assert record["config"]["seeds"] == [0, 1, 2] and record["results"]["seeds"] == [0, 1, 2]
    again = run_suite(suite, tmp_path / "another-clone", overrides=["seeds=[0,1,2]"], output=str(page),
                      only=["cpc"], log=lambda *_: None)
    assert trained == [[2]] and again == table


def test_new_seeds_trained_beforehand_are_added_without_training(tmp_path, monkeypatch) -> None:
    """The new seeds may run on their own first (`graphcl train CONFIG seeds=[2] --out RUN_DIR`): any regeneration,
    `--only none` included, then adds the finished run to the record."""
    suite, page = _recorded_two_seeds(tmp_path)
    run_dir = tmp_path / "fresh" / "mini" / "cpc-fsdd"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(to_yaml(load_config(REPO / "configs" / "cpc" / "fsdd.yaml", ["seeds=[2]"])))
    (run_dir / "results.json").write_text(json.dumps(one_seed(2, 99.0)))
    monkeypatch.setattr("graphcl.train.run.train_run", lambda *a, **kw: pytest.fail("nothing should train"))
    table = run_suite(suite, tmp_path / "fresh", overrides=["seeds=[0,1,2]"], output=str(page), only=["none"],
                      log=lambda *_: None)
    assert "| 97.07 ± 1.39 | 3 |" in table
    assert read_records(records_path(page, "mini"))["runs"]["cpc-fsdd"]["results"]["seeds"] == [0, 1, 2]


@pytest.mark.parametrize("overrides, record_changes", [
    (["seeds=[1,2,3]"], {}),                           # not the record's seeds followed by more
    (["seeds=[0,1,2]", "trainer.epochs=1"], {}),       # another config
    (["seeds=[0,1,2]"], {"device": "cuda:0"}),          # timed on another kind of device
    (["seeds=[0,1,2]"], {"transcribed": "a table"}),    # no per-seed figures
])
def test_records_of_other_runs_are_not_extended(tmp_path, monkeypatch, overrides, record_changes) -> None:
    suite, page = _recorded_two_seeds(tmp_path, record_changes)
    trained = []
    monkeypatch.setattr("graphcl.train.run.train_run", lambda cfg, run_dir, **kw: trained.append(list(cfg.seeds))
                        or one_seed(2, 99.0))
    run_suite(suite, tmp_path / "fresh", overrides=overrides, output=str(page), only=["cpc"], log=lambda *_: None)
    assert trained == [[int(x) for x in overrides[0][7:-1].split(",")]]


@pytest.mark.parametrize("text", ["{", "[]", '{"runs": {"a": {"config": 1, "results": {}}}}'])
def test_malformed_records_file_is_a_one_line_config_error(tmp_path, text) -> None:
    suite = _finished_fsdd(tmp_path)
    page = tmp_path / "results.md"
    records_path(page, "mini").parent.mkdir()
    records_path(page, "mini").write_text(text)
    with pytest.raises(ConfigError, match="malformed records file") as e:
        run_suite(suite, tmp_path / "runs", output=str(page), only=["none"], log=lambda *_: None)
    assert str(records_path(page, "mini")) in str(e.value) and "\n" not in str(e.value)
    assert not page.exists()
