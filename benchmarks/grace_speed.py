"""GRACE on Cora: seconds per training epoch and peak memory, graphcl vs. PyGCL 0.1.2's GRACE.

Both run the model and settings of `configs/grace/<dataset>.yaml` (Cora, the GRACE paper's: 2-layer GCN
1433 -> 256 -> 128 with ReLU after both layers, projection fc(128 -> 128) -> ELU -> fc(128 -> 128), tau 0.4,
edge removal 0.2 / 0.4 and feature-column masking 0.3 / 0.4 for the two views, Adam lr 5e-4 and weight
decay 1e-5, row-normalised features). PyGCL's model is put together as its `examples/GRACE.py` does:
`GCL.augmentors.Compose([EdgeRemoving, FeatureMasking])` per view, an encoder of `GCNConv` layers each followed
by the one activation module, a module that encodes the full graph and both views (the full-graph output is
unused by the loss, as in the example), and `GCL.losses.InfoNCE(tau)` in `GCL.models.DualBranchContrast(
mode='L2L', intraview_negs=True)`, on dense features and `edge_index`. (That loss also counts each anchor's
similarity with itself among its negatives; GRACE's, and graphcl's, leaves it out. The work is the same.)
graphcl's GRACE is built by `build_method` on the batch `prepare_nodes` makes, as `graphcl train` does (CSR
features: GRACE only masks whole feature columns). Epochs of the two are timed interleaved in one process
after warm-up (evaluation excluded); each peak memory is measured in a child process of its own.

Needs PyGCL (`pip install --no-deps PyGCL==0.1.2`, or the `bench` extra). PyGCL imports `dgl`, `torch_sparse`
and `torch_scatter` at module level, but GRACE calls none of them: where they are missing, this script puts
stand-in modules into `sys.modules` (whose functions raise if called) before importing PyGCL.

    python benchmarks/grace_speed.py [--epochs 30] [--device cpu|cuda] [--dataset cora]
"""
from __future__ import annotations

import argparse
import json

from harness import child_result, device_label, import_pygcl, time_interleaved

PYGCL = "PyGCL 0.1.2 GRACE"
OURS = "graphcl GRACE"


def pygcl_model(cfg, in_channels: int):
    """PyGCL's GRACE as its example assembles it, with the sizes and rates of `cfg`."""
    import torch
    import torch.nn.functional as F
    from torch_geometric.nn import GCNConv
    from torch_geometric.nn.resolver import activation_resolver

    A, L, DualBranchContrast = import_pygcl()
    enc, p = cfg.model.encoder, cfg.model.params
    widths = [in_channels] + [enc.hidden_channels] * (enc.num_layers - 1) + [enc.out_channels]

    class GConv(torch.nn.Module):  # GCNConv layers, each followed by the one activation module (cfg's)
        def __init__(self) -> None:
            super().__init__()
            self.layers = torch.nn.ModuleList(GCNConv(a, b, cached=False) for a, b in zip(widths, widths[1:]))
            self.activation = activation_resolver(enc.act)

        def forward(self, x, edge_index, edge_weight=None):
            for i, conv in enumerate(self.layers):
                x = conv(x, edge_index, edge_weight)
                if i < len(self.layers) - 1 or enc.act_last:
                    x = self.activation(x)
            return x

    class Encoder(torch.nn.Module):  # encodes the full graph and both augmented views; projects
        def __init__(self) -> None:
            super().__init__()
            self.encoder = GConv()
            self.augmentor = (A.Compose([A.EdgeRemoving(pe=p.drop_edge_1), A.FeatureMasking(pf=p.drop_feature_1)]),
                              A.Compose([A.EdgeRemoving(pe=p.drop_edge_2), A.FeatureMasking(pf=p.drop_feature_2)]))
            self.fc1 = torch.nn.Linear(enc.out_channels, p.proj_hidden)
            self.fc2 = torch.nn.Linear(p.proj_hidden, enc.out_channels)

        def forward(self, x, edge_index, edge_weight=None):
            views = [aug(x, edge_index, edge_weight) for aug in self.augmentor]
            return (self.encoder(x, edge_index, edge_weight),) + tuple(self.encoder(*v) for v in views)

        def project(self, z):
            return self.fc2(F.elu(self.fc1(z)))

    contrast = DualBranchContrast(loss=L.InfoNCE(tau=p.tau), mode="L2L", intraview_negs=True)
    return Encoder(), contrast


