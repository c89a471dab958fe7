"""MVGRL with a dense exact PPR diffusion vs. a sparsified one: seconds per epoch, peak memory, accuracy.

- dense: the exact PPR matrix S (alpha 0.2), nothing dropped, stored as a dense `[N, N]` tensor; the diffusion
  view propagates with dense products (`model.params`: eps null, scale null, layout dense; MVGRL on Cora).
- sparse: the same S with entries below eps dropped, eps from {1e-5, ..., 1e-2} matching the mean degree, each
  column min-max scaled, stored as CSR (`eps: auto, scale: minmax, layout: sparse`; MVGRL on CiteSeer, the
  CiteSeer config).

Everything else as `configs/mvgrl/<dataset>.yaml` (1-layer GCN per view, 512 units, PReLU, Adam 1e-3), trained
full-batch for a fixed number of epochs (no early stopping) per seed. For every seed the two variants train
side by side, one epoch of each in turn, so both see the same machine load; seconds per epoch average all those
epochs but the first two of every run (building S is excluded). Accuracy: graphcl's linear probe
(`evaluate_nodes`, C chosen on val) of the frozen embeddings on the Planetoid public split, after the given
epochs. Each peak memory is measured in a child process of its own (peak RSS while S is built, then while
training 5 epochs with S built).

    python benchmarks/mvgrl_diffusion.py [--dataset citeseer] [--epochs 60] [--eval-at 20 40] [--seeds 0 1 2]

The defaults take about 10 minutes on a loaded 2-core CPU.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

VARIANTS = {
    "dense": ["model.params.eps=null", "model.params.scale=null", "model.params.layout=dense"],
    "sparse": ["model.params.eps=auto", "model.params.scale=minmax", "model.params.layout=sparse"],
}
NAMES = {"dense": "dense exact PPR, dense S", "sparse": "eps-sparsified + MinMax, CSR S"}


def setup(dataset: str, device: str):
    """({variant: config}, the dataset's graph, the training batch: CSR features and adjacency)."""
    import torch

    from graphcl.config import load_config
    from graphcl.train.tasks.node import load_run_dataset, prepare_nodes

    cfgs = {v: load_config(f"configs/mvgrl/{dataset}.yaml", [f"trainer.device={device}", *o])
            for v, o in VARIANTS.items()}
    data = load_run_dataset(cfgs["dense"])[0]
    return cfgs, data, prepare_nodes(data, torch.device(device))


def build(cfg, data, batch, seed: int):
    """(method, one training epoch as a closure) of `cfg`, its diffusion already built."""
    import torch

    from graphcl.train.build import build_method, build_optimizer

    torch.manual_seed(seed)
    method = build_method(cfg, data.num_features, static_graph=True).to(batch.x.device)
    optimizer = build_optimizer(cfg, method.parameters())
    method.encoder.diffusion(batch.adj_t, batch.num_nodes)

    def epoch() -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = method(batch)
        loss.backward()
        optimizer.step()
        return loss.item()  # the trainer reads the loss every step too (and it syncs CUDA)

    return method, epoch


def stored_mb(s) -> float:
    """Bytes S holds: values (and CSR indices)."""
    import torch

    if s.layout == torch.strided:
        return s.numel() * s.element_size() / 2**20
    return (s.values().numel() * s.values().element_size() + s.col_indices().numel() * 8
            + s.crow_indices().numel() * 8) / 2**20


def child_memory(variant: str, dataset: str, device: str) -> dict:
    """Peak memory (MB) of one variant in a fresh process: while S is built, then while training with it."""
    import torch

    from graphcl.train.trainer import peak_memory_mb, reset_peak_memory

    from graphcl.train.build import build_method, build_optimizer

    dev = torch.device(device)
    cfgs, data, batch = setup(dataset, device)
    cfg = cfgs[variant]
    torch.manual_seed(0)
    method = build_method(cfg, data.num_features, static_graph=True).to(dev)
    optimizer = build_optimizer(cfg, method.parameters())
    reset_peak_memory(dev)
    s = method.encoder.diffusion(batch.adj_t, batch.num_nodes)
    build_peak = peak_memory_mb(dev)
    reset_peak_memory(dev)
    for _ in range(5):
        optimizer.zero_grad(set_to_none=True)
        method(batch).backward()
        optimizer.step()
    nnz = s.numel() if s.layout == torch.strided else s._nnz()
    return {"build": build_peak, "train": peak_memory_mb(dev), "stored": stored_mb(s), "nnz": nnz,
            "nonzero": int(torch.count_nonzero(s)) if s.layout == torch.strided else int(s._nnz())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="citeseer")
    p.add_argument("--epochs", type=int, default=60, help="training epochs per seed (no early stopping)")
    p.add_argument("--eval-at", type=int, nargs="*", default=[20, 40], help="also probe after these epochs")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--device", default="cpu")
    p.add_argument("--variant", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.variant:  # child process: memory of one variant
        print(json.dumps(child_memory(args.variant, args.dataset, args.device)))
        return
    import torch

    from graphcl.evaluate import evaluate_nodes
    from graphcl.train.tasks.node import embed_nodes, evaluation_batch

    start_all = time.perf_counter()
    memory = {}
    for v in VARIANTS:
        out = subprocess.run([sys.executable, __file__, "--variant", v, "--device", args.device,
                              "--dataset", args.dataset], capture_output=True, text=True, check=True)
        memory[v] = json.loads(out.stdout.strip().splitlines()[-1])

    cfgs, data, batch = setup(args.dataset, args.device)
    eval_batch = evaluation_batch(cfgs["dense"], data, torch.device(args.device))
    checkpoints = sorted({e for e in args.eval_at if 0 < e < args.epochs} | {args.epochs})
    seconds = {v: [] for v in VARIANTS}
    acc = {v: {e: [] for e in checkpoints} for v in VARIANTS}
    losses = {v: [] for v in VARIANTS}
    for seed in args.seeds:
        runs = {v: build(cfgs[v], data, batch, seed) for v in VARIANTS}
        for e in range(1, args.epochs + 1):
            for v, (method, epoch) in runs.items():
                if args.device == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                loss = epoch()
                if e > 2:
                    seconds[v].append(time.perf_counter() - start)
                if e == args.epochs:
                    losses[v].append(loss)
                if e in checkpoints:
                    z = embed_nodes(method.encoder, eval_batch)
                    method.train()
                    res = evaluate_nodes(z, data, protocol="public", seed=seed)
                    acc[v][e].append(100 * res["test"])
        print(f"seed {seed}: " + ", ".join(f"{v} {acc[v][args.epochs][-1]:.1f}" for v in VARIANTS),
              file=sys.stderr, flush=True)

    threads = torch.get_num_threads()
    device = torch.cuda.get_device_name(0) if args.device == "cuda" else f"CPU, {threads} threads"
    n = data.num_nodes
    print(f"MVGRL on {args.dataset} (N = {n}; {device}, torch {torch.__version__}): {args.epochs} epochs per run, "
          f"no early stopping, seeds {args.seeds}; s/epoch over {len(seconds['dense'])} interleaved epochs per "
          f"variant; linear probe on the public split (C grid {{1e-3 .. 1e3}} on val), test accuracy mean ± std "
          f"over seeds; peak RSS of a child process per variant. Total {time.perf_counter() - start_all:.0f} s.")
    acc_cols = " | ".join(f"test acc. @{e} ep (%)" for e in checkpoints)
    print(f"\n| diffusion | S entries stored (nonzero) | S size (MB) | s/epoch | peak RSS building S (MB) | "
          f"peak RSS training (MB) | final loss | {acc_cols} |")
    print("|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(checkpoints))
    for v in VARIANTS:
        m = memory[v]
        accs = " | ".join(f"{statistics.mean(acc[v][e]):.1f} ± {statistics.pstdev(acc[v][e]):.1f}"
                          for e in checkpoints)
        print(f"| {NAMES[v]} | {m['nnz']:,} ({m['nonzero']:,}, {100 * m['nonzero'] / n / n:.2f}%) | "
              f"{m['stored']:.1f} | {statistics.mean(seconds[v]):.3f} | {m['build']:.0f} | {m['train']:.0f} | "
              f"{statistics.mean(losses[v]):.3f} | {accs} |")
    print("\nper-seed test accuracy after the last epoch: "
          + "; ".join(f"{v}: " + ", ".join(f"{a:.1f}" for a in acc[v][args.epochs]) for v in VARIANTS))


if __name__ == "__main__":
    main()
