"""ogbn-arxiv, ogbn-products and ogbn-papers100M from tiny files in OGB's exact raw layouts, offline.

The real files are not reachable here, so these stand-ins are written as ogb 1.3.6 reads them (`ogb/io/
read_graph_raw.py`, `PygNodePropPredDataset.process` and `get_idx_split`, the columns of `nodeproppred/
master.csv`): arxiv and products as headerless `.csv.gz` files (`edge`, `node-feat`, `node-label`,
`num-node-list`, `num-edge-list`, arxiv's additional `node_year`), papers100M as `binary` `raw/data.npz` and
`raw/node-label.npz` (NaN for unlabelled nodes), each with its split folder (`time`, `sales_ranking`) and the
`RELEASE_v1.txt` marker. They check that `load_dataset` reads them with no network and no stdin, writes
processed files only to the cache, returns the official splits, and that `graphcl train` runs on arxiv.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from graphcl.data import DatasetNotFoundError, load_dataset

NUM_NODES, NUM_FEATURES = 90, 8
CLASSES = {"ogbn-arxiv": 40, "ogbn-products": 47, "ogbn-papers100M": 172}  # master.csv "num classes"
SPLIT_FOLDER = {"ogbn-arxiv": "time", "ogbn-products": "sales_ranking", "ogbn-papers100M": "time"}
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No network, no prompt: a connection or `input()` fails the test, and stdin is closed, as in CI."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network or stdin used")

    stdin = open(os.devnull)
    stdin.close()
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr("builtins.input", refuse)
    monkeypatch.setattr(sys, "stdin", stdin)


@pytest.fixture(scope="module", autouse=True)
def _one_thread(single_thread) -> None:
    """Test-sized graphs: one torch thread (see `conftest.single_thread`)."""


# -- writers of OGB's raw layouts -------------------------------------------------------------------------------


def planted(seed: int, num_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features [N, F] float, labels [N] in the first 3 classes, directed edges [2, E] without duplicates):
    about four edges per node, mostly within a class, so a probe has something to find."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(NUM_NODES) % 3)
    x = rng.normal(size=(NUM_NODES, NUM_FEATURES)) + 2.0 * np.eye(NUM_FEATURES)[y]
    p = np.where(y[:, None] == y[None, :], 7.0, 1.0) / NUM_NODES
    src, dst = np.nonzero(np.triu(rng.random((NUM_NODES, NUM_NODES)) < p, 1))
    assert num_classes >= 3
    return x, y, np.stack([src, dst])


def split_indices(seed: int) -> dict[str, np.ndarray]:
    order = np.random.default_rng(seed + 100).permutation(NUM_NODES)
    return {"train": np.sort(order[:50]), "valid": np.sort(order[50:70]), "test": np.sort(order[70:])}


def csv(path: Path, array: np.ndarray, fmt: str) -> None:
    """A headerless gzip csv, one row per entry (numpy gzips a `.gz` name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, array, fmt=fmt, delimiter=",")


def write_ogbn(root: Path, name: str, seed: int) -> dict:
    """`root/<ogbn_name>/` in the layout of `name`; returns what was written, for the checks."""
    folder = root / name.replace("-", "_")
    x, y, edges = planted(seed, CLASSES[name])
    years = 2000 + np.random.default_rng(seed).integers(0, 20, NUM_NODES)
    splits = split_indices(seed)
    if name == "ogbn-papers100M":  # binary: npz arrays, unlabelled nodes NaN
        folder.joinpath("raw").mkdir(parents=True)
        np.savez_compressed(folder / "raw" / "data.npz", edge_index=edges, num_nodes_list=np.array([NUM_NODES]),
                            num_edges_list=np.array([edges.shape[1]]), node_feat=x.astype(np.float32),
                            node_year=years[:, None])
        labels = np.full((NUM_NODES, 1), np.nan, dtype=np.float32)
        labelled = np.concatenate(list(splits.values()))
        labels[labelled, 0] = y[labelled]
        labels[labelled[:5], 0] = np.nan  # papers100M labels only part of its nodes: NaN elsewhere
        np.savez_compressed(folder / "raw" / "node-label.npz", node_label=labels)
    else:
        raw = folder / "raw"
        csv(raw / "edge.csv.gz", edges.T, "%d")
        csv(raw / "node-feat.csv.gz", x, "%.6f")
        csv(raw / "node-label.csv.gz", y[:, None], "%d")
        csv(raw / "num-node-list.csv.gz", np.array([[NUM_NODES]]), "%d")
        csv(raw / "num-edge-list.csv.gz", np.array([[edges.shape[1]]]), "%d")
        if name == "ogbn-arxiv":
            csv(raw / "node_year.csv.gz", years[:, None], "%d")
    for part, index in splits.items():
        csv(folder / "split" / SPLIT_FOLDER[name] / f"{part}.csv.gz", index[:, None], "%d")
    (folder / "RELEASE_v1.txt").write_text(f"{name} v1, a test stand-in\n")
    return {"x": x, "y": y, "edges": edges, "splits": splits, "years": years}


