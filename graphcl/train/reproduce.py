"""`graphcl reproduce SUITE`: run every config of a suite over its seeds and write the results table.

A suite is a YAML file:

    name: planetoid
    output: docs/results.md          # the file holding the generated table (never edited by hand)
    runs:
      - config: configs/dgi/cora.yaml
        published: {mean: 82.3, std: 0.6}
        source: DGI paper (Velickovic et al., ICLR 2019), Table 2
        show: {speaker: speaker_test, "MSE 24/48": [mse_24, mse_48]}   # optional: results["extra"] figures

`show` maps a label to one key of results.json's "extra" (printed as mean ± std) or to a list of keys (means,
joined by " / "); the table then gets a column "other figures (ours)". When the suite's run root
(`<out>/<name>/`) holds a `baselines.json` ({dataset: {baseline label: {"metric", "test", other figures}}}, as
`benchmarks/vision_baselines.py` and `benchmarks/sequence_baselines.py` write it with `--save`), a column
"baselines (same protocol)" lists each baseline's test figure (and its `show` figures) beside the row.

Finished runs (a `results.json` whose `config.yaml` equals the config to run) are reused, so an
interrupted suite continues where it stopped. Several suites may share one output file: each owns the
section between its markers and rewrites only that.

Run directories hold weights and are not kept in git; the table's provenance is. Every regeneration writes
`records/<name>.json` beside the output file: each row's resolved config and results.json, and the baselines it
printed. A fresh clone (or another machine, e.g. a GPU run whose records are copied back) regenerates the table
from it and reruns only the entries whose config no longer matches its record; an entry that only asks for more
seeds than its record holds trains just those and adds them to the record.
"""
from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Callable, Mapping, Sequence

import yaml

from graphcl.config import ConfigError, config_from_dict, load_config, to_yaml, with_seeds
from graphcl.train.checkpoint import atomic_write


def read_suite(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"suite file not found: {path}")
    try:
        suite = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"malformed YAML in suite '{path}': {str(e).splitlines()[0]}") from None
    if not isinstance(suite, dict) or not isinstance(suite.get("runs"), list) or not suite["runs"]:
        raise ConfigError(f"suite '{path}' must be a mapping with a non-empty 'runs' list")
    for i, entry in enumerate(suite["runs"]):
        if not isinstance(entry, dict) or "config" not in entry:
            raise ConfigError(f"suite '{path}': runs[{i}] needs a 'config' key")
        unknown = set(entry) - {"config", "published", "source", "overrides", "show"}
        if unknown:
            raise ConfigError(f"suite '{path}': unknown key 'runs[{i}].{sorted(unknown)[0]}'")
        show = entry.get("show", {})
        if not isinstance(show, dict) or not all(
                isinstance(k, str) or (isinstance(k, list) and k and all(isinstance(x, str) for x in k))
                for k in show.values()):
            raise ConfigError(f"suite '{path}': runs[{i}].show must map labels to a key of results.json's "
                              "'extra' or to a list of such keys")
    return suite


# -- baselines.json: reference figures on the same protocol, beside the suite's rows ----------------
BASELINES = "baselines.json"


def read_baselines(root: str | os.PathLike) -> dict:
    """`root/baselines.json` as {dataset: {label: {"metric", "test", other figures}}}; {} when absent."""
    path = Path(root) / BASELINES
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"malformed baselines file '{path}': {str(e).splitlines()[0]}") from None
    if not (isinstance(data, dict) and all(
            isinstance(labels, dict) and all(isinstance(b, dict) and _number(b.get("test")) for b in labels.values())
            for labels in data.values())):
        raise ConfigError(f"malformed baselines file '{path}': expected {{dataset: {{label: {{\"test\": number, "
                          "...}}}}")
    return data


def save_baselines(root: str | os.PathLike, dataset: str, figures: Mapping[str, dict]) -> Path:
    """Merge `figures` ({label: `baseline_figures(...)`}) into `root/baselines.json` under `dataset` (its name in
    results.json), keeping the other datasets and labels; written atomically. Returns the file's path."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    data = read_baselines(root)
    data.setdefault(dataset, {}).update(figures)
    atomic_write(root / BASELINES, lambda f: f.write(json.dumps(data, indent=2) + "\n"), mode="w")
    return root / BASELINES


def baseline_figures(results: Sequence[dict]) -> dict:
    """A baseline's entry from its protocol results (one per seed, each with "metric"): the metric, the number of
    seeds and the mean over seeds of every figure, in results.json's units (accuracies in percent)."""
    from graphcl.train.run import shown

    keys = [k for k in results[0] if all(_number(r.get(k)) for r in results)]
    return {"metric": results[0]["metric"], "seeds": len(results),
            **{k: sum(shown(r, k) for r in results) / len(results) for k in keys}}


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _plain(dataset: str) -> str:
    """A dataset name without case and punctuation: "Fashion-MNIST" and "fashion_mnist" are one dataset."""
    return "".join(c for c in dataset.lower() if c.isalnum())


