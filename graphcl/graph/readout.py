"""Graph-level readout: node embeddings pooled per graph of a `Batch`."""
from __future__ import annotations

from typing import Optional

from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool

from graphcl.graph.sparse import graph_inputs

POOLS = {"sum": global_add_pool, "mean": global_mean_pool, "max": global_max_pool}


def readout(h: Tensor, batch: Optional[Tensor], num_graphs: Optional[int] = None, pool: str = "sum") -> Tensor:
    """`h [N, D]` pooled per graph (`batch [N]`, sorted graph ids) -> `[G, D]`."""
    if pool not in POOLS:
        raise ValueError(f"unknown pool {pool!r}; choose one of {', '.join(POOLS)}")
    return POOLS[pool](h, batch, num_graphs)


def graph_embeddings(encoder: nn.Module, batch: Data, pool: str = "sum") -> Tensor:
    """`[G, D]` for the graphs of `batch`: the encoder's node embeddings pooled per graph, or the encoder's own
    output when it is graph-level (`graph_level = True`: `forward(x, edge_index, batch) -> [G, D]`)."""
    x, adj = graph_inputs(batch)
    if getattr(encoder, "graph_level", False):
        return encoder(x, adj, batch.batch)
    return readout(encoder(x, adj), batch.batch, batch.num_graphs, pool)
