"""Every SSL method of graphcl under one name (DESIGN.md, "Public surface").

Each is an `nn.Module` with `forward(batch) -> loss`, `embed(batch) -> Tensor` and, where needed,
`after_step(step, total_steps)`. Image and sequence methods join as their issues land.
"""
from graphcl.graph.methods import BGRL, CCASSG, DGI, GRACE, MVGRL, GraphCL, GraphMAE, InfoGraph

__all__ = ["DGI", "GRACE", "MVGRL", "BGRL", "CCASSG", "GraphMAE", "GraphCL", "InfoGraph"]
