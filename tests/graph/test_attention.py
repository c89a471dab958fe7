"""GAT attention by sparse products (`graphcl.graph.attention`) against PyG's `GATConv`, in float64."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import GATConv
from torch_geometric.nn.models import GAT

from graphcl.graph.attention import attention_structure, fusable_gat_convs, fused_gat


@pytest.fixture(autouse=True)
def _float64():
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(default)


def graph(n: int = 30, e: int = 90, seed: int = 0) -> torch.Tensor:
    """Random directed edges over `n` nodes (node n - 1 isolated), a few self-loops and one repeated edge."""
    gen = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, n - 1, (2, e), generator=gen)
    edge_index[:, :3] = torch.tensor([[0, 1, 2], [0, 1, 2]])  # self-loops, which GATConv replaces
    return torch.cat([edge_index, edge_index[:, 5:6]], dim=1)


def grads(module: torch.nn.Module, x: torch.Tensor, loss: torch.Tensor) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss, [x, *module.parameters()]))


@pytest.mark.parametrize("heads, concat, residual", [(1, True, False), (3, True, True), (3, False, False),
                                                     (2, False, True)])
@pytest.mark.parametrize("layout", ["edge_index", "adj_t"])
def test_fused_gat_conv_equals_pyg(heads: int, concat: bool, residual: bool, layout: str) -> None:
    torch.manual_seed(0)
    conv = GATConv(7, 5, heads=heads, concat=concat, residual=residual, negative_slope=0.3)
    for p in conv.parameters():  # non-zero biases and attention vectors everywhere
        torch.nn.init.normal_(p)
    x = torch.randn(30, 7, requires_grad=True)
    edge_index = graph()
    adj = edge_index if layout == "edge_index" else \
        torch.sparse_coo_tensor(edge_index.flip(0), torch.ones(edge_index.size(1)), (30, 30)).to_sparse_csr()
    weight = torch.randn(30, heads * 5 if concat else 5)
    want = conv(x, adj)  # PyG's own forward on the same input (a CSR adj_t holds the repeated edge once)
    want_grads = grads(conv, x, (want * weight).sum())
    assert len(fusable_gat_convs(conv)) == 1
    with fused_gat(conv):
        got = conv(x, adj)
        got_grads = grads(conv, x, (got * weight).sum())
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    for g, w in zip(got_grads, want_grads):
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-11)
    assert "forward" not in conv.__dict__  # PyG's own forward again after the block


def test_fused_gat_model_with_csr_features_and_fallbacks() -> None:
    torch.manual_seed(1)
    model = GAT(12, 8, num_layers=2, heads=2, act="prelu")
    x = (torch.rand(30, 12) > 0.8).double()
    edge_index = graph(seed=1)
    want = model(x, edge_index)
    with fused_gat(model):
        got = model(x.to_sparse_csr(), edge_index)
        # attention weights asked for: PyG's own forward, the same answer
        conv = model.convs[0]
        out, (ei, alpha) = conv(x, edge_index, return_attention_weights=True)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(out, GATConv.forward(conv, x, edge_index))
    assert alpha.shape == (ei.size(1), 2)


def test_dropout_and_unsupported_convs() -> None:
    torch.manual_seed(2)
    conv = GATConv(4, 3, heads=2, dropout=0.5)
    x, edge_index = torch.randn(30, 4), graph()
    with fused_gat(conv):
        torch.manual_seed(0)
        a = conv(x, edge_index)
        torch.manual_seed(0)
        b = conv(x, edge_index)
        conv.eval()
        evaluated = conv(x, edge_index)
    torch.testing.assert_close(a, b)  # reproducible under the seed
    torch.testing.assert_close(evaluated, conv(x, edge_index), rtol=1e-10, atol=1e-12)
    assert not fusable_gat_convs(GATConv(4, 3, edge_dim=2)) and not fusable_gat_convs(GATConv(4, 3, add_self_loops=False))


def test_structure_adds_one_self_loop_per_node_and_transposes() -> None:
    edge_index = graph()
    s = attention_structure(edge_index, 30)
    keep = edge_index[0] != edge_index[1]
    assert s.col.numel() == int(keep.sum()) + 30  # the isolated node gets its self-loop
    dense = torch.zeros(30, 30)
    dense.index_put_((s.row, s.col), torch.ones_like(s.row, dtype=dense.dtype), accumulate=True)
    dense_t = torch.sparse_csr_tensor(s.crow_t, s.col_t, torch.ones(s.col_t.numel()), (30, 30)).to_dense()
    torch.testing.assert_close(dense_t, dense.t())
    torch.testing.assert_close(s.row[s.perm_t], s.col_t)