def tree(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*")}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("ogbn-root")
    written = {name: write_ogbn(root, name, seed) for seed, name in enumerate(CLASSES)}
    return root, written


# -- loading --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CLASSES))
def test_loads_offline_into_the_cache_with_official_splits(data_root, graphcl_cache: Path, name: str) -> None:
    root, written = data_root
    truth = written[name]
    before = tree(root)
    for _ in range(2):  # the second call reloads ogb's processed file (torch >= 2.6 weights_only)
        dataset = load_dataset(name.upper(), root)
        data = dataset[0]
        assert (data.num_nodes, dataset.num_features, dataset.num_classes) == (NUM_NODES, NUM_FEATURES, CLASSES[name])
        assert torch.allclose(data.x, torch.from_numpy(truth["x"]).float(), atol=1e-5)
        split = dataset.get_idx_split()
        assert {k: v.tolist() for k, v in split.items()} == {k: v.tolist() for k, v in truth["splits"].items()}

    edges = torch.from_numpy(truth["edges"])
    if name == "ogbn-products":  # add_inverse_edge: each listed edge followed by its reverse
        assert torch.equal(data.edge_index[:, 0::2], edges) and torch.equal(data.edge_index[:, 1::2], edges.flip(0))
    else:  # arxiv and papers100M keep the directed edges as listed
        assert torch.equal(data.edge_index, edges)
        assert data.node_year.view(-1).tolist() == truth["years"].tolist()
    if name == "ogbn-papers100M":
        assert data.y.shape == (NUM_NODES, 1) and data.y.dtype == torch.float32 and int(data.y.isnan().sum()) == 5
    else:
        assert data.y.shape == (NUM_NODES, 1) and data.y.view(-1).tolist() == truth["y"].tolist()

    folder = name.replace("-", "_")
    assert tree(root) == before and not (root / folder / "processed").exists()  # nothing written to the root
    processed = list(graphcl_cache.rglob(f"{folder}/processed/geometric_data_processed.pt"))
    assert len(processed) == 1


@pytest.mark.parametrize("name, missing", [
    ("ogbn-arxiv", "raw/node_year.csv.gz"),
    ("ogbn-products", "split/sales_ranking/valid.csv.gz"),
    ("ogbn-papers100M", "raw/node-label.npz"),
    ("ogbn-arxiv", "RELEASE_v1.txt"),  # else ogb would prompt on stdin
])
def test_a_missing_file_is_named_in_one_line(data_root, tmp_path: Path, name: str, missing: str) -> None:
    folder = name.replace("-", "_")
    shutil.copytree(data_root[0] / folder, tmp_path / folder)
    (tmp_path / folder / missing).unlink()
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset(name, tmp_path)
    message = str(info.value)
    assert "\n" not in message and f"dataset '{name}' not found: missing files" in message
    assert f"{Path(missing).name} in {(tmp_path / folder / missing).parent}" in message


def test_an_absent_dataset_lists_every_expected_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("ogbn-papers100M", tmp_path)
    message = str(info.value)
    assert "expected files RELEASE_v1.txt, raw/data.npz, raw/node-label.npz, split/time/train.csv.gz" in message
    assert str(tmp_path / "ogbn_papers100M") in message


# -- training -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["dgi", "grace"])
def test_graphcl_train_on_arxiv_with_the_ogb_protocol(data_root, graphcl_cli, tmp_path: Path, method: str) -> None:
    root = data_root[0]
    code, out, err = graphcl_cli(
        "train", CONFIGS / method / "cora.yaml", "data.name=ogbn-arxiv", f"data.root={root}", "eval.protocol=ogb",
        "trainer.epochs=3", "seeds=[0]", "model.encoder.hidden_channels=16", "eval.c_grid=[1.0]",
        "trainer.progress=false", "trainer.device=cpu", "--out", tmp_path / "run")
    assert code == 0, err
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert (results["dataset"], results["protocol"], results["epochs"]) == ("ogbn-arxiv", "ogb", [3])
    # Planted classes: a probe on the embeddings of the 20 test nodes beats the 1/3 of a guess.
    assert 40.0 < results["test"]["mean"] <= 100.0
