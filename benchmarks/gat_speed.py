"""GAT-encoder methods: seconds per training epoch and peak memory, PyG's `GATConv` forward vs. graphcl's sparse
products (`graphcl.graph.attention.fused_gat`, which the trainer computes every loss in).

Both variants train the same method from its config (`configs/<method>/<dataset>.yaml`: GraphMAE's GAT encoder
and decoder, BGRL's GAT encoder), on the graph as the trainer prepares it (CSR features where the method opts in),
with the same optimizer; only the GAT layers' aggregation differs: PyG's gathers an `[E, heads, C]` message
tensor, graphcl's is one CSR-dense product per head. Epochs are timed interleaved after warm-up; each peak
memory is measured in a child process of its own.

    python benchmarks/gat_speed.py [--runs graphmae/cora,graphmae/citeseer,bgrl/cora] [--epochs 10] [--device cpu|cuda]
"""
from __future__ import annotations

import argparse
import json
from contextlib import nullcontext

from harness import child_result, device_label, time_interleaved, training_peak_mb

VARIANTS = {"pyg": "PyG GATConv", "fused": "graphcl fused"}


def build(variant: str, run: str, device: str):
    """One training epoch of `run` ("method/dataset") with `variant`'s GAT aggregation, as a closure."""
    import torch

    from graphcl.config import load_config
    from graphcl.graph.attention import StructureCache, fused_gat
    from graphcl.train.build import build_method, build_optimizer, method_class
    from graphcl.train.tasks.node import load_run_dataset, prepare_nodes

    cfg = load_config(f"configs/{run}.yaml", [f"trainer.device={device}"])
    dev = torch.device(device)
    data = load_run_dataset(cfg)[0]
    torch.manual_seed(0)
    model = build_method(cfg, data.num_features, static_graph=True).to(dev)
    batch = prepare_nodes(data, dev, sparse_features=getattr(method_class(cfg.model.method), "sparse_features", False))
    optimizer = build_optimizer(cfg, model.parameters())
    structures = StructureCache()

    def epoch() -> None:
        optimizer.zero_grad(set_to_none=True)
        with fused_gat(model, structures) if variant == "fused" else nullcontext():
            loss = model(batch)
        loss.backward()
        optimizer.step()
        if hasattr(model, "after_step"):  # BGRL's EMA update of the target, as the trainer calls it
            model.after_step(1, 2)
        loss.item()

    return epoch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", default="graphmae/cora,graphmae/citeseer,bgrl/cora")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--device", default="cpu")
    p.add_argument("--variant", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.variant:  # child process: memory of one variant of one run
        print(json.dumps(training_peak_mb(build(args.variant, args.runs, args.device), 3, args.device)))
        return
    what = "CUDA peak allocated" if args.device == "cuda" else "peak RSS of the process while training"
    print(f"GAT aggregation ({device_label(args.device)}), {args.epochs} timed epochs each")
    print(f"| run | PyG s/epoch | fused s/epoch | ratio | PyG memory (MB) | fused memory (MB) | ratio |  ({what})")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for run in args.runs.split(","):
        seconds = time_interleaved({k: build(k, run, args.device) for k in VARIANTS}, args.epochs, args.device,
                                   warmup=2)
        memory = {k: child_result(__file__, k, "--runs", run, "--device", args.device) for k in VARIANTS}
        print(f"| {run} | {seconds['pyg']:.3f} | {seconds['fused']:.3f} | {seconds['fused'] / seconds['pyg']:.3f} "
              f"| {memory['pyg']:.0f} | {memory['fused']:.0f} | {memory['fused'] / memory['pyg']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
