"""GNN encoders (PyG BasicGNN models), graph views and graph SSL methods."""
from graphcl.graph.encoders import ENCODERS, build_encoder
from graphcl.graph.views import ShuffleFeatures, shuffle_features

__all__ = ["ENCODERS", "build_encoder", "ShuffleFeatures", "shuffle_features"]
