"""DGI on Cora: seconds per training epoch and peak memory, graphcl vs. PyG's `DeepGraphInfomax`.

Same encoder (1-layer GCN, 512 units, PReLU), same loss, Adam 1e-3, row-normalised features. PyG's model
runs as its example does (dense features, `edge_index`, the encoder called on both views); graphcl's runs
through the trainer's own path (CSR features and adjacency, cached GCN normalisation). Epochs of the two
are timed interleaved in one process after warm-up (evaluation excluded); each peak memory is measured in
a child process of its own, so neither sees the other's allocations.

    python benchmarks/dgi_speed.py [--epochs 50] [--device cpu|cuda] [--dataset cora]
"""
from __future__ import annotations

import argparse
import json

from harness import child_result, device_label, time_interleaved, training_peak_mb


def build(variant: str, dataset: str, device: str):
    """One training epoch of `variant` as a closure, on Cora/CiteSeer prepared as that variant expects."""
    import torch

    from graphcl.config import load_config
    from graphcl.train.build import build_method, build_optimizer
    from graphcl.train.tasks.node import load_run_dataset, prepare_nodes

    cfg = load_config(f"configs/dgi/{dataset}.yaml", [f"trainer.device={device}"])
    dev = torch.device(device)
    data = load_run_dataset(cfg)[0]
    torch.manual_seed(0)
    if variant == "pyg":
        from torch_geometric.nn import DeepGraphInfomax

        from graphcl.graph.encoders import build_encoder
        from graphcl.train.build import encoder_spec

        encoder = build_encoder(**encoder_spec(cfg, data.num_features))
        model = DeepGraphInfomax(
            cfg.model.encoder.hidden_channels, encoder,
            summary=lambda z, *args, **kwargs: torch.sigmoid(z.mean(dim=0)),
            corruption=lambda x, edge_index: (x[torch.randperm(x.size(0), device=x.device)], edge_index),
        ).to(dev)
        x, edge_index = data.x.to(dev), data.edge_index.to(dev)

        def loss_fn():
            pos, neg, summary = model(x, edge_index)
            return model.loss(pos, neg, summary)
    else:
        model = build_method(cfg, data.num_features, static_graph=True).to(dev)
        batch = prepare_nodes(data, dev)

        def loss_fn():
            return model(batch)

    optimizer = build_optimizer(cfg, model.parameters())

    def epoch() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        optimizer.step()
        loss.item()  # the trainer reads the loss every step too (and it syncs CUDA)

    return epoch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dataset", default="cora")
    p.add_argument("--variant", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.variant:  # child process: memory of one variant
        print(json.dumps(training_peak_mb(build(args.variant, args.dataset, args.device), 5, args.device)))
        return
    variants = {"PyG DeepGraphInfomax": build("pyg", args.dataset, args.device),
                "graphcl DGI": build("graphcl", args.dataset, args.device)}
    seconds = time_interleaved(variants, args.epochs, args.device)
    memory = {name: child_result(__file__, key, "--device", args.device, "--dataset", args.dataset)
              for name, key in zip(variants, ("pyg", "graphcl"))}
    print(f"DGI on {args.dataset} ({device_label(args.device)}), {args.epochs} timed epochs each")
    what = "CUDA peak allocated" if args.device == "cuda" else "peak RSS of the process while training"
    print(f"| implementation | s/epoch | memory (MB, {what}) |")
    print("|---|---:|---:|")
    for name in variants:
        print(f"| {name} | {seconds[name]:.4f} | {memory[name]:.0f} |")
    ratio = seconds["graphcl DGI"] / seconds["PyG DeepGraphInfomax"]
    print(f"ratio graphcl / PyG: {ratio:.3f} (speed-up {1 / ratio:.1f}x)")

if __name__ == "__main__":
    main()
