"""Neighbour-sampled mini-batches (PyG `NeighborLoader`) and layer-wise full-graph inference.

A sampled batch is a PyG `Data` whose first `batch.batch_size` nodes are its seed nodes (PyG's convention): a
method runs its encoder on the whole sampled subgraph and forms its objective on the seeds' rows (`seed_rows`).
A full-batch `Data` carries no `batch_size`: every node is a seed, and `seed_rows` returns its input unchanged.

`layerwise_embed` computes a trained encoder's output on a whole graph one layer at a time over all nodes, in
chunks of nodes with all their in-neighbours, so no chunk ever needs its L-hop computation graph.
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Any, Iterator, Optional, Sequence

import torch
import torch_geometric.typing
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.loader import NeighborLoader
from torch_geometric.nn import GCNConv
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import to_torch_csr_tensor

import graphcl.graph.sparse  # noqa: F401  (its import sets the CSR policy: no invariant checks, no beta warning)
from graphcl.graph.encoders import basic_gnn

__all__ = ["is_sampled", "num_seeds", "seed_rows", "neighbor_loader", "layerwise_embed"]


def is_sampled(batch: Data) -> bool:
    """Whether `batch` is a sampled subgraph (it names its seed count `batch_size`) rather than a whole graph."""
    return "batch_size" in batch


def num_seeds(batch: Data) -> int:
    """The number of seed nodes of `batch`: `batch.batch_size` when sampled, else all its nodes."""
    return int(batch.batch_size) if is_sampled(batch) else batch.num_nodes


def seed_rows(batch: Data, h: Tensor) -> Tensor:
    """`h [N, D] -> [B, D]`: the rows of the seed nodes of `batch` (`h` itself for a full-batch graph)."""
    return h[: batch.batch_size] if is_sampled(batch) else h


def neighbor_loader(data: Data, num_neighbors: Sequence[int], batch_size: int, *, shuffle: bool = True,
                    drop_last: bool = False, generator: Optional[torch.Generator] = None,
                    input_nodes: Optional[Tensor] = None, sampler: Optional[Any] = None) -> NeighborLoader:
    """A `NeighborLoader` over the nodes of `data` (`x [N, F]`, `edge_index [2, E]`) as seeds (or `input_nodes`,
    in their order unless `shuffle`), `batch_size` at a time, `num_neighbors[k]` sampled in-neighbours per node at
    hop k (-1: all). Sampling draws from torch's global RNG (no worker processes), and so does the seed order
    unless a `generator` is given: a seeded run samples the same batches. `sampler`: the `node_sampler` of an
    earlier loader on the same graph, whose CSC copy of the graph is then reused."""
    if not (torch_geometric.typing.WITH_PYG_LIB or torch_geometric.typing.WITH_TORCH_SPARSE):
        raise ImportError("neighbour sampling needs pyg-lib or torch-sparse (with torch-scatter), which PyG cannot "
                          "import here: pip install -e .[scale]")
    # PyG deprecates sampling through torch-sparse in favour of pyg-lib, which may not be installed.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*without a 'pyg-lib' installation.*")
        return NeighborLoader(data, num_neighbors=list(num_neighbors), batch_size=batch_size, shuffle=shuffle,
                              drop_last=drop_last, generator=generator, input_nodes=input_nodes,
                              neighbor_sampler=sampler)


@torch.no_grad()
def layerwise_embed(encoder: nn.Module, data: Data, batch_size: int = 4096) -> Tensor:
    """The encoder's output `[N, D]` (on CPU) on the whole graph `data` (`x [N, F]`, `edge_index [2, E]`), what
    `encoder(x, edge_index)` gives in eval mode, computed one layer at a time: for each layer, every node's output
    from the previous layer's outputs of its in-neighbours, `batch_size` nodes at a time (a one-hop
    `NeighborLoader` with all neighbours). The encoder runs on its own device; each layer's outputs live on CPU.

    GCN layers normalise by the degrees of the whole graph (a one-hop subgraph would see its outer nodes with no
    in-edges): their normalised adjacency is computed once and passed in as edge weights.

    The encoder must be a PyG `BasicGNN` without jumping knowledge (or with `jk="last"`), optionally followed by
    per-node modules in a PyG `Sequential` (the output norm and activation of `build_encoder`; a batch norm in
    eval mode is per node)."""
    gnn = basic_gnn(encoder)
    if gnn is None or gnn.jk_mode not in (None, "last"):
        raise ValueError("layer-wise inference needs a PyG BasicGNN encoder without jumping knowledge "
                         "(or jk='last')")
    tail = [] if encoder is gnn else list(encoder.children())
    if tail and tail[0] is not gnn:
        raise ValueError("layer-wise inference needs the encoder's BasicGNN as its first module")
    encoder.eval()
    device = next(encoder.parameters()).device
    x = data.x.to_dense() if data.x.layout != torch.strided else data.x
    x = x.cpu()
    graphs: dict[tuple, tuple[NeighborLoader, Optional[Tensor]]] = {}
    for layer, conv in enumerate(gnn.convs):
        key = _normalisation(conv)
        if key not in graphs:
            graphs[key] = _one_hop_graph(data, key, batch_size)
        loader, weight = graphs[key]
        outs = []
        with _weights_given(conv if weight is not None else None):
            for batch in loader:
                adj = batch.edge_index if weight is None else _weighted_adj_t(batch, weight)
                out = gnn.inference_per_layer(layer, x[batch.n_id].to(device), adj.to(device), batch.batch_size)
                outs.append(out.cpu())
        x = torch.cat(outs)
    for module in tail[1:]:  # the per-node output norm and activation
        x = module(x.to(device)).cpu()
    return x


def _normalisation(conv: nn.Module) -> Optional[tuple]:
    """How `conv` normalises its adjacency from the whole graph's degrees (a GCN's settings), else None."""
    if isinstance(conv, GCNConv) and conv.normalize:
        return (conv.improved, conv.add_self_loops, conv.flow)
    return None


def _one_hop_graph(data: Data, key: Optional[tuple], batch_size: int) -> tuple[NeighborLoader, Optional[Tensor]]:
    """A one-hop, all-neighbour loader over every node in order, and the GCN-normalised edge weights `[E']` of the
    graph it samples from (None for convs that normalise per target node, which a one-hop subgraph gets right)."""
    edge_index, weight = data.edge_index, None
    if key is not None:
        improved, add_self_loops, flow = key
        edge_index, weight = gcn_norm(edge_index, None, data.num_nodes, improved, add_self_loops, flow,
                                      dtype=data.x.dtype if data.x.is_floating_point() else None)
    graph = Data(edge_index=edge_index, num_nodes=data.num_nodes)
    # a generator of its own: iterating a DataLoader draws a seed, which must not move the training RNG
    return neighbor_loader(graph, [-1], batch_size, shuffle=False, generator=torch.Generator()), weight


def _weighted_adj_t(batch: Data, weight: Tensor) -> Tensor:
    """The batch's edges with their whole-graph weights as a CSR `adj_t [n, n]` (row i lists the sources of i)."""
    return to_torch_csr_tensor(batch.edge_index.flip(0), weight[batch.e_id], size=batch.num_nodes)


@contextmanager
def _weights_given(conv: Optional[GCNConv]) -> Iterator[None]:
    """Within the block a GCN conv takes its adjacency as already normalised (it is: `_one_hop_graph`)."""
    if conv is None:
        yield
        return
    conv.normalize = False
    try:
        yield
    finally:
        conv.normalize = True
