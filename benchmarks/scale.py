"""Node-level methods at scale: method x graph x mode -> speed, peak memory and probe accuracy, one table.

Graphs: Cora and the synthetic OGB-sized graphs `synthetic:arxiv-like` (169,343 nodes, 1,166,243 undirected
pairs) and `synthetic:products-like` (2,449,029 nodes, 61,859,140 pairs), generated once into the cache.
Modes: `full` (full-batch: sparse CSR adjacency, GCN propagation as sparse products, `info_nce` chunked)
and `neighbor` (PyG `NeighborLoader` mini-batches, layer-wise full-graph inference for the probe).

Every case runs in a child process of its own, through graphcl's own task, method and `Trainer` (what `graphcl
train` runs), so its peak memory is its own: peak RSS of the process (data included) on CPU, the CUDA
allocator's peak on GPU. Speed: seconds per full-batch epoch, or seed nodes per second over the timed
mini-batches (sampling included), after `--warmup` untimed epochs (in `neighbor` mode an epoch here is `--steps`
mini-batches). Probe: `--probe-epochs` more epochs of training (all mini-batches of
an epoch in `neighbor` mode), then the protocol of the graph (Cora: public split; synthetic: their OGB-style
split, logistic regression with C chosen on validation). All methods share one encoder per graph: a GCN of
`--layers` layers and `--hidden` units (Cora: 512 for DGI as in its paper).

    python benchmarks/scale.py --graphs cora,arxiv-like --methods dgi,bgrl,ccassg,grace --modes full
    python benchmarks/scale.py --graphs products-like --methods dgi,bgrl --modes neighbor --steps 20
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

GRAPHS = {"cora": "Cora", "arxiv-like": "synthetic:arxiv-like", "products-like": "synthetic:products-like"}
# GRACE's all-pairs loss in chunks of this many anchors: O(chunk x N) live scores, never N x N.
METHOD_PARAMS = {"grace": {"chunk_size": 512}, "dgi": {}, "bgrl": {}, "ccassg": {}, "graphmae": {}}


def config(method: str, graph: str, mode: str, args) -> dict:
    """The run config of one case (`graphcl.config.config_from_dict`)."""
    data = {"name": GRAPHS[graph], "loader": mode}
    if mode == "neighbor":
        data.update(batch_size=args.batch_size, num_neighbors=[args.fanout] * args.layers)
    encoder = {"name": "gcn", "hidden_channels": args.hidden, "num_layers": args.layers, "act": "prelu"}
    protocol = "public" if graph == "cora" else "ogb"
    params = dict(METHOD_PARAMS[method])
    if method == "grace" and args.num_negatives:
        params["num_negatives"] = args.num_negatives
    return {"data": data, "model": {"method": method, "encoder": encoder, "params": params},
            "optim": {"name": "adam", "lr": args.lr}, "trainer": {"device": args.device, "progress": False},
            "eval": {"protocol": protocol}, "seeds": [0]}


def run_case(method: str, graph: str, mode: str, args) -> dict:
    """Child process: time training with graphcl's `Trainer` and (optionally) probe; returns the row as a dict."""
    from itertools import count, islice

    from graphcl.config import config_from_dict
    from graphcl.train.build import build_optimizer
    from graphcl.train.checkpoint import seed_everything
    from graphcl.train.tasks import get_task
    from graphcl.train.trainer import Trainer, peak_memory_mb, reset_peak_memory, resolve_device

    device = resolve_device(args.device)
    cfg = config_from_dict(config(method, graph, mode, args))
    start = time.perf_counter()
    task = get_task(cfg, device)
    load_seconds = time.perf_counter() - start
    seed_everything(0)
    model = task.build_method().to(device)
    optimizer = build_optimizer(cfg, model.parameters())

    def train(batches, epochs: int, steps_per_epoch: int) -> list[float]:
        """Seconds of each of `epochs` epochs of `batches()` (sampling included), as `graphcl train` steps them."""
        seconds: list[float] = []
        Trainer(model, optimizer, batches, epochs=epochs, device=device, amp=args.amp, progress=False,
                steps_per_epoch=steps_per_epoch, on_epoch=lambda row: seconds.append(row["seconds"])).fit()
        return seconds

    reset_peak_memory(device)
    if mode == "neighbor":  # an "epoch" here is `--steps` mini-batches, running on into the task's next epochs
        endless = (batch for _ in count() for batch in task.batches())
        timed = train(lambda: islice(endless, args.steps), args.warmup + 1, args.steps)[args.warmup:]
        seeds = args.steps * cfg.data.batch_size  # full batches only: the last partial one is dropped
        row = {"s_per_epoch": None, "seeds_per_s": seeds / timed[0]}
    else:
        timed = train(task.batches, args.warmup + args.epochs, 1)[args.warmup:]
        row = {"s_per_epoch": sum(timed) / len(timed), "seeds_per_s": None}
    row.update(method=method, graph=graph, mode=mode, load_s=load_seconds, peak_mb=peak_memory_mb(device), probe=None)
    if args.probe_epochs:
        train(task.batches, args.probe_epochs, task.steps_per_epoch)
        row["probe"] = 100 * task.evaluate(model.encoder, seed=0)["test"]
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--graphs", default="cora,arxiv-like")
    p.add_argument("--methods", default="dgi,bgrl,ccassg,grace")
    p.add_argument("--modes", default="full")
    p.add_argument("--epochs", type=int, default=3, help="timed full-batch epochs")
    p.add_argument("--steps", type=int, default=20, help="timed mini-batches")
    p.add_argument("--warmup", type=int, default=1, help="untimed epochs first (neighbor: of --steps batches)")
    p.add_argument("--probe-epochs", type=int, default=0, help="epochs trained before the probe (0: no probe)")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--fanout", type=int, default=10)
    p.add_argument("--num-negatives", type=int, default=0, help="GRACE: sampled negatives (0: all, chunked)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", action="store_true", help="bf16 autocast on CUDA")
    p.add_argument("--case", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.case:  # child process
        print(json.dumps(run_case(*args.case.split(","), args)))
        return
    import torch

    threads = os.environ.get("OMP_NUM_THREADS", str(torch.get_num_threads()))
    device = torch.cuda.get_device_name(0) if args.device == "cuda" else f"CPU, {threads} threads"
    print(f"# {device}, torch {torch.__version__}; GCN {args.layers}x{args.hidden}; full: {args.epochs} timed "
          f"epochs; neighbor: {args.steps} timed batches of {args.batch_size} seeds, fan-out {args.fanout}")
    print("| method | graph | mode | s/epoch | seed nodes/s | peak memory (MB) | probe acc. (%) | load (s) |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for graph in args.graphs.split(","):
        for mode in args.modes.split(","):
            for method in args.methods.split(","):
                out = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--case", f"{method},{graph},{mode}"],
                                     capture_output=True, text=True)
                name = f"{method} ({args.num_negatives} neg.)" if method == "grace" and args.num_negatives else method
                if out.returncode != 0:
                    error = (out.stderr.strip().splitlines() or ["?"])[-1]
                    print(f"| {name} | {graph} | {mode} | failed: {error} | | | | |", flush=True)
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                fmt = lambda v, f: "—" if v is None else format(v, f)  # noqa: E731
                print(f"| {name} | {graph} | {mode} | {fmt(r['s_per_epoch'], '.3f')} | {fmt(r['seeds_per_s'], ',.0f')} "
                      f"| {r['peak_mb']:.0f} | {fmt(r['probe'], '.2f')} | {r['load_s']:.1f} |", flush=True)

if __name__ == "__main__":
    main()
