"""Known values, chunked == dense, gradcheck, dtypes, invariances and bad input for graphcl.core.losses."""
from __future__ import annotations

import math
import time

import pytest
import torch
import torch.nn.functional as F

from graphcl.core import losses
from graphcl.core.energy import BilinearDiscriminator, cosine, dot, get_energy
from graphcl.core.losses import (
    DINOCenter,
    barlow_twins,
    dgi_bce,
    dino,
    info_nce,
    jsd_mi,
    neg_cosine,
    nt_xent,
    nce_log_norm,
    pirl_nce,
    sce,
    sinkhorn,
    swav,
    triplet,
    vicreg,
)

F64 = torch.float64


def randn(*shape: int, dtype: torch.dtype = torch.float32, seed: int = 0, grad: bool = False) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype).requires_grad_(grad)


# ----------------------------------------------------------------------------- energies


def test_energies_match_explicit_pairs():
    a, b = randn(4, 3, seed=1), randn(5, 3, seed=2)
    assert dot(a, b).shape == (4, 5)
    assert torch.allclose(dot(a, b)[1, 2], a[1] @ b[2])
    assert torch.allclose(cosine(a, b)[3, 4], F.cosine_similarity(a[3], b[4], dim=0))
    assert get_energy("dot") is dot


def test_get_energy_names_bad_name_and_choices():
    with pytest.raises(ValueError, match=r"'manhattan'.*cosine.*dot"):
        get_energy("manhattan")


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("per_row_summary", [True, False])
def test_bilinear_discriminator_equals_explicit(bias, per_row_summary):
    torch.manual_seed(0)
    disc = BilinearDiscriminator(6, bias=bias)
    if bias:
        torch.nn.init.constant_(disc.bias, 0.7)
    h = randn(5, 6, seed=1)
    s = randn(5, 6, seed=2) if per_row_summary else randn(6, seed=2)
    rows = s if per_row_summary else s.expand(5, 6)
    expected = torch.stack([h[i] @ disc.weight @ rows[i] for i in range(5)]) + (0.7 if bias else 0.0)
    assert torch.allclose(disc(h, s), expected, atol=1e-5)
    assert (disc.bias is None) != bias


# ----------------------------------------------------------------------------- info_nce / nt_xent


@pytest.mark.parametrize("n", [2, 5, 16])
def test_nt_xent_identical_vectors_is_log_2n_minus_1(n):
    z = torch.ones(n, 4)
    assert nt_xent(z, z).item() == pytest.approx(math.log(2 * n - 1), rel=1e-6)


@pytest.mark.parametrize("chunk_size", [None, 3])
def test_info_nce_identical_vectors_is_log_n(chunk_size):
    z = torch.ones(7, 4)
    assert info_nce(z, z, chunk_size=chunk_size).item() == pytest.approx(math.log(7), rel=1e-6)


def test_info_nce_single_anchor_has_zero_loss_and_finite_gradient():
    q, p = randn(1, 4, seed=1, grad=True), randn(1, 4, seed=2, grad=True)
    loss = info_nce(q, p, intra_view=True, chunk_size=1)
    loss.backward()
    assert loss.item() == pytest.approx(0.0, abs=1e-6) and torch.isfinite(q.grad).all()


def test_info_nce_matches_cross_entropy_on_similarity_matrix():
    q, p = randn(9, 5, seed=1, dtype=F64), randn(9, 5, seed=2, dtype=F64)
    logits = cosine(q, p) / 0.2
    assert torch.allclose(info_nce(q, p, temperature=0.2), F.cross_entropy(logits, torch.arange(9)))
    qq = (cosine(q, q) / 0.2).fill_diagonal_(-math.inf)
    expected = F.cross_entropy(torch.cat([logits, qq], 1), torch.arange(9))
    assert torch.allclose(info_nce(q, p, temperature=0.2, intra_view=True), expected)


def test_nt_xent_matches_simclr_2n_matrix():
    z1, z2 = randn(6, 4, seed=1, dtype=F64), randn(6, 4, seed=2, dtype=F64)
    z = torch.cat([z1, z2])
    logits = (cosine(z, z) / 0.5).fill_diagonal_(-math.inf)
    targets = torch.cat([torch.arange(6, 12), torch.arange(6)])
    assert torch.allclose(nt_xent(z1, z2), F.cross_entropy(logits, targets))


