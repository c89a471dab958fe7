"""GraphMAE (masking, loss on masked nodes only), PPR diffusion, MVGRL (learning, encoder round trip) and the
cosine learning-rate schedule (values, checkpoint round trip)."""
from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch_geometric.data import Data

import graphcl
from graphcl.config import ConfigError, load_config
from graphcl.core.losses import sce
from graphcl.data import load_dataset, make_synthetic_node_data
from graphcl.evaluate import evaluate_nodes
from graphcl.graph import build_encoder
from graphcl.graph.encoders import basic_gnn
from graphcl.graph.diffusion import ppr_diffusion, ppr_matrix
from graphcl.graph.methods.graphmae import GraphMAE, mask_nodes
from graphcl.core.checks import ArgumentError
from graphcl.graph.methods.mvgrl import MVGRL, MVGRLEncoder, diagonal_blocks, mvgrl_encoder
from graphcl.train.artifacts import read_encoder_file
from graphcl.train.build import build_method, build_optimizer, build_scheduler, warmup_cosine
from graphcl.train.checkpoint import load_torch
from graphcl.train.run import evaluate_run, train_run
from graphcl.train.tasks.node import embed_nodes, prepare_nodes, saved_encoder
from graphcl.train.trainer import Trainer

REPO = Path(__file__).resolve().parents[2]
FAST = ["trainer.progress=false", "trainer.device=cpu", "eval.c_grid=[0.1,1.0]", "seeds=[0]"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread(single_thread) -> None:
    """Before the module's shared runs: see `single_thread` in conftest.py."""


def small_graph(num_nodes: int = 60, num_features: int = 12, seed: int = 0) -> Data:
    data = make_synthetic_node_data(num_nodes=num_nodes, num_features=num_features, seed=seed, avg_degree=4,
                                    train_per_class=1)
    return Data(x=data.x, edge_index=data.edge_index, num_nodes=num_nodes)


# -- GraphMAE --------------------------------------------------------------------------------------------
def make_mae(in_channels: int = 12, hidden: int = 16, **params) -> GraphMAE:
    torch.manual_seed(0)
    encoder = build_encoder("gat", in_channels, hidden, 2, options={"heads": 2})
    return GraphMAE(encoder, hidden, **params)


def test_mask_nodes_token_and_replacement_shares() -> None:
    x = torch.arange(200 * 3, dtype=torch.float).view(200, 3) + 1  # rows distinct, none equal to the token
    token = torch.full((1, 3), -7.0)
    torch.manual_seed(0)
    out, masked = mask_nodes(x, token, mask_rate=0.5, replace_rate=0.1)
    assert masked.numel() == 100 and masked.unique().numel() == 100
    untouched = torch.ones(200, dtype=torch.bool)
    untouched[masked] = False
    assert torch.equal(out[untouched], x[untouched])
    is_token = (out[masked] == -7.0).all(dim=1)
    assert int(is_token.sum()) == 100 - int(0.1 * 100)  # every masked node: token or replaced, none unchanged
    replaced = out[masked][~is_token]
    assert all((row == x).all(dim=1).any() for row in replaced)  # some node's features
    # replace_rate 0: every masked node gets the token
    out, masked = mask_nodes(x, token, mask_rate=0.3, replace_rate=0.0)
    assert masked.numel() == 60 and (out[masked] == -7.0).all()


def test_graphmae_loss_only_on_masked_nodes() -> None:
    data = small_graph()
    mae = make_mae(mask_rate=0.5, replace_rate=0.1, alpha=2.0)
    torch.manual_seed(3)
    loss = mae(data)
    masked = mae.last_masked
    assert masked.numel() == int(0.5 * data.num_nodes)
    unmasked = torch.ones(data.num_nodes, dtype=torch.bool)
    unmasked[masked] = False

    def loss_with(rows: torch.Tensor) -> torch.Tensor:
        def hook(module, args, out):
            out = out.clone()
            out[rows] = torch.randn_like(out[rows]) * 100
            return out

        handle = mae.decoder.register_forward_hook(hook)
        try:
            torch.manual_seed(3)  # the same masking
            return mae(data)
        finally:
            handle.remove()

    torch.testing.assert_close(loss_with(unmasked), loss, rtol=0, atol=0)
    assert not torch.allclose(loss_with(masked), loss)
    # and it is the SCE of the masked rows
    torch.manual_seed(3)
    recon = {}
    handle = mae.decoder.register_forward_hook(lambda m, a, out: recon.setdefault("r", out))
    loss2 = mae(data)
    handle.remove()
    torch.testing.assert_close(loss2, sce(recon["r"][masked], data.x[masked], 2.0))


def test_graphmae_mask_token_learns() -> None:
    data = small_graph()
    mae = make_mae(in_drop=0.2, attn_drop=0.1)
    assert isinstance(mae.mask_token, nn.Parameter) and mae.mask_token.shape == (1, 12)
    assert {id(p) for p in mae.parameters()} >= {id(mae.mask_token)}
    opt = torch.optim.Adam(mae.parameters(), lr=0.01)
    losses = []
    for step in range(25):
        torch.manual_seed(step)
        loss = mae(data)
        opt.zero_grad()
        loss.backward()
        if step == 0:
            assert mae.mask_token.grad is not None and mae.mask_token.grad.abs().sum() > 0
            assert mae.encoder_to_decoder.weight.grad.abs().sum() > 0
        opt.step()
        losses.append(loss.item())
    assert mae.mask_token.detach().abs().sum() > 0  # moved from its zero init
    assert np.mean(losses[-5:]) < np.mean(losses[:5]), losses
    assert all(c.dropout == 0.1 for c in mae.encoder.modules() if type(c).__name__ == "GATConv")
    z = mae.embed(data)
    assert z.shape == (data.num_nodes, 16) and not z.requires_grad


# -- PPR diffusion ---------------------------------------------------------------------------------------
def explicit_ppr(edge_index: torch.Tensor, n: int, alpha: float) -> torch.Tensor:
    a = torch.zeros(n, n, dtype=torch.float64)
    a[edge_index[1], edge_index[0]] = 1
    a = a + torch.eye(n, dtype=torch.float64)
    d = torch.diag(a.sum(1).pow(-0.5))
    return alpha * torch.inverse(torch.eye(n, dtype=torch.float64) - (1 - alpha) * d @ a @ d)


def dense_of(edge_index: torch.Tensor, weight: torch.Tensor, n: int) -> torch.Tensor:
    s = torch.zeros(n, n, dtype=torch.float64)
    s[edge_index[1], edge_index[0]] = weight.double()
    return s


def test_ppr_dense_equals_explicit_inverse() -> None:
    data = small_graph(40)
    n = data.num_nodes
    want = explicit_ppr(data.edge_index, n, 0.2)
    torch.testing.assert_close(ppr_matrix(data.edge_index, n, 0.2), want)
    edge_index, weight = ppr_diffusion(data.edge_index, n, alpha=0.2)
    s = dense_of(edge_index, weight, n)
    torch.testing.assert_close(s, want, atol=1e-6, rtol=1e-5)
    assert (weight >= 0).all()
    assert (s.diagonal() > 0).all()
    # the sparse power iteration approximates it
    edge_index, weight = ppr_diffusion(data.edge_index, n, alpha=0.2, exact=False, tol=1e-9)
    torch.testing.assert_close(dense_of(edge_index, weight, n), want, atol=1e-6, rtol=1e-4)


def test_ppr_sparsification_top_k_eps_and_minmax() -> None:
    from sklearn.preprocessing import MinMaxScaler

    data = small_graph(50)
    n = data.num_nodes
    full = explicit_ppr(data.edge_index, n, 0.2)
    edge_index, weight = ppr_diffusion(data.edge_index, n, top_k=5)
    counts = torch.bincount(edge_index[1], minlength=n)
    assert (counts == 5).all()
    s = dense_of(edge_index, weight, n)
    kth = full.topk(5, dim=1).values[:, -1:]
    assert ((s > 0) <= (full >= kth - 1e-12)).all()  # kept entries are each row's largest
    for exact in (True, False):  # the same rule on the approximate path
        ei, _ = ppr_diffusion(data.edge_index, n, top_k=3, exact=exact, tol=1e-9)
        assert (torch.bincount(ei[1], minlength=n) == 3).all()
    edge_index, weight = ppr_diffusion(data.edge_index, n, eps=0.01)
    assert weight.min() >= 0.01 and edge_index.size(1) == int((full >= 0.01).sum())
    # MVGRL's CiteSeer preprocessing: threshold, then scikit-learn's column-wise MinMaxScaler on the dense matrix
    edge_index, weight = ppr_diffusion(data.edge_index, n, eps=0.01, scale="minmax")
    thresholded = torch.where(full >= 0.01, full, torch.zeros_like(full)).numpy()
    want = torch.from_numpy(MinMaxScaler().fit_transform(thresholded))
    torch.testing.assert_close(dense_of(edge_index, weight, n), want, atol=1e-5, rtol=1e-4)
    _, auto = ppr_diffusion(data.edge_index, n, eps="auto")
    assert auto.numel() < n * n


# -- MVGRL -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cora_run(tmp_path_factory: pytest.TempPathFactory, shared_datasets: Path):
    cfg = load_config(REPO / "configs/mvgrl/cora.yaml",
                      ["trainer.epochs=25", "trainer.patience=null", "model.encoder.hidden_channels=64",
                       "optim.lr=0.005", f"data.root={shared_datasets}", *FAST])
    out = tmp_path_factory.mktemp("mvgrl") / "run"
    results = train_run(cfg, out, log=lambda *_: None)
    return cfg, out, results


def test_mvgrl_learns_on_cora(cora_run, shared_datasets: Path) -> None:
    cfg, out, results = cora_run
    losses = [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 25 and losses[-1] < losses[0] - 0.1, losses
    data = load_dataset("cora", root=shared_datasets, normalize_features=True)[0]
    batch = prepare_nodes(data, torch.device("cpu"))
    trained = results["test"]["per_seed"][0] / 100
    torch.manual_seed(0)
    _, spec = saved_encoder(cfg, data.num_features)
    random_enc = mvgrl_encoder(**spec)
    random = evaluate_nodes(embed_nodes(random_enc, batch), data, protocol="public", c_grid=[0.1, 1.0])["test"]
    assert trained > random + 0.1, f"MVGRL {trained:.3f} vs a random encoder {random:.3f}"


def test_mvgrl_encoder_round_trip(cora_run, shared_datasets: Path) -> None:
    cfg, out, results = cora_run
    enc = read_encoder_file(out)
    assert enc["builder"] == "mvgrl" and enc["spec"]["alpha"] == 0.2
    loaded = graphcl.load_encoder(out)
    assert isinstance(loaded, MVGRLEncoder)
    # the loaded encoder is the trained one: the weights of the run's checkpoint in a freshly built method
    data = load_dataset("cora", root=shared_datasets, normalize_features=True)[0]
    batch = prepare_nodes(data, torch.device("cpu"))
    method = build_method(cfg, data.num_features)
    method.encoder.load_state_dict(load_torch(out / "checkpoint.pt", "checkpoint")["completed"][0]["encoder_state"])
    z = method.embed(batch)
    torch.testing.assert_close(embed_nodes(loaded, batch), z, rtol=0, atol=0)
    with torch.no_grad():  # edge_index in, not only the CSR adjacency
        torch.testing.assert_close(loaded(data.x, data.edge_index), z, atol=1e-5, rtol=1e-4)
    # `graphcl eval` reproduces the run's numbers
    assert evaluate_run(out)["test"]["per_seed"] == results["test"]["per_seed"]


def test_mvgrl_diffusion_params_travel_with_the_encoder(tmp_path: Path) -> None:
    data = make_synthetic_node_data(num_nodes=80, num_features=12, seed=1, avg_degree=4, train_per_class=2)
    run = graphcl.pretrain(data, "mvgrl", out=tmp_path / "run", seeds=[0],
                           trainer={"epochs": 3, "progress": False, "device": "cpu"},
                           model={"encoder": {"hidden_channels": 8}, "params": {"top_k": 6, "scale": "minmax"}})
    enc = run.encoder
    assert enc.diffusion_kwargs == {"alpha": 0.2, "eps": None, "top_k": 6, "scale": "minmax"}
    s = enc.diffusion(data.edge_index, data.num_nodes)
    assert s.layout == torch.sparse_csr and s._nnz() == 6 * 80
    assert enc.diffusion(data.edge_index, data.num_nodes) is s  # cached for the same adjacency
    loss = MVGRL(build_encoder("gcn", 12, 8, 1), 8)(data)
    assert 0.5 < loss.item() < 1.0  # about log 2 untrained


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("params", [{}, {"eps": 0.01, "scale": "minmax", "layout": "sparse"},
                                    {"top_k": 8, "layout": "dense"}])
def test_mvgrl_shared_first_layer_matches_per_view_encoding(num_layers: int, params: dict) -> None:
    """On a sparse batch the loss computes each encoder's first layer once for both views; its loss and
    gradients are those of encoding every view separately (the `edge_index` batch takes that path)."""
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # S and the model in float64: the paths agree to round-off
    try:
        gen = torch.Generator().manual_seed(0)
        data = small_graph(90, 30)
        data.x = (torch.rand(90, 30, generator=gen) > 0.95).double()  # sparse enough for CSR features
        batch = prepare_nodes(data, torch.device("cpu"))
        assert batch.x.layout == torch.sparse_csr and batch.adj_t.layout == torch.sparse_csr
        torch.manual_seed(0)
        method = MVGRL(build_encoder("gcn", 30, 16, num_layers), 16, **params)
        if "layout" in params:
            want = torch.strided if params["layout"] == "dense" else torch.sparse_csr
            assert method.encoder.diffusion(batch.adj_t, 90).layout == want
        results = []
        for inputs in (batch, data):
            method.zero_grad()
            torch.manual_seed(1)  # the same shuffle
            loss = method(inputs)
            loss.backward()
            results.append((loss.detach(), [p.grad.clone() for p in method.parameters()]))
        assert method._operands is not None  # the sparse batch took the shared path
    finally:
        torch.set_default_dtype(default)
    (loss, grads), (want_loss, want_grads) = results
    torch.testing.assert_close(loss, want_loss, rtol=1e-12, atol=1e-12)
    for got, want in zip(grads, want_grads):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("layout", ["dense", "sparse"])
def test_diagonal_blocks_equal_dense_slices(layout: str) -> None:
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(40, 40, generator=gen) * (torch.rand(40, 40, generator=gen) < 0.2)
    starts = torch.tensor([0, 7, 25, 7])  # the last window ends at the last row; windows may repeat
    got = diagonal_blocks(a if layout == "dense" else a.to_sparse_csr(), starts, 15)
    want = torch.stack([a[i:i + 15, i:i + 15] for i in starts.tolist()])
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def window_loss_reference(method: MVGRL, x: torch.Tensor, edge_index: torch.Tensor, n: int,
                          num_samples: int) -> torch.Tensor:
    """MVGRL's official training step (node/train.py) written out densely: windows of `n` consecutive nodes
    with the blocks of D^-1/2 (A + I) D^-1/2 and of S, one permutation shuffling every window, one summary per
    window and view, BCE over the four score sets. Draws the same random numbers in the same order."""
    num_nodes = x.size(0)
    a = torch.zeros(num_nodes, num_nodes, dtype=x.dtype)
    a[edge_index[1], edge_index[0]] = 1.0
    a = a + torch.eye(num_nodes, dtype=x.dtype)
    d = a.sum(1).rsqrt()
    a = d[:, None] * a * d[None, :]
    s = method.encoder.diffusion(edge_index, num_nodes)
    s = s.to_dense() if s.is_sparse_csr else s
    starts = torch.randint(0, num_nodes - n + 1, (num_samples,))
    perm = torch.randperm(n)
    enc = method.encoder

    def gcn(encoder, prop, feats):
        gnn = basic_gnn(encoder)
        conv = gnn.convs[0]
        return gnn.act(prop @ (feats @ conv.lin.weight.t()) + conv.bias)

    logits = []
    for i in starts.tolist():
        xw, aw, sw = x[i:i + n], a[i:i + n, i:i + n], s[i:i + n, i:i + n]
        h1, h2 = gcn(enc.gnn_adj, aw, xw), gcn(enc.gnn_diff, sw, xw)
        h3, h4 = gcn(enc.gnn_adj, aw, xw[perm]), gcn(enc.gnn_diff, sw, xw[perm])
        c1, c2 = torch.sigmoid(h1.mean(0)), torch.sigmoid(h2.mean(0))
        w, b = method.discriminator.weight, method.discriminator.bias
        score = lambda h, c: h @ w @ c + b
        logits.append((torch.cat([score(h2, c1), score(h1, c2)]), torch.cat([score(h4, c1), score(h3, c2)])))
    pos = torch.cat([p for p, _ in logits])
    neg = torch.cat([q for _, q in logits])
    return torch.cat([nn.functional.softplus(-pos), nn.functional.softplus(neg)]).mean()


@pytest.mark.parametrize("params", [{}, {"eps": 0.01, "scale": "minmax", "layout": "sparse"}])
def test_mvgrl_window_sampling_matches_the_official_step(params: dict) -> None:
    """`sample_size`: loss and gradients of the windowed step equal a dense per-window reference (float64)."""
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        gen = torch.Generator().manual_seed(0)
        data = small_graph(90, 30)
        data.x = (torch.rand(90, 30, generator=gen) > 0.9).double()
        batch = prepare_nodes(data, torch.device("cpu"))
        torch.manual_seed(0)
        method = MVGRL(build_encoder("gcn", 30, 16, 1, act="prelu"), 16, sample_size=40, num_samples=3, **params)
        results = []
        for loss_of in (lambda: method(batch),
                        lambda: window_loss_reference(method, data.x, data.edge_index, 40, 3)):
            method.zero_grad()
            torch.manual_seed(1)  # the same windows and shuffle
            loss = loss_of()
            loss.backward()
            results.append((loss.detach(), [p.grad.clone() for p in method.parameters()]))
        with pytest.raises(ValueError, match="sample_size is 40 but the graph has only 30 nodes"):
            method(prepare_nodes(small_graph(30, 30), torch.device("cpu")))
    finally:
        torch.set_default_dtype(default)
    (loss, grads), (want_loss, want_grads) = results
    torch.testing.assert_close(loss, want_loss, rtol=1e-12, atol=1e-12)
    for got, want in zip(grads, want_grads):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    with pytest.raises(ArgumentError, match="MVGRL: sample_size needs a 1-layer GCN encoder"):
        MVGRL(build_encoder("gcn", 30, 16, 2), 16, sample_size=40)
    with pytest.raises(ArgumentError, match="MVGRL: num_samples must be an int >= 1"):
        MVGRL(build_encoder("gcn", 30, 16, 1), 16, sample_size=40, num_samples=0)


def test_mvgrl_diffusion_layout() -> None:
    data = small_graph(70)
    n = data.num_nodes
    encoders = {layout: mvgrl_encoder(name="gcn", in_channels=12, hidden_channels=8, num_layers=1,
                                      eps=0.01, scale="minmax", layout=layout)
                for layout in ("auto", "dense", "sparse")}
    s = {layout: enc.diffusion(data.edge_index, n) for layout, enc in encoders.items()}
    assert s["dense"].layout == torch.strided and s["sparse"].layout == torch.sparse_csr
    torch.testing.assert_close(s["sparse"].to_dense(), s["dense"], rtol=0, atol=0)  # the same S
    assert s["auto"].layout == (torch.strided if s["sparse"]._nnz() > 0.1 * n * n else torch.sparse_csr)
    torch.testing.assert_close(s["auto"].to_dense(), s["dense"], rtol=0, atol=0)
    with pytest.raises(ValueError, match="layout"):
        mvgrl_encoder(name="gcn", in_channels=12, hidden_channels=8, num_layers=1, layout="csr")
    cfg = load_config(None, ["model.method=mvgrl", "data.name=x", "model.encoder.name=gcn",
                             "model.params.layout=sparse", "model.params.eps=auto"])
    assert saved_encoder(cfg, 12)[1]["layout"] == "sparse"
    assert build_method(cfg, 12).encoder.layout == "sparse"


# -- cosine learning-rate schedule -----------------------------------------------------------------------
class _Quadratic(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(3))

    def forward(self, batch) -> torch.Tensor:
        return (self.w ** 2).sum() + torch.randn(()) * 0  # uses the RNG like a real method


def _trainer(epochs: int, on_epoch=None):
    cfg = load_config(None, ["model.method=dgi", "data.name=x", "optim.scheduler=cosine", "optim.lr=0.1",
                             f"trainer.epochs={epochs}"])
    torch.manual_seed(0)
    model = _Quadratic()
    opt = build_optimizer(cfg, model.parameters())
    return Trainer(model, opt, lambda: [None], epochs=epochs, progress=False, checkpoint_every=1,
                   scheduler=build_scheduler(cfg, opt), on_epoch=on_epoch)


def test_cosine_schedule_values_and_resume() -> None:
    epochs = 10
    lrs = []
    full = _trainer(epochs)
    assert full.optimizer.param_groups[0]["lr"] == pytest.approx(0.1)  # the lr of epoch 1
    full.on_epoch = lambda row: lrs.append(full.optimizer.param_groups[0]["lr"])  # the lr of the next epoch
    full.fit()
    want = [0.1 * (1 + math.cos(math.pi * e / epochs)) / 2 for e in range(epochs + 1)]  # lr of epoch e + 1
    assert lrs == pytest.approx(want[1:], abs=1e-12)

    states = {}

    def save(state: dict) -> None:  # through bytes, as a checkpoint file is
        states[state["epoch"]] = buf = io.BytesIO()
        torch.save(state, buf)
        buf.seek(0)

    first = _trainer(epochs)
    first.on_checkpoint = save
    first.epochs = 4  # interrupted after 4 of the 10 epochs the schedule spans
    first.fit()
    buf = states[4]
    resumed = _trainer(epochs)
    resumed.load_state_dict(torch.load(buf, weights_only=False))
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(want[4])
    resumed.fit()
    torch.testing.assert_close(resumed.method.w, full.method.w, rtol=0, atol=0)
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(full.optimizer.param_groups[0]["lr"])


def test_scheduler_config_is_checked() -> None:
    assert load_config(None, ["model.method=dgi", "data.name=x"]).optim.scheduler == "none"
    with pytest.raises(ConfigError, match="optim.scheduler"):
        load_config(None, ["model.method=dgi", "data.name=x", "optim.scheduler=linear"])


def test_warmup_cosine_rises_linearly_then_decays() -> None:
    """BGRL's schedule: lr * e / W over the first W epochs (0 at the first), then the cosine over E - W."""
    epochs, warmup = 10, 4
    cfg = load_config(None, ["model.method=dgi", "data.name=x", "optim.scheduler=cosine", "optim.lr=0.1",
                             f"optim.warmup_epochs={warmup}", f"trainer.epochs={epochs}"])
    opt = build_optimizer(cfg, _Quadratic().parameters())
    scheduler = build_scheduler(cfg, opt)
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    want = [0.1 * e / warmup for e in range(warmup)]
    want += [0.1 * (1 + math.cos(math.pi * (e - warmup) / (epochs - warmup))) / 2 for e in range(warmup, epochs)]
    assert lrs == pytest.approx(want, abs=1e-12)
    assert lrs[warmup] == pytest.approx(0.1)


@pytest.mark.parametrize("override, key", [("optim.warmup_epochs=3", "optim.warmup_epochs"),
                                           ("optim.warmup_epochs=-1", "optim.warmup_epochs"),
                                           ("model.encoder.norm_last=true", "model.encoder.norm_last")])
def test_warmup_and_norm_last_need_their_companions(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(None, ["model.method=dgi", "data.name=x", override])
    short = load_config(None, ["model.method=dgi", "data.name=x", "optim.scheduler=cosine", "optim.lr=0.1",
                               "optim.warmup_epochs=5", "trainer.epochs=2"])  # a quick run of a long config
    opt = build_optimizer(short, _Quadratic().parameters())
    scheduler = build_scheduler(short, opt)
    opt.step()
    scheduler.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 / 5)  # still warming up
    assert [warmup_cosine(e, epochs=3, warmup=3) for e in range(4)] == pytest.approx([0, 1 / 3, 2 / 3, 1])
