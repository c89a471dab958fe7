"""GraphCL on a TU dataset: seconds per training epoch, graphcl vs. PyGCL 0.1.2's GraphCL recipe.

Both train the encoder of `configs/graphcl/<dataset>.yaml` (GIN, 3 layers of 32 units, each conv a
Linear-ReLU-Linear MLP, ReLU then batch norm after every layer, per-layer sum pools concatenated; projection
Linear-ReLU-Linear; InfoNCE, tau 0.2; Adam lr 0.01; batch 128) on one epoch over the whole dataset, data
loading included. PyGCL's model is put together as its `examples/GraphCL.py` does: PyG's `DataLoader`
collates each mini-batch; one view is the graph itself, the other `A.RandomChoice([...], 1)` -- one augmentor
drawn per mini-batch, applied to the whole batch; `DualBranchContrast(InfoNCE, mode='G2G')`; as in the
example, its `Encoder.forward` also encodes the un-augmented batch, whose output the training step ignores. Its pool here is
NodeDropping(0.1), FeatureMasking(0.1) and EdgeRemoving(0.1): the example's fourth, RWSampling, needs
torch_cluster, which this machine lacks. PyGCL's NodeDropping removes the dropped nodes' edges but keeps the
nodes (they still enter the pooled readout); graphcl's drops them for real and relabels. graphcl runs its own
pool with the same rates -- `drop_nodes`, `mask_columns`, `drop_edges` -- drawn per graph
(`RandomChoicePerGraph`), on mini-batches gathered from the dataset collated once (`GraphTask`), as
`graphcl train` does; its GIN aggregates by a CSR product with a precomputed transpose
(`graphcl.graph.readout.node_embeddings`). Epochs are timed interleaved after warm-up; each peak memory is measured in a child
process of its own.

    python benchmarks/graphcl_speed.py [--dataset proteins] [--epochs 5] [--device cpu|cuda]
    python benchmarks/graphcl_speed.py --ours-only --dataset reddit_binary   # one graphcl epoch: time, memory
"""
from __future__ import annotations

import argparse
import json

from harness import child_result, device_label, import_pygcl, time_interleaved

PYGCL = "PyGCL 0.1.2 GraphCL"
OURS = "graphcl GraphCL"
POOL = {"drop_nodes": {"p": 0.1}, "mask_columns": {"p": 0.1}, "drop_edges": {"p": 0.1}}


def config(dataset: str, device: str):
    """The dataset's GraphCL config with `POOL` as its whole view pool (an override would merge into the YAML's
    pool -- node dropping and subgraphs -- and leave the subgraph view in)."""
    from omegaconf import OmegaConf

    from graphcl.config import config_from_dict, load_config

    cfg = load_config(f"configs/graphcl/{dataset}.yaml", [f"trainer.device={device}", "trainer.progress=false"])
    plain = OmegaConf.to_container(cfg, resolve=True)
    plain["model"]["params"]["views"] = POOL
    return config_from_dict(plain)


def pygcl_epoch(cfg, dataset, dev):
    """One epoch of PyGCL's GraphCL example (its encoder, augmentors, loss and PyG DataLoader)."""
    import torch
    from torch import nn
    from torch_geometric.loader import DataLoader
    from torch_geometric.nn import GINConv, global_add_pool

    A, L, DualBranchContrast = import_pygcl()
    enc = cfg.model.encoder
    hidden, layers = enc.hidden_channels, enc.num_layers

    class GConv(nn.Module):  # the example's encoder
        def __init__(self, in_channels: int) -> None:
            super().__init__()
            self.convs, self.norms = nn.ModuleList(), nn.ModuleList()
            for i in range(layers):
                width = in_channels if i == 0 else hidden
                self.convs.append(GINConv(nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, hidden))))
                self.norms.append(nn.BatchNorm1d(hidden))
            d = hidden * layers
            self.project = nn.Sequential(nn.Linear(d, d), nn.ReLU(inplace=True), nn.Linear(d, d))

        def forward(self, x, edge_index, batch):
            zs = []
            for conv, norm in zip(self.convs, self.norms):
                x = norm(torch.relu(conv(x, edge_index)))
                zs.append(x)
            return torch.cat([global_add_pool(z, batch) for z in zs], dim=1)

    class Encoder(nn.Module):  # the example's two views: the graph itself and one random augmentor
        def __init__(self, in_channels: int) -> None:
            super().__init__()
            self.encoder = GConv(in_channels)
            self.aug1 = A.Identity()
            self.aug2 = A.RandomChoice([A.NodeDropping(pn=0.1), A.FeatureMasking(pf=0.1), A.EdgeRemoving(pe=0.1)], 1)

        def forward(self, x, edge_index, batch):
            x1, e1, _ = self.aug1(x, edge_index)
            x2, e2, _ = self.aug2(x, edge_index)
            self.encoder(x, edge_index, batch)  # the example also encodes the batch itself (unused in training)
            return self.encoder(x1, e1, batch), self.encoder(x2, e2, batch)

    model = Encoder(dataset.num_features).to(dev)
    contrast = DualBranchContrast(loss=L.InfoNCE(tau=cfg.model.params.temperature), mode="G2G").to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr)
    loader = DataLoader(dataset, batch_size=cfg.data.batch_size, shuffle=True)

    def epoch() -> None:
        model.train()
        for data in loader:
            data = data.to(dev)
            optimizer.zero_grad(set_to_none=True)
            g1, g2 = model(data.x, data.edge_index, data.batch)
            g1, g2 = [model.encoder.project(g) for g in (g1, g2)]
            loss = contrast(g1=g1, g2=g2, batch=data.batch)
            loss.backward()
            optimizer.step()
            loss.item()

    return epoch