def test_info_nce_per_anchor_negatives_equal_shared_bank_when_expanded():
    q, p, bank = randn(6, 4, seed=1, dtype=F64), randn(6, 4, seed=2, dtype=F64), randn(10, 4, seed=3, dtype=F64)
    assert torch.allclose(info_nce(q, p, bank), info_nce(q, p, bank.expand(6, 10, 4)))


def test_info_nce_bank_matches_explicit_logits():
    q, p, bank = randn(6, 4, seed=1, dtype=F64), randn(6, 4, seed=2, dtype=F64), randn(10, 4, seed=3, dtype=F64)
    pos = F.cosine_similarity(q, p)[:, None]
    logits = torch.cat([pos, cosine(q, bank)], 1) / 0.1
    assert torch.allclose(info_nce(q, p, bank), F.cross_entropy(logits, torch.zeros(6, dtype=torch.long)))


MODES = ["in_batch", "intra_view", "bank"]


def _info_nce_args(mode: str, n: int, seed: int = 0) -> tuple[list[torch.Tensor], dict]:
    tensors = [randn(n, 6, seed=seed, dtype=F64, grad=True), randn(n, 6, seed=seed + 1, dtype=F64, grad=True)]
    if mode == "bank":
        tensors.append(randn(11, 6, seed=seed + 2, dtype=F64, grad=True))
    return tensors, {"intra_view": mode == "intra_view"}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("energy", ["cosine", "dot"])
