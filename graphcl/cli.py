"""The `graphcl` command: train | eval | embed | list (see DESIGN.md, "The command line").

`torchrun --nproc_per_node=N -m graphcl train CONFIG` trains with N processes (`graphcl.train.distributed`).

Exit status: 0 success, 2 bad usage or bad config, 1 any other failure, each with a one-line cause.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

# bad usage, config or input files (exit 2); anything else exits 1
USAGE_ERRORS = ("ConfigError", "RunDirError", "DatasetNotFoundError", "DatasetCorruptError", "CheckpointError",
                "InvalidDataError")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="graphcl", description="Self-supervised learning on graphs, images and sequences.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="pretrain and evaluate a config over its seeds")
    t.add_argument("config", nargs="?", help="YAML config, e.g. configs/dgi/cora.yaml (optional with --resume)")
    t.add_argument("overrides", nargs="*", help="dotted overrides, e.g. trainer.epochs=50 seeds=[0,1]")
    t.add_argument("--out", help="run directory (default runs/<method>-<dataset>)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its checkpoint")
    t.add_argument("--overwrite", action="store_true", help="replace a run already in --out")

    e = sub.add_parser("eval", help="re-run the evaluation protocol on a run's saved encoder")
    e.add_argument("run_dir")

    m = sub.add_parser("embed", help="write a run's embeddings to .pt or .npy")
    m.add_argument("run_dir")
    m.add_argument("--out", required=True, help="output file (.pt or .npy)")
    m.add_argument("--seed", type=int, default=None, help="which pretraining seed (default: the first)")

    r = sub.add_parser("reproduce", help="run a suite of configs over their seeds; write the results table")
    r.add_argument("suite", help="suite YAML, e.g. configs/suites/planetoid.yaml")
    r.add_argument("overrides", nargs="*", help="dotted overrides applied to every config")
    r.add_argument("--out", default="runs", help="root of the suite's run directories (default runs/)")
    r.add_argument("--table", help="where to write the Markdown table (default: the suite's 'output'); its "
                   "records go to records/<suite>.json beside it")
    r.add_argument("--only", default="", help="comma-separated methods to run (their transcribed rows too); others "
                   "are reused from run directories or records, or listed as not run")

    sub.add_parser("list", help="methods, encoders, datasets and configs")

    pl = sub.add_parser("plot", help="PNG plots of a run: curves, t-SNE, similarities (--compare: loss of several)")
    pl.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    pl.add_argument("--out", help="folder for the PNGs (default: the run directory; with --compare: .)")
    pl.add_argument("--compare", action="store_true", help="overlay the loss curves of several runs in one PNG")
    pl.add_argument("--max-points", type=int, default=2000, help="t-SNE / pair sample size (default 2000)")
    return p


def _train(args: argparse.Namespace) -> int:
    from graphcl.config import load_config

    if args.resume:
        seeds = _appended_seeds(args.config, args.overrides)
        if seeds == "refused":
            print("graphcl: error: --resume continues the run with its saved config.yaml; give no CONFIG, and no "
                  "override but seeds=[...] (the run's seeds followed by more, to extend a finished run)",
                  file=sys.stderr)
            return 2
        from graphcl.train.run import train_run

        results = train_run(None, args.resume, mode="resume", seeds=seeds)
    else:
        if not args.config:
            print("graphcl: error: train needs a CONFIG file (or --resume RUN_DIR)", file=sys.stderr)
            return 2
        cfg = load_config(args.config, args.overrides)
        _require_dataset(cfg)
        from graphcl.train.run import train_run  # heavy (torch, PyG): only once the inputs are checked

        out = args.out or f"runs/{cfg.model.method}-{cfg.data.name}".lower()
        results = train_run(cfg, out, mode="overwrite" if args.overwrite else "new")
    from graphcl.train.distributed import is_main
    from graphcl.train.run import result_line

    if is_main():  # under torchrun every rank returns rank 0's results; one prints them
        print(result_line(results))
    return 0


def _appended_seeds(config: Optional[str], overrides: list[str]):
    """The seeds of `--resume RUN_DIR seeds=[...]` (None without that override); "refused" for anything else
    (a CONFIG, given as the first positional argument, or another override)."""
    items = ([config] if config else []) + list(overrides)
    if not items:
        return None
    if len(items) != 1 or not items[0].startswith("seeds="):
        return "refused"
    from omegaconf import OmegaConf

    from graphcl.config import ConfigError

    try:
        seeds = OmegaConf.to_container(OmegaConf.from_dotlist(items)).get("seeds")
    except Exception:  # omegaconf's grammar errors
        seeds = None
    if not isinstance(seeds, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ConfigError(f"key 'seeds' must be a list of ints, got {items[0].partition('=')[2]!r}")
    return seeds


def _require_dataset(cfg) -> None:
    """Fail within a second on a missing dataset: before the heavy imports of the trainer. (Image and sequence
    datasets are checked by their tasks.)"""
    from graphcl.config import ConfigError
    from graphcl.data import get_spec, resolve_root
    from graphcl.data.registry import require_files
    from graphcl.train.registry import METHODS, is_graph_method

    if cfg.model.method.lower() in METHODS and not is_graph_method(cfg.model.method):
        return

    try:
        spec = get_spec(cfg.data.name, cfg.data.root)
    except ValueError as e:  # an unknown name, with the closest registered one
        raise ConfigError(f"key 'data.name': {e}") from None
    require_files(spec, resolve_root(cfg.data.root))


def _eval(args: argparse.Namespace) -> int:
    from graphcl.train.run import evaluate_run, test_line

    results = evaluate_run(args.run_dir)
    saved = Path(args.run_dir) / "results.json"
    t = results["test"]
    print(test_line(results))
    if saved.exists():
        before = json.loads(saved.read_text())["test"]["mean"]
        print(f"results.json: {before:.2f} ({'identical' if abs(before - t['mean']) < 1e-9 else 'DIFFERENT'})")
    return 0


def _embed(args: argparse.Namespace) -> int:
    from graphcl.train.run import embed_run

    z = embed_run(args.run_dir, args.out, seed=args.seed)
    print(f"wrote {tuple(z.shape)} embeddings to {args.out}")
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from graphcl.train.reproduce import run_suite

    only = [m.strip().lower() for m in args.only.split(",") if m.strip()]
    run_suite(args.suite, args.out, args.overrides, output=args.table, only=only)
    return 0


def _list(args: argparse.Namespace) -> int:
    from graphcl.data import list_datasets
    from graphcl.graph.encoders import ENCODERS
    from graphcl.train.registry import METHODS

    root = Path(__file__).resolve().parent.parent / "configs"
    configs = sorted(str(p.relative_to(root.parent)) for p in root.rglob("*.yaml")) if root.is_dir() else []
    print("methods:  " + ", ".join(METHODS))
    print("encoders: " + ", ".join(ENCODERS))
    print("datasets: " + ", ".join(list_datasets()))
    print("configs:  " + (", ".join(configs) or "(none found)"))
    return 0


def _plot(args: argparse.Namespace) -> int:
    from graphcl.plot import plot_compare, plot_run

    if not args.compare and len(args.run_dirs) > 1:
        print("graphcl: error: plot takes one RUN_DIR; use --compare for several", file=sys.stderr)
        return 2
    written = ([plot_compare(args.run_dirs, args.out or ".")] if args.compare
               else plot_run(args.run_dirs[0], args.out, max_points=args.max_points))
    for path in written:
        print(f"wrote {path}")
    return 0


COMMANDS = {"train": _train, "eval": _eval, "embed": _embed, "reproduce": _reproduce, "list": _list, "plot": _plot}


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("graphcl: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # one line, never a traceback (GRAPHCL_DEBUG=1 shows it)
        if os.environ.get("GRAPHCL_DEBUG"):
            raise
        status = 2 if type(e).__name__ in USAGE_ERRORS else 1
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"graphcl: error: {message}", file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
