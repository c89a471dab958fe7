"""graphcl: self-supervised learning for graphs, images and sequences on one shared core."""
from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# Heavy entry points are imported lazily so `import graphcl` stays cheap (CLI start-up, `--help`).
_LAZY = {
    "load_encoder": "graphcl.train.artifacts",
    "pretrain": "graphcl.train.run",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'graphcl' has no attribute {name!r}")


__all__ = ["__version__", *_LAZY]