@pytest.mark.parametrize("chunk_size", [1, 4, 5, 64])  # 4 divides N = 12, 5 does not, 64 > N
def test_chunked_info_nce_equals_dense(mode, energy, chunk_size):
    tensors, kwargs = _info_nce_args(mode, 12)
    dense = info_nce(*tensors, temperature=0.3, energy=energy, **kwargs)
    chunked = info_nce(*tensors, temperature=0.3, energy=energy, chunk_size=chunk_size, **kwargs)
    assert torch.allclose(dense, chunked, atol=1e-5, rtol=0)
    for a, b in zip(torch.autograd.grad(dense, tensors), torch.autograd.grad(chunked, tensors)):
        assert torch.allclose(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("energy", ["cosine", "dot"])
def test_chunked_info_nce_gradcheck(mode, energy):
    tensors, kwargs = _info_nce_args(mode, 5)
    assert torch.autograd.gradcheck(
        lambda *t: info_nce(*t, temperature=0.5, energy=energy, chunk_size=2, **kwargs), tensors
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("energy", ["cosine", "dot"])
def test_dense_info_nce_gradcheck_and_second_backward(mode, energy):
    # the unchunked path saves exp(S - max) and turns it into the gradient in place: a second backward
    # through the same graph (gradcheck does several) must recompute it
    tensors, kwargs = _info_nce_args(mode, 5)
    assert torch.autograd.gradcheck(lambda *t: info_nce(*t, temperature=0.5, energy=energy, **kwargs), tensors)
    loss = info_nce(*tensors, temperature=0.5, energy=energy, **kwargs)
    first = torch.autograd.grad(loss, tensors, retain_graph=True)
    for a, b in zip(first, torch.autograd.grad(loss, tensors)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("n", [1, 2, 9])
@pytest.mark.parametrize("chunk_size", [None, 4])
def test_nt_xent_equals_info_nce_both_ways(n, chunk_size):
    z1, z2 = randn(n, 6, seed=3, dtype=F64, grad=True), randn(n, 6, seed=4, dtype=F64, grad=True)
    expected = (info_nce(z1, z2, temperature=0.3, intra_view=True)
                + info_nce(z2, z1, temperature=0.3, intra_view=True)) / 2
    loss = nt_xent(z1, z2, temperature=0.3, chunk_size=chunk_size)
    torch.testing.assert_close(loss, expected)
    for a, b in zip(torch.autograd.grad(loss, (z1, z2)), torch.autograd.grad(expected, (z1, z2))):
        torch.testing.assert_close(a, b)


def test_nt_xent_gradcheck_and_second_backward():
    z1, z2 = randn(6, 4, seed=5, dtype=F64, grad=True), randn(6, 4, seed=6, dtype=F64, grad=True)
    assert torch.autograd.gradcheck(lambda a, b: nt_xent(a, b, temperature=0.5), (z1, z2))
    loss = nt_xent(z1, z2)
    first = torch.autograd.grad(loss, (z1, z2), retain_graph=True)
    for a, b in zip(first, torch.autograd.grad(loss, (z1, z2))):
        assert torch.equal(a, b)


def test_nt_xent_stable_for_small_temperature():
    z1, z2 = randn(16, 8, seed=7, grad=True), randn(16, 8, seed=8, grad=True)
    loss = nt_xent(z1, z2, temperature=1e-3)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z1.grad).all() and torch.isfinite(z2.grad).all()
    expected = (info_nce(z1, z2, temperature=1e-3, intra_view=True, chunk_size=5)
                + info_nce(z2, z1, temperature=1e-3, intra_view=True, chunk_size=5)) / 2
    torch.testing.assert_close(loss, expected)


def test_info_nce_stable_for_huge_logits():
    q = randn(8, 4, seed=1) * 1e3
    loss = info_nce(q, q + 1, energy="dot", temperature=0.01, chunk_size=3)
    assert torch.isfinite(loss)


def test_chunked_info_nce_large_batch_keeps_memory_small(monkeypatch):
    # dense N = 20000 would hold 400M similarities (1.6 GB) and save them for backward; chunked may only
    # build 1024 x N blocks and save O(N x D)
    n, d, chunk = 20000, 64, 1024
    blocks: list[int] = []
    saved: list[int] = []

    def recording_block_scores(*args):
        out = block_scores(*args)
        blocks.append(out.numel())
        return out

    block_scores = losses._block_scores
    monkeypatch.setattr(losses, "_block_scores", recording_block_scores)
    q, p = randn(n, d, seed=1, grad=True), randn(n, d, seed=2, grad=True)
    start = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
        loss = info_nce(q, p, chunk_size=chunk)
    loss.backward()
    assert time.perf_counter() - start < 60  # ~3 s on 2 idle cores
    assert len(blocks) == 2 * math.ceil(n / chunk) and max(blocks) == chunk * n
    assert max(saved) <= n * d
    assert torch.isfinite(q.grad).all() and torch.isfinite(p.grad).all()


# ----------------------------------------------------------------------------- dtypes


LOSSES_2 = {
    "info_nce": info_nce,
    "nt_xent": nt_xent,
    "barlow_twins": barlow_twins,
    "vicreg": vicreg,
    "sce": sce,
    "neg_cosine": neg_cosine,
}


@pytest.mark.parametrize("name", sorted(LOSSES_2))
def test_bfloat16_inputs_give_float32_close_to_float32(name):
    loss = LOSSES_2[name]
    a, b = randn(32, 16, seed=1), randn(32, 16, seed=2)
    low = loss(a.bfloat16(), b.bfloat16())
    full = loss(a.bfloat16().float(), b.bfloat16().float())
    assert low.dtype == torch.float32 and torch.isfinite(low)
    assert torch.allclose(low, full, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", sorted(LOSSES_2))
def test_float64_stays_float64(name):
    assert LOSSES_2[name](randn(8, 4, seed=1, dtype=F64), randn(8, 4, seed=2, dtype=F64)).dtype == F64


# ----------------------------------------------------------------------------- other losses: known values


def test_pirl_nce_known_value_and_per_anchor_negatives():
    v = torch.ones(4, 3)
    t, k, size = 0.5, 6, 100
    log_c = math.log(k / size)
    # every similarity is 1/t: L = -logsigmoid(1/t - log c) - K logsigmoid(log c - 1/t), for both terms
    expected = -(F.logsigmoid(torch.tensor(1 / t - log_c)) + k * F.logsigmoid(torch.tensor(log_c - 1 / t)))
    loss = pirl_nce(v, v, v, torch.ones(k, 3), size, temperature=t, lambd=0.3)
    assert torch.allclose(loss, expected)
    m, f, g, bank = (randn(4, 3, seed=s) for s in range(4))
    bank = randn(k, 3, seed=9)
    assert torch.allclose(pirl_nce(m, f, g, bank, size), pirl_nce(m, f, g, bank.expand(4, k, 3), size))


def test_pirl_nce_normalising_constant_scales_the_noise_ratio():
    m, f, g, bank = randn(4, 3, seed=1), randn(4, 3, seed=2), randn(4, 3, seed=3), randn(5, 3, seed=4)
    # c = Z K / N: log Z = log 3 is the same as a dataset three times smaller
    assert torch.allclose(pirl_nce(m, f, g, bank, 300, log_norm=math.log(3)), pirl_nce(m, f, g, bank, 100))


def test_nce_log_norm_matches_a_float64_reference():
    q, n = randn(6, 5, seed=1, dtype=F64), randn(7, 5, seed=2, dtype=F64)
    t, size = 0.2, 1000
    cos = [[float(q[i] @ n[j] / (q[i].norm() * n[j].norm())) for j in range(7)] for i in range(6)]
    want = math.log(size * sum(math.exp(c / t) for row in cos for c in row) / 42)
    assert nce_log_norm(q, n, size, t) == pytest.approx(want, rel=1e-10)
    assert nce_log_norm(q, n.expand(6, 7, 5), size, t) == pytest.approx(want, rel=1e-10)  # per-anchor negatives


def test_pirl_nce_lambda_weights_transform_term():
    m, f, g, bank = randn(4, 3, seed=1), randn(4, 3, seed=2), randn(4, 3, seed=3), randn(5, 3, seed=4)
    only_transform = pirl_nce(m, f, g, bank, 50, lambd=1.0)
    assert torch.allclose(only_transform, pirl_nce(m, torch.zeros(4, 3) + 7, g, bank, 50, lambd=1.0))
    assert not torch.allclose(only_transform, pirl_nce(m, f, g, bank, 50, lambd=0.0))


def test_triplet_known_values():
    a = torch.tensor([[1.0, 0.0]])
    p, n = torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 0.0]])
    assert triplet(a, p, n, margin=0.5).item() == pytest.approx(1.5)  # (1 - 0) - (1 - 1) + 0.5
    assert triplet(a, p, n, margin=0.5, distance="l2").item() == pytest.approx(math.sqrt(2) + 0.5)
    assert triplet(a, n, p, margin=0.5).item() == 0.0  # hinge: well separated triplets cost nothing


