"""GRACE, BGRL and CCA-SSG: short runs on Cora learn something, the losses are the published formulas, BGRL's
target trails the online encoder, views are reproducible, and the shipped configs build."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Data

from graphcl.config import load_config
from graphcl.core.losses import cca_ssg
from graphcl.data import load_dataset, make_synthetic_node_data
from graphcl.evaluate import evaluate_nodes
from graphcl.graph import build_encoder
from graphcl.graph.encoders import basic_gnn
from graphcl.graph.methods import BGRL, CCASSG, GRACE
from graphcl.graph.views import edge_feature_view
from graphcl.train.build import build_method, method_class
from graphcl.train.tasks.node import embed_nodes, prepare_nodes

CPU = torch.device("cpu")
HIDDEN, OUT, EPOCHS = 64, 32, 20
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
# Small-model settings: the published rates, a larger learning rate so 20 epochs suffice.
SETTINGS = {
    "grace": (GRACE, dict(tau=0.5, drop_edge_1=0.2, drop_edge_2=0.4, drop_feature_1=0.3, drop_feature_2=0.4)),
    "bgrl": (BGRL, dict(drop_edge_1=0.5, drop_edge_2=0.3, drop_feature_1=0.2, drop_feature_2=0.5, pred_hidden=64)),
    "ccassg": (CCASSG, dict(lambd=1e-3, drop_edge=0.4, drop_feature=0.1)),
}
PROBE = dict(c_grid=[0.01, 0.1, 1.0])


@pytest.fixture(scope="module", autouse=True)
def _one_thread(single_thread) -> None:
    """Before the module's shared runs: see `single_thread` in conftest.py."""


def toy(num_nodes: int, num_features: int, seed: int) -> Data:
    """A small random graph (planted classes, about 5 neighbours per node)."""
    return make_synthetic_node_data(num_nodes=num_nodes, num_features=num_features, seed=seed, train_per_class=1,
                                    avg_degree=5)


def small_encoder(in_channels: int) -> torch.nn.Module:
    return build_encoder("gcn", in_channels, HIDDEN, 2, out_channels=OUT, act="prelu")


def make(name: str, in_channels: int, seed: int = 0, **overrides) -> torch.nn.Module:
    torch.manual_seed(seed)
    cls, params = SETTINGS[name]
    return cls(small_encoder(in_channels), OUT, **{**params, **overrides})


@pytest.fixture(scope="module")
def cora(shared_datasets: Path, tmp_path_factory: pytest.TempPathFactory) -> Data:
    mp = pytest.MonkeyPatch()
    mp.setenv("GRAPHCL_CACHE", str(tmp_path_factory.mktemp("cache")))
    try:
        return load_dataset("cora", root=shared_datasets, normalize_features=True)[0]
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def probe_batch(cora: Data) -> Data:
    return prepare_nodes(cora, CPU)  # what `graphcl train` evaluates on


def probe(encoder: torch.nn.Module, cora: Data, batch: Data) -> float:
    return evaluate_nodes(embed_nodes(encoder, batch), cora, **PROBE)["test"]


@pytest.fixture(scope="module")
def random_accuracy(cora: Data, probe_batch: Data) -> float:
    torch.manual_seed(0)  # the same draw `make(..., seed=0)` starts every method from
    return probe(small_encoder(cora.num_features), cora, probe_batch)


@pytest.fixture(scope="module")
def trained(cora: Data) -> dict:
    """Each method trained for EPOCHS full-batch steps on Cora, as the trainer does: step, then after_step."""
    batches = {sparse: prepare_nodes(cora, CPU, sparse_features=sparse) for sparse in (False, True)}
    runs = {}
    for name in SETTINGS:
        method = make(name, cora.num_features)
        batch = batches[getattr(method, "sparse_features", False)]  # GRACE masks columns of CSR features
        optimizer = torch.optim.Adam(method.parameters(), lr=0.01)
        losses = []
        for step in range(1, EPOCHS + 1):
            method.train()
            loss = method(batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if hasattr(method, "after_step"):
                method.after_step(step, EPOCHS)
            losses.append(loss.item())
        runs[name] = (method, losses)
    return runs


# -- learning --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(SETTINGS))
def test_short_run_loss_falls(name: str, trained: dict) -> None:
    losses = trained[name][1]
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-3:]) / 3 < losses[0] - 0.1, losses


@pytest.mark.parametrize("name", list(SETTINGS))
def test_short_run_beats_random_encoder(name: str, trained: dict, cora: Data, probe_batch: Data,
                                        random_accuracy: float) -> None:
    accuracy = probe(trained[name][0].encoder, cora, probe_batch)
    assert accuracy > random_accuracy + 0.05, (accuracy, random_accuracy)


