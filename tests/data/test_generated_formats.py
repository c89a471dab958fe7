"""PubMed, Amazon Computers/Photo, Coauthor CS/Physics and WikiCS from tiny raw files in each loader's own format.

The real files are not available offline, so these stand-ins are written in the exact on-disk layouts the PyG
loaders read (`torch_geometric.io.read_npz` for Amazon/Coauthor, `WikiCS.process`'s `data.json`, the Planetoid
`ind.pubmed.*` pickles of `torch_geometric.io.read_planetoid_data`). They check that `load_dataset` finds and
reads each one under its registry name and aliases, and that every config written for these datasets
(`configs/<method>/<dataset>.yaml`) trains for two epochs and is evaluated under its protocol.
"""
from __future__ import annotations

import json
import pickle
import socket
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch_geometric.utils import is_undirected

from graphcl.config import load_config
from graphcl.data import load_dataset
from graphcl.evaluate.splits import node_splits
from graphcl.train.checkpoint import load_torch
from graphcl.train.run import train_run

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
METHODS = ("dgi", "grace", "bgrl", "ccassg", "mvgrl", "graphmae")
NUM_CLASSES, NUM_FEATURES, WIKICS_SPLITS = 3, 12, 20
NUM_NODES = 60  # Amazon, Coauthor and WikiCS stand-ins
PUBMED_TRAIN, PUBMED_VAL, PUBMED_TEST = 12, 500, 30  # Planetoid's val split is always the 500 nodes after train