def test_jsd_mi_and_dgi_bce_known_values():
    assert jsd_mi(torch.zeros(3), torch.zeros(2, 2)).item() == pytest.approx(0.0, abs=1e-7)
    pos, neg = randn(5, seed=1), randn(3, seed=2)
    expected = F.binary_cross_entropy_with_logits(torch.cat([pos, neg]), torch.cat([torch.ones(5), torch.zeros(3)]))
    assert torch.allclose(dgi_bce(pos, neg), expected)
    expected_jsd = F.softplus(-pos).mean() + F.softplus(neg).mean() - 2 * math.log(2)
    assert torch.allclose(jsd_mi(pos, neg), expected_jsd)


def test_mi_losses_stable_for_huge_scores():
    big = torch.tensor([1e4, -1e4])
    assert torch.isfinite(dgi_bce(big, -big)) and torch.isfinite(jsd_mi(big, big))


def test_sce_and_neg_cosine_known_values():
    x = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    y = torch.tensor([[0.0, 2.0], [3.0, 3.0]])
    assert sce(x, y, alpha=3.0).item() == pytest.approx(0.5)  # ((1 - 0)^3 + (1 - 1)^3) / 2
    assert neg_cosine(x, y).item() == pytest.approx(-0.5)


def test_neg_cosine_stops_gradient_to_target():
    p, z = randn(4, 3, seed=1, grad=True), randn(4, 3, seed=2, grad=True)
    neg_cosine(p, z).backward()
    assert p.grad is not None and z.grad is None


def test_barlow_twins_perfect_decorrelated_views_is_zero():
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    assert barlow_twins(z, z).item() == pytest.approx(0.0, abs=1e-4)


