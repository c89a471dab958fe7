"""Datasets: root and cache resolution, the registry of names, offline loading, synthetic graphs of any size."""
from importlib import import_module
from typing import Any

from graphcl.data.paths import cache_dir, resolve_root
from graphcl.data.registry import SYNTHETIC_SIZES, DatasetNotFoundError, dataset_info, get_spec, list_datasets

# Loading imports torch_geometric and ogb (seconds): only on first use, so importing this stays quick.
_LAZY = {
    "load_dataset": "graphcl.data.loading",
    "DatasetCorruptError": "graphcl.data.loading",
    "make_synthetic_node_data": "graphcl.data.synthetic",
    "make_synthetic_graph": "graphcl.data.synthetic",
    "SyntheticNodeDataset": "graphcl.data.synthetic",
    "InvalidDataError": "graphcl.data.validate",
    "validate_dataset": "graphcl.data.validate",
    "validate_graph": "graphcl.data.validate",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'graphcl.data' has no attribute {name!r}")


__all__ = [
    "resolve_root",
    "cache_dir",
    "list_datasets",
    "get_spec",
    "dataset_info",
    "DatasetNotFoundError",
    "SYNTHETIC_SIZES",
    *_LAZY,
]
