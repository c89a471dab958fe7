"""Graph-level readout: node embeddings pooled per graph of a `Batch`."""
from __future__ import annotations

from typing import Optional

import torch

from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool
from torch_geometric.nn.models import GCN, GIN, GraphSAGE
from torch_geometric.utils import to_torch_csr_tensor

from graphcl.graph.encoders import basic_gnn, gin_layers_on, plain_gin_convs, reads_edge_attr
from graphcl.graph.sparse import adjacency_operand, graph_inputs

POOLS = {"sum": global_add_pool, "mean": global_mean_pool, "max": global_max_pool}


def readout(h: Tensor, batch: Optional[Tensor], num_graphs: Optional[int] = None, pool: str = "sum") -> Tensor:
    """`h [N, D]` pooled per graph (`batch [N]`, sorted graph ids) -> `[G, D]`."""
    if pool not in POOLS:
        raise ValueError(f"unknown pool {pool!r}; choose one of {', '.join(POOLS)}")
    return POOLS[pool](h, batch, num_graphs)


def encoder_inputs(encoder: nn.Module, batch: Data) -> tuple[Tensor, Tensor]:
    """(x, adjacency) for `encoder` on a mini-batch of graphs: a CSR `adj_t` (row i lists the sources of node i)
    when the encoder's convs aggregate by a sparse product (GCN, GIN, GraphSAGE: ~40 % faster than PyG's
    gather-scatter on TU batches, forward and backward), else `edge_index`. (`node_embeddings` runs a plain GIN
    faster still.)"""
    x, adj = graph_inputs(batch)
    if adj.layout == torch.strided and isinstance(basic_gnn(encoder), (GCN, GIN, GraphSAGE)):
        dtype = x.dtype if isinstance(x, Tensor) and x.is_floating_point() else None
        ones = torch.ones(adj.size(1), dtype=dtype, device=adj.device)
        adj = to_torch_csr_tensor(adj.flip(0), ones, size=(batch.num_nodes, batch.num_nodes))  # x's dtype
    return x, adj


def node_embeddings(encoder: nn.Module, batch: Data) -> Tensor:
    """`[N, D]`: the encoder's output on the nodes of `batch`. A plain PyG GIN (`plain_gin_convs`) runs its sum
    aggregation as a CSR product against the batch's adjacency, built once for all layers with its transpose
    for the backward (`adjacency_operand`); other encoders, and any under autocast (the adjacency keeps the
    features' dtype), get `encoder_inputs`. An encoder that reads edge features (`reads_edge_attr`: OGB's bond
    features) gets the batch's `edge_attr`."""
    if reads_edge_attr(encoder):
        return encoder(*encoder_inputs(encoder, batch), edge_attr=batch.get("edge_attr"))
    convs = plain_gin_convs(encoder)
    x = batch.x
    if (convs is not None and "adj_t" not in batch and x is not None and x.layout == torch.strided
            and not torch.is_autocast_enabled(x.device.type)):
        with gin_layers_on(convs, adjacency_operand(batch.edge_index, x.size(0), x.dtype)):
            return encoder(x, batch.edge_index)
    return encoder(*encoder_inputs(encoder, batch))


def graph_embeddings(encoder: nn.Module, batch: Data, pool: str = "sum") -> Tensor:
    """`[G, D]` for the graphs of `batch`: the encoder's node embeddings (`node_embeddings`) pooled per graph, or
    the encoder's own output when it is graph-level (`graph_level = True`: `forward(x, edge_index, batch) ->
    [G, D]`)."""
    if getattr(encoder, "graph_level", False):
        x, adj = graph_inputs(batch)
        return encoder(x, adj, batch.batch)
    return readout(node_embeddings(encoder, batch), batch.batch, batch.num_graphs, pool)
