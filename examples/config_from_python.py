"""Run a config file from Python instead of the command line: what `graphcl train CONFIG k=v` does.

    python examples/config_from_python.py configs/dgi/cora.yaml seeds=[0,1]
    GRAPHCL_EXAMPLE_FAST=1 python examples/config_from_python.py   # 3 epochs, 1 seed, a narrow encoder

`load_config` merges the YAML file and dotted overrides onto the schema and validates them (a bad key raises
`ConfigError`, naming it); `train_run` pretrains and evaluates every seed into a run directory; `evaluate_run`
and `embed_run` re-use the saved encoder, as `graphcl eval` and `graphcl embed` do.
"""
import argparse
import os
import tempfile
from pathlib import Path

from graphcl.config import load_config
from graphcl.train.run import embed_run, evaluate_run, result_line, train_run

FAST = os.environ.get("GRAPHCL_EXAMPLE_FAST") == "1"
REPO = Path(__file__).resolve().parents[1]
FAST_OVERRIDES = ["trainer.epochs=3", "seeds=[0]", "model.encoder.hidden_channels=64", "eval.c_grid=[0.1,1.0]"]


def main() -> None:
    p = argparse.ArgumentParser(description="graphcl train, from Python.")
    p.add_argument("config", nargs="?", default=str(REPO / "configs" / "dgi" / "cora.yaml"))
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. trainer.epochs=50 seeds=[0,1]")
    p.add_argument("--out", help="run directory (default: a temporary one, removed at the end)")
    args = p.parse_args()

    overrides = (FAST_OVERRIDES if FAST else []) + args.overrides + ["trainer.progress=false"]
    # --8<-- [start:config]
    cfg = load_config(args.config, overrides)
    print(f"{cfg.model.method} on {cfg.data.name}: {cfg.trainer.epochs} epochs max, seeds {list(cfg.seeds)}")

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or Path(tmp) / "run")
        results = train_run(cfg, out, mode="overwrite")  # prints one line per seed
        print(result_line(results))
    # --8<-- [end:config]
        print("run directory:", ", ".join(sorted(f.name for f in out.iterdir() if not f.name.startswith("."))))
        again = evaluate_run(out)  # the saved encoder, re-evaluated: the same numbers
        print(f"evaluate_run: test {again['test']['mean']:.2f} (results.json {results['test']['mean']:.2f})")
        z = embed_run(out, out / "z.npy")
        print(f"embed_run: {tuple(z.shape)} embeddings written to {out / 'z.npy'}")


if __name__ == "__main__":
    main()