def test_barlow_twins_fully_correlated_features_cost_lambda_per_off_diagonal_pair():
    z = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [1.0, 1.0], [-1.0, -1.0]])  # both features identical
    assert barlow_twins(z, z, lambd=0.1).item() == pytest.approx(2 * 0.1, rel=1e-4)


def test_barlow_twins_invariant_to_positive_featurewise_affine_maps():
    z1, z2 = randn(64, 8, seed=1, dtype=F64), randn(64, 8, seed=2, dtype=F64)
    scale, shift = torch.rand(8, dtype=F64) * 3 + 0.5, randn(8, seed=3, dtype=F64)
    assert torch.allclose(barlow_twins(z1, z2), barlow_twins(z1 * scale + shift, z2), rtol=1e-4)
    flipped = z1 * torch.tensor([-1.0] + [1.0] * 7, dtype=F64)
    assert not torch.allclose(barlow_twins(z1, z2), barlow_twins(flipped, z2), rtol=1e-4)


def test_vicreg_known_values():
    # identical views: no invariance term; unbiased var of (-0.5, 0.5) is 0.5, of (0, 0) is 0; cov(x, 0) = 0
    z = torch.tensor([[-0.5, 0.0], [0.5, 0.0]])
    std_loss = ((1 - math.sqrt(0.5 + 1e-4)) + (1 - math.sqrt(1e-4))) / 2  # mean over 2 features, 2 views / 2
    assert vicreg(z, z).item() == pytest.approx(25.0 * std_loss, rel=1e-5)
    # views differing by a constant 1: mse 1; features identical with unbiased var 4 / 3: cov 4 / 3 off diagonal
    w = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [1.0, 1.0], [-1.0, -1.0]])
    expected = 2.0 * 1.0 + 0.0 + 3.0 * 2 * (2 * (4 / 3) ** 2 / 2)
    assert vicreg(w, w + 1, sim_coeff=2.0, cov_coeff=3.0).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("name", ["barlow_twins", "vicreg", "sce", "neg_cosine", "nt_xent"])
def test_symmetric_losses(name):
    loss = LOSSES_2[name]
    a, b = randn(16, 5, seed=1, dtype=F64), randn(16, 5, seed=2, dtype=F64)
    assert torch.allclose(loss(a, b), loss(b, a))


def test_dgi_bce_is_not_symmetric():
    pos, neg = randn(6, seed=1) + 2, randn(6, seed=2) - 2
    assert not torch.allclose(dgi_bce(pos, neg), dgi_bce(neg, pos))


# ----------------------------------------------------------------------------- SwAV / DINO


def test_sinkhorn_marginals():
    scores = randn(32, 8, seed=1)
    codes = sinkhorn(scores, iterations=200)
    assert codes.shape == (32, 8) and not codes.requires_grad
    assert torch.allclose(codes.sum(1), torch.ones(32), atol=1e-6)
    assert torch.allclose(codes.sum(0), torch.full((8,), 32 / 8), rtol=1e-3)
    assert sinkhorn(scores.bfloat16()).dtype == torch.float32


def test_swav_matches_explicit_swapped_prediction_and_gradients_flow_only_through_logits():
    s0, s1 = randn(8, 5, seed=1, grad=True), randn(8, 5, seed=2, grad=True)
    q0, q1 = sinkhorn(s0), sinkhorn(s1)
    ce = lambda q, s: -(q * (s / 0.1).log_softmax(1)).sum(1).mean()  # noqa: E731
    assert torch.allclose(swav([s0, s1]), (ce(q0, s1) + ce(q1, s0)) / 2)
    assert torch.allclose(swav([s0, s1], assign_views=(0,)), ce(q0, s1))


def test_swav_queue_prepends_scores_and_keeps_last_codes():
    s0, s1, queue = randn(8, 5, seed=1), randn(8, 5, seed=2), randn(16, 5, seed=3)
    q0 = sinkhorn(torch.cat([queue, s0]))[-8:]
    expected = -(q0 * (s1 / 0.1).log_softmax(1)).sum(1).mean()
    assert torch.allclose(swav([s0, s1], assign_views=(0,), queue_scores=[queue]), expected)