# dataset stem: (registry name, the npz file under <Folder>/raw/ for the npz families)
NPZ = {
    "amazon_computers": ("Computers", "amazon_electronics_computers.npz"),
    "amazon_photo": ("Photo", "amazon_electronics_photo.npz"),
    "coauthor_cs": ("CS", "ms_academic_cs.npz"),
    "coauthor_physics": ("Physics", "ms_academic_phy.npz"),
}
STEMS = ("pubmed", *NPZ, "wikics")


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """A download attempt fails the test at once instead of reaching the network."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network used")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture(scope="module", autouse=True)
def _one_thread(single_thread) -> None:
    """Test-sized graphs: one torch thread (see `conftest.single_thread`)."""


# -- writers of the raw formats -------------------------------------------------------------------------------


def planted_graph(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(binary features [n, F], labels [n], upper-triangular edges [2, E]): classes planted in features and edges,
    about four neighbours per node, mostly within the class."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % NUM_CLASSES)
    x = (rng.random((n, NUM_FEATURES)) < 0.15).astype(np.float32)
    x[np.arange(n), y] = 1.0  # one word per class
    p = np.where(y[:, None] == y[None, :], 8.0, 0.5) / n
    edges = np.stack(np.nonzero(np.triu(rng.random((n, n)) < p, 1)))
    return x, y, edges


def write_npz(path: Path, n: int, seed: int) -> None:
    """The layout of `torch_geometric.io.read_npz`: CSR adjacency and attributes as flat arrays, labels."""
    x, y, edges = planted_graph(n, seed)
    adj = sp.csr_matrix((np.ones(edges.shape[1], np.float32), (edges[0], edges[1])), shape=(n, n))
    attr = sp.csr_matrix(x)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, adj_data=adj.data, adj_indices=adj.indices, adj_indptr=adj.indptr, adj_shape=adj.shape,
             attr_data=attr.data, attr_indices=attr.indices, attr_indptr=attr.indptr, attr_shape=attr.shape,
             labels=y)


def write_wikics(folder: Path, n: int, seed: int) -> None:
    """`raw/data.json` as `WikiCS.process` reads it: dense (signed) features, adjacency lists, 20 train/val/stopping
    masks as lists of per-node lists, one test mask. Every train mask holds every class."""
    x, y, edges = planted_graph(n, seed)
    rng = np.random.default_rng(seed)
    x = x + rng.normal(0.0, 0.1, x.shape)  # WikiCS features are averaged word vectors: signed
    links: list[list[int]] = [[] for _ in range(n)]
    for i, j in edges.T:
        links[i].append(int(j))
    test = np.zeros(n, bool)
    test[rng.permutation(n)[: n // 2]] = True
    train_masks, val_masks, stopping_masks = [], [], []
    for _ in range(WIKICS_SPLITS):
        rest = rng.permutation(np.flatnonzero(~test))
        by_class = [i for c in range(NUM_CLASSES) for i in rest[y[rest] == c][:2]]
        others = [i for i in rest if i not in by_class]
        masks = [np.zeros(n, bool) for _ in range(3)]
        masks[0][by_class] = True
        masks[1][others[:8]] = True
        masks[2][others[8:16]] = True
        for out, mask in zip((train_masks, val_masks, stopping_masks), masks):
            out.append(mask.tolist())
    (folder / "raw").mkdir(parents=True, exist_ok=True)
    (folder / "raw" / "data.json").write_text(json.dumps({
        "features": x.tolist(), "labels": y.tolist(), "links": links, "train_masks": train_masks,
        "val_masks": val_masks, "stopping_masks": stopping_masks, "test_mask": test.tolist(),
    }))


def write_planetoid(folder: Path, prefix: str, seed: int) -> None:
    """`raw/ind.<prefix>.{x,tx,allx,y,ty,ally,graph,test.index}` as `read_planetoid_data` reads them: pickled CSR
    features and one-hot label arrays, the graph as a dict of adjacency lists, test indices as text (unsorted)."""
    n = PUBMED_TRAIN + PUBMED_VAL + PUBMED_TEST
    x, y, edges = planted_graph(n, seed)
    onehot = np.eye(NUM_CLASSES, dtype=np.float32)[y]
    test_index = np.random.default_rng(seed).permutation(np.arange(PUBMED_TRAIN + PUBMED_VAL, n))
    graph: dict[int, list[int]] = defaultdict(list)
    for i, j in edges.T:
        graph[int(i)].append(int(j))
        graph[int(j)].append(int(i))
    known = PUBMED_TRAIN + PUBMED_VAL
    parts = {"x": sp.csr_matrix(x[:PUBMED_TRAIN]), "y": onehot[:PUBMED_TRAIN],
             "allx": sp.csr_matrix(x[:known]), "ally": onehot[:known],
             "tx": sp.csr_matrix(x[test_index]), "ty": onehot[test_index], "graph": graph}
    raw = folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for part, value in parts.items():
        with open(raw / f"ind.{prefix}.{part}", "wb") as f:
            pickle.dump(value, f, protocol=2)
    (raw / f"ind.{prefix}.test.index").write_text("".join(f"{i}\n" for i in test_index))


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root holding all six stand-ins, in the folders the loaders derive from the registry names."""
    root = tmp_path_factory.mktemp("generated-datasets")
    write_planetoid(root / "PubMed", "pubmed", seed=0)
    for seed, (name, file) in enumerate(NPZ.values(), start=1):
        write_npz(root / name / "raw" / file, NUM_NODES, seed)
    write_wikics(root / "WikiCS", NUM_NODES, seed=5)
    return root


# -- loading ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling, name", [
    ("amazon-computers", "Computers"), ("Computers", "Computers"), ("PHOTO", "Photo"), ("amazon-photo", "Photo"),
    ("coauthor-cs", "CS"), ("cs", "CS"), ("Coauthor-Physics", "Physics"), ("physics", "Physics"),
])
def test_npz_datasets_load_by_any_spelling(data_root: Path, spelling: str, name: str) -> None:
    dataset = load_dataset(spelling, data_root, normalize_features=True)
    data = dataset[0]
    assert (data.num_nodes, dataset.num_features, dataset.num_classes) == (NUM_NODES, NUM_FEATURES, NUM_CLASSES)
    assert is_undirected(data.edge_index) and data.edge_index.size(1) > 2 * NUM_NODES
    sums = data.x.sum(dim=1)
    assert torch.allclose(sums[sums > 0], torch.ones(int((sums > 0).sum())))
    assert not (data_root / name / "processed").exists()  # processed files go to the cache


