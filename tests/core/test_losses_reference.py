"""Independent float64 reference checks for ``graphcl.core.losses`` and ``graphcl.core.energy``.

Every reference below is written directly from the written loss formulas with explicit
Python loops over anchors / pairs (or explicit full matrices) and never calls graphcl.
The references use plain torch float64 ops so that ``torch.autograd.grad`` can be taken
through them and compared with the gradients of the library implementation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from graphcl.core import losses as L
from graphcl.core import energy as E

DT = torch.float64
RTOL, ATOL = 1e-7, 1e-8  # float64 vs float64 reference
RTOL32, ATOL32 = 1e-4, 1e-5  # float32 implementation vs float64 reference

SHAPES = [(1, 3), (2, 8), (5, 32), (17, 8)]  # (N, D)
SHAPES_N2 = [(2, 3), (5, 8), (17, 32)]  # losses that need N >= 2 (batch statistics)
TEMPS = [0.05, 0.1, 0.5, 1.0]


# ----------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------
pytestmark = pytest.mark.usefixtures("single_thread")  # see conftest.py


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(g: torch.Generator, *shape: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=g, dtype=DT) * scale


def _close(got, expected, rtol=RTOL, atol=ATOL):
    assert got is not None, "expected a gradient / value, got None"
    got = torch.as_tensor(got).detach().to(DT)
    expected = torch.as_tensor(expected).detach().to(DT)
    torch.testing.assert_close(got, expected, rtol=rtol, atol=atol)


def _scalar(x):
    assert isinstance(x, torch.Tensor)
    assert x.dim() == 0 or x.numel() == 1, f"loss must be a scalar, got shape {tuple(x.shape)}"
    return x.reshape(())


def _value_and_grads(fn, inputs):
    """Evaluate ``fn(*inputs)`` on fresh leaf copies and return (value, grads)."""
    leaves = [x.detach().clone().requires_grad_(True) for x in inputs]
    out = _scalar(fn(*leaves))
    grads = torch.autograd.grad(out, leaves, allow_unused=True)
    return out.detach(), grads


def _assert_no_grad(g):
    assert g is None or torch.count_nonzero(g) == 0, "expected no gradient to flow"


# ---- elementary references (1-D vectors, torch ops so autograd works) -------------------
def ref_dot(a, b):
    total = a[0] * b[0]
    for k in range(1, a.shape[0]):
        total = total + a[k] * b[k]
    return total


def ref_cos(a, b):
    return (a * b).sum() / (torch.sqrt((a * a).sum()) * torch.sqrt((b * b).sum()))


def ref_energy(a, b, energy):
    if energy == "cosine":
        return ref_cos(a, b)
    if energy == "dot":
        return (a * b).sum()
    raise ValueError(energy)


def ref_logsumexp(terms):
    """Stable log(sum(exp(x))) of a 1-D tensor or a list of 0-d tensors."""
    x = terms if isinstance(terms, torch.Tensor) else torch.stack(list(terms))
    m = x.max().detach()
    return m + torch.log(torch.exp(x - m).sum())


def ref_log_softmax_rows(x):
    """Row-wise log-softmax of a [B, K] tensor, one explicit row at a time."""
    rows = []
    for b in range(x.shape[0]):
        r = x[b]
        rows.append(r - ref_logsumexp(r))
    return torch.stack(rows)


def ref_softplus(x):
    """log(1 + exp(x)) elementwise, stable form."""
    return torch.clamp(x, min=0) + torch.log1p(torch.exp(-x.abs()))


# ----------------------------------------------------------------------------------------
# loss references
# ----------------------------------------------------------------------------------------
def ref_info_nce(query, positive, negatives=None, temperature=0.1, intra_view=False, energy="cosine",
                 exclude_positive=False):
    N = query.shape[0]

    def s(a, b):
        return ref_energy(a, b, energy) / temperature

    per_anchor = []
    for i in range(N):
        pos = s(query[i], positive[i])
        if negatives is None:
            terms = [s(query[i], positive[j]) for j in range(N) if not (exclude_positive and j == i)]
            if intra_view:
                terms += [s(query[i], query[j]) for j in range(N) if j != i]
        else:
            negs = negatives if negatives.dim() == 2 else negatives[i]
            terms = ([] if exclude_positive else [pos]) + [s(query[i], negs[m]) for m in range(negs.shape[0])]
        per_anchor.append(-pos + ref_logsumexp(terms))
    return torch.stack(per_anchor).mean()


def ref_nt_xent(z1, z2, temperature=0.5):
    N = z1.shape[0]
    z = [z1[i] for i in range(N)] + [z2[i] for i in range(N)]
    per_anchor = []
    for a in range(2 * N):
        pos_idx = a + N if a < N else a - N
        terms = [ref_cos(z[a], z[b]) / temperature for b in range(2 * N) if b != a]
        pos = ref_cos(z[a], z[pos_idx]) / temperature
        per_anchor.append(-pos + ref_logsumexp(terms))
    return torch.stack(per_anchor).mean()


def ref_pirl_nce(memory, image, transform, negatives, dataset_size, temperature=0.07, lambd=0.5):
    N = memory.shape[0]
    K = negatives.shape[-2]
    c = K / dataset_size

    def h(a, b):
        e = torch.exp(ref_cos(a, b) / temperature)
        return e / (e + c)

    def nce(m, v, negs):
        out = -torch.log(h(m, v))
        for k in range(negs.shape[0]):
            out = out - torch.log(1 - h(v, negs[k]))
        return out

    per_anchor = []
    for i in range(N):
        negs = negatives if negatives.dim() == 2 else negatives[i]
        per_anchor.append(
            lambd * nce(memory[i], transform[i], negs) + (1 - lambd) * nce(memory[i], image[i], negs)
        )
    return torch.stack(per_anchor).mean()


def ref_triplet(anchor, positive, negative, margin=1.0, distance="cosine"):
    def d(x, y):
        if distance == "cosine":
            return 1 - ref_cos(x, y)
        return torch.sqrt(((x - y) ** 2).sum())

    terms = []
    for i in range(anchor.shape[0]):
        terms.append(torch.relu(d(anchor[i], positive[i]) - d(anchor[i], negative[i]) + margin))
    return torch.stack(terms).mean()


def ref_jsd_mi(pos, neg):
    return ref_softplus(-pos).mean() + ref_softplus(neg).mean() - 2 * math.log(2)


def ref_dgi_bce(pos, neg):
    # BCE-with-logits: label 1 -> -log sigmoid(x) = softplus(-x); label 0 -> softplus(x)
    total = ref_softplus(-pos).sum() + ref_softplus(neg).sum()
    return total / (pos.numel() + neg.numel())


def ref_barlow_twins(z1, z2, lambd=5e-3):
    N, D = z1.shape

    def standardise(z):
        mu = z.sum(0) / N
        var = ((z - mu) ** 2).sum(0) / N  # biased
        return (z - mu) / torch.sqrt(var + 1e-5)

    a, b = standardise(z1), standardise(z2)
    loss = torch.zeros((), dtype=z1.dtype)
    for i in range(D):
        for j in range(D):
            c_ij = (a[:, i] * b[:, j]).sum() / N
            loss = loss + ((c_ij - 1) ** 2 if i == j else lambd * c_ij**2)
    return loss


def ref_vicreg(z1, z2, sim_coeff=25.0, std_coeff=25.0, cov_coeff=1.0):
    N, D = z1.shape
    repr_loss = ((z1 - z2) ** 2).sum() / (N * D)

    def centre(z):
        return z - z.sum(0) / N

    def std(zc):
        return torch.sqrt((zc**2).sum(0) / (N - 1) + 1e-4)

    def off_diag_cov_sq(zc):
        total = torch.zeros((), dtype=zc.dtype)
        for i in range(D):
            for j in range(D):
                if i != j:
                    total = total + ((zc[:, i] * zc[:, j]).sum() / (N - 1)) ** 2
        return total

    c1, c2 = centre(z1), centre(z2)
    std_loss = torch.relu(1 - std(c1)).mean() / 2 + torch.relu(1 - std(c2)).mean() / 2
    cov_loss = off_diag_cov_sq(c1) / D + off_diag_cov_sq(c2) / D
    return sim_coeff * repr_loss + std_coeff * std_loss + cov_coeff * cov_loss


def ref_sinkhorn_np(scores, iterations=3, epsilon=0.05):
    S = np.asarray(scores, dtype=np.float64)
    Q = np.exp(S / epsilon).T  # [K, B]
    K, B = Q.shape
    Q = Q / Q.sum()
    for _ in range(iterations):
        Q = Q / Q.sum(axis=1, keepdims=True)
        Q = Q / K
        Q = Q / Q.sum(axis=0, keepdims=True)
        Q = Q / B
    return (Q * B).T  # [B, K]


def ref_swav(scores, temperature=0.1, assign_views=(0, 1), iterations=3, epsilon=0.05, queue_scores=None):
    B = scores[0].shape[0]
    sublosses = []
    for j, a in enumerate(assign_views):
        s_a = scores[a].detach()
        if queue_scores is not None:
            s_a = torch.cat([queue_scores[j].detach(), s_a], dim=0)
        q = torch.from_numpy(ref_sinkhorn_np(s_a.numpy(), iterations, epsilon))[-B:]
        terms = []
        for v in range(len(scores)):
            if v == a:
                continue
            logp = ref_log_softmax_rows(scores[v] / temperature)
            terms.append(-(q * logp).sum(dim=1).mean())
        sublosses.append(torch.stack(terms).mean())
    return torch.stack(sublosses).mean()


def ref_neg_cosine(p, z):
    z = z.detach()
    return -torch.stack([ref_cos(p[i], z[i]) for i in range(p.shape[0])]).mean()


def ref_dino(student, teacher, center, student_temp=0.1, teacher_temp=0.04):
    c = center.detach().reshape(-1)
    t_probs = [torch.exp(ref_log_softmax_rows((t.detach() - c) / teacher_temp)) for t in teacher]
    terms = []
    for i, t in enumerate(t_probs):
        for v, s in enumerate(student):
            if v == i:
                continue
            terms.append(-(t * ref_log_softmax_rows(s / student_temp)).sum(dim=1).mean())
    return torch.stack(terms).mean()


def ref_sce(x, y, alpha=2.0):
    return torch.stack([(1 - ref_cos(x[i], y[i])) ** alpha for i in range(x.shape[0])]).mean()


# ----------------------------------------------------------------------------------------
# sanity checks of the references themselves (cheap, pure torch)
# ----------------------------------------------------------------------------------------
def test_reference_sanity():
    g = _gen(0)
    q, p = _randn(g, 6, 4), _randn(g, 6, 4)
    # info_nce without negatives == cross entropy over the cosine matrix
    qn, pn = q / q.norm(dim=1, keepdim=True), p / p.norm(dim=1, keepdim=True)
    logits = qn @ pn.T / 0.3
    ce = torch.nn.functional.cross_entropy(logits, torch.arange(6))
    _close(ref_info_nce(q, p, temperature=0.3), ce, rtol=1e-12, atol=1e-12)
    # sinkhorn reference: columns (samples) sum to 1 after the final step
    codes = ref_sinkhorn_np(np.random.default_rng(0).uniform(-1, 1, (7, 5)))
    np.testing.assert_allclose(codes.sum(axis=1), np.ones(7), rtol=1e-12)
    # dgi_bce reference == torch BCE-with-logits
    pos, neg = _randn(g, 5), _randn(g, 5)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.cat([pos, neg]), torch.cat([torch.ones(5, dtype=DT), torch.zeros(5, dtype=DT)])
    )
    _close(ref_dgi_bce(pos, neg), bce, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------------------
# energy
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("n,m,d", [(1, 1, 3), (4, 7, 8), (17, 5, 32)])
def test_energy_cosine_and_dot(n, m, d):
    g = _gen(100 + n * m + d)
    a, b = _randn(g, n, d), _randn(g, m, d)
    exp_cos = torch.stack([torch.stack([ref_cos(a[i], b[j]) for j in range(m)]) for i in range(n)])
    exp_dot = torch.stack([torch.stack([ref_dot(a[i], b[j]) for j in range(m)]) for i in range(n)])
    got_cos, got_dot = E.cosine(a, b), E.dot(a, b)
    assert tuple(got_cos.shape) == (n, m) and tuple(got_dot.shape) == (n, m)
    _close(got_cos, exp_cos)
    _close(got_dot, exp_dot)


@pytest.mark.parametrize("n,d", [(1, 3), (6, 8), (17, 32)])
def test_bilinear_discriminator(n, d):
    g = _gen(200 + n + d)
    disc = E.BilinearDiscriminator(d).double()
    assert tuple(disc.weight.shape) == (d, d)
    with torch.no_grad():
        disc.weight.copy_(_randn(g, d, d))  # deliberately non-symmetric
        bias = getattr(disc, "bias", None)
        if isinstance(bias, torch.Tensor):
            bias.copy_(_randn(g, *bias.shape))
    h, s = _randn(g, n, d), _randn(g, d)
    W = disc.weight.detach()
    b0 = 0.0
    if isinstance(getattr(disc, "bias", None), torch.Tensor):
        b0 = disc.bias.detach().reshape(-1)[0]
    expected = []
    for i in range(n):
        Ws = torch.stack([ref_dot(W[r], s) for r in range(d)])
        expected.append(ref_dot(h[i], Ws) + b0)
    got = disc(h, s)
    assert got.numel() == n
    _close(got.reshape(-1), torch.stack(expected))


# ----------------------------------------------------------------------------------------
# info_nce
# ----------------------------------------------------------------------------------------
NEG_MODES = ["none", "intra", "bank", "per_anchor"]


def _info_nce_inputs(seed, n, d, mode, m=6):
    g = _gen(seed)
    sc = d**-0.5  # keeps dot-energy logits moderate; irrelevant for cosine
    q, p = _randn(g, n, d, scale=sc), _randn(g, n, d, scale=sc)
    negs = None
    if mode == "bank":
        negs = _randn(g, m, d, scale=sc)
    elif mode == "per_anchor":
        negs = _randn(g, n, m, d, scale=sc)
    return q, p, negs


@pytest.mark.parametrize("mode", NEG_MODES)
@pytest.mark.parametrize("energy", ["cosine", "dot"])
@pytest.mark.parametrize("temperature", TEMPS)
@pytest.mark.parametrize("n,d", SHAPES)
def test_info_nce_value(n, d, temperature, energy, mode):
    q, p, negs = _info_nce_inputs(1000 + 7 * n + d, n, d, mode)
    intra = mode == "intra"
    expected = ref_info_nce(q, p, negs, temperature=temperature, intra_view=intra, energy=energy)
    got = L.info_nce(q, p, negs, temperature=temperature, intra_view=intra, energy=energy)
    _close(_scalar(got), expected)


@pytest.mark.parametrize("mode", NEG_MODES)
@pytest.mark.parametrize("energy", ["cosine", "dot"])
@pytest.mark.parametrize("temperature", [0.05, 0.5])
@pytest.mark.parametrize("n,d", [(2, 3), (5, 8), (17, 32)])
def test_info_nce_grad(n, d, temperature, energy, mode):
    q, p, negs = _info_nce_inputs(2000 + 7 * n + d, n, d, mode)
    _info_nce_matches_reference(q, p, negs, temperature=temperature, intra_view=mode == "intra", energy=energy)


def _info_nce_matches_reference(q, p, negs, chunk_size=None, **kw):
    """`info_nce(q, p, negs, chunk_size, **kw)` equals the float64 loop `ref_info_nce(..., **kw)` in value and in
    the gradient of every input."""
    inputs = [q, p] + ([negs] if negs is not None else [])

    def impl(q_, p_, *rest):
        return L.info_nce(q_, p_, rest[0] if rest else None, chunk_size=chunk_size, **kw)

    def ref(q_, p_, *rest):
        return ref_info_nce(q_, p_, rest[0] if rest else None, **kw)

    v_got, g_got = _value_and_grads(impl, inputs)
    v_exp, g_exp = _value_and_grads(ref, inputs)
    _close(v_got, v_exp)
    for a, b in zip(g_got, g_exp):
        _close(a, b, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("mode, chunk", [("in_batch", None), ("in_batch", 3), ("bank", None), ("bank", 3),
                                         ("per_anchor", None)])  # per-anchor negatives are never chunked
@pytest.mark.parametrize("energy", ["cosine", "dot"])
def test_info_nce_exclude_positive_value_and_grad(mode, energy, chunk):
    """GraphCL's form: the positive left out of the denominator (value and gradients against the float64 loop)."""
    q, p, negs = _info_nce_inputs(4000 + len(mode), 9, 6, mode)
    _info_nce_matches_reference(q, p, negs, chunk_size=chunk, temperature=0.2, energy=energy, exclude_positive=True)
    # known value: with every pair equally similar, each anchor has N - 1 (or M) equal negatives
    ones = torch.ones(9, 6, dtype=torch.float64)
    expected = math.log(8 if negs is None else 6)
    bank = None if negs is None else torch.ones_like(negs)
    assert abs(float(L.info_nce(ones, ones, bank, exclude_positive=True, chunk_size=chunk)) - expected) < 1e-12