def test_dino_matches_explicit_pairs_and_teacher_gets_no_gradient():
    student = [randn(4, 6, seed=s, grad=True) for s in range(3)]
    teacher = [randn(4, 6, seed=10 + s, grad=True) for s in range(2)]
    center = randn(1, 6, seed=20)
    t = [((x - center) / 0.04).softmax(1) for x in teacher]
    ce = lambda p, s: -(p * (s / 0.1).log_softmax(1)).sum(1).mean()  # noqa: E731
    pairs = [(0, 1), (0, 2), (1, 0), (1, 2)]
    expected = sum(ce(t[i], student[v]) for i, v in pairs) / len(pairs)
    loss = dino(student, teacher, center)
    assert torch.allclose(loss, expected)
    assert torch.allclose(loss, dino(student, teacher, center[0]))
    loss.backward()
    assert all(x.grad is None for x in teacher) and all(x.grad is not None for x in student)


def test_dino_center_update_arithmetic():
    center = DINOCenter(3, momentum=0.9)
    assert center.center.shape == (1, 3) and "center" in center.state_dict()
    center.update([torch.ones(2, 3), torch.tensor([[3.0, 3.0, 3.0], [5.0, 5.0, 5.0]])])  # batch mean 2.5
    assert torch.allclose(center.center, torch.full((1, 3), 0.25))
    center.update(torch.full((4, 3), 10.0))
    assert torch.allclose(center.center, torch.full((1, 3), 0.9 * 0.25 + 1.0))


# ----------------------------------------------------------------------------- bad input


X, Y = torch.randn(4, 8), torch.randn(4, 8)
NAN = torch.full((4, 8), math.nan)
INF = X.clone().index_fill_(0, torch.tensor([2]), math.inf)

