"""GraphMAE: self-supervised masked graph autoencoders (Hou et al., KDD 2022), node level.

views: the graph with a random `mask_rate` fraction of nodes masked (features replaced by a learnable
token, or for a `replace_rate` share of them by another random node's features); encoder: a GNN on the
masked features; decoder: encoder-to-decoder linear map, the masked nodes' codes re-masked to zero, then a
one-layer GAT back to the input features; objective: `sce` (scaled cosine error) on the masked nodes only.
On a sampled subgraph the seed nodes and the other nodes are masked separately, each at `mask_rate`: the loss is
over the masked seeds (always int(mask_rate * B) of them), and every seed's neighbourhood is masked as densely
as in full-batch training. The decoder passes messages too, so a sample spans one hop more than the encoder.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import GATConv, GATv2Conv

from graphcl.core.checks import ArgumentError, check_positive, check_rate, check_size
from graphcl.core.losses import sce
from graphcl.graph.encoders import basic_gnn, build_encoder
from graphcl.graph.sampling import num_seeds
from graphcl.graph.sparse import graph_inputs


def mask_nodes(x: Tensor, token: Tensor, mask_rate: float, replace_rate: float = 0.0) -> tuple[Tensor, Tensor]:
    """GraphMAE's `encoding_mask_noise`: `(masked x [N, F], masked node ids [M])`, M = int(mask_rate * N).

    Of the M masked nodes, int(replace_rate * M) take the features of nodes drawn at random from the whole graph
    (without replacement; a node may draw itself) and the rest take `token [1, F]`. The official code keeps
    int((1 - replace_rate) * M) token nodes, which can leave one or two masked nodes unchanged by rounding (and
    replaces all of them when int(replace_rate * M) == 0); here every masked node is either replaced or
    tokenised. There is no BERT-style "left unchanged" share.
    """
    if not 0.0 < mask_rate < 1.0:
        raise ValueError(f"GraphMAE: mask_rate must be in (0, 1), got {mask_rate}")
    if not 0.0 <= replace_rate < 1.0:
        raise ValueError(f"GraphMAE: replace_rate must be in [0, 1), got {replace_rate}")
    n = x.size(0)
    masked = torch.randperm(n, device=x.device)[: int(mask_rate * n)]
    num_noise = int(replace_rate * masked.numel())
    out = x
    if num_noise > 0:
        noise = masked[torch.randperm(masked.numel(), device=x.device)[:num_noise]]
        tokens = masked[~torch.isin(masked, noise)]
        out = x.index_copy(0, noise, x[torch.randperm(n, device=x.device)[:num_noise]])
    else:
        tokens = masked
    is_token = torch.zeros(n, 1, dtype=torch.bool, device=x.device).index_fill_(0, tokens, True)
    return torch.where(is_token, token.to(x.dtype), out), masked


class GraphMAE(nn.Module):
    """`forward(batch) -> loss`, `embed(batch) -> [N, hidden]` (the encoder on the unmasked graph).

    `in_drop`: dropout on the encoder's and the decoder's input features (GraphMAE's `in_drop`; PyG's models
    drop out only between layers). `attn_drop`: attention dropout of every GAT layer, encoder and decoder
    (PyG's `GAT` ties it to `model.encoder.dropout`; None keeps that). `decoder_heads`: attention heads of the
    decoder (GraphMAE's `num_out_heads`, averaged). `decoder`: a module `(code [N, hidden], adj) -> [N, F]` to use
    instead of the one-layer GAT (e.g. the graph-level GIN decoder); `attn_drop` and `decoder_heads` then concern
    the encoder only.
    """

    static_graph = True  # never perturbs edges
    neighbor_sampling = True  # trains on NeighborLoader subgraphs (`data.loader: neighbor`)
    decoder_layers = 1  # message-passing layers after the encoder: a neighbour sample needs as many more hops

    def __init__(self, encoder: nn.Module, hidden_channels: int, mask_rate: float = 0.5,
                 replace_rate: float = 0.05, alpha: float = 2.0, in_drop: float = 0.0,
                 attn_drop: Optional[float] = None, decoder_heads: int = 1,
                 decoder: Optional[nn.Module] = None) -> None:
        if not (isinstance(mask_rate, (int, float)) and 0.0 < mask_rate < 1.0):
            raise ArgumentError("GraphMAE", "mask_rate", f"must be in (0, 1), got {mask_rate!r}")
        check_rate("GraphMAE", replace_rate=replace_rate, in_drop=in_drop)
        check_rate("GraphMAE", allow_none=True, attn_drop=attn_drop)
        check_positive("GraphMAE", alpha=alpha)
        check_size("GraphMAE", allow_none=False, decoder_heads=decoder_heads)
        super().__init__()
        gnn = basic_gnn(encoder)
        if gnn is None:
            raise ValueError("GraphMAE needs a PyG BasicGNN encoder (see graphcl.graph.build_encoder)")
        in_channels = gnn.in_channels
        self.encoder = encoder
        self.mask_rate, self.replace_rate, self.alpha, self.in_drop = mask_rate, replace_rate, alpha, in_drop
        self.mask_token = nn.Parameter(torch.zeros(1, in_channels))
        self.encoder_to_decoder = nn.Linear(hidden_channels, hidden_channels, bias=False)
        if decoder is not None and not isinstance(decoder, nn.Module):
            raise ValueError(f"GraphMAE: 'decoder' must be a module built in code, got {type(decoder).__name__}")
        self.decoder = decoder if decoder is not None else build_encoder(
            "gat", hidden_channels, in_channels, num_layers=1, out_channels=in_channels,
            act="relu",  # unused by a one-layer model: no parameter
            dropout=0.0 if attn_drop is None else attn_drop, act_last=False, options={"heads": decoder_heads})
        if attn_drop is not None:
            for m in encoder.modules():
                if isinstance(m, (GATConv, GATv2Conv)):
                    m.dropout = attn_drop
        self.last_masked: Optional[Tensor] = None  # ids of the nodes masked at the last step

    def forward(self, batch: Data) -> Tensor:
        x, adj = graph_inputs(batch)
        if x.layout != torch.strided:
            x = x.to_dense()
        masked_x, masked, target = self._mask(x, num_seeds(batch))
        h = self.encoder(F.dropout(masked_x, self.in_drop, self.training), adj)
        code = self.encoder_to_decoder(h).index_fill(0, masked, 0.0)  # re-mask: decode from the neighbours
        recon = self.decoder(F.dropout(code, self.in_drop, self.training), adj)
        self.last_masked = target
        return sce(recon[target], x[target], self.alpha)

    def _mask(self, x: Tensor, seeds: int) -> tuple[Tensor, Tensor, Tensor]:
        """(masked x [N, F], masked node ids, the masked seeds' ids [M]) for a graph whose first `seeds` nodes
        are its seeds: `mask_nodes` over all nodes when all are seeds, else over the seeds and over the rest
        apart."""
        if seeds == x.size(0):
            masked_x, masked = mask_nodes(x, self.mask_token, self.mask_rate, self.replace_rate)
            return masked_x, masked, masked
        head, target = mask_nodes(x[:seeds], self.mask_token, self.mask_rate, self.replace_rate)
        rest, others = mask_nodes(x[seeds:], self.mask_token, self.mask_rate, self.replace_rate)
        return torch.cat([head, rest]), torch.cat([target, others + seeds]), target

    @torch.no_grad()
    def embed(self, batch: Data) -> Tensor:
        return self.encoder(*graph_inputs(batch))
