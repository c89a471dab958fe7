"""DropEdgeGCN / gcn_layers_on: the sparse-product GCN on edge-dropped views equals PyG's GCN on the kept edges,
and GRACE's fast path equals its generic one (same draws, loss and gradients)."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.nn import GAT, GCN
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import to_dense_adj

from graphcl.graph.encoders import build_encoder
from graphcl.graph.gcn_views import DropEdgeGCN, gcn_layers_on, plain_gcn_convs
from graphcl.graph.methods import BGRL, CCASSG, GRACE
from graphcl.graph.sparse import sparse_full_batch


def graph(num_nodes: int = 12, num_edges: int = 50, seed: int = 0) -> torch.Tensor:
    """Random directed edges with self-loops and repeated edges among them."""
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=g)
    return torch.cat([edge_index, torch.tensor([[3, 3, 5], [3, 7, 5]]), edge_index[:, :4]], dim=1)


@pytest.mark.parametrize("seed", [0, 1])
def test_view_is_gcn_norm_of_the_kept_edges(seed: int) -> None:
    n, edge_index = 12, graph(seed=seed)
    keep = torch.rand(edge_index.size(1), generator=torch.Generator().manual_seed(seed)) >= 0.4
    view = DropEdgeGCN(edge_index, n).view(keep)
    ei, w = gcn_norm(edge_index[:, keep], None, n)
    expected = to_dense_adj(ei.flip(0), edge_attr=w, max_num_nodes=n)[0]  # adj_t: row = target
    torch.testing.assert_close(view.a.to_dense(), expected)
    torch.testing.assert_close(view.a_t.to_dense(), expected.T)


def test_gcn_layers_on_equal_pyg_gcn_with_gradients() -> None:
    torch.manual_seed(0)
    n, edge_index = 12, graph()
    gnn = GCN(5, 8, 2, out_channels=4, act="prelu")
    x = torch.randn(n, 5, requires_grad=True)
    keep = torch.rand(edge_index.size(1)) >= 0.3
    expected = gnn(x, edge_index[:, keep])
    convs = plain_gcn_convs(gnn)
    with gcn_layers_on(convs, DropEdgeGCN(edge_index, n).view(keep)):
        out = gnn(x, edge_index)
    assert all("forward" not in vars(c) for c in convs), "the convs are restored"
    torch.testing.assert_close(out, expected)
    params = [x, *gnn.parameters()]
    for a, b in zip(torch.autograd.grad(out.square().sum(), params),
                    torch.autograd.grad(expected.square().sum(), params)):
        torch.testing.assert_close(a, b)


def test_plain_gcn_convs_only_for_gcns_that_normalise_as_gcn_norm() -> None:
    assert plain_gcn_convs(build_encoder("gcn", 5, 8, 2)) is not None  # wrapped in Sequential(act_last)
    assert plain_gcn_convs(GCN(5, 8, 2, improved=True)) is None
    assert plain_gcn_convs(GCN(5, 8, 2, add_self_loops=False)) is None
    assert plain_gcn_convs(GAT(5, 8, 2)) is None
    assert plain_gcn_convs(torch.nn.Linear(5, 8)) is None


@pytest.mark.parametrize("csr", [False, True])
@pytest.mark.parametrize("encoder", ["gcn", "gat"])
@pytest.mark.parametrize("method", [GRACE, BGRL, CCASSG])
def test_sparse_view_path_equals_generic_views(method, csr: bool, encoder: str, monkeypatch) -> None:
    # EdgeFeatureViews' sparse GCN products give PyG's loss and gradients on the same draws (GAT: PyG both times)
    torch.manual_seed(0)
    n, edge_index = 30, graph(30, 120)
    x = torch.rand(n, 40) * (torch.rand(n, 40) < 0.2)
    batch = sparse_full_batch(Data(x=x, edge_index=edge_index, num_nodes=n), max_density=0.5 if csr else 0.0)
    assert (batch.x.layout == torch.sparse_csr) == csr
    model = method(build_encoder(encoder, 40, 16, 2, out_channels=8, act="prelu"), 8)

    def run() -> tuple[torch.Tensor, list[torch.Tensor]]:
        torch.manual_seed(3)
        loss = model(batch)
        params = [p for p in model.parameters() if p.requires_grad]
        return loss, list(torch.autograd.grad(loss, params))

    fast, fast_grads = run()
    assert (model.views._cache is not None) == (encoder == "gcn")
    monkeypatch.setattr("graphcl.graph.gcn_views.plain_gcn_convs", lambda encoder: None)
    generic, generic_grads = run()
    torch.testing.assert_close(fast, generic)
    for a, b in zip(fast_grads, generic_grads):
        torch.testing.assert_close(a, b)