# -- contract --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(SETTINGS))
def test_contract(name: str) -> None:
    cls = SETTINGS[name][0]
    assert method_class(name) is cls
    assert cls.static_graph is False  # all three perturb edges
    # column masking keeps CSR features CSR: GRACE and BGRL train on them; CCA-SSG on dense features
    assert getattr(cls, "sparse_features", False) == (name in ("grace", "bgrl"))
    data = toy(40, 12, seed=0)
    method = make(name, data.num_features)
    loss = method(data)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in method.encoder.parameters()), "every encoder weight must learn"
    z = method.embed(data)
    assert z.shape == (40, OUT) and not z.requires_grad
    torch.testing.assert_close(z, method.encoder(data.x, data.edge_index))


def test_views_reproducible_under_manual_seed() -> None:
    data = toy(60, 20, seed=0)
    torch.manual_seed(3)
    x1, e1 = edge_feature_view(data, 0.3, 0.4)
    torch.manual_seed(3)
    x2, e2 = edge_feature_view(data, 0.3, 0.4)
    assert torch.equal(x1, x2) and torch.equal(e1, e2)
    assert e1.size(1) < data.edge_index.size(1) and (x1 == 0).all(0).sum() > (data.x == 0).all(0).sum()
    x3, e3 = edge_feature_view(data, 0.3, 0.4)  # the RNG moved on: another view
    assert not (torch.equal(x1, x3) and torch.equal(e1, e3))
    for name in SETTINGS:
        method = make(name, data.num_features)
        torch.manual_seed(7)
        a = method(data)
        torch.manual_seed(7)
        torch.testing.assert_close(method(data), a)


# -- losses ----------------------------------------------------------------------------------------------
def grace_semi_loss(h1: torch.Tensor, h2: torch.Tensor, tau: float) -> torch.Tensor:
    """GRACE's per-node loss written out: -log(e(h1_i, h2_i) / (sum_j e(h1_i, h2_j) + sum_{j!=i} e(h1_i, h1_j)))."""
    s12 = torch.exp(F.normalize(h1) @ F.normalize(h2).T / tau)
    s11 = torch.exp(F.normalize(h1) @ F.normalize(h1).T / tau)
    return -torch.log(s12.diag() / (s12.sum(1) + s11.sum(1) - s11.diag()))


@pytest.mark.parametrize("chunk_size", [None, 7])
def test_grace_loss_is_the_symmetric_formula_on_fixed_views(chunk_size) -> None:
    data = toy(50, 16, seed=1)
    grace = make("grace", data.num_features, tau=0.4, chunk_size=chunk_size)
    torch.manual_seed(11)
    loss = grace(data)
    torch.manual_seed(11)
    (x1, e1), (x2, e2) = (edge_feature_view(data, *rates) for rates in [(0.2, 0.3), (0.4, 0.4)])
    h1, h2 = (grace.projector(grace.encoder(x, e)) for x, e in [(x1, e1), (x2, e2)])
    expected = ((grace_semi_loss(h1, h2, 0.4) + grace_semi_loss(h2, h1, 0.4)) / 2).mean()
    torch.testing.assert_close(loss, expected)
    head = [m for m in grace.projector]
    assert [type(m).__name__ for m in head] == ["Linear", "ELU", "Linear"]


def test_grace_subsampled_negatives_follow_the_formula() -> None:
    # num_negatives: K drawn nodes (both views) are the negatives of every undrawn anchor
    data = toy(50, 16, seed=4)
    grace = make("grace", data.num_features, tau=0.4, num_negatives=6)
    torch.manual_seed(11)
    loss = grace(data)
    torch.manual_seed(11)
    (x1, e1), (x2, e2) = (edge_feature_view(data, *rates) for rates in [(0.2, 0.3), (0.4, 0.4)])
    z1, z2 = (grace.projector(grace.encoder(x, e)).double() for x, e in [(x1, e1), (x2, e2)])
    perm = torch.randperm(50)
    drawn, anchors = perm[:6], perm[6:]
    negatives = F.normalize(torch.cat([z1[drawn], z2[drawn]]))

    def semi(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        a, b = F.normalize(a), F.normalize(b)
        pos = torch.exp((a * b).sum(1) / 0.4)
        return -torch.log(pos / (pos + torch.exp(a @ negatives.T / 0.4).sum(1)))

    expected = ((semi(z1[anchors], z2[anchors]) + semi(z2[anchors], z1[anchors])) / 2).mean()
    torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=1e-6)
    loss.backward()
    assert all(p.grad is not None for p in grace.encoder.parameters())
    with pytest.raises(ValueError, match="num_negatives"):
        make("grace", data.num_features, num_negatives=0)


