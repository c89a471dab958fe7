"""Graph SSL methods, each a short composition of core parts."""
from graphcl.graph.methods.dgi import DGI

__all__ = ["DGI"]