def ours_epoch(cfg, dev):
    """One epoch of graphcl's GraphCL as `graphcl train` runs it (`GraphTask` batches, the trainer's step)."""
    import torch

    from graphcl.train.build import build_optimizer
    from graphcl.train.tasks.graph import GraphTask

    task = GraphTask(cfg, dev)
    method = task.build_method().to(dev)
    optimizer = build_optimizer(cfg, method.parameters())

    def epoch() -> None:
        method.train()
        for batch in task.batches():
            loss = method(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss.item()

    torch.manual_seed(0)
    return epoch


def build(variant: str, dataset_key: str, device: str):
    import torch

    from graphcl.train.tasks.node import load_run_dataset

    cfg = config(dataset_key, device)
    dev = torch.device(device)
    torch.manual_seed(0)
    if variant == "pygcl":
        dataset = load_run_dataset(cfg)
        graphs = [dataset[i] for i in range(len(dataset))]  # feature transforms once, as GraphTask does
        return pygcl_epoch(cfg, graphs_dataset(graphs, dataset.num_features), dev)
    return ours_epoch(cfg, dev)


def graphs_dataset(graphs: list, num_features: int):
    class Graphs(list):
        pass

    out = Graphs(graphs)
    out.num_features = num_features
    return out


def peak_memory(variant: str, dataset: str, epochs: int, device: str) -> dict:
    """Peak memory (MB) of `variant` training in a fresh process (CUDA allocator peak, or the process's peak RSS)."""
    import time

    import torch

    from graphcl.train.trainer import peak_memory_mb, reset_peak_memory

    dev = torch.device(device)
    epoch = build(variant, dataset, device)
    reset_peak_memory(dev)
    start = time.perf_counter()
    for _ in range(epochs):
        epoch()
    return {"peak": peak_memory_mb(dev), "seconds": (time.perf_counter() - start) / epochs}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="proteins")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--ours-only", action="store_true", help="one graphcl epoch's time and peak memory")
    p.add_argument("--variant", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.variant:  # child process: memory of one variant
        print(json.dumps(peak_memory(args.variant, args.dataset, 1 if args.ours_only else 2, args.device)))
        return
    if args.ours_only:
        m = child_result(__file__, "graphcl", "--device", args.device, "--dataset", args.dataset, "--ours-only")
        print(f"GraphCL on {args.dataset} ({device_label(args.device)}): one epoch {m['seconds']:.2f} s "
              f"(the first, warm-up included), peak memory {m['peak']:.0f} MB")
        return
    variants = {PYGCL: build("pygcl", args.dataset, args.device), OURS: build("graphcl", args.dataset, args.device)}
    seconds = time_interleaved(variants, args.epochs, args.device, warmup=1)
    memory = {name: child_result(__file__, key, "--device", args.device, "--dataset", args.dataset)
              for name, key in zip(variants, ("pygcl", "graphcl"))}
    print(f"GraphCL on {args.dataset} ({device_label(args.device)}), {args.epochs} timed epochs each")
    what = "CUDA peak allocated" if args.device == "cuda" else "peak RSS of the process"
    print(f"| implementation | s/epoch | memory (MB, {what}) |")
    print("|---|---:|---:|")
    for name in variants:
        print(f"| {name} | {seconds[name]:.4f} | {memory[name]['peak']:.0f} |")
    ratio = seconds[OURS] / seconds[PYGCL]
    print(f"time ratio graphcl / PyGCL: {ratio:.3f} (speed-up {1 / ratio:.1f}x; target <= 1/2)")


if __name__ == "__main__":
    main()