def run_suite(suite_path: str | os.PathLike, out_root: str | os.PathLike = "runs", overrides: Sequence[str] = (),
              output: str | None = None, only: Sequence[str] = (), log: Callable[[str], None] = print) -> str:
    """Run (or reuse) every entry; write and return the Markdown table.

    `only`: method names to run; other entries are reused when finished and listed as not run otherwise. An entry
    of a named method whose record was transcribed from an earlier table is run again."""
    from graphcl.train.run import result_line, train_run

    suite = read_suite(suite_path)
    name = suite.get("name", Path(suite_path).stem)
    target = Path(output or suite.get("output") or "docs/results.md")
    records = read_records(records_path(target, name))  # malformed files fail before any training
    baselines = {**records["baselines"], **read_baselines(Path(out_root) / name)}  # the newer per dataset
    rows, kept = [], {}
    for entry in suite["runs"]:
        cfg = load_config(entry["config"], list(entry.get("overrides", [])) + list(overrides))
        run_dir = Path(out_root) / name / f"{cfg.model.method}-{cfg.data.name}".lower()
        record = records["runs"].get(run_dir.name)
        recorded_cfg = _record_config(record)
        # a record of the config's first seeds: only the seeds that follow are trained, then added to it
        earlier = _recorded_first_seeds(record, recorded_cfg, cfg)
        todo = cfg if earlier is None else with_seeds(cfg, cfg.seeds[len(earlier["seeds"]):])
        results = _finished(run_dir, cfg) or _recorded(record, recorded_cfg, cfg)
        if results is None and earlier is not None and (more := _finished(run_dir, todo)) is not None:
            results = merge_results(earlier, more)  # the new seeds' run is finished: nothing to train
        if results is not None and "transcribed" in results and cfg.model.method in only:
            results = None  # named by --only: measure it again, per seed
        if results is None and only and cfg.model.method not in only:
            rows.append((entry, {"method": cfg.model.method, "dataset": cfg.data.name}))
            if run_dir.name in records["runs"]:  # a record of another config stays until its row is run
                kept[run_dir.name] = records["runs"][run_dir.name]
            continue
        if results is None:
            log(f"== {entry['config']} -> {run_dir}" + (
                "" if earlier is None else f" (seeds {list(todo.seeds)}; seeds {earlier['seeds']} from the record)"))
            mode = "overwrite" if run_dir.exists() else "new"
            if (run_dir / "checkpoint.pt").exists() and _same_config(run_dir, todo):
                mode = "resume"
            results = train_run(todo, run_dir, mode=mode, log=log)
            if earlier is not None:
                results = merge_results(earlier, results)
        log(result_line(results) if "val" in results else f"{run_dir.name}: {TRANSCRIBED} ({results['transcribed']})")
        rows.append((entry, results))
        kept[run_dir.name] = {"config": _comparable(cfg), "results": results}
    table = render(name, rows, overrides, baselines)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = with_section(target.read_text() if target.exists() else HEADER, name, table)
    write_records(records_path(target, name), {"runs": kept, "baselines": baselines})
    atomic_write(target, lambda f: f.write(text), mode="w")
    log(table)
    return table


# -- records/<suite>.json: what the table was generated from, kept in git ---------------------------
TRANSCRIBED = "figures transcribed from an earlier table; the run directory was not kept"


def records_path(output: str | os.PathLike, name: str) -> Path:
    """Where suite `name` keeps its records: `records/<name>.json` beside its output file."""
    return Path(output).parent / "records" / f"{name}.json"


def read_records(path: str | os.PathLike) -> dict:
    """{"runs": {run name: {"config", "results"}}, "baselines": {...}}; empty when the file is absent."""
    path = Path(path)
    if not path.is_file():
        return {"runs": {}, "baselines": {}}
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"malformed records file '{path}': {str(e).splitlines()[0]}") from None
    runs = data.get("runs") if isinstance(data, dict) else None
    if not (isinstance(runs, dict) and isinstance(data.get("baselines", {}), dict) and all(
            isinstance(r, dict) and isinstance(r.get("config"), dict) and isinstance(r.get("results"), dict)
            for r in runs.values())):
        raise ConfigError(f"malformed records file '{path}': expected {{\"runs\": {{name: {{\"config\": {{...}}, "
                          "\"results\": {...}}}, \"baselines\": {...}}")
    return {"runs": runs, "baselines": data.get("baselines", {})}


