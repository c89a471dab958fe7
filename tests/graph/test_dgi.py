"""Deep Graph Infomax: the loss, its gradients, embeddings, and the sparse (CSR) full-batch path."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data

from graphcl.core.losses import dgi_bce
from graphcl.data import make_synthetic_node_data
from graphcl.graph import build_encoder
from graphcl.graph.methods.dgi import DGI
from graphcl.graph.sparse import graph_inputs
from graphcl.graph.sparse import sparse_full_batch

HIDDEN = 16


@pytest.fixture(scope="module", autouse=True)
def _one_thread(single_thread) -> None:
    """Before the module's shared runs: see `single_thread` in conftest.py."""


def sparse_graph(num_nodes: int = 90, num_features: int = 50, seed: int = 0) -> Data:
    """Bag-of-words-like binary features (~5% ones, a few featureless nodes), so the CSR path is taken."""
    data = make_synthetic_node_data(num_nodes=num_nodes, num_features=num_features, seed=seed, avg_degree=4)
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(num_nodes, num_features, generator=gen) < 0.05).float()
    x[:3] = 0
    return Data(x=x, edge_index=data.edge_index, num_nodes=num_nodes)


def make_dgi(name: str = "gcn", num_layers: int = 1, act_last: bool = True, in_channels: int = 50,
             seed: int = 0) -> DGI:
    torch.manual_seed(seed)
    return DGI(build_encoder(name, in_channels, HIDDEN, num_layers, act_last=act_last), HIDDEN)


def loss_at(dgi: DGI, batch: Data, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)  # the corruption's permutation comes from the global RNG
    return dgi(batch)


def test_forward_is_finite_scalar_with_gradients() -> None:
    data = sparse_graph()
    dgi = make_dgi(num_layers=2)
    loss = loss_at(dgi, data, 0)
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert 0.5 < loss.item() < 1.0  # near log 2 for an untrained model
    loss.backward()
    for name, p in dgi.named_parameters():
        assert p.grad is not None, f"no gradient reaches {name}"
        assert torch.isfinite(p.grad).all(), name
    assert dgi.discriminator.weight.grad.abs().sum() > 0
    enc_grads = [p.grad.abs().sum() for p in dgi.encoder.parameters()]
    assert sum(enc_grads) > 0


def test_forward_matches_reference_computation() -> None:
    """loss = BCE(real nodes vs. nodes of the row-shuffled graph, both against sigmoid(mean(real)))."""
    data = sparse_graph()
    dgi = make_dgi()
    loss = loss_at(dgi, data, 5)
    torch.manual_seed(5)
    perm = torch.randperm(data.num_nodes)
    pos = dgi.encoder(data.x, data.edge_index)
    neg = dgi.encoder(data.x[perm], data.edge_index)
    summary = torch.sigmoid(pos.mean(0))
    w = dgi.discriminator.weight
    expected = dgi_bce(pos @ (w @ summary), neg @ (w @ summary))
    torch.testing.assert_close(loss, expected)
    assert not torch.allclose(loss_at(dgi, data, 6), loss), "the corruption must depend on the RNG"


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_embed_equals_encoder(sparse: bool) -> None:
    data = sparse_graph()
    batch = sparse_full_batch(data) if sparse else data
    dgi = make_dgi(num_layers=2)
    loss_at(dgi, batch, 0)  # a training step first: no state may leak into embed
    z = dgi.embed(batch)
    assert z.shape == (data.num_nodes, HIDDEN) and not z.requires_grad
    with torch.no_grad():
        torch.testing.assert_close(z, dgi.encoder(*graph_inputs(batch)), rtol=0, atol=0)
        torch.testing.assert_close(z, dgi.encoder(data.x, data.edge_index), atol=1e-5, rtol=1e-4)


def test_graph_inputs_picks_the_adjacency() -> None:
    data = sparse_graph()
    x, adj = graph_inputs(data)
    assert x is data.x and adj is data.edge_index
    batch = sparse_full_batch(data)
    x, adj = graph_inputs(batch)
    assert x is batch.x and adj is batch.adj_t


@pytest.mark.parametrize("num_layers, act_last", [(1, True), (2, True), (1, False), (2, False)])
def test_csr_batch_loss_and_gradients_equal_dense(num_layers: int, act_last: bool) -> None:
    data = sparse_graph()
    batch = sparse_full_batch(data)
    assert batch.x.layout == torch.sparse_csr and "adj_t" in batch
    dgi = make_dgi(num_layers=num_layers, act_last=act_last)
    for seed in (0, 1):
        dgi.zero_grad()
        dense = loss_at(dgi, data, seed)
        dense.backward()
        want = {k: p.grad for k, p in dgi.named_parameters()}
        dgi.zero_grad()
        sparse = loss_at(dgi, batch, seed)
        sparse.backward()
        torch.testing.assert_close(sparse, dense, atol=1e-6, rtol=1e-5)
        for k, p in dgi.named_parameters():
            if want[k] is None:  # unused by the model (a 1-layer BasicGNN's between-layer activation)
                assert p.grad is None or not p.grad.any(), k
            else:
                torch.testing.assert_close(p.grad, want[k], atol=1e-5, rtol=1e-4, msg=f"gradient of {k}")


def test_csr_batch_equals_dense_over_training_steps() -> None:
    """A few optimiser steps on each path (any state cached between steps must stay correct)."""
    data = sparse_graph()
    batch = sparse_full_batch(data)
    paths = {}
    for name, b in (("dense", data), ("csr", batch)):
        dgi = make_dgi(num_layers=1)
        opt = torch.optim.Adam(dgi.parameters(), lr=0.01)
        losses = []
        for step in range(4):
            loss = loss_at(dgi, b, step)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        paths[name] = (losses, dgi.embed(data))
    assert paths["csr"][0] == pytest.approx(paths["dense"][0], abs=1e-5)
    torch.testing.assert_close(paths["csr"][1], paths["dense"][1], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ["sage", "gat", "gin"])
def test_other_encoders_sparse_adjacency_equals_dense(name: str) -> None:
    data = sparse_graph()
    dgi = make_dgi(name=name, num_layers=2)
    batch = sparse_full_batch(data, max_density=0.0)  # CSR adjacency, dense features
    torch.testing.assert_close(loss_at(dgi, batch, 3), loss_at(dgi, data, 3), atol=1e-5, rtol=1e-5)


def test_dgi_training_lowers_loss() -> None:
    data = make_synthetic_node_data(num_nodes=200, num_features=32, seed=0)
    dgi = make_dgi(in_channels=32)
    opt = torch.optim.Adam(dgi.parameters(), lr=0.01)
    losses = []
    for step in range(30):
        loss = loss_at(dgi, data, step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.05, losses