BAD_INPUT = [
    (lambda: info_nce(X, torch.randn(5, 8)), r"info_nce: 'positive' has shape \(5, 8\) but 'query' has shape \(4, 8\)"),
    (lambda: info_nce(X, Y, temperature=0.0), r"info_nce: temperature must be > 0, got 0\.0"),
    (lambda: info_nce(X, Y, temperature=-1.0), r"temperature must be > 0, got -1\.0"),
    (lambda: info_nce(NAN, Y), r"info_nce: 'query' contains NaN or Inf"),
    (lambda: info_nce(X, INF), r"info_nce: 'positive' contains NaN or Inf"),
    (lambda: info_nce(torch.randn(0, 8), torch.randn(0, 8)), r"info_nce: 'query' is empty"),
    (lambda: info_nce(X, Y, torch.randn(3, 5)), r"info_nce: 'negatives' has shape \(3, 5\)"),
    (lambda: info_nce(X, Y, torch.randn(5, 3, 8)), r"info_nce: 'negatives' has shape \(5, 3, 8\)"),
    (lambda: info_nce(X, Y, torch.full((3, 8), math.inf)), r"info_nce: 'negatives' contains NaN or Inf"),
    (lambda: info_nce(X, Y, energy="l1"), r"info_nce: unknown energy 'l1'"),
    (lambda: info_nce(X, Y, chunk_size=0), r"info_nce: chunk_size must be a positive int"),
    (lambda: info_nce(X, Y, torch.randn(3, 8), intra_view=True), r"info_nce: intra_view=True needs negatives=None"),
    (lambda: info_nce(X[0], Y[0]), r"info_nce: 'query' must be 2-D"),
    (lambda: nt_xent(X, torch.randn(4, 9)), r"nt_xent: 'z2' has shape \(4, 9\) but 'z1' has shape \(4, 8\)"),
    (lambda: nt_xent(X, Y, temperature=0), r"nt_xent: temperature must be > 0"),
    (lambda: nt_xent(X, NAN), r"nt_xent: 'z2' contains NaN or Inf"),
    (lambda: nt_xent(X, Y, chunk_size=-2), r"nt_xent: chunk_size must be a positive int"),
    (lambda: pirl_nce(X, Y, torch.randn(3, 8), Y, 10), r"pirl_nce: 'transform' has shape \(3, 8\) but 'memory'"),
    (lambda: pirl_nce(X, Y, Y, torch.randn(5, 7), 10), r"pirl_nce: 'negatives' has shape \(5, 7\)"),
    (lambda: pirl_nce(X, Y, Y, Y, 10, temperature=0.0), r"pirl_nce: temperature must be > 0"),
    (lambda: pirl_nce(X, Y, Y, Y, 0), r"pirl_nce: dataset_size must be > 0, got 0"),
    (lambda: pirl_nce(X, NAN, Y, Y, 10), r"pirl_nce: 'image' contains NaN or Inf"),
    (lambda: triplet(X, Y, torch.randn(2, 8)), r"triplet: 'negative' has shape \(2, 8\) but 'anchor'"),
    (lambda: triplet(X, Y, Y, distance="l1"), r"triplet: unknown distance 'l1'"),
    (lambda: jsd_mi(torch.randn(0), Y), r"jsd_mi: 'pos_scores' is empty"),
    (lambda: jsd_mi(X, NAN), r"jsd_mi: 'neg_scores' contains NaN or Inf"),
    (lambda: dgi_bce(NAN, Y), r"dgi_bce: 'pos_scores' contains NaN or Inf"),
    (lambda: dgi_bce(X, torch.randn(0, 3)), r"dgi_bce: 'neg_scores' is empty"),
    (lambda: barlow_twins(X, torch.randn(4, 7)), r"barlow_twins: 'z2' has shape \(4, 7\) but 'z1' has shape \(4, 8\)"),
    (lambda: barlow_twins(X[:1], Y[:1]), r"barlow_twins: 'z1' needs at least 2 rows"),
    (lambda: vicreg(X[:1], Y[:1]), r"vicreg: 'z1' needs at least 2 rows, got shape \(1, 8\)"),
    (lambda: vicreg(X, INF), r"vicreg: 'z2' contains NaN or Inf"),
    (lambda: sinkhorn(NAN), r"sinkhorn: 'scores' contains NaN or Inf"),
    (lambda: sinkhorn(X, epsilon=0.0), r"sinkhorn: epsilon must be > 0"),
    (lambda: sinkhorn(X, iterations=0), r"sinkhorn: iterations must be an int >= 1"),
    (lambda: swav([X]), r"swav: 'scores' needs at least 2 views, got 1"),
    (lambda: swav([X, torch.randn(3, 8)]), r"swav: 'scores\[1\]' has shape \(3, 8\) but 'scores\[0\]'"),
    (lambda: swav([X, Y], temperature=0.0), r"swav: temperature must be > 0"),
    (lambda: swav([X, Y], assign_views=(0, 2)), r"swav: assign_views \(0, 2\) must index the 2 views"),
    (lambda: swav([X, Y], queue_scores=[Y]), r"swav: 'queue_scores' has 1 entries"),
    (lambda: swav([X, Y], queue_scores=[Y, NAN]), r"swav: 'queue_scores\[1\]' contains NaN or Inf"),
    (lambda: neg_cosine(X, NAN), r"neg_cosine: 'z' contains NaN or Inf"),
    (lambda: neg_cosine(X, torch.randn(4, 2)), r"neg_cosine: 'z' has shape \(4, 2\) but 'p' has shape \(4, 8\)"),
    (lambda: dino([X, Y], [X], torch.zeros(7)), r"dino: 'center' has shape \(7,\)"),
    (lambda: dino([X, torch.randn(2, 8)], [X], torch.zeros(8)), r"dino: 'student\[1\]' has shape \(2, 8\)"),
    (lambda: dino([X, Y], [NAN], torch.zeros(8)), r"dino: 'teacher\[0\]' contains NaN or Inf"),
    (lambda: dino([X, Y], [X], torch.zeros(8), teacher_temp=0.0), r"dino: teacher_temp must be > 0"),
    (lambda: dino([X], [X], torch.zeros(8)), r"dino: needs a student view other than each teacher view"),
    (lambda: sce(X, torch.randn(5, 8)), r"sce: 'y' has shape \(5, 8\) but 'x' has shape \(4, 8\)"),
    (lambda: sce(X, Y, alpha=0.0), r"sce: alpha must be > 0"),
]
BAD_IDS = [f"{m.split(':')[0]}-{i}" for i, (_, m) in enumerate(BAD_INPUT)]


@pytest.mark.parametrize("call, message", BAD_INPUT, ids=BAD_IDS)
def test_bad_input_raises_value_error_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()
