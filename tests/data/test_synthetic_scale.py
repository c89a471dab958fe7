"""Synthetic OGB-sized graphs (`make_synthetic_graph`, `synthetic:...` dataset names): exact sizes, valid and
deterministic structure, planted classes that features and neighbourhoods reveal, the cache, one-line errors."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.linear_model import LogisticRegression

import graphcl.data.synthetic as synthetic
from graphcl.data import (
    SYNTHETIC_SIZES,
    dataset_info,
    get_spec,
    list_datasets,
    load_dataset,
    make_synthetic_graph,
)
from graphcl.data.registry import synthetic_kwargs

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SMALL = "synthetic:nodes=500,edges=2000,features=8,classes=4"


@pytest.fixture(scope="module", autouse=True)
def _one_thread(single_thread) -> None:
    """Test-sized graphs: one torch thread (see `conftest.single_thread`)."""


def check_structure(data, num_nodes: int, num_edges: int, num_features: int, num_classes: int) -> None:
    """Exact sizes, both directions of `num_edges` distinct pairs, no self-loop, indices in range, masks a
    partition: checked on the pairs themselves, independently of how the generator builds them."""
    ei = data.edge_index
    assert ei.dtype == torch.long and ei.shape == (2, 2 * num_edges)
    assert data.x.shape == (num_nodes, num_features) and data.x.dtype == torch.float32
    assert data.y.shape == (num_nodes,) and data.y.bincount(minlength=num_classes).gt(0).sum() == num_classes
    assert int(ei.min()) >= 0 and int(ei.max()) < num_nodes
    src, dst = ei
    assert not bool((src == dst).any())
    upper, lower = ei[:, :num_edges], ei[:, num_edges:]
    assert bool((upper[0] < upper[1]).all()) and torch.equal(lower, upper.flip(0))
    keys = upper[0] * num_nodes + upper[1]
    assert torch.unique(keys).numel() == num_edges  # distinct pairs
    masks = torch.stack([data.train_mask, data.val_mask, data.test_mask])
    assert bool((masks.sum(0) == 1).all())


# -- the generator ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("nodes, edges, features, classes", [
    (5000, 40000, 32, 5),
    (300, 100, 3, 7),  # sparser than the nodes: isolated nodes are fine
    (60, 885, 4, 2),  # half of all 1770 pairs: many top-up rounds
    (2, 1, 1, 2),
])
def test_requested_sizes_are_exact(nodes: int, edges: int, features: int, classes: int) -> None:
    data = make_synthetic_graph(nodes, edges, features, classes, seed=1)
    check_structure(data, nodes, edges, features, classes)


def test_same_arguments_same_tensors_and_the_seed_matters() -> None:
    first, again = (make_synthetic_graph(3000, 20000, 16, 6, seed=7) for _ in range(2))
    assert first.keys() == again.keys() and all(torch.equal(first[k], again[k]) for k in first.keys())
    other = make_synthetic_graph(3000, 20000, 16, 6, seed=8)
    assert not torch.equal(first.edge_index, other.edge_index) and not torch.equal(first.y, other.y)


@pytest.mark.parametrize("homophily", [0.1, 0.5, 0.9])
def test_the_fraction_of_same_class_pairs_is_the_homophily(homophily: float) -> None:
    data = make_synthetic_graph(4000, 40000, 4, 5, homophily=homophily, seed=0)
    src, dst = data.edge_index
    assert abs(float((data.y[src] == data.y[dst]).float().mean()) - homophily) < 0.03


def test_skew_gives_hubs_and_zero_skew_does_not() -> None:
    share = {}  # of all edge ends, what the top 1 % of nodes hold
    for skew in (0.0, 0.5):
        degree = make_synthetic_graph(5000, 25000, 4, 5, skew=skew).edge_index[0].bincount(minlength=5000)
        share[skew] = float(degree.sort(descending=True).values[:50].sum() / degree.sum())
        assert int(degree.max()) < 30 if skew == 0 else int(degree.max()) > 200  # Poisson-like / hubs
    assert share[0.0] < 0.03 and share[0.5] > 0.07  # skew 0.5: P(rank < 1 %) = sqrt(0.01) of the first ends


def test_features_are_informative_and_neighbours_more_so() -> None:
    """A probe on raw features beats the majority class; one on the mean of the 2-hop neighbourhood (an
    independent scipy aggregation) beats raw features: homophilous structure carries the classes."""
    data = make_synthetic_graph(4000, 30000, 16, 5, homophily=0.7, noise=0.6, seed=3)
    n = data.num_nodes
    adj = sp.csr_matrix((np.ones(data.edge_index.shape[1]), data.edge_index.numpy()), shape=(n, n))
    mean = sp.diags(1.0 / np.maximum(adj.sum(1).A1, 1)) @ adj
    x = data.x.numpy()
    two_hop = mean @ (mean @ x)
    y, train, test = data.y.numpy(), data.train_mask.numpy(), data.test_mask.numpy()
    chance = np.bincount(y[test]).max() / test.sum()

    def probe(features: np.ndarray) -> float:
        return LogisticRegression(max_iter=500).fit(features[train], y[train]).score(features[test], y[test])

    raw, aggregated = probe(x), probe(two_hop)
    assert chance + 0.1 < raw < 0.9  # informative, far from perfect
    assert aggregated > raw + 0.2


def test_arxiv_like_at_full_size_in_seconds() -> None:
    kwargs = synthetic_kwargs("synthetic:arxiv-like")[1]
    start = time.perf_counter()
    data = make_synthetic_graph(**kwargs)
    seconds = time.perf_counter() - start
    check_structure(data, 169_343, 1_166_243, 128, 40)
    assert [int(m.sum()) for m in (data.train_mask, data.val_mask, data.test_mask)] == [90_941, 29_799, 48_603]
    src, dst = data.edge_index
    assert abs(float((data.y[src] == data.y[dst]).float().mean()) - 0.65) < 0.02
    assert seconds < 30, f"arxiv-like took {seconds:.1f} s"  # about 1 s on one core


# -- names, the dataset and the cache ---------------------------------------------------------------------------


def test_names_resolve_to_canonical_specs() -> None:
    assert get_spec("Synthetic:ARXIV-like").name == "synthetic:arxiv-like"
    # keys in a fixed order; those equal to the default or the size's own value are dropped
    assert get_spec("synthetic:seed=0,classes=3,edges=10,nodes=20,features=2, homophily=0.5").name == \
        "synthetic:nodes=20,edges=10,features=2,classes=3,homophily=0.5"
    assert get_spec("synthetic:products-like,homophily=0.81,seed=2").name == "synthetic:products-like,seed=2"
    spec = get_spec("synthetic:arxiv-like")
    assert (spec.family, spec.level, spec.files()) == ("synthetic", "node", [])
    products = synthetic_kwargs("synthetic:products-like")[1]
    assert [products[k] for k in ("num_nodes", "num_edges", "num_features", "num_classes")] == \
        [2_449_029, 61_859_140, 100, 47]
    assert set(SYNTHETIC_SIZES) == {"arxiv-like", "products-like"}
    assert "ogbn-arxiv" in list_datasets()  # the registry's real datasets are unchanged
    info = dataset_info("synthetic:arxiv-like")
    assert info["loader"] == "graphcl.data.synthetic.make_synthetic_graph" and info["missing"] == []


@pytest.mark.parametrize("name, message", [
    ("synthetic:arxiv-lik", "unknown synthetic size 'arxiv-lik' (did you mean 'arxiv-like'?)"),
    ("synthetic:nodes=10,edges=5", "missing keys features, classes"),
    ("synthetic:nodes=ten,edges=5,features=2,classes=2", "key 'nodes' needs an integer, got 'ten'"),
    ("synthetic:arxiv-like,colour=red", "unknown key 'colour'"),
    ("synthetic:arxiv-like,seed", "key 'seed' needs a value"),
    ("synthetic:arxiv-like,seed=1,seed=2", "key 'seed' given twice"),
    ("synthetic:nodes=10,edges=24,features=2,classes=2", "edges must be an integer in [1, 23]"),
    ("synthetic:arxiv-like,homophily=1.2", "homophily must be in [0, 1], got 1.2"),
    ("synthetic:nodes=10,edges=5,features=2,classes=11", "classes must be an integer in [2, nodes=10]"),
    ("synthetic:arxiv-like,train=0.9,valid=0.2", "valid must be in (0, 1 - train)"),
])
def test_bad_names_fail_in_one_line_naming_the_key(name: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        load_dataset(name)
    assert message in str(info.value) and f"dataset '{name}'" in str(info.value) and "\n" not in str(info.value)


def test_python_arguments_are_checked_too() -> None:
    with pytest.raises(ValueError, match=r"make_synthetic_graph: skew must be in \[0, 0.9\], got 1.0"):
        make_synthetic_graph(100, 200, 4, 2, skew=1.0)


def test_a_named_graph_is_a_node_dataset_with_ogb_splits(graphcl_cache: Path) -> None:
    dataset = load_dataset(SMALL.upper())
    data = dataset[0]
    assert (len(dataset), dataset.name, dataset.num_features, dataset.num_classes) == (1, SMALL, 8, 4)
    expected = make_synthetic_graph(500, 2000, 8, 4)
    assert all(torch.equal(data[k], expected[k]) for k in expected.keys())
    split = dataset.get_idx_split()
    assert sorted(split) == ["test", "train", "valid"]
    for key, mask in (("train", "train_mask"), ("valid", "val_mask"), ("test", "test_mask")):
        assert torch.equal(split[key], data[mask].nonzero().view(-1))
    normalised = load_dataset(SMALL, normalize_features=True)[0].x  # feature options apply as transforms
    positive = normalised.sum(1) > 0
    assert torch.allclose(normalised.sum(1)[positive], torch.ones(int(positive.sum())))


def test_the_second_load_reads_the_cache(graphcl_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = "synthetic:nodes=400,edges=1500,features=6,classes=3,seed=11"
    first = load_dataset(name)[0]
    files = list((graphcl_cache / "synthetic").glob("n400-e1500-*.pt"))
    assert len(files) == 1 and files[0] == load_dataset(name).path

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("generated again instead of read from the cache")

    monkeypatch.setattr(synthetic, "make_synthetic_graph", refuse)
    for spelling in (name, name.replace(",seed=11", ",homophily=0.7,seed=11")):  # the default spelled out
        again = load_dataset(spelling)[0]
        assert all(torch.equal(first[k], again[k]) for k in first.keys())


def test_a_crash_while_writing_leaves_no_cache_file(graphcl_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = "synthetic:nodes=300,edges=900,features=4,classes=2,seed=12"

    def half_write(obj: object, f) -> None:
        f.write(b"PK\x03\x04 half a file")
        raise KeyboardInterrupt  # killed mid-write

    monkeypatch.setattr(synthetic.torch, "save", half_write)
    with pytest.raises(KeyboardInterrupt):
        load_dataset(name)
    assert not [p for p in (graphcl_cache / "synthetic").iterdir() if p.name.startswith("n300-e900-")]


def test_a_corrupt_cache_file_is_replaced(graphcl_cache: Path) -> None:
    name = "synthetic:nodes=300,edges=900,features=4,classes=2,seed=13"
    path = load_dataset(name).path
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])  # truncated, e.g. by a full disk
    data = load_dataset(name)[0]
    check_structure(data, 300, 900, 4, 2)
    assert path.read_bytes() == good


# -- training by name -------------------------------------------------------------------------------------------


def test_graphcl_train_on_a_synthetic_name(graphcl_cli, tmp_path: Path) -> None:
    code, out, err = graphcl_cli(
        "train", CONFIGS / "dgi" / "cora.yaml", "data.name=Synthetic:nodes=400,edges=2000,features=16,classes=4",
        "eval.protocol=ogb", "trainer.epochs=3", "seeds=[0]", "model.encoder.hidden_channels=16",
        "eval.c_grid=[1.0]", "trainer.progress=false", "trainer.device=cpu", "--out", tmp_path / "run")
    assert code == 0, err
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["dataset"] == "synthetic:nodes=400,edges=2000,features=16,classes=4"
    assert results["protocol"] == "ogb" and results["test"]["mean"] > 40.0  # 4 planted classes

    code, out, err = graphcl_cli("train", CONFIGS / "dgi" / "cora.yaml", "data.name=synthetic:arxiv-like,seed=-1",
                                 "--out", tmp_path / "bad")
    assert code == 2 and err.count("\n") == 1 and "key 'data.name'" in err and "seed must be an integer >= 0" in err