def write_records(path: str | os.PathLike, records: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: f.write(json.dumps(records, indent=1) + "\n"), mode="w")


def _comparable(cfg) -> dict:
    """A config as plain data without display and resource settings (the progress bar, the probe's processes),
    for equality between runs."""
    c = yaml.safe_load(to_yaml(cfg))
    c.get("trainer", {}).pop("progress", None)
    c.get("eval", {}).pop("jobs", None)
    return c


def _record_config(record: dict | None):
    """The record's config read through the current schema; None without a record or when it has a key this
    graphcl no longer knows (another run)."""
    if record is None:
        return None
    try:
        return config_from_dict(record["config"])
    except ConfigError:
        return None


def _recorded(record: dict | None, recorded_cfg, cfg) -> dict | None:
    """The record's results when its config (`recorded_cfg`, `_record_config`'s) equals `cfg`."""
    if recorded_cfg is None or _comparable(recorded_cfg) != _comparable(cfg):
        return None
    return record["results"]


def _recorded_first_seeds(record: dict | None, recorded_cfg, cfg) -> dict | None:
    """The record's results when its config (`recorded_cfg`) is `cfg` run on a prefix of `cfg.seeds`, measured on
    this kind of device (its seconds per epoch are averaged with the new seeds'); None otherwise."""
    from graphcl.core.distributed import world_size
    from graphcl.train.trainer import resolve_device

    if recorded_cfg is None or "transcribed" in record["results"]:
        return None
    results, seeds, n = record["results"], list(cfg.seeds), len(recorded_cfg.seeds)
    if not (0 < n < len(seeds) and list(recorded_cfg.seeds) == seeds[:n] == results.get("seeds")):
        return None
    if _comparable(with_seeds(recorded_cfg, seeds)) != _comparable(cfg):
        return None
    try:
        device = resolve_device(cfg.trainer.device).type
    except ValueError:  # no CUDA here: training reports it
        return None
    same_place = (str(results.get("device", "")).split(":")[0] == device
                  and results.get("world_size", 1) == world_size())
    return results if same_place else None


def merge_results(first: dict, more: dict) -> dict:
    """One results.json for the seeds of `first` followed by those of `more` (the same config and protocol):
    per-seed figures joined, means and stds over all seeds, times summed, seconds per epoch averaged per seed,
    the larger peak memory."""
    from graphcl.train.run import spread

    def joined(a: dict, b: dict) -> dict:
        return spread(list(a["per_seed"]) + list(b["per_seed"]))

    n, m = len(first["seeds"]), len(more["seeds"])
    return {**more,
            "seeds": list(first["seeds"]) + list(more["seeds"]),
            "test": joined(first["test"], more["test"]),
            "val": joined(first["val"], more["val"]),
            "extra": {k: joined(v, more["extra"][k]) for k, v in first.get("extra", {}).items()
                      if k in more.get("extra", {})},
            "train_seconds": first["train_seconds"] + more["train_seconds"],
            "seconds_per_epoch": (n * first["seconds_per_epoch"] + m * more["seconds_per_epoch"]) / (n + m),
            "peak_memory_mb": max(first["peak_memory_mb"], more["peak_memory_mb"]),
            "epochs": list(first["epochs"]) + list(more["epochs"])}


HEADER = ("# Results\n\nEvery table on this page is generated by `graphcl reproduce SUITE`, one section per suite; "
          "do not edit by hand.\n")


def with_section(text: str, name: str, table: str) -> str:
    """`text` with the section of suite `name` replaced by `table` (appended when the suite has none yet)."""
    begin, end = f"<!-- suite {name} -->", f"<!-- end suite {name} -->"
    block = f"{begin}\n{table}{end}\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        return head + block + rest.split(end, 1)[1].lstrip("\n")
    return text.rstrip("\n") + "\n\n" + block


def _same_config(run_dir: Path, cfg) -> bool:
    """The run dir's config equals `cfg` in everything but display settings (the progress bar). The saved config
    is read through the current schema, so keys added to graphcl since the run took their defaults in it."""
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        return False
    try:
        return _comparable(load_config(saved)) == _comparable(cfg)
    except ConfigError:  # a key this graphcl no longer knows: another run
        return False


def _finished(run_dir: Path, cfg) -> dict | None:
    import json

    results = run_dir / "results.json"
    if results.is_file() and _same_config(run_dir, cfg):
        return json.loads(results.read_text())
    return None


