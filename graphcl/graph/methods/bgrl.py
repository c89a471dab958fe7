"""BGRL: Large-Scale Representation Learning on Graphs via Bootstrapping (Thakoor et al., ICLR 2022).

views: two perturbations of the graph (edges dropped, feature columns masked, per-view rates);
encoder: an online GNN with a predictor, and a target GNN that is an EMA of the online one; energy: cosine;
objective: `neg_cosine` of each view's prediction against the target's embedding of the other view.
No negatives: the asymmetric predictor and the slowly moving target keep the solution from collapsing.
On a sampled subgraph the views are drawn on the subgraph and the objective is over its seed nodes.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from graphcl.core.checks import check_probability, check_rate, check_size
from graphcl.core.heads import prediction_head
from graphcl.core.losses import neg_cosine
from graphcl.core.momentum import copy_as_target, cosine_schedule, ema_update
from graphcl.graph.encoders import reset_parameters
from graphcl.graph.sampling import seed_rows
from graphcl.graph.sparse import graph_inputs
from graphcl.graph.gcn_views import EdgeFeatureViews
from graphcl.graph.views import edge_feature_draws


class BGRL(nn.Module):
    """`forward(batch) -> loss`, `after_step(step, total_steps)` (EMA update of the target),
    `embed(batch) -> [N, hidden]` (the online encoder's output on the whole graph).

    Args:
        drop_edge_1, drop_edge_2, drop_feature_1, drop_feature_2: per-view augmentation rates.
        pred_hidden: hidden width of the predictor Linear -> PReLU -> Linear (BGRL's, no norm).
        momentum_start: EMA momentum at step 0, raised to 1 along a cosine over training.
        reinit_target: draw the target's initial weights afresh, as the official BGRL code does (else it
            starts as an exact copy of the online encoder, as in BYOL).
    """

    static_graph = False  # perturbs edges: a GCN must not cache its normalised adjacency
    sparse_features = True  # masks whole feature columns, which CSR features support
    neighbor_sampling = True  # trains on NeighborLoader subgraphs (`data.loader: neighbor`)

    def __init__(self, encoder: nn.Module, hidden_channels: int, drop_edge_1: float = 0.5,
                 drop_edge_2: float = 0.3, drop_feature_1: float = 0.2, drop_feature_2: float = 0.5,
                 pred_hidden: int = 512, momentum_start: float = 0.99, reinit_target: bool = True) -> None:
        check_rate("BGRL", drop_edge_1=drop_edge_1, drop_edge_2=drop_edge_2, drop_feature_1=drop_feature_1,
                   drop_feature_2=drop_feature_2)
        check_probability("BGRL", momentum_start=momentum_start)
        check_size("BGRL", allow_none=False, pred_hidden=pred_hidden)
        super().__init__()
        self.encoder = encoder
        self.views = EdgeFeatureViews()  # sparse GCN products on whole graphs, shared by online and target
        self.predictor = prediction_head(hidden_channels, pred_hidden, norm=None, act="prelu")
        self.target = copy_as_target(encoder)
        if reinit_target:
            reset_parameters(self.target)
        self.momentum_start = momentum_start
        self.rates = ((drop_edge_1, drop_feature_1), (drop_edge_2, drop_feature_2))

    def forward(self, batch: Data) -> Tensor:
        draws = [edge_feature_draws(batch, *rates) for rates in self.rates]
        p1, p2 = (self.predictor(seed_rows(batch, self.views(self.encoder, batch, d))) for d in draws)
        with torch.no_grad():
            t1, t2 = (seed_rows(batch, self.views(self.target, batch, d)) for d in draws)
        return neg_cosine(p1, t2) + neg_cosine(p2, t1)

    def after_step(self, step: int, total_steps: int) -> None:
        """EMA update after optimiser step `step` (1-based): m follows the cosine ramp from
        `momentum_start` to 1 over 0-based steps, as the official code schedules it."""
        m = cosine_schedule(step - 1, total_steps, self.momentum_start, 1.0)
        ema_update(self.encoder, self.target, m)

    @torch.no_grad()
    def embed(self, batch: Data) -> Tensor:
        return self.encoder(*graph_inputs(batch))
