"""Graph SSL methods, each a short composition of core parts."""
from graphcl.graph.methods.bgrl import BGRL
from graphcl.graph.methods.ccassg import CCASSG
from graphcl.graph.methods.dgi import DGI
from graphcl.graph.methods.grace import GRACE
from graphcl.graph.methods.graphcl import GraphCL
from graphcl.graph.methods.graphmae import GraphMAE
from graphcl.graph.methods.infograph import InfoGraph
from graphcl.graph.methods.mvgrl import MVGRL

__all__ = ["DGI", "GRACE", "BGRL", "CCASSG", "GraphMAE", "MVGRL", "GraphCL", "InfoGraph"]
