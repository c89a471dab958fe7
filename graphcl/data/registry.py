"""The dataset registry: case-insensitive names mapped to the standard loaders, their folders and files.

Importing this module is cheap; the loaders (torch_geometric, ogb) are imported only when a dataset's
files are listed or the dataset is built.
"""
import csv
import difflib
import math
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from graphcl.data.paths import cache_dir, resolve_root

__all__ = [
    "DatasetNotFoundError",
    "DatasetSpec",
    "get_spec",
    "list_datasets",
    "dataset_info",
    "require_files",
    "SYNTHETIC_SIZES",
    "SYNTHETIC_DEFAULTS",
    "synthetic_kwargs",
    "check_synthetic",
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
    "synthetic": "node",
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
        if self.family == "synthetic":  # nothing is read from the root: the graph is generated
            return "synthetic"
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
        if self.family == "synthetic":
            return []
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
        if self.family == "synthetic":  # generated into the cache, nothing under a root
            return {"name": self.name}
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
    """The registry entry for `name`, in any case; unregistered TU datasets under the root pass by exact name.

    `synthetic:...` names (see `synthetic_kwargs`) give a spec under their canonical spelling.
    """
    if name.lower().startswith(_SYNTHETIC):
        return DatasetSpec(synthetic_kwargs(name)[0], "synthetic")
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
    if spec.family == "synthetic":
        return {"name": spec.name, "level": spec.level, "loader": "graphcl.data.synthetic.make_synthetic_graph",
                "folder": str(cache_dir() / "synthetic"), "files": [], "missing": []}
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


# --- synthetic graphs -----------------------------------------------------------------------------------------
# Parsed here, without torch, so the CLI rejects a bad name within a second; generated by graphcl.data.synthetic.

_SYNTHETIC = "synthetic:"
# name key -> (make_synthetic_graph argument, type); the first four are required unless a size is named.
_SYNTHETIC_KEYS = {
    "nodes": ("num_nodes", int),
    "edges": ("num_edges", int),
    "features": ("num_features", int),
    "classes": ("num_classes", int),
    "homophily": ("homophily", float),
    "skew": ("skew", float),
    "noise": ("noise", float),
    "train": ("train", float),
    "valid": ("valid", float),
    "seed": ("seed", int),
}
# The optional keys' values when not given (the defaults of `make_synthetic_graph`).
SYNTHETIC_DEFAULTS: dict[str, float] = {"homophily": 0.7, "skew": 0.5, "noise": 0.5, "train": 0.54, "valid": 0.18,
                                        "seed": 0}
# The OGB node datasets' sizes ("edges": their undirected pairs; ogbn-arxiv lists 1,166,243 directed edges,
# here the same number of pairs), edge homophily and official split fractions.
SYNTHETIC_SIZES: dict[str, dict[str, float]] = {
    "arxiv-like": {"nodes": 169_343, "edges": 1_166_243, "features": 128, "classes": 40, "homophily": 0.65,
                   "train": 90_941 / 169_343, "valid": 29_799 / 169_343},
    "products-like": {"nodes": 2_449_029, "edges": 61_859_140, "features": 100, "classes": 47, "homophily": 0.81,
                      "train": 196_615 / 2_449_029, "valid": 39_323 / 2_449_029},
}


def synthetic_kwargs(name: str) -> tuple[str, dict[str, float]]:
    """(canonical name, `make_synthetic_graph` keyword arguments) of a synthetic dataset name.

    Spellings, case-insensitive: `synthetic:<size>` for a size of `SYNTHETIC_SIZES`, optionally followed by
    `,key=value` overrides (`synthetic:arxiv-like,seed=1`), or `synthetic:nodes=N,edges=E,features=F,classes=C`
    plus optional `homophily`, `skew`, `noise`, `train`, `valid`, `seed` (see `make_synthetic_graph`).
    The canonical name lists the keys given that change the graph, in that order; the arguments hold every
    key (`SYNTHETIC_DEFAULTS` for those not given), so all spellings of one graph share its cache file.
    Raises `ValueError`, one line naming the bad key or value.
    """
    if not name.lower().startswith(_SYNTHETIC):
        raise ValueError(f"synthetic dataset names start with '{_SYNTHETIC}', got '{name}'")
    parts = [p.strip() for p in name[len(_SYNTHETIC):].lower().split(",") if p.strip()]
    size = parts.pop(0) if parts and "=" not in parts[0] else None
    if size is not None and size not in SYNTHETIC_SIZES:
        close = difflib.get_close_matches(size, list(SYNTHETIC_SIZES), n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"sizes: {', '.join(SYNTHETIC_SIZES)}"
        raise ValueError(f"dataset '{name}': unknown synthetic size '{size}' ({hint})")
    given: dict[str, float] = {}
    for part in parts:
        key, eq, text = (s.strip() for s in part.partition("="))
        if key not in _SYNTHETIC_KEYS:
            raise ValueError(f"dataset '{name}': unknown key '{key}' (keys: {', '.join(_SYNTHETIC_KEYS)})")
        if not eq or not text:
            raise ValueError(f"dataset '{name}': key '{key}' needs a value ({key}=...)")
        if key in given:
            raise ValueError(f"dataset '{name}': key '{key}' given twice")
        kind = _SYNTHETIC_KEYS[key][1]
        try:
            given[key] = kind(text)
        except ValueError:
            raise ValueError(f"dataset '{name}': key '{key}' needs {'an integer' if kind is int else 'a number'}, "
                             f"got '{text}'") from None
    implied = {**SYNTHETIC_DEFAULTS, **SYNTHETIC_SIZES.get(size, {})}
    values = {**implied, **given}
    missing = [key for key in list(_SYNTHETIC_KEYS)[:4] if key not in values]
    if missing:
        raise ValueError(f"dataset '{name}': missing keys {', '.join(missing)} (or name a size first: "
                         f"{', '.join(_SYNTHETIC + s for s in SYNTHETIC_SIZES)})")
    try:
        check_synthetic(**values)
    except ValueError as err:
        raise ValueError(f"dataset '{name}': {err}") from None
    spelled = [f"{key}={given[key]}" for key in _SYNTHETIC_KEYS if key in given and given[key] != implied.get(key)]
    canonical = _SYNTHETIC + ",".join([size] * (size is not None) + spelled)
    return canonical, {_SYNTHETIC_KEYS[key][0]: value for key, value in values.items()}


def check_synthetic(nodes: int, edges: int, features: int, classes: int, homophily: float, skew: float,
                    noise: float, train: float, valid: float, seed: int) -> None:
    """Raise `ValueError` naming the first argument of a synthetic graph outside its range."""
    pairs = nodes * (nodes - 1) // 2 if isinstance(nodes, int) else 0
    rules = [
        ("nodes", nodes, isinstance(nodes, int) and 2 <= nodes <= 2**31, "an integer in [2, 2**31]"),
        ("classes", classes, isinstance(classes, int) and 2 <= classes <= nodes, f"an integer in [2, nodes={nodes}]"),
        ("features", features, isinstance(features, int) and features >= 1, "an integer >= 1"),
        # Denser graphs would take many rounds of rejecting duplicate pairs.
        ("edges", edges, isinstance(edges, int) and 1 <= edges <= (pairs + 1) // 2,
         f"an integer in [1, {(pairs + 1) // 2}] (half of the {pairs} node pairs)"),
        ("homophily", homophily, 0 <= homophily <= 1, "in [0, 1]"),
        ("skew", skew, 0 <= skew <= 0.9, "in [0, 0.9]"),
        ("noise", noise, 0 <= noise < math.inf, "a finite number >= 0"),
        ("train", train, 0 < train < 1, "in (0, 1)"),
        ("valid", valid, 0 < valid < 1 - train, f"in (0, 1 - train) = (0, {1 - train:g})"),
        ("seed", seed, isinstance(seed, int) and seed >= 0, "an integer >= 0"),
    ]
    for key, value, ok, expected in rules:
        if not ok:
            raise ValueError(f"{key} must be {expected}, got {value!r}")