def build(variant: str, dataset: str, device: str):
    """One training epoch of `variant` as a closure, on the dataset prepared as that variant expects."""
    import torch

    from graphcl.config import load_config
    from graphcl.graph.encoders import SPARSE_INPUT_ENCODERS
    from graphcl.train.build import build_method, build_optimizer
    from graphcl.train.tasks.node import load_run_dataset, prepare_nodes

    cfg = load_config(f"configs/grace/{dataset}.yaml", [f"trainer.device={device}"])
    dev = torch.device(device)
    data = load_run_dataset(cfg)[0]
    torch.manual_seed(0)
    if variant == "pygcl":
        model, contrast = pygcl_model(cfg, data.num_features)
        model, contrast = model.to(dev), contrast.to(dev)
        x, edge_index = data.x.to(dev), data.edge_index.to(dev)

        def loss_fn():
            _, z1, z2 = model(x, edge_index, None)  # the example passes data.edge_attr: None on Planetoid
            h1, h2 = model.project(z1), model.project(z2)
            return contrast(h1, h2)
    else:  # as `graphcl train` builds it (CSR features where the method and the encoder take them)
        model = build_method(cfg, data.num_features, static_graph=True).to(dev)
        sparse = getattr(model, "sparse_features", False) and cfg.model.encoder.name in SPARSE_INPUT_ENCODERS
        batch = prepare_nodes(data, dev, sparse_features=sparse)

        def loss_fn():
            return model(batch)

    optimizer = build_optimizer(cfg, model.parameters())

    def epoch() -> None:
        model.train()
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        optimizer.step()
        loss.item()  # both read the loss every step (and it syncs CUDA)

    return epoch


def _rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def peak_memory(variant: str, dataset: str, epochs: int, device: str) -> dict:
    """Peak memory (MB) while `variant` trains, measured in a child process where nothing else has run:
    the CUDA allocator peak, or on CPU the peak resident set size of the process (libraries, data and model
    included); `base` is the same measure just before the first epoch (model and data built, nothing run)."""
    import torch

    from graphcl.train.trainer import peak_memory_mb, reset_peak_memory

    dev = torch.device(device)
    epoch = build(variant, dataset, device)
    reset_peak_memory(dev)
    base = torch.cuda.memory_allocated(dev) / 2**20 if dev.type == "cuda" else _rss_mb()
    for _ in range(epochs):
        epoch()
    return {"peak": peak_memory_mb(dev), "base": base}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dataset", default="cora")
    p.add_argument("--variant", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.variant:  # child process: memory of one variant
        print(json.dumps(peak_memory(args.variant, args.dataset, 5, args.device)))
        return
    variants = {PYGCL: build("pygcl", args.dataset, args.device), OURS: build("graphcl", args.dataset, args.device)}
    seconds = time_interleaved(variants, args.epochs, args.device)
    memory = {name: child_result(__file__, key, "--device", args.device, "--dataset", args.dataset)
              for name, key in zip(variants, ("pygcl", "graphcl"))}
    print(f"GRACE on {args.dataset} ({device_label(args.device)}), {args.epochs} timed epochs each")
    what = "CUDA peak allocated" if args.device == "cuda" else "peak RSS of the process while training"
    print(f"| implementation | s/epoch | memory (MB, {what}) | of which above the pre-training level (MB) |")
    print("|---|---:|---:|---:|")
    for name in variants:
        m = memory[name]
        print(f"| {name} | {seconds[name]:.4f} | {m['peak']:.0f} | {m['peak'] - m['base']:.0f} |")
    ours, theirs = memory[OURS], memory[PYGCL]
    time_ratio = seconds[OURS] / seconds[PYGCL]
    print(f"time ratio graphcl / PyGCL: {time_ratio:.3f} (speed-up {1 / time_ratio:.1f}x; target <= 1/3)")
    print(f"peak memory ratio graphcl / PyGCL: {ours['peak'] / theirs['peak']:.3f} (target <= 1/2); "
          f"above the pre-training level: {(ours['peak'] - ours['base']) / (theirs['peak'] - theirs['base']):.3f}")


if __name__ == "__main__":
    main()
