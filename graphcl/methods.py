"""Every SSL method of graphcl under one name (DESIGN.md, "Public surface"), e.g. `graphcl.methods.GraphCL`.

Each is an `nn.Module` with `forward(batch) -> loss`, `embed(batch) -> Tensor` and, where needed,
`after_step(step, total_steps)`. The names are those of the run registry (`graphcl.train.build.METHODS`), imported
on first use, so `import graphcl.methods` does not load the image or sequence code.
"""
from typing import Any

from graphcl.train.registry import METHODS

_CLASSES = {path.rpartition(":")[2]: path for path in METHODS.values()}


def __getattr__(name: str) -> Any:
    if name in _CLASSES:
        from graphcl.core.lazy import resolve

        return resolve(_CLASSES[name])
    raise AttributeError(f"module 'graphcl.methods' has no attribute {name!r}")


__all__ = list(_CLASSES)