def test_wikics_loads_with_its_twenty_splits(data_root: Path) -> None:
    dataset = load_dataset("wikics", data_root)
    data = dataset[0]
    assert (data.num_nodes, dataset.num_features, dataset.num_classes) == (NUM_NODES, NUM_FEATURES, NUM_CLASSES)
    assert is_undirected(data.edge_index)
    assert data.train_mask.shape == data.val_mask.shape == (NUM_NODES, WIKICS_SPLITS)
    assert data.test_mask.shape == (NUM_NODES,)
    public = node_splits(data, "public")  # one split per mask column, the shared test mask in each
    assert len(public) == WIKICS_SPLITS
    assert all(torch.equal(test, data.test_mask.nonzero().view(-1)) for _, _, test in public)
    random = node_splits(data, "random", repeats=3)  # the masks are ignored, all nodes are split
    assert [sum(len(part) for part in split) for split in random] == [NUM_NODES] * 3


def test_pubmed_loads_with_the_public_split(data_root: Path) -> None:
    dataset = load_dataset("pubmed", data_root)
    data = dataset[0]
    n = PUBMED_TRAIN + PUBMED_VAL + PUBMED_TEST
    assert (data.num_nodes, dataset.num_features, dataset.num_classes) == (n, NUM_FEATURES, NUM_CLASSES)
    assert [int(m.sum()) for m in (data.train_mask, data.val_mask, data.test_mask)] == [
        PUBMED_TRAIN, PUBMED_VAL, PUBMED_TEST]
    assert is_undirected(data.edge_index)


# -- every new config, two epochs ---------------------------------------------------------------------------------


def tiny(config: Path, root: Path, *extra: str):
    """`config` at test size: two epochs, one seed, 16 units, two random splits, one C (the probe dominates)."""
    return load_config(config, [
        "trainer.epochs=2", "seeds=[0]", "model.encoder.hidden_channels=16", "model.encoder.out_channels=null",
        "eval.repeats=2", "eval.c_grid=[1.0]", "eval.max_iter=100", "trainer.progress=false", "trainer.device=cpu",
        f"data.root={root}", *extra,
    ])


@pytest.mark.parametrize("stem", STEMS)
@pytest.mark.parametrize("method", METHODS)
def test_config_runs(data_root: Path, tmp_path: Path, method: str, stem: str) -> None:
    path = CONFIGS / method / f"{stem}.yaml"
    published = load_config(path)
    expected = "public" if stem in ("pubmed", "wikics") else "random"
    assert published.eval.protocol == expected and list(published.seeds) == list(range(10))
    if expected == "random":  # the BGRL protocol
        assert (published.eval.repeats, published.eval.train_ratio, published.eval.val_ratio) == (20, 0.1, 0.1)
    # WikiCS here under the random protocol (its [N, 20] masks must be ignored, not misread); its 20 preset splits,
    # 20 probes per run, are exercised once below.
    protocol = "random" if stem == "wikics" else expected
    results = train_run(tiny(path, data_root, f"eval.protocol={protocol}"), tmp_path / "run", log=lambda *_: None)
    assert results["protocol"] == protocol and results["epochs"] == [2]
    assert results["dataset"] == published.data.name  # the registry's spelling, whatever the loader's
    assert 0.0 <= results["test"]["mean"] <= 100.0
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["test"]["per_seed"] == results["test"]["per_seed"]


def test_wikics_preset_splits_run(data_root: Path, tmp_path: Path) -> None:
    """WikiCS under its configs' protocol: one probe per preset split, the val masks choosing C."""
    cfg = tiny(CONFIGS / "dgi" / "wikics.yaml", data_root, "eval.c_grid=[0.1,1.0]")
    results = train_run(cfg, tmp_path / "run", log=lambda *_: None)
    assert results["protocol"] == "public" and results["dataset"] == "WikiCS"
    state = load_torch(tmp_path / "run" / "checkpoint.pt", "checkpoint")
    assert state["completed"][0]["eval"]["num_splits"] == WIKICS_SPLITS
    assert load_torch(tmp_path / "run" / "encoder.pt", "encoder")["dataset"] == "WikiCS"
