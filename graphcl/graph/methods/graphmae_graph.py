"""GraphMAE: self-supervised masked graph autoencoders (Hou et al., KDD 2022), graph level.

The node-level `GraphMAE` on mini-batches of whole graphs: views: a random `mask_rate` fraction of the batch's
nodes masked (`mask_nodes`: mask token, or another node's features for a `replace_rate` share); encoder: a GIN;
decoder: encoder-to-decoder linear map, masked nodes' codes re-masked to zero, then one GIN layer (its MLP
`hidden -> hidden -> F`, with the encoder's norm and activation) back to the input features; objective: `sce` on
the masked nodes only. Embedding: the encoder's node outputs on the unmasked graphs, pooled per graph (`pool`).
"""
from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch
from torch_geometric.nn import GINConv
from torch_geometric.nn.models import GIN
from torch_geometric.nn.models.basic_gnn import BasicGNN

from graphcl.graph.encoders import basic_gnn, reset_parameters
from graphcl.graph.methods.graphmae import GraphMAE
from graphcl.graph.readout import POOLS, encoder_inputs, graph_embeddings


def gin_decoder(gnn: BasicGNN, hidden_channels: int, out_channels: int) -> GINConv:
    """GraphMAE's one-layer GIN decoder `[N, hidden] -> [N, out]`: sum aggregation (eps 0), then
    Linear-norm-act-Linear with fresh copies of the encoder's first norm and its activation (both in
    `norms[0]` when the encoder has its own activation per layer, `own_activations`)."""
    norm_act = reset_parameters(nn.Sequential(*[copy.deepcopy(m) for m in (gnn.norms[0], gnn.act) if m is not None]))
    return GINConv(nn.Sequential(nn.Linear(hidden_channels, hidden_channels), *norm_act,
                                 nn.Linear(hidden_channels, out_channels)))


class GraphMAEGraph(GraphMAE):
    """`forward(batch) -> loss` (`GraphMAE`'s), `embed(batch) -> [G, hidden]` (pooled encoder output).

    `pool`: "sum", "mean" or "max" (GraphMAE's `pooling`). The encoder must be a PyG GIN
    (`model.encoder.name: gin`).
    """

    task = "graph"
    static_graph = False  # mini-batches of different graphs: nothing to cache

    def __init__(self, encoder: nn.Module, hidden_channels: int, mask_rate: float = 0.5,
                 replace_rate: float = 0.0, alpha: float = 2.0, in_drop: float = 0.0, pool: str = "mean") -> None:
        gnn = basic_gnn(encoder)
        if not isinstance(gnn, GIN):
            raise ValueError("GraphMAEGraph needs a GIN encoder (model.encoder.name: gin)")
        if pool not in POOLS:
            raise ValueError(f"GraphMAEGraph: unknown key 'pool' value {pool!r}; choose one of {', '.join(POOLS)}")
        decoder = gin_decoder(gnn, hidden_channels, gnn.in_channels)
        super().__init__(encoder, hidden_channels, mask_rate=mask_rate, replace_rate=replace_rate, alpha=alpha,
                         in_drop=in_drop, decoder=decoder)
        self.pool = pool

    def forward(self, batch: Batch) -> Tensor:
        _, adj = encoder_inputs(self.encoder, batch)  # a CSR adj_t for PyG's GIN: faster on mini-batches
        if adj is not batch.edge_index:
            batch = copy.copy(batch)
            batch.adj_t = adj  # what `GraphMAE.forward` (its `graph_inputs`) propagates with
        return super().forward(batch)

    @torch.no_grad()
    def embed(self, batch: Batch) -> Tensor:
        return graph_embeddings(self.encoder, batch, self.pool)
