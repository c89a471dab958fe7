"""GNN encoders: PyG's own `BasicGNN` models, configured by name.

A trained encoder is a plain PyG module (`GCN`, `GraphSAGE`, `GAT`, `GIN`, or a PyG `Sequential` of one of
them and its output activation), so it drops into any PyG pipeline without graphcl.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn
from torch_geometric.nn import Sequential
from torch_geometric.nn.models import GAT, GCN, GIN, GraphSAGE
from torch_geometric.nn.resolver import activation_resolver

ENCODERS = {"gcn": GCN, "sage": GraphSAGE, "gat": GAT, "gin": GIN}


def build_encoder(
    name: str,
    in_channels: int,
    hidden_channels: int,
    num_layers: int,
    out_channels: Optional[int] = None,
    act: str = "prelu",
    dropout: float = 0.0,
    norm: Optional[str] = None,
    act_last: bool = True,
    **kwargs: Any,
) -> nn.Module:
    """A PyG `BasicGNN` `in_channels -> hidden_channels (x num_layers) -> out_channels`.

    PyG applies the activation between layers only; `act_last=True` also activates the output (as DGI, GRACE
    and BGRL do) by wrapping the model in a PyG `Sequential('x, edge_index', [gnn, act])`.
    `forward(x [N, F], edge_index [2, E] or sparse adjacency) -> [N, out_channels or hidden_channels]`.
    """
    key = name.lower()
    if key not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; choose one of {', '.join(ENCODERS)}")
    gnn = ENCODERS[key](
        in_channels,
        hidden_channels,
        num_layers,
        out_channels=out_channels,
        act=act,
        dropout=dropout,
        norm=norm,
        **kwargs,
    )
    if not act_last:
        return gnn
    return Sequential("x, edge_index", [(gnn, "x, edge_index -> x"), activation_resolver(act)])


def encoder_out_channels(encoder: nn.Module) -> int:
    """Width of an encoder built by `build_encoder`."""
    gnn = encoder if hasattr(encoder, "out_channels") else next(
        m for m in encoder.modules() if hasattr(m, "out_channels") and isinstance(m, torch.nn.Module)
    )
    return int(gnn.out_channels)
