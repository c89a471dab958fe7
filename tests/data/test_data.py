"""Datasets: registry, offline loading from read-only roots, fast clear errors, synthetic data."""
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from graphcl.data import (
    DatasetNotFoundError,
    cache_dir,
    dataset_info,
    get_spec,
    list_datasets,
    load_dataset,
    make_synthetic_node_data,
    resolve_root,
)
from graphcl.data.loaders import LOADERS
from graphcl.data.loading import DEGREE_CAP, CappedOneHotDegree, DatasetCorruptError
from torch_geometric.data import Data

CORA_FILES = [f"ind.cora.{s}" for s in ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")]


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """A download attempt or a prompt fails the test at once instead of reaching the network or waiting."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network or stdin used")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr("builtins.input", refuse)


def tree(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*")}


def copy_dataset(shared: Path, folder: str, root: Path, skip: tuple[str, ...] = ()) -> Path:
    shutil.copytree(shared / folder, root / folder, ignore=lambda _, names: [n for n in names if n in skip])
    return root / folder


def raises_fast(error: type[Exception], *args: object, **kwargs: object) -> str:
    """Call `load_dataset`, expect `error` within a second, return its (single-line) message."""
    start = time.perf_counter()
    with pytest.raises(error) as info:
        load_dataset(*args, **kwargs)
    assert time.perf_counter() - start < 1.0
    message = str(info.value)
    assert "\n" not in message
    return message


# --- real datasets from the shared, read-only root ---------------------------------------------------


@pytest.mark.parametrize("name", ["cora", "Cora", "CORA"])
def test_cora_loads_by_any_case_without_writing_to_the_root(shared_datasets: Path, name: str) -> None:
    before = tree(shared_datasets / "Cora")
    dataset = load_dataset(name, shared_datasets)
    data = dataset[0]
    assert (data.num_nodes, dataset.num_features, dataset.num_classes) == (2708, 1433, 7)
    assert [int(m.sum()) for m in (data.train_mask, data.val_mask, data.test_mask)] == [140, 500, 1000]
    assert tree(shared_datasets / "Cora") == before


def test_citeseer_loads(shared_datasets: Path) -> None:
    assert load_dataset("citeseer", shared_datasets)[0].num_nodes == 3327


def test_mutag_keeps_its_node_labels_as_features(shared_datasets: Path) -> None:
    dataset = load_dataset("mutag", shared_datasets)
    assert len(dataset) == 188 and dataset.num_features == 7
    assert dataset.transform is None


def test_featureless_graphs_get_degree_or_constant_features(shared_datasets: Path) -> None:
    degree = load_dataset("imdb-binary", shared_datasets)
    assert degree.get(0).x is None  # the stored graphs stay featureless: features come from the transform
    x = degree[0].x
    assert x.shape[1] == 136  # max degree 135, under the cap: the standard GraphCL/InfoGraph features
    assert torch.equal(x.sum(dim=1), torch.ones(x.shape[0]))

    constant = load_dataset("IMDB-BINARY", shared_datasets, features="constant")
    assert torch.equal(constant[0].x, torch.ones(constant[0].num_nodes, 1))
    # The cached processed files are shared by all feature options without mixing them up.
    assert load_dataset("IMDB-BINARY", shared_datasets, features="degree")[0].x.shape[1] == 136


def test_degree_features_are_capped() -> None:
    star = Data(edge_index=torch.tensor([[0, 0, 0, 1, 2, 3], [1, 2, 3, 0, 0, 0]]), num_nodes=4)
    x = CappedOneHotDegree(2)(star).x
    assert x.tolist() == [[0, 0, 1], [0, 1, 0], [0, 1, 0], [0, 1, 0]]
    assert DEGREE_CAP >= 135  # IMDB-BINARY keeps its full one-hot degree


def test_append_degree_keeps_the_node_labels_and_adds_the_degree(shared_datasets: Path) -> None:
    """MVGRL's graph-level features: one-hot node label, then one-hot degree (max over the dataset)."""
    labels, both = (load_dataset("MUTAG", shared_datasets, features=f) for f in ("auto", "append_degree"))
    g, h = labels[0], both[0]
    max_degree = max(int(torch.bincount(d.edge_index[0]).max()) for d in labels)
    assert h.x.shape == (g.num_nodes, g.x.shape[1] + max_degree + 1)
    assert torch.equal(h.x[:, :g.x.shape[1]], g.x)
    deg = torch.bincount(g.edge_index[0], minlength=g.num_nodes)
    assert torch.equal(h.x[:, g.x.shape[1]:].argmax(dim=1), deg)
    assert torch.equal(h.x.sum(dim=1), torch.full((g.num_nodes,), 2.0))
    featureless = Data(edge_index=torch.tensor([[0, 1], [1, 0]]), num_nodes=3)
    assert CappedOneHotDegree(2, cat=True)(featureless).x.tolist() == [[0, 1, 0], [0, 1, 0], [1, 0, 0]]


def test_normalize_features_rows_sum_to_one(shared_datasets: Path) -> None:
    x = load_dataset("cora", shared_datasets, normalize_features=True)[0].x
    sums = x.sum(dim=1)
    assert torch.allclose(sums[sums > 0], torch.ones(int((sums > 0).sum())))


def test_ogbg_molbace_loads_and_reloads(shared_datasets: Path, graphcl_cache: Path) -> None:
    for _ in range(2):  # the second call reloads ogb's processed file (torch >= 2.6 weights_only)
        dataset = load_dataset("ogbg-molbace", shared_datasets)
        assert len(dataset) == 1513
        assert {k: len(v) for k, v in dataset.get_idx_split().items()} == {"train": 1210, "valid": 151, "test": 152}
    assert list(graphcl_cache.rglob("ogbg_molbace/processed/*.pt"))
    assert not (shared_datasets / "ogbg_molbace" / "processed").exists()


# --- read-only roots and the cache ---------------------------------------------------------------------


def test_read_only_root_is_never_written(shared_datasets: Path, tmp_path: Path, graphcl_cache: Path) -> None:
    root = tmp_path / "root"
    copy_dataset(shared_datasets, "Cora", root)
    paths = [root, *root.rglob("*")]
    for path in paths:
        path.chmod(0o555 if path.is_dir() else 0o444)
    before = tree(root)
    try:
        # Tests run as root, where chmod stops nothing: check that no file appeared instead.
        assert load_dataset("cora", root)[0].num_nodes == 2708
        assert tree(root) == before
    finally:
        for path in paths:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert any("Cora/processed" in str(p) for p in graphcl_cache.rglob("data.pt"))


LOAD_CORA_WHEN_UNLOCKED = """
import sys, time
from graphcl.data import load_dataset
print("ready", flush=True)
n = load_dataset("cora", sys.argv[1])[0].num_nodes
print(n, time.time(), flush=True)
"""


def test_one_process_at_a_time_processes_a_dataset(shared_datasets: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """PyG's loaders write processed/ in place, so a second process on a fresh cache would read half-written
    files: loading waits for the dataset's lock (held here for 3 s, longer than processing Cora takes)."""
    from filelock import FileLock

    from graphcl.data.loading import processing_lock
    from graphcl.data.paths import shadow_folder

    monkeypatch.setenv("GRAPHCL_CACHE", str(tmp_path / "fresh"))
    lock = FileLock(processing_lock(shadow_folder(shared_datasets, "Cora")))
    with lock:
        proc = subprocess.Popen([sys.executable, "-c", LOAD_CORA_WHEN_UNLOCKED, str(shared_datasets)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        time.sleep(3)
        released = time.time()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    nodes, loaded = out.split()
    assert int(nodes) == 2708 and float(loaded) > released
    assert list((tmp_path / "fresh").rglob("Cora/processed/data.pt"))


def test_root_resolution_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GRAPHCL_DATA", raising=False)
    assert resolve_root() == tmp_path / "datasets"
    monkeypatch.setenv("GRAPHCL_DATA", str(tmp_path / "env"))
    assert resolve_root() == tmp_path / "env"
    assert resolve_root(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_root("rel") == tmp_path / "rel"  # relative roots are made absolute


def test_cache_dir_from_env_else_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GRAPHCL_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c" and cache_dir().is_dir()
    monkeypatch.delenv("GRAPHCL_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "graphcl"


# --- offline errors ------------------------------------------------------------------------------------


def test_missing_dataset_fails_fast_naming_files_and_folder(tmp_path: Path) -> None:
    message = raises_fast(DatasetNotFoundError, "cora", tmp_path)
    assert all(f in message for f in CORA_FILES)
    assert str(tmp_path / "Cora" / "raw") in message and "GRAPHCL_DATA" in message
    assert issubclass(DatasetNotFoundError, FileNotFoundError)


def test_missing_dataset_under_the_env_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GRAPHCL_DATA", str(tmp_path))
    message = raises_fast(DatasetNotFoundError, "ogbg-molhiv")
    assert "RELEASE_v1.txt" in message and "raw/edge.csv.gz" in message and str(tmp_path / "ogbg_molhiv") in message


def test_partial_raw_dir_names_only_the_missing_files(shared_datasets: Path, tmp_path: Path) -> None:
    copy_dataset(shared_datasets, "Cora", tmp_path, skip=("ind.cora.allx", "ind.cora.graph"))
    message = raises_fast(DatasetNotFoundError, "Cora", tmp_path)
    assert "ind.cora.allx, ind.cora.graph" in message and "ind.cora.tx" not in message


def test_ogb_folder_without_release_marker_fails_without_prompting(
    shared_datasets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy_dataset(shared_datasets, "ogbg_molbace", tmp_path, skip=("RELEASE_v1.txt",))
    stdin = open(os.devnull)
    stdin.close()
    monkeypatch.setattr(sys, "stdin", stdin)
    message = raises_fast(DatasetNotFoundError, "ogbg-molbace", tmp_path)
    assert f"RELEASE_v1.txt in {tmp_path / 'ogbg_molbace'}" in message


@pytest.mark.parametrize("family, kwargs", [("planetoid", {"name": "Cora"}), ("ogbg", {"name": "ogbg-molbace"})])
def test_loaders_never_download(tmp_path: Path, family: str, kwargs: dict[str, str]) -> None:
    with pytest.raises(DatasetNotFoundError, match="never downloads"):
        LOADERS[family](root=str(tmp_path), **kwargs)


def test_corrupt_raw_file_is_named_and_never_served_from_the_cache(shared_datasets: Path, tmp_path: Path) -> None:
    raw = copy_dataset(shared_datasets, "Cora", tmp_path) / "raw" / "ind.cora.graph"
    assert load_dataset("cora", tmp_path)[0].num_nodes == 2708  # processed and cached while intact
    raw.write_bytes(raw.read_bytes()[:1000])
    message = raises_fast(DatasetCorruptError, "cora", tmp_path)
    assert f"read from {raw}: UnpicklingError" in message


def test_unknown_name_suggests_a_close_one() -> None:
    with pytest.raises(ValueError, match=r"unknown dataset 'coraa' \(did you mean 'cora'\?\)"):
        load_dataset("coraa")
    with pytest.raises(ValueError, match="features"):
        load_dataset("cora", features="pagerank")


# --- registry ------------------------------------------------------------------------------------------


def test_registry_entries_are_complete() -> None:
    names = list_datasets()
    assert {"Cora", "CiteSeer", "PubMed", "MUTAG", "REDDIT-BINARY", "COLLAB", "ogbn-arxiv", "ogbn-papers100M",
            "ogbg-molhiv", "Computers", "Photo", "CS", "Physics", "WikiCS"} <= set(names)
    for name in names:
        spec = get_spec(name.upper())
        assert spec is get_spec(name.lower()) and spec.level in ("node", "graph") and spec.files()
    assert get_spec("amazon-computers").name == "Computers" and get_spec("coauthor-physics").folder == "Physics"
    assert get_spec("photo").folder == "Photo" and get_spec("ogbn-arxiv").folder == "ogbn_arxiv"


def test_dataset_info_describes_loader_files_and_presence(shared_datasets: Path) -> None:
    cora = dataset_info("CORA", shared_datasets)
    assert cora["name"] == "Cora" and cora["level"] == "node" and cora["missing"] == []
    assert cora["loader"] == "torch_geometric.datasets.Planetoid"
    assert cora["files"] == [f"raw/{f}" for f in CORA_FILES]
    bace = dataset_info("ogbg-molbace", shared_datasets)
    assert bace["level"] == "graph" and bace["loader"] == "ogb.graphproppred.PygGraphPropPredDataset"
    assert {"RELEASE_v1.txt", "raw/graph-label.csv.gz", "split/scaffold/test.csv.gz"} <= set(bace["files"])
    assert "raw/ind.pubmed.allx" in dataset_info("pubmed", shared_datasets)["missing"]


def test_other_tu_datasets_pass_through_by_exact_name(tmp_path: Path) -> None:
    raw = tmp_path / "TOY" / "raw"
    raw.mkdir(parents=True)
    (raw / "TOY_A.txt").write_text("1, 2\n2, 1\n2, 3\n3, 2\n4, 5\n5, 4\n")
    (raw / "TOY_graph_indicator.txt").write_text("1\n1\n1\n2\n2\n")
    (raw / "TOY_graph_labels.txt").write_text("1\n2\n")
    dataset = load_dataset("TOY", tmp_path)
    assert len(dataset) == 2 and dataset[0].x.shape == (3, 3)  # featureless: one-hot degree up to 2
    with pytest.raises(ValueError, match="unknown dataset 'toy'"):
        load_dataset("toy", tmp_path)


# --- synthetic -----------------------------------------------------------------------------------------


def test_synthetic_node_data_is_small_deterministic_and_planted() -> None:
    data = make_synthetic_node_data(num_nodes=200, num_classes=4, num_features=16, seed=3)
    again = make_synthetic_node_data(num_nodes=200, num_classes=4, num_features=16, seed=3)
    assert all(torch.equal(data[k], again[k]) for k in data.keys())
    assert not torch.equal(data.x, make_synthetic_node_data(num_nodes=200, num_classes=4, num_features=16, seed=4).x)
    assert data.x.shape == (200, 16) and data.y.bincount().tolist() == [50] * 4
    assert data.is_undirected() and not data.has_self_loops()

    masks = torch.stack([data.train_mask, data.val_mask, data.test_mask])
    assert masks.sum(dim=1).tolist() == [20, 50, 100] and int(masks.sum(dim=0).max()) == 1
    assert data.y[data.train_mask].bincount().tolist() == [5] * 4

    src, dst = data.edge_index
    assert (data.y[src] == data.y[dst]).float().mean() > 0.6  # homophilous edges
    centroids = torch.stack([data.x[data.train_mask & (data.y == c)].mean(0) for c in range(4)])
    predicted = torch.cdist(data.x[data.test_mask], centroids).argmin(dim=1)
    assert (predicted == data.y[data.test_mask]).float().mean() > 0.6  # informative features


def test_static_raw_file_lists_equal_the_loaders_own():
    """Planetoid/TU file lists are spelled out for a fast offline check; they must match PyG's."""
    from types import SimpleNamespace

    from graphcl.data import get_spec

    for name in ("Cora", "CiteSeer", "PubMed", "MUTAG", "IMDB-BINARY"):
        spec = get_spec(name)
        raw = spec.loader.raw_file_names.fget(SimpleNamespace(name=spec.name))
        assert spec.files() == [f"raw/{f}" for f in ([raw] if isinstance(raw, str) else raw)]
