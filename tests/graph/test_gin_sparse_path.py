"""The sparse GIN path of graph-level methods (`readout.node_embeddings`): a plain PyG GIN whose sum aggregation
runs as a CSR product with a precomputed transpose computes what PyG's gather-scatter computes -- GraphCL's
loss, every parameter gradient and the batch-norm running statistics -- with and without node dropping."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.nn import global_add_pool

import graphcl.graph.readout as readout_module
from graphcl.graph.encoders import build_encoder, gin_layers_on, output_channels, plain_gin_convs
from graphcl.graph.methods.graphcl import GraphCL
from graphcl.graph.readout import graph_embeddings, node_embeddings
from graphcl.graph.sparse import adjacency_operand


@pytest.fixture(scope="module", autouse=True)
def _one_thread(single_thread) -> None:
    """Before the module's runs: see `single_thread` in conftest.py."""


def random_graphs(num_graphs: int = 12, num_features: int = 7, seed: int = 0) -> Batch:
    """MUTAG-like graphs (10-28 nodes, one-hot node labels, undirected edges), float64, with what a real batch
    may hold: one graph without edges, one with a repeated edge and a self-loop, one with edges not sorted by
    source."""
    gen = torch.Generator().manual_seed(seed)
    graphs = []
    for g in range(num_graphs):
        n = int(torch.randint(10, 29, (1,), generator=gen))
        x = torch.nn.functional.one_hot(torch.randint(num_features, (n,), generator=gen), num_features).double()
        if g == 1:
            edge_index = torch.empty(2, 0, dtype=torch.long)
        else:
            src = torch.randint(n, (2 * n,), generator=gen)
            dst = torch.randint(n, (2 * n,), generator=gen)
            keep = src != dst
            pairs = torch.stack([src[keep], dst[keep]])
            edge_index = torch.cat([pairs, pairs.flip(0)], dim=1)
            order = torch.argsort(edge_index[0] * n + edge_index[1])
            edge_index = edge_index[:, order]  # coalesced order, as PyG datasets store graphs
            if g == 2:
                edge_index = torch.cat([edge_index, edge_index[:, :1], torch.tensor([[0], [0]])], dim=1)
            if g == 3:
                edge_index = edge_index.flip(1)
        graphs.append(Data(x=x, edge_index=edge_index, num_nodes=n))
    return Batch.from_data_list(graphs)


def gin(in_channels: int) -> torch.nn.Module:
    """GraphCL's encoder (configs/graphcl/*.yaml): GIN, 3 layers of Linear-ReLU-Linear convs, ReLU then batch
    norm, layers concatenated."""
    return build_encoder("gin", in_channels, 16, 3, act="relu", norm="batch_norm", act_last=False,
                         options={"jk": "cat", "act_first": True, "mlp_norm": False}).double()


