"""The dataset registry: case-insensitive names mapped to the standard loaders, their folders and files.

Importing this module is cheap; the loaders (torch_geometric, ogb) are imported only when a dataset's
files are listed or the dataset is built.
"""
import csv
import difflib
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from graphcl.data.paths import resolve_root

__all__ = [
    "DatasetNotFoundError",
    "DatasetSpec",
    "get_spec",
    "list_datasets",
    "dataset_info",
    "require_files",
]


class DatasetNotFoundError(FileNotFoundError):
    """Raw files missing under the data root; nothing is ever downloaded."""


_LEVELS = {
    "planetoid": "node",
    "amazon": "node",
    "coauthor": "node",
    "wikics": "node",
    "ogbn": "node",
    "tu": "graph",
    "ogbg": "graph",
}


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: the exact name its loader expects and its loader family (a key of `_LEVELS`)."""

    name: str
    family: str

    @property
    def level(self) -> str:
        """The task level, "node" or "graph"."""
        return _LEVELS[self.family]

    @property
    def folder(self) -> str:
        """The dataset's folder under the data root, derived as its loader derives it."""
        if self.family == "amazon":
            return self.name.capitalize()
        if self.family in ("ogbn", "ogbg"):
            return self.name.replace("-", "_")
        return self.name

    @property
    def loader(self) -> type:
        """The (never downloading) loader class."""
        from graphcl.data.loaders import LOADERS

        return LOADERS[self.family]

    def files(self) -> list[str]:
        """The files the loader reads, relative to the folder."""
        if self.family in ("ogbn", "ogbg"):
            return _ogb_files(self.name, self.level)
        # The common families spelled out as PyG names them (a test keeps these equal to the loaders' own
        # lists), so the offline check needs no torch_geometric import and fails within a second.
        if self.family == "planetoid":
            return [f"raw/ind.{self.name.lower()}.{part}" for part in _PLANETOID_PARTS]
        if self.family == "tu":
            return [f"raw/{self.name}_{part}.txt" for part in ("A", "graph_indicator")]
        # The loader's own list, computed on a stand-in: constructing the loader would process or download.
        raw = self.loader.raw_file_names.fget(SimpleNamespace(name=self.name))
        return [f"raw/{f}" for f in ([raw] if isinstance(raw, str) else raw)]

    def loader_kwargs(self, shadow_root: Path) -> dict[str, Any]:
        """Constructor arguments for a loader reading from `shadow_root` (see `paths.shadow_folder`)."""
        if self.family == "wikics":  # WikiCS has no name: its root is the dataset folder itself
            return {"root": str(shadow_root / self.folder), "is_undirected": True}
        return {"root": str(shadow_root), "name": self.name}


_PLANETOID_PARTS = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


def _ogb_files(name: str, level: str) -> list[str]:
    """Everything OGB reads: its `raw_file_names` lists only part of what `process()` opens."""
    package = "ogb.graphproppred" if level == "graph" else "ogb.nodeproppred"
    rows = list(csv.reader((resources.files(package) / "master.csv").read_text().splitlines()))
    column = rows[0].index(name)
    meta = {row[0]: row[column] for row in rows[1:]}
    label = f"{level}-label"
    if meta["binary"] == "True":
        raw = ["data.npz", f"{label}.npz"]
    else:
        stems = ["edge", "num-node-list", "num-edge-list", label]
        for stem, flag in (("node-feat", "has_node_attr"), ("edge-feat", "has_edge_attr")):
            stems += [stem] if meta[flag] == "True" else []
        for key in ("additional node files", "additional edge files"):
            stems += [] if meta[key] == "None" else meta[key].split(",")
        raw = [f"{s}.csv.gz" for s in stems]
    splits = [f"split/{meta['split']}/{part}.csv.gz" for part in ("train", "valid", "test")]
    # Without the release marker ogb asks on stdin whether to re-download: it is required too.
    return [f"RELEASE_v{meta['version']}.txt", *(f"raw/{f}" for f in raw), *splits]


_SPECS = [
    *(DatasetSpec(name, "planetoid") for name in ("Cora", "CiteSeer", "PubMed")),
    *(
        DatasetSpec(name, "tu")
        for name in "MUTAG PTC_MR PROTEINS NCI1 DD IMDB-BINARY IMDB-MULTI REDDIT-BINARY COLLAB".split()
    ),
    *(DatasetSpec(name, "ogbn") for name in ("ogbn-arxiv", "ogbn-products", "ogbn-papers100M")),
    *(
        DatasetSpec(f"ogbg-mol{name}", "ogbg")
        for name in "bace bbbp clintox esol freesolv hiv lipo muv pcba sider tox21 toxcast".split()
    ),
    *(DatasetSpec(name, "amazon") for name in ("Computers", "Photo")),
    *(DatasetSpec(name, "coauthor") for name in ("CS", "Physics")),
    DatasetSpec("WikiCS", "wikics"),
]
_REGISTRY = {spec.name.lower(): spec for spec in _SPECS}
# Spellings used by SSL papers and their configs.
_ALIASES = {
    "amazon-computers": "computers",
    "amazon-photo": "photo",
    "coauthor-cs": "cs",
    "coauthor-physics": "physics",
}


def list_datasets() -> list[str]:
    """The registered datasets, by their exact loader names (lookups ignore case)."""
    return [spec.name for spec in _SPECS]


def get_spec(name: str, root: str | os.PathLike | None = None) -> DatasetSpec:
    """The registry entry for `name`, in any case; unregistered TU datasets under the root pass by exact name."""
    key = _ALIASES.get(name.lower(), name.lower())
    if key in _REGISTRY:
        return _REGISTRY[key]
    if (resolve_root(root) / name / "raw").is_dir():
        return DatasetSpec(name, "tu")
    close = difflib.get_close_matches(key, [*_REGISTRY, *_ALIASES], n=1)
    hint = f"did you mean '{close[0]}'?" if close else "see list_datasets(); other TU datasets need <root>/<NAME>/raw"
    raise ValueError(f"unknown dataset '{name}' ({hint})")


def _missing(files: list[str], folder: Path) -> list[str]:
    return [f for f in files if not (folder / f).is_file()]


def require_files(spec: DatasetSpec, root: Path) -> None:
    """Raise `DatasetNotFoundError`, one line naming the missing files, unless the loader finds all it reads."""
    folder, files = root / spec.folder, spec.files()
    missing = _missing(files, folder)
    if not missing:
        return
    base = Path(os.path.commonpath([(folder / f).parent for f in missing]))
    names = ", ".join(os.path.relpath(folder / f, base) for f in missing)
    verb = "expected" if len(missing) == len(files) else "missing"
    raise DatasetNotFoundError(
        f"dataset '{spec.name}' not found: {verb} files {names} in {base} (set data.root or GRAPHCL_DATA)"
    )


def dataset_info(name: str, root: str | os.PathLike | None = None) -> dict[str, Any]:
    """What `graphcl list` shows: exact name, task level, loader, folder, expected and missing files."""
    spec = get_spec(name, root)
    folder, files = resolve_root(root) / spec.folder, spec.files()
    upstream = spec.loader.__bases__[-1]  # the class the offline loader wraps
    package = upstream.__module__.rpartition(".")[0]  # which re-exports it, e.g. torch_geometric.datasets
    return {
        "name": spec.name,
        "level": spec.level,
        "loader": f"{package}.{upstream.__qualname__}",
        "folder": str(folder),
        "files": files,
        "missing": _missing(files, folder),
    }