def test_grace_on_csr_features_equals_dense() -> None:
    # GRACE trains on CSR features (it only masks whole columns): same views, same loss and gradients
    data = toy(50, 16, seed=3)
    sparse = data.clone()
    sparse.x = data.x.to_sparse_csr()
    grace = make("grace", data.num_features, tau=0.4)
    assert GRACE.sparse_features
    losses, grads = [], []
    for batch in (data, sparse):
        torch.manual_seed(5)
        loss = grace(batch)
        losses.append(loss)
        grads.append(torch.autograd.grad(loss, list(grace.parameters())))
    torch.testing.assert_close(losses[0], losses[1])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


def test_ccassg_loss_is_cca_ssg_of_the_two_views() -> None:
    data = toy(50, 16, seed=2)
    method = make("ccassg", data.num_features, lambd=0.01)
    torch.manual_seed(5)
    loss = method(data)
    torch.manual_seed(5)
    h1, h2 = (method.encoder(*edge_feature_view(data, 0.4, 0.1)) for _ in range(2))
    torch.testing.assert_close(loss, cca_ssg(h1, h2, 0.01))


def test_bgrl_loss_is_symmetric_negative_cosine_against_the_target() -> None:
    data = toy(50, 16, seed=3)
    bgrl = make("bgrl", data.num_features)
    torch.manual_seed(9)
    loss = bgrl(data)
    torch.manual_seed(9)
    v1, v2 = (edge_feature_view(data, *rates) for rates in [(0.5, 0.2), (0.3, 0.5)])
    p1, p2 = (bgrl.predictor(bgrl.encoder(*v)) for v in (v1, v2))
    t1, t2 = (bgrl.target(*v) for v in (v1, v2))
    expected = -F.cosine_similarity(p1, t2).mean() - F.cosine_similarity(p2, t1).mean()
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert all(p.grad is None for p in bgrl.target.parameters()), "no gradient may reach the target"


# -- BGRL's target ---------------------------------------------------------------------------------------
def params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def distance(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return sum((x - y).pow(2).sum() for x, y in zip(a, b)).sqrt().item()


def run_steps(bgrl: BGRL, data: Data, steps: int, total: int) -> list[tuple]:
    """Optimiser steps with their EMA updates; per step (online after the step, target before, target after)."""
    optimizer = torch.optim.Adam(bgrl.parameters(), lr=0.01)
    history = []
    for step in range(1, steps + 1):
        loss = bgrl(data)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        online, before = params(bgrl.encoder), params(bgrl.target)
        bgrl.after_step(step, total)
        history.append((online, before, params(bgrl.target)))
    return history


def test_bgrl_target_trails_the_online_encoder() -> None:
    data = toy(60, 16, seed=4)
    bgrl = make("bgrl", data.num_features, momentum_start=0.9)
    assert all(not p.requires_grad for p in bgrl.target.parameters())
    start = params(bgrl.target)
    assert distance(start, params(bgrl.encoder)) > 0, "the target starts from its own draw (official BGRL)"
    history = run_steps(bgrl, data, steps=5, total=10)
    for step, (online, before, after) in enumerate(history, start=1):
        m = 1 - (1 - 0.9) * (math.cos(math.pi * (step - 1) / 10) + 1) / 2
        for o, b, a in zip(online, before, after):  # target <- m target + (1 - m) online
            torch.testing.assert_close(a, m * b + (1 - m) * o)
        assert distance(after, online) < distance(before, online)
        assert distance(after, online) > 0, "the target trails; it never jumps onto the online weights"
    assert distance(history[-1][2], start) > 0


def test_bgrl_target_fixed_with_momentum_one() -> None:
    data = toy(60, 16, seed=4)
    bgrl = make("bgrl", data.num_features, momentum_start=1.0)
    start, online = params(bgrl.target), params(bgrl.encoder)
    run_steps(bgrl, data, steps=3, total=10)
    assert all(torch.equal(a, b) for a, b in zip(params(bgrl.target), start))
    assert distance(params(bgrl.encoder), online) > 0


def test_bgrl_target_may_start_as_a_copy() -> None:
    bgrl = make("bgrl", 16, reinit_target=False)
    assert all(torch.equal(a, b) for a, b in zip(params(bgrl.target), params(bgrl.encoder)))
    with pytest.raises(ValueError, match="momentum_start"):
        make("bgrl", 16, momentum_start=1.5)


# -- configs ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [f"{name}/{dataset}.yaml" for name in SETTINGS for dataset in ("cora", "citeseer")])
def test_configs_build(path: str) -> None:
    cfg = load_config(CONFIGS / path)
    assert cfg.eval.protocol == "public" and cfg.trainer.patience is None and list(cfg.seeds) == list(range(10))
    method = build_method(cfg, in_channels=8, static_graph=True)
    assert isinstance(method, method_class(path.split("/")[0]))
    assert not getattr(basic_gnn(method.encoder).convs[0], "cached", False), "perturbed edges: no GCN cache"
    data = toy(20, 8, seed=0)
    if cfg.model.encoder.hidden_channels <= 512:  # BGRL's 4096-wide GAT only builds here
        assert torch.isfinite(method(data))