def _published(entry: dict) -> str:
    pub = entry.get("published")
    if pub is None:
        return "—"
    if isinstance(pub, dict):
        return f"{pub['mean']:.1f} ± {pub['std']:.1f}" if "std" in pub else f"{pub['mean']:.1f}"
    return str(pub)


ERRORS = ("mse", "mae")  # metrics shown as they are (lower is better); the others are percentages


def _num(x: float, metric: str | None, places: int = 1) -> str:
    """A figure as the tables print it: errors to 3 decimals, percentages to `places`."""
    return f"{x:.3f}" if metric in ERRORS else f"{x:.{places}f}"


def _figures(values: Mapping, show: Mapping, metric: str | None, sep: str = " · ") -> str:
    """The `show` figures of `values` (results["extra"], entries {"mean", "std", ...}, or a baseline's plain
    numbers): "speaker 99.6 ± 0.2 · MSE 24/48: 0.041 / 0.060"; a missing key prints "—"."""
    def one(key: str, spread: bool) -> str:
        v = values.get(key)
        if v is None:
            return "—"
        if isinstance(v, dict):
            return _num(v["mean"], metric) + (f" ± {_num(v['std'], metric)}" if spread else "")
        return _num(v, metric)

    return sep.join(f"{label} {one(keys, True)}" if isinstance(keys, str)
                    else f"{label}: " + " / ".join(one(k, False) for k in keys) for label, keys in show.items())


def _baselines(labels: Mapping[str, dict], show: Mapping) -> str:
    """"raw pixels 84.1 · random backbone 78.2", each with its `show` figures in parentheses."""
    return " · ".join(f"{label} {_num(b['test'], b.get('metric'))}"
                      + (f" ({_figures(b, show, b.get('metric'), ', ')})" if show else "")
                      for label, b in labels.items()) or "—"


def render(name: str, rows: list[tuple[dict, dict]], overrides: Sequence[str] = (),
           baselines: Mapping[str, dict] | None = None) -> str:
    """The suite's Markdown table; `baselines` is `read_baselines`' dict (a column when non-empty), and entries
    with `show` add a column of those results["extra"] figures."""
    # keyed by results.json's dataset name; a row not run yet has only the config's ("FSDD" / "fsdd")
    baselines = {_plain(k): v for k, v in (baselines or {}).items()}
    extras = any(entry.get("show") for entry, _ in rows)
    columns = ["method", "dataset", "ours", "seeds", *(["other figures (ours)"] if extras else []), "protocol",
               "published", *(["baselines (same protocol)"] if baselines else []), "source", "s/epoch", "device"]
    notes = (" Other figures (ours): further figures of the same protocol, same units." if extras else "") + (
        " Baselines: written by `benchmarks/*_baselines.py --save` (see the suite file), kept in"
        f" `records/{name}.json`." if baselines else "") + (
        f" †: {TRANSCRIBED} (per-seed figures, validation and memory are not known)."
        if any("transcribed" in r for _, r in rows) else "")
    lines = [
        f"## {name}",
        "",
        f"Generated by `graphcl reproduce configs/suites/{name}.yaml"
        + (" " + " ".join(overrides) if overrides else "") + f"` on {datetime.date.today().isoformat()};"
        " do not edit by hand. Ours: mean ± std (population) over pretraining seeds of the protocol's test"
        " figure (the test split, or the mean over svm_cv's test folds), never selected on test. s/epoch"
        " excludes evaluation." + notes,
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---:" if c in ("ours", "seeds", "published", "s/epoch") else "---" for c in columns) + "|",
    ]
    for entry, r in rows:
        ran, show, metric = "test" in r, entry.get("show", {}), r.get("metric")
        t = r.get("test", {})
        cells = {
            "method": r["method"], "dataset": r["dataset"],
            "ours": f"{_num(t['mean'], metric, 2)} ± {_num(t['std'], metric, 2)}"
                    + (" †" if "transcribed" in r else "") if ran else "not run yet",
            "seeds": (len(t["per_seed"]) if "per_seed" in t else t["seeds"]) if ran else "",
            "other figures (ours)": _figures(r.get("extra", {}), show, metric) if ran else "",
            "protocol": f"{r['protocol']} ({metric})" if ran else "",
            "published": _published(entry),
            "baselines (same protocol)": _baselines(baselines.get(_plain(r["dataset"]), {}), show),
            "source": entry.get("source", ""),
            "s/epoch": f"{r['seconds_per_epoch']:.4f}" if ran else "",
            "device": r.get("device", "") if ran else "",
        }
        lines.append("|" + "|".join(f" {cells[c]} " if cells[c] != "" else " " for c in columns) + "|")
    return "\n".join(lines) + "\n"
