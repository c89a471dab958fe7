"""Graph views on a mini-batch: graphcl's batched transforms vs. the naive per-graph loop.

A batch of synthetic PROTEINS-sized graphs (PROTEINS: 39 nodes and 73 undirected edges per graph on average;
here sizes are drawn from 8 to 70 nodes and edges from G(n, p) with ~3.7 neighbours per node, 3 features).
For every view, "batched" is `view(batch)` -- one vectorised call returning a `Batch`; "loop" is
`[view(g) for g in batch.to_data_list()]` (per-graph views, as a Dataset transform would apply them); "loop +
collate" adds the `Batch.from_data_list` a training step needs after it. Each time is the median of several
runs after a warm-up. `choice/graph` is GraphCL's augmentation sampling (an independent view per graph out of
node dropping, edge perturbation, subgraph and attribute masking); its loop applies `RandomChoice` per graph.
Edge perturbation adds edges, so that pool regroups the batch by view; with edge dropping in its place ("4
masking views") the views' draws are combined graph by graph and applied once.

    python benchmarks/views_speed.py [--graphs 512] [--repeats 7] [--threads 1] [--device cpu|cuda]
"""
from __future__ import annotations

import argparse

from harness import median_seconds


def synthetic_batch(num_graphs: int, seed: int, device: str):
    import torch
    from torch_geometric.data import Batch, Data
    from torch_geometric.utils import erdos_renyi_graph

    torch.manual_seed(seed)  # erdos_renyi_graph draws from the global generator
    sizes = torch.randint(8, 71, (num_graphs,)).tolist()
    graphs = [Data(x=torch.randn(n, 3), edge_index=erdos_renyi_graph(n, 3.7 / (n - 1)), y=torch.tensor([i % 2]))
              for i, n in enumerate(sizes)]
    return Batch.from_data_list(graphs).to(device)


def views() -> dict:
    from graphcl.graph.views import (
        AddEdges, Compose, DropEdges, DropNodes, MaskFeatureColumns, MaskNodeFeatures, RandomChoice,
        RandomChoicePerGraph, RandomWalkSubgraph,
    )

    edge_perturbation = Compose([DropEdges(0.2), AddEdges(0.2)])  # GraphCL: drop some edges, add random ones
    graphcl_set = [DropNodes(0.2), edge_perturbation, RandomWalkSubgraph(walk_length=10), MaskNodeFeatures(0.2)]
    masking_set = [DropNodes(0.2), DropEdges(0.2), RandomWalkSubgraph(walk_length=10), MaskNodeFeatures(0.2)]
    return {  # name -> (batched view, per-graph view)
        "DropNodes(0.2)": (DropNodes(0.2),) * 2,
        "DropEdges(0.2)": (DropEdges(0.2),) * 2,
        "AddEdges(0.2)": (AddEdges(0.2),) * 2,
        "MaskFeatureColumns(0.2)": (MaskFeatureColumns(0.2),) * 2,
        "MaskNodeFeatures(0.2)": (MaskNodeFeatures(0.2),) * 2,
        "RandomWalkSubgraph(10)": (RandomWalkSubgraph(walk_length=10),) * 2,
        "choice/graph (4 views)": (RandomChoicePerGraph(graphcl_set), RandomChoice(graphcl_set)),
        "choice/graph (4 masking views)": (RandomChoicePerGraph(masking_set), RandomChoice(masking_set)),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphs", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (CPU)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    import torch
    from torch_geometric.data import Batch

    torch.set_num_threads(args.threads)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    batch = synthetic_batch(args.graphs, 0, args.device)
    print(f"{args.graphs} graphs, {batch.num_nodes} nodes, {batch.edge_index.size(1)} directed edges "
          f"(mean {batch.num_nodes / args.graphs:.1f} nodes, {batch.edge_index.size(1) / 2 / args.graphs:.1f} "
          f"undirected edges per graph); device {args.device}, {args.threads} thread(s), torch {torch.__version__}\n")
    print("| view | batched (ms) | loop (ms) | loop + collate (ms) | speed-up vs loop | vs loop + collate |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, (batched, single) in views().items():
        t_batch = median_seconds(lambda: batched(batch), args.repeats, sync)
        t_loop = median_seconds(lambda: [single(g) for g in batch.to_data_list()], args.repeats, sync)
        t_collate = median_seconds(lambda: Batch.from_data_list([single(g) for g in batch.to_data_list()]),
                                   args.repeats, sync)
        print(f"| {name} | {1e3 * t_batch:.2f} | {1e3 * t_loop:.1f} | {1e3 * t_collate:.1f} | "
              f"{t_loop / t_batch:.0f}x | {t_collate / t_batch:.0f}x |", flush=True)


if __name__ == "__main__":
    main()
