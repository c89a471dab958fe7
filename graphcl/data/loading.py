"""`load_dataset`: check the raw files, build the standard loader on a cache shadow, add feature transforms."""
import os
from pathlib import Path

import torch
import torch.nn.functional as F
import torch_geometric.transforms as T
from filelock import FileLock
from torch_geometric.data import Data, Dataset
from torch_geometric.transforms import BaseTransform
from torch_geometric.utils import degree

from graphcl.data.paths import resolve_root, shadow_folder
from graphcl.data.registry import DatasetNotFoundError, DatasetSpec, get_spec, require_files

__all__ = ["load_dataset", "DatasetCorruptError", "CappedOneHotDegree", "DEGREE_CAP", "FEATURES"]

FEATURES = ("auto", "degree", "append_degree", "constant")
# One-hot degree width is capped: above a few hundred, each degree slot holds a handful of hub nodes
# (REDDIT-BINARY: max degree 3062, 0.06% of nodes above 200) while the input layer grows with the cap.
# 200 keeps the features GraphCL/InfoGraph use on IMDB-BINARY (max 135) and IMDB-MULTI (max 88) intact.
DEGREE_CAP = 200


class DatasetCorruptError(RuntimeError):
    """The raw files are all there, but the loader failed to read them."""


class CappedOneHotDegree(BaseTransform):
    """Set `x` to the one-hot out-degree (as `T.OneHotDegree`), or with `cat` append it to the existing `x`;
    degrees above `max_degree` share the last slot."""

    def __init__(self, max_degree: int, cat: bool = False) -> None:
        self.max_degree, self.cat = max_degree, cat

    def forward(self, data: Data) -> Data:
        deg = degree(data.edge_index[0], data.num_nodes, dtype=torch.long).clamp_(max=self.max_degree)
        onehot = F.one_hot(deg, self.max_degree + 1).float()
        x = data.x
        if self.cat and x is not None:
            onehot = torch.cat([x.view(data.num_nodes, -1).float(), onehot], dim=1)
        data.x = onehot
        return data

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.max_degree}{', cat=True' if self.cat else ''})"


def load_dataset(
    name: str,
    root: str | os.PathLike | None = None,
    features: str = "auto",
    normalize_features: bool = False,
) -> Dataset:
    """Load a registered dataset (name in any case) from the data root, never downloading.

    Processed files go to the cache (see `paths.shadow_folder`), so a second call is fast and the root may
    be read-only. Feature options are applied as `dataset.transform`, so they never alter the cache.

    Args:
        name: a name from `list_datasets()`, the exact name of a TU dataset present under the root, or a
            synthetic graph, `synthetic:arxiv-like` or `synthetic:nodes=...` (generated once into the cache).
        root: the data root (config `data.root`); default `$GRAPHCL_DATA`, else `./datasets`.
        features: "auto" keeps existing features and gives featureless graphs one-hot degrees;
            "degree" (one-hot degree, capped at `DEGREE_CAP`) or "constant" (a single 1) replace them;
            "append_degree" appends the one-hot degree to them (MVGRL's graph-level code does).
        normalize_features: row-normalise `x` (`T.NormalizeFeatures`).

    Raises:
        ValueError: unknown name or feature option.
        DatasetNotFoundError: raw files missing (one line naming them and the folder).
        DatasetCorruptError: the loader failed on the raw files (one line naming the file where known).
    """
    if features not in FEATURES:
        raise ValueError(f"features must be one of {FEATURES}, got {features!r}")
    root = resolve_root(root)
    spec = get_spec(name, root)
    if spec.family == "synthetic":  # generated into the cache (graphcl.data.synthetic): no raw files
        dataset = spec.loader(**spec.loader_kwargs(root))
    else:
        dataset = _read_raw(spec, root)
    steps = _feature_steps(dataset, features, normalize_features)
    if steps:
        dataset.transform = T.Compose(steps)
    return dataset


def _read_raw(spec: DatasetSpec, root: Path) -> Dataset:
    """The standard loader of `spec` on the cache shadow of `root`, after checking its raw files."""
    require_files(spec, root)
    shadow = shadow_folder(root, spec.folder)
    try:
        # PyG's loaders write processed/ in place: a second process starting on a fresh cache would read
        # half-written files. One processes at a time; the others then load what it wrote.
        with FileLock(processing_lock(shadow)):
            return spec.loader(**spec.loader_kwargs(shadow.parent))
    except DatasetNotFoundError:
        raise
    except Exception as err:
        culprit = _file_in_traceback(err, spec.files())
        detail = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise DatasetCorruptError(
            f"dataset '{spec.name}' could not be read from {root / spec.folder / (culprit or '')}: "
            f"{type(err).__name__}: {detail} (processed files: {shadow})"
        ) from err


def processing_lock(shadow: Path) -> Path:
    """The lock file held while a loader reads or processes the dataset of the cache folder `shadow`."""
    return shadow.parent / f".{shadow.name}.lock"


def _feature_steps(dataset: Dataset, features: str, normalize: bool) -> list[BaseTransform]:
    """The transforms that give `dataset` the requested node features."""
    steps: list[BaseTransform] = []
    if features == "constant":
        steps.append(T.Constant(cat=False))
    elif features in ("degree", "append_degree") or dataset[0].x is None:
        # Max degree over the whole dataset, so every graph gets features of the same width.
        max_degree = int(torch.cat([degree(g.edge_index[0], g.num_nodes) for g in dataset]).max())
        steps.append(CappedOneHotDegree(min(max_degree, DEGREE_CAP), cat=features == "append_degree"))
    if normalize:
        steps.append(T.NormalizeFeatures())
    return steps


def _file_in_traceback(err: BaseException, files: list[str]) -> str | None:
    """Which of `files` the loader was reading when it failed: the one the deepest frame holds a path to."""
    by_name = {os.path.basename(f): f for f in files}
    found, tb = None, err.__traceback__
    while tb is not None:
        for value in tb.tb_frame.f_locals.values():
            if isinstance(value, str | Path) and os.path.basename(value) in by_name:
                found = by_name[os.path.basename(value)]
        tb = tb.tb_next
    return found