def test_info_nce_exclude_positive_rejects_what_it_cannot_compute():
    q = torch.randn(4, 3)
    with pytest.raises(ValueError, match="not supported with intra_view"):
        L.info_nce(q, q, intra_view=True, exclude_positive=True)
    with pytest.raises(ValueError, match="needs N >= 2 rows, got 1"):
        L.info_nce(q[:1], q[:1], exclude_positive=True)


_CHUNK_REF_CACHE: dict = {}


@pytest.mark.parametrize("mode", NEG_MODES)
@pytest.mark.parametrize("energy", ["cosine", "dot"])
@pytest.mark.parametrize(
    "n,chunk",
    [(17, 1), (17, 3), (17, 4), (17, 16), (17, 17), (17, 40), (8, 4), (8, 3), (8, 8), (1, 2)],
)
def test_info_nce_chunked_matches_unchunked(n, chunk, energy, mode):
    d = 8
    q, p, negs = _info_nce_inputs(3000 + 13 * n, n, d, mode)  # same inputs for every chunk size
    intra = mode == "intra"
    inputs = [q, p] + ([negs] if negs is not None else [])
    kw = dict(temperature=0.1, intra_view=intra, energy=energy)

    def impl(chunk_size):
        def f(q_, p_, *rest):
            return L.info_nce(q_, p_, rest[0] if rest else None, chunk_size=chunk_size, **kw)

        return f

    def ref(q_, p_, *rest):
        return ref_info_nce(q_, p_, rest[0] if rest else None, **kw)

    v_full, g_full = _value_and_grads(impl(None), inputs)
    v_chunk, g_chunk = _value_and_grads(impl(chunk), inputs)
    key = (n, energy, mode)
    if key not in _CHUNK_REF_CACHE:  # the loop reference is the slow part; share it across chunks
        _CHUNK_REF_CACHE[key] = _value_and_grads(ref, inputs)
    v_ref, g_ref = _CHUNK_REF_CACHE[key]
    _close(v_chunk, v_full, rtol=1e-10, atol=1e-12)
    _close(v_chunk, v_ref)
    for a, b, c in zip(g_chunk, g_full, g_ref):
        _close(a, b, rtol=1e-9, atol=1e-12)
        _close(a, c, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("chunk", [None, 3])
@pytest.mark.parametrize("mode", ["none", "bank"])
def test_info_nce_grad_query_only(mode, chunk):
    """MoCo-style call: only the query requires grad (keys / queue are plain tensors)."""
    q, p, negs = _info_nce_inputs(3500, 7, 8, mode)
    kw = dict(temperature=0.2, energy="cosine")
    q_ = q.clone().requires_grad_(True)
    got = _scalar(L.info_nce(q_, p, negs, chunk_size=chunk, **kw))
    (g_got,) = torch.autograd.grad(got, [q_])
    v_exp, (g_exp,) = _value_and_grads(lambda a: ref_info_nce(a, p, negs, **kw), [q])
    _close(got, v_exp)
    _close(g_got, g_exp, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("mode", NEG_MODES)
@pytest.mark.parametrize("energy", ["cosine", "dot"])
@pytest.mark.parametrize("temperature", [0.05, 1.0])
def test_info_nce_float32(temperature, energy, mode):
    n, d = 9, 16
    q, p, negs = _info_nce_inputs(4000 + int(temperature * 100), n, d, mode)
    intra = mode == "intra"
    kw = dict(temperature=temperature, intra_view=intra, energy=energy)
    expected = ref_info_nce(q, p, negs, **kw)
    got = L.info_nce(q.float(), p.float(), None if negs is None else negs.float(), **kw)
    assert got.dtype == torch.float32
    _close(_scalar(got), expected, rtol=RTOL32, atol=ATOL32)
    got_chunk = L.info_nce(
        q.float(), p.float(), None if negs is None else negs.float(), chunk_size=4, **kw
    )
    _close(_scalar(got_chunk), expected, rtol=RTOL32, atol=ATOL32)


def test_info_nce_defaults():
    """Default temperature 0.1, cosine energy, no intra-view terms."""
    q, p, _ = _info_nce_inputs(4500, 5, 8, "none")
    _close(_scalar(L.info_nce(q, p)), ref_info_nce(q, p, None, temperature=0.1))


# ----------------------------------------------------------------------------------------
# nt_xent
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("temperature", TEMPS)
@pytest.mark.parametrize("n,d", SHAPES)
def test_nt_xent_value(n, d, temperature):
    g = _gen(5000 + 7 * n + d)
    z1, z2 = _randn(g, n, d), _randn(g, n, d)
    _close(_scalar(L.nt_xent(z1, z2, temperature=temperature)), ref_nt_xent(z1, z2, temperature))


@pytest.mark.parametrize("temperature", [0.1, 0.5])
@pytest.mark.parametrize("n,d", [(2, 3), (5, 8), (17, 32)])
def test_nt_xent_grad_and_float32(n, d, temperature):
    g = _gen(5500 + 7 * n + d)
    z1, z2 = _randn(g, n, d), _randn(g, n, d)
    v_got, g_got = _value_and_grads(lambda a, b: L.nt_xent(a, b, temperature=temperature), [z1, z2])
    v_exp, g_exp = _value_and_grads(lambda a, b: ref_nt_xent(a, b, temperature), [z1, z2])
    _close(v_got, v_exp)
    for a, b in zip(g_got, g_exp):
        _close(a, b, rtol=1e-6, atol=1e-9)
    _close(_scalar(L.nt_xent(z1.float(), z2.float(), temperature=temperature)), v_exp, RTOL32, ATOL32)


def test_nt_xent_default_temperature():
    g = _gen(5900)
    z1, z2 = _randn(g, 4, 8), _randn(g, 4, 8)
    _close(_scalar(L.nt_xent(z1, z2)), ref_nt_xent(z1, z2, 0.5))


# ----------------------------------------------------------------------------------------
# pirl_nce
# ----------------------------------------------------------------------------------------
def _pirl_inputs(seed, n, d, k, per_anchor):
    g = _gen(seed)
    mem, img, tr = _randn(g, n, d), _randn(g, n, d), _randn(g, n, d)
    negs = _randn(g, n, k, d) if per_anchor else _randn(g, k, d)
    return mem, img, tr, negs


@pytest.mark.parametrize("per_anchor", [False, True])
@pytest.mark.parametrize("lambd", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("temperature", [0.07, 0.1, 0.5])
@pytest.mark.parametrize("n,d,k,dataset_size", [(1, 3, 4, 100), (5, 8, 16, 1000), (17, 32, 7, 50)])
def test_pirl_nce_value(n, d, k, dataset_size, temperature, lambd, per_anchor):
    mem, img, tr, negs = _pirl_inputs(6000 + n + d + k, n, d, k, per_anchor)
    expected = ref_pirl_nce(mem, img, tr, negs, dataset_size, temperature=temperature, lambd=lambd)
    got = L.pirl_nce(mem, img, tr, negs, dataset_size, temperature=temperature, lambd=lambd)
    _close(_scalar(got), expected)


@pytest.mark.parametrize("per_anchor", [False, True])
@pytest.mark.parametrize("n,d,k,dataset_size", [(2, 3, 4, 100), (9, 16, 8, 500)])
def test_pirl_nce_grad_and_float32(n, d, k, dataset_size, per_anchor):
    mem, img, tr, negs = _pirl_inputs(6500 + n + d + k, n, d, k, per_anchor)
    kw = dict(temperature=0.07, lambd=0.5)

    def impl(m_, i_, t_, n_):
        return L.pirl_nce(m_, i_, t_, n_, dataset_size, **kw)

    def ref(m_, i_, t_, n_):
        return ref_pirl_nce(m_, i_, t_, n_, dataset_size, **kw)

    v_got, g_got = _value_and_grads(impl, [mem, img, tr, negs])
    v_exp, g_exp = _value_and_grads(ref, [mem, img, tr, negs])
    _close(v_got, v_exp)
    # image and transform always receive gradient
    _close(g_got[1], g_exp[1], rtol=1e-6, atol=1e-9)
    _close(g_got[2], g_exp[2], rtol=1e-6, atol=1e-9)
    # memory / negatives: the spec formula has no stop-gradient, so they should match too
    _close(g_got[0], g_exp[0], rtol=1e-6, atol=1e-9)
    _close(g_got[3], g_exp[3], rtol=1e-6, atol=1e-9)
    got32 = L.pirl_nce(mem.float(), img.float(), tr.float(), negs.float(), dataset_size, **kw)
    _close(_scalar(got32), v_exp, RTOL32, ATOL32)


def test_pirl_nce_defaults():
    mem, img, tr, negs = _pirl_inputs(6900, 4, 8, 5, False)
    _close(
        _scalar(L.pirl_nce(mem, img, tr, negs, 200)),
        ref_pirl_nce(mem, img, tr, negs, 200, temperature=0.07, lambd=0.5),
    )


# ----------------------------------------------------------------------------------------
# triplet
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("distance", ["cosine", "l2"])
@pytest.mark.parametrize("margin", [0.0, 0.2, 1.0])
@pytest.mark.parametrize("n,d", SHAPES)
def test_triplet_value_and_grad(n, d, margin, distance):
    g = _gen(7000 + 7 * n + d)
    a, p, ng = _randn(g, n, d), _randn(g, n, d), _randn(g, n, d)

    def impl(a_, p_, n_):
        return L.triplet(a_, p_, n_, margin=margin, distance=distance)

    def ref(a_, p_, n_):
        return ref_triplet(a_, p_, n_, margin=margin, distance=distance)

    v_got, g_got = _value_and_grads(impl, [a, p, ng])
    v_exp, g_exp = _value_and_grads(ref, [a, p, ng])
    _close(v_got, v_exp)
    for x, y in zip(g_got, g_exp):
        if x is None:  # no active hinge -> zero gradient is the correct answer
            x = torch.zeros_like(y)
        _close(x, y, rtol=1e-6, atol=1e-9)


def test_triplet_default_is_cosine_margin_1():
    g = _gen(7500)
    a, p, ng = _randn(g, 6, 8), _randn(g, 6, 8), _randn(g, 6, 8)
    _close(_scalar(L.triplet(a, p, ng)), ref_triplet(a, p, ng, margin=1.0, distance="cosine"))


# ----------------------------------------------------------------------------------------
# jsd_mi / dgi_bce
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_pos,n_neg,scale", [(1, 1, 1.0), (5, 5, 3.0), (17, 40, 10.0), (8, 3, 0.5)])
def test_jsd_mi_and_dgi_bce(n_pos, n_neg, scale):
    g = _gen(8000 + n_pos + n_neg)
    pos, neg = _randn(g, n_pos, scale=scale), _randn(g, n_neg, scale=scale)
    for impl, ref in [(L.jsd_mi, ref_jsd_mi), (L.dgi_bce, ref_dgi_bce)]:
        v_got, g_got = _value_and_grads(impl, [pos, neg])
        v_exp, g_exp = _value_and_grads(ref, [pos, neg])
        _close(v_got, v_exp)
        for x, y in zip(g_got, g_exp):
            _close(x, y, rtol=1e-6, atol=1e-10)
        _close(_scalar(impl(pos.float(), neg.float())), v_exp, RTOL32, ATOL32)


def test_jsd_mi_and_dgi_bce_2d_scores():
    g = _gen(8500)
    pos, neg = _randn(g, 6, 1), _randn(g, 6, 1)
    _close(_scalar(L.jsd_mi(pos, neg)), ref_jsd_mi(pos, neg))
    _close(_scalar(L.dgi_bce(pos, neg)), ref_dgi_bce(pos, neg))


# ----------------------------------------------------------------------------------------
# barlow_twins / vicreg
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("lambd", [5e-3, 0.1])
@pytest.mark.parametrize("n,d", SHAPES_N2)
def test_barlow_twins(n, d, lambd):
    g = _gen(9000 + 7 * n + d)
    z1, z2 = _randn(g, n, d, scale=2.0) + 0.5, _randn(g, n, d)
    v_got, g_got = _value_and_grads(lambda a, b: L.barlow_twins(a, b, lambd=lambd), [z1, z2])
    v_exp, g_exp = _value_and_grads(lambda a, b: ref_barlow_twins(a, b, lambd), [z1, z2])
    _close(v_got, v_exp)
    for x, y in zip(g_got, g_exp):
        _close(x, y, rtol=1e-6, atol=1e-9)
    _close(_scalar(L.barlow_twins(z1.float(), z2.float(), lambd=lambd)), v_exp, RTOL32, 1e-4)


def test_barlow_twins_default_lambda():
    g = _gen(9400)
    z1, z2 = _randn(g, 6, 8), _randn(g, 6, 8)
    _close(_scalar(L.barlow_twins(z1, z2)), ref_barlow_twins(z1, z2, 5e-3))


@pytest.mark.parametrize("coeffs", [(25.0, 25.0, 1.0), (1.0, 0.5, 3.0)])
@pytest.mark.parametrize("scale", [0.3, 2.0])  # 0.3 -> std hinge active, 2.0 -> mostly inactive
@pytest.mark.parametrize("n,d", SHAPES_N2)
def test_vicreg(n, d, scale, coeffs):
    g = _gen(9500 + 7 * n + d)
    z1 = _randn(g, n, d, scale=scale)
    z2 = z1 + _randn(g, n, d, scale=0.5 * scale)
    sim, std, cov = coeffs
    kw = dict(sim_coeff=sim, std_coeff=std, cov_coeff=cov)
    v_got, g_got = _value_and_grads(lambda a, b: L.vicreg(a, b, **kw), [z1, z2])
    v_exp, g_exp = _value_and_grads(lambda a, b: ref_vicreg(a, b, **kw), [z1, z2])
    _close(v_got, v_exp)
    for x, y in zip(g_got, g_exp):
        _close(x, y, rtol=1e-6, atol=1e-9)
    _close(_scalar(L.vicreg(z1.float(), z2.float(), **kw)), v_exp, RTOL32, 1e-4)


def test_vicreg_defaults():
    g = _gen(9900)
    z1, z2 = _randn(g, 6, 8, scale=0.5), _randn(g, 6, 8, scale=0.5)
    _close(_scalar(L.vicreg(z1, z2)), ref_vicreg(z1, z2, 25.0, 25.0, 1.0))


# ----------------------------------------------------------------------------------------
# sinkhorn / swav
# ----------------------------------------------------------------------------------------
def _proto_scores(g, b, k):
    """Prototype scores in [-1, 1] (cosine-like), as SwAV produces."""
    return torch.rand(b, k, generator=g, dtype=DT) * 2 - 1


@pytest.mark.parametrize("iterations", [1, 3, 5])
@pytest.mark.parametrize("epsilon", [0.05, 0.1, 0.5])
@pytest.mark.parametrize("b,k", [(1, 3), (4, 4), (17, 8), (9, 32)])
def test_sinkhorn(b, k, epsilon, iterations):
    g = _gen(10000 + b * 37 + k)
    s = _proto_scores(g, b, k)
    expected = torch.from_numpy(ref_sinkhorn_np(s.numpy(), iterations, epsilon))
    got = L.sinkhorn(s, iterations=iterations, epsilon=epsilon)
    assert tuple(got.shape) == (b, k)
    _close(got, expected, rtol=1e-7, atol=1e-10)
    got32 = L.sinkhorn(s.float(), iterations=iterations, epsilon=epsilon)
    _close(got32, expected, rtol=1e-4, atol=1e-5)


def test_sinkhorn_defaults():
    g = _gen(10500)
    s = _proto_scores(g, 6, 5)
    _close(L.sinkhorn(s), torch.from_numpy(ref_sinkhorn_np(s.numpy(), 3, 0.05)), 1e-7, 1e-10)


@pytest.mark.parametrize("use_queue", [False, True])
@pytest.mark.parametrize("n_views,assign_views", [(2, (0, 1)), (3, (0, 1)), (4, (1, 2)), (3, (2,))])
@pytest.mark.parametrize("temperature", [0.1, 0.5])
@pytest.mark.parametrize("b,k", [(1, 3), (6, 8), (17, 16)])
def test_swav_value(b, k, temperature, n_views, assign_views, use_queue):
    g = _gen(11000 + 31 * b + k + n_views)
    scores = [_proto_scores(g, b, k) for _ in range(n_views)]
    queue = [_proto_scores(g, 7, k) for _ in assign_views] if use_queue else None
    expected = ref_swav(scores, temperature=temperature, assign_views=assign_views, queue_scores=queue)
    got = L.swav(scores, temperature=temperature, assign_views=assign_views, queue_scores=queue)
    _close(_scalar(got), expected)


@pytest.mark.parametrize("use_queue", [False, True])
@pytest.mark.parametrize("b,k", [(5, 8), (12, 16)])
def test_swav_grad(b, k, use_queue):
    """Gradients w.r.t. the scores (codes treated as targets, i.e. not back-propagated)."""
    g = _gen(11500 + b + k)
    n_views, assign_views = 3, (0, 1)
    scores = [_proto_scores(g, b, k) for _ in range(n_views)]
    queue = [_proto_scores(g, 7, k) for _ in assign_views] if use_queue else None
    kw = dict(temperature=0.1, assign_views=assign_views, iterations=3, epsilon=0.05, queue_scores=queue)
    v_got, g_got = _value_and_grads(lambda *s: L.swav(list(s), **kw), scores)
    v_exp, g_exp = _value_and_grads(lambda *s: ref_swav(list(s), **kw), scores)
    _close(v_got, v_exp)
    # view 2 is never an assignment view: its gradient is unambiguous (log-softmax path only)
    _close(g_got[2], g_exp[2], rtol=1e-6, atol=1e-10)
    for x, y in zip(g_got[:2], g_exp[:2]):
        _close(x, y, rtol=1e-6, atol=1e-10)


def test_swav_float32():
    g = _gen(11900)
    scores = [_proto_scores(g, 8, 10) for _ in range(3)]
    expected = ref_swav(scores, temperature=0.1, assign_views=(0, 1))
    got = L.swav([s.float() for s in scores])
    _close(_scalar(got), expected, RTOL32, ATOL32)


# ----------------------------------------------------------------------------------------
# neg_cosine / sce
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("n,d", SHAPES)
def test_neg_cosine(n, d):
    g = _gen(12000 + 7 * n + d)
    p, z = _randn(g, n, d), _randn(g, n, d)
    p_ = p.clone().requires_grad_(True)
    z_ = z.clone().requires_grad_(True)
    out = _scalar(L.neg_cosine(p_, z_))
    gp, gz = torch.autograd.grad(out, [p_, z_], allow_unused=True)
    _assert_no_grad(gz)
    v_exp, (gp_exp,) = _value_and_grads(lambda a: ref_neg_cosine(a, z), [p])
    _close(out, v_exp)
    _close(gp, gp_exp, rtol=1e-6, atol=1e-10)
    _close(_scalar(L.neg_cosine(p.float(), z.float())), v_exp, RTOL32, ATOL32)


@pytest.mark.parametrize("alpha", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("n,d", SHAPES)
def test_sce(n, d, alpha):
    g = _gen(13000 + 7 * n + d)
    x, y = _randn(g, n, d), _randn(g, n, d)
    v_got, g_got = _value_and_grads(lambda a, b: L.sce(a, b, alpha=alpha), [x, y])
    v_exp, g_exp = _value_and_grads(lambda a, b: ref_sce(a, b, alpha), [x, y])
    _close(v_got, v_exp)
    _close(g_got[0], g_exp[0], rtol=1e-6, atol=1e-10)
    if g_got[1] is not None:  # a stop-gradient on the target is not excluded by the spec
        _close(g_got[1], g_exp[1], rtol=1e-6, atol=1e-10)
    _close(_scalar(L.sce(x.float(), y.float(), alpha=alpha)), v_exp, RTOL32, ATOL32)


def test_sce_default_alpha():
    g = _gen(13500)
    x, y = _randn(g, 5, 8), _randn(g, 5, 8)
    _close(_scalar(L.sce(x, y)), ref_sce(x, y, 2.0))


# ----------------------------------------------------------------------------------------
# dino
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("center_shape", ["k", "1k"])
@pytest.mark.parametrize("temps", [(0.1, 0.04), (0.5, 0.07)])
@pytest.mark.parametrize("n_teacher,n_student", [(2, 2), (2, 4), (1, 3), (3, 3)])
@pytest.mark.parametrize("b,k", [(1, 3), (6, 16), (17, 8)])
def test_dino(b, k, n_teacher, n_student, temps, center_shape):
    g = _gen(14000 + 31 * b + k + 5 * n_teacher + n_student)
    student = [_randn(g, b, k) for _ in range(n_student)]
    teacher = [_randn(g, b, k) for _ in range(n_teacher)]
    center = _randn(g, k, scale=0.3)
    if center_shape == "1k":
        center = center.reshape(1, k)
    s_t, t_t = temps
    kw = dict(student_temp=s_t, teacher_temp=t_t)
    inputs = student + teacher

    def impl(*xs):
        return L.dino(list(xs[:n_student]), list(xs[n_student:]), center, **kw)

    def ref(*xs):
        return ref_dino(list(xs[:n_student]), list(xs[n_student:]), center, **kw)

    v_got, g_got = _value_and_grads(impl, inputs)
    v_exp, g_exp = _value_and_grads(ref, inputs)
    _close(v_got, v_exp)
    for i in range(n_student):
        # a student view that is never paired with a teacher view gets no gradient at all
        x = g_got[i] if g_got[i] is not None else torch.zeros_like(student[i])
        y = g_exp[i] if g_exp[i] is not None else torch.zeros_like(student[i])
        _close(x, y, rtol=1e-6, atol=1e-10)
    for x in g_got[n_student:]:
        _assert_no_grad(x)  # teacher outputs are targets
    got32 = L.dino([s.float() for s in student], [t.float() for t in teacher], center.float(), **kw)
    _close(_scalar(got32), v_exp, RTOL32, ATOL32)


def test_dino_defaults():
    g = _gen(14900)
    student = [_randn(g, 4, 6) for _ in range(3)]
    teacher = [_randn(g, 4, 6) for _ in range(2)]
    center = torch.zeros(6, dtype=DT)
    _close(_scalar(L.dino(student, teacher, center)), ref_dino(student, teacher, center, 0.1, 0.04))