def pyg_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Within the test, `node_embeddings` runs the encoder on `edge_index` (PyG's gather-scatter)."""
    monkeypatch.setattr(readout_module, "plain_gin_convs", lambda encoder: None)
    monkeypatch.setattr(readout_module, "encoder_inputs", lambda encoder, batch: (batch.x, batch.edge_index))


def loss_and_grads(method: GraphCL, batch: Batch, seed: int) -> tuple[torch.Tensor, dict, dict]:
    method.zero_grad(set_to_none=True)
    torch.manual_seed(seed)  # the views' draws: the same for both paths
    loss = method(batch)
    loss.backward()
    grads = {name: p.grad.clone() for name, p in method.named_parameters()}
    return loss.detach(), grads, {name: b.clone() for name, b in method.named_buffers()}


@pytest.mark.parametrize("views", [
    {"drop_nodes": {"p": 0.3}},
    {"drop_edges": {"p": 0.3}},  # directed drops: the view's adjacency is not symmetric
    {"mask_columns": {"p": 0.3}},
    {"drop_nodes": {"p": 0.2}, "subgraph": {"walk_length": 6}, "drop_edges": {"p": 0.2}},
], ids=["drop_nodes", "drop_edges", "mask_columns", "pool"])
def test_graphcl_loss_and_gradients_equal_the_pyg_path(views, monkeypatch) -> None:
    batch = random_graphs()
    torch.manual_seed(0)
    encoder = gin(batch.num_features)
    method = GraphCL(encoder, output_channels(encoder), views=views, temperature=0.2).double()
    assert plain_gin_convs(method.encoder) is not None
    state = {k: v.clone() for k, v in method.state_dict().items()}
    fast = [loss_and_grads(method, batch, seed) for seed in (1, 2)]  # two steps: running stats move on
    method.load_state_dict(state)
    with monkeypatch.context() as m:
        pyg_path(m)
        plain = [loss_and_grads(method, batch, seed) for seed in (1, 2)]
    for (loss, grads, buffers), (ref_loss, ref_grads, ref_buffers) in zip(fast, plain):
        torch.testing.assert_close(loss, ref_loss, rtol=1e-12, atol=1e-12)
        assert grads.keys() == ref_grads.keys()
        for name in grads:
            torch.testing.assert_close(grads[name], ref_grads[name], rtol=1e-10, atol=1e-12, msg=name)
        for name in buffers:
            torch.testing.assert_close(buffers[name], ref_buffers[name], rtol=1e-12, atol=1e-12, msg=name)


def test_eval_embeddings_equal_the_pyg_path(monkeypatch) -> None:
    batch = random_graphs(seed=1)
    torch.manual_seed(0)
    encoder = gin(batch.num_features)
    encoder(batch.x, batch.edge_index)  # one training step's running statistics
    encoder.eval()
    with torch.no_grad():
        fast = graph_embeddings(encoder, batch)
    reference = global_add_pool(encoder(batch.x, batch.edge_index), batch.batch, batch.num_graphs)
    torch.testing.assert_close(fast, reference, rtol=1e-12, atol=1e-12)


def test_adjacency_operand_is_the_sum_aggregation_both_ways() -> None:
    """`adj @ x` sums x over every node's sources (repeated edges counted twice); its gradient is `adj^T g`."""
    batch = random_graphs(seed=2)
    n = batch.num_nodes
    src, dst = batch.edge_index
    dense = torch.zeros(n, n, dtype=torch.float64).index_put_((dst, src), torch.ones(src.numel(), dtype=torch.float64),
                                                             accumulate=True)
    x = torch.randn(n, 5, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(n, 5, dtype=torch.float64)
    out = adjacency_operand(batch.edge_index, n, torch.float64) @ x
    torch.testing.assert_close(out, dense @ x.detach())
    (gx,) = torch.autograd.grad(out, x, grad)
    torch.testing.assert_close(gx, dense.t() @ grad)
    empty = adjacency_operand(torch.empty(2, 0, dtype=torch.long), 4) @ torch.ones(4, 3)
    assert torch.equal(empty, torch.zeros(4, 3))


def test_only_plain_gins_take_the_sparse_path(monkeypatch) -> None:
    assert plain_gin_convs(build_encoder("gcn", 7, 16, 2)) is None
    assert plain_gin_convs(build_encoder("sage", 7, 16, 2)) is None
    assert len(plain_gin_convs(build_encoder("gin", 7, 16, 2))) == 2  # act_last: a PyG Sequential around it
    hooked = build_encoder("gin", 7, 16, 2, act_last=False)
    hooked.convs[1].register_message_forward_hook(lambda module, inputs, output: output)
    assert plain_gin_convs(hooked) is None  # a conv running as a product would skip the hook
    # the encoder is a plain PyG GIN again after the block, also after an error inside it
    encoder = gin(7)
    convs = plain_gin_convs(encoder)
    with pytest.raises(RuntimeError):
        with gin_layers_on(convs, adjacency_operand(torch.empty(2, 0, dtype=torch.long), 3)):
            raise RuntimeError
    assert all("forward" not in vars(conv) for conv in convs)
    batch = random_graphs(num_graphs=3)
    torch.testing.assert_close(node_embeddings(encoder.eval(), batch), encoder(batch.x, batch.edge_index))
    # under autocast the encoder gets PyG's inputs (the adjacency would keep the features' dtype)
    calls = []
    monkeypatch.setattr(readout_module, "encoder_inputs",
                        lambda encoder, batch: calls.append(1) or (batch.x, batch.edge_index))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        node_embeddings(encoder, batch)
    assert calls == [1]


def test_sparse_product_encoders_keep_the_features_dtype() -> None:
    """A GCN or GraphSAGE encoder gets a CSR adjacency (`encoder_inputs`) in the features' dtype: float64 runs.
    (Graphs without self-loops or repeated edges, which PyG's convs treat apart on CSR input.)"""
    from torch_geometric.utils import coalesce, remove_self_loops

    graphs = random_graphs(num_graphs=4).to_data_list()
    for g in graphs:
        g.edge_index = coalesce(remove_self_loops(g.edge_index)[0], num_nodes=g.num_nodes)
    batch = Batch.from_data_list(graphs)
    for name in ("gcn", "sage"):
        encoder = build_encoder(name, 7, 16, 2).double().eval()
        out = graph_embeddings(encoder, batch)
        reference = global_add_pool(encoder(batch.x, batch.edge_index), batch.batch, batch.num_graphs)
        assert out.dtype == torch.float64
        torch.testing.assert_close(out, reference, rtol=1e-12, atol=1e-12, msg=name)
