"""The standard loaders, made unable to download.

`load_dataset` checks the raw files before building a loader, so `download()` is never reached; should it
be, it fails at once instead of fetching, prompting (ogb's `decide_download`) or exiting (ogb's `exit(-1)`).
"""
import numpy as np
import torch
from ogb.graphproppred import PygGraphPropPredDataset as _OgbGraph
from ogb.nodeproppred import PygNodePropPredDataset as _OgbNode
from torch_geometric import datasets as pyg
from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
from torch_geometric.data.storage import GlobalStorage

from graphcl.data.registry import DatasetNotFoundError
from graphcl.data.synthetic import SyntheticNodeDataset

__all__ = ["LOADERS"]

# ogb 1.3.6 reloads its processed files with plain `torch.load`, which since torch 2.6 only unpickles
# allow-listed classes: allow the PyG ones it saved, and the numpy int64 scalar that binary datasets
# (ogbn-papers100M) store as `num_nodes` (read from `num_nodes_list` in data.npz).
_NUMPY_SCALAR = np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar  # numpy 2 / 1
torch.serialization.add_safe_globals(
    [DataEdgeAttr, DataTensorAttr, GlobalStorage, _NUMPY_SCALAR, np.dtype, type(np.dtype(np.int64))]
)


class _Offline:
    """Mixin replacing the loader's `download()`."""

    raw_dir: str

    def download(self) -> None:
        raise DatasetNotFoundError(f"raw files missing in {self.raw_dir}; graphcl never downloads")


class Planetoid(_Offline, pyg.Planetoid):
    """Planetoid that never downloads."""


class TUDataset(_Offline, pyg.TUDataset):
    """TUDataset that never downloads."""


class Amazon(_Offline, pyg.Amazon):
    """Amazon that never downloads."""


class Coauthor(_Offline, pyg.Coauthor):
    """Coauthor that never downloads."""


class WikiCS(_Offline, pyg.WikiCS):
    """WikiCS that never downloads."""


class PygNodePropPredDataset(_Offline, _OgbNode):
    """OGB node property prediction dataset that never downloads."""


class PygGraphPropPredDataset(_Offline, _OgbGraph):
    """OGB graph property prediction dataset that never downloads."""


LOADERS: dict[str, type] = {
    "planetoid": Planetoid,
    "tu": TUDataset,
    "amazon": Amazon,
    "coauthor": Coauthor,
    "wikics": WikiCS,
    "ogbn": PygNodePropPredDataset,
    "ogbg": PygGraphPropPredDataset,
    "synthetic": SyntheticNodeDataset,  # generated, so nothing to download
}
