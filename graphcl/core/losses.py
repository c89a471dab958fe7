"""SSL objectives as pure functions of tensors returning a scalar, plus the DINO centre.

All losses are computed in log space (log-sum-exp, logsigmoid, softplus). Half-precision inputs are
computed in float32 and give a float32 loss; float64 stays float64.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from graphcl.core.energy import get_energy

__all__ = [
    "NonFiniteInputError",
    "info_nce",
    "nt_xent",
    "pirl_nce",
    "nce_log_norm",
    "triplet",
    "jsd_mi",
    "dgi_bce",
    "barlow_twins",
    "vicreg",
    "cca_ssg",
    "sinkhorn",
    "swav",
    "neg_cosine",
    "dino",
    "DINOCenter",
    "sce",
]


# ----------------------------------------------------------------------------- validation, dtypes


class NonFiniteInputError(ValueError):
    """A loss received NaN or Inf (the trainer turns it into a diverged-run error naming epoch and step)."""


def _validate(fn: str, *, ndim: int | None = 2, min_rows: int = 1, **tensors: Tensor) -> None:
    """Raise a one-line ValueError unless every tensor has `ndim` dims (None: any), the first tensor's
    shape, at least `min_rows` rows and only finite entries."""
    ref_name, ref = next(iter(tensors.items()))
    for name, t in tensors.items():
        shape = tuple(t.shape)
        if ndim is not None and t.dim() != ndim:
            raise ValueError(f"{fn}: {name!r} must be {ndim}-D, got shape {shape}")
        if t.shape != ref.shape:
            raise ValueError(f"{fn}: {name!r} has shape {shape} but {ref_name!r} has shape {tuple(ref.shape)}")
        if t.numel() == 0:
            raise ValueError(f"{fn}: {name!r} is empty, shape {shape}")
        if t.dim() > 0 and len(t) < min_rows:
            raise ValueError(f"{fn}: {name!r} needs at least {min_rows} rows, got shape {shape}")
        if not torch.isfinite(t).all():
            raise NonFiniteInputError(f"{fn}: {name!r} contains NaN or Inf")


def _validate_negatives(fn: str, negatives: Tensor, query: Tensor, query_name: str) -> None:
    """Negatives are shared `[M, D]` or per-anchor `[N, M, D]` for a query `[N, D]`."""
    n, d = query.shape
    shared = negatives.dim() == 2 and negatives.shape[1] == d
    per_anchor = negatives.dim() == 3 and negatives.shape[0] == n and negatives.shape[2] == d
    if not (shared or per_anchor):
        raise ValueError(
            f"{fn}: 'negatives' has shape {tuple(negatives.shape)} but must be [M, {d}] or [{n}, M, {d}] "
            f"for {query_name!r} of shape {tuple(query.shape)}"
        )
    _validate(fn, ndim=None, negatives=negatives)


def _check_positive(fn: str, name: str, value: float) -> None:
    if not value > 0:  # also rejects NaN
        raise ValueError(f"{fn}: {name} must be > 0, got {value}")


def _check_chunk_size(fn: str, chunk_size: int | None) -> None:
    if chunk_size is not None and not (isinstance(chunk_size, int) and chunk_size > 0):
        raise ValueError(f"{fn}: chunk_size must be a positive int or None, got {chunk_size!r}")


def _compute(*xs: Tensor | None) -> list:
    """The inputs in one common floating dtype, at least float32 (half precision is upcast); None passes."""
    dtype = torch.float32
    for x in xs:
        dtype = dtype if x is None else torch.promote_types(dtype, x.dtype)
    return [None if x is None else x.to(dtype) for x in xs]


def _unit(x: Tensor) -> Tensor:
    return F.normalize(x, dim=-1)


def _row_cosine(a: Tensor, b: Tensor) -> Tensor:
    """cos(a_i, b_i) for rows of a, b `[N, D]` -> `[N]`."""
    return (_unit(a) * _unit(b)).sum(-1)


def _pair_dot(q: Tensor, n: Tensor) -> Tensor:
    """q `[N, D]` against shared n `[M, D]` or per-anchor n `[N, M, D]` -> `[N, M]` dot products."""
    return q @ n.T if n.dim() == 2 else torch.einsum("nd,nmd->nm", q, n)


def _soft_cross_entropy(target: Tensor, logits: Tensor) -> Tensor:
    """mean_b -sum_k target_bk log_softmax(logits)_bk for `[B, K]` inputs."""
    return -(target * logits.log_softmax(-1)).sum(-1).mean()


def _off_diagonal(c: Tensor) -> Tensor:
    """Square matrix with its diagonal set to zero."""
    return c - torch.diag_embed(c.diagonal())


# ----------------------------------------------------------------------------- log-sum-exp over pairs


def _block_scores(q: Tensor, k: Tensor, temperature: float, diagonal: int | None) -> Tensor:
    """S = q k^T / T `[n, M]`; entries (r, r + diagonal) set to -inf when `diagonal` is not None (the
    rows of q are rows `diagonal...` of k, so this drops self-pairs)."""
    s = (q @ k.T).div_(temperature)
    if diagonal is not None:
        s.diagonal(diagonal).fill_(-math.inf)
    return s


def _inplace_logsumexp(s: Tensor) -> Tensor:
    """logsumexp over dim 1 `[n, M] -> [n]`, overwriting s so no second block-sized buffer exists."""
    m = s.amax(1, keepdim=True)
    return s.sub_(m).exp_().sum(1).log_().add_(m.squeeze(1))


def _self_pairs(diagonal: int | None, first_row: int) -> int | None:
    """The diagonal of a block whose rows are rows `first_row...` of q that holds q's self-pairs."""
    return None if diagonal is None else diagonal + first_row


class _ChunkedLSE(torch.autograd.Function):
    """lse_i = logsumexp_j q_i . k_j / T (j != i + `diagonal` unless it is None), `chunk` rows of q at a time.

    Saves only q, k and lse `[N]`; backward recomputes each block of scores, so at most chunk x M
    scores are alive in either pass.
    """

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, temperature: float, diagonal: int | None, chunk: int) -> Tensor:
        lse = torch.empty(len(q), dtype=q.dtype, device=q.device)
        for i in range(0, len(q), chunk):
            block = _block_scores(q[i : i + chunk], k, temperature, _self_pairs(diagonal, i))
            lse[i : i + chunk] = _inplace_logsumexp(block)
        ctx.save_for_backward(q, k, lse)
        ctx.temperature, ctx.diagonal, ctx.chunk = temperature, diagonal, chunk
        return lse

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:
        q, k, lse = ctx.saved_tensors
        t, chunk = ctx.temperature, ctx.chunk
        grad_q = torch.empty_like(q) if ctx.needs_input_grad[0] else None
        grad_k = torch.zeros_like(k) if ctx.needs_input_grad[1] else None
        for i in range(0, len(q), chunk):
            rows = slice(i, i + chunk)
            # d lse_r / d s_rj = softmax_rj = exp(s_rj - lse_r), and d s_rj = (dq_r . k_j + q_r . dk_j) / T
            p = _block_scores(q[rows], k, t, _self_pairs(ctx.diagonal, i))
            p.sub_(lse[rows, None]).exp_().mul_(grad[rows, None] / t)
            if grad_q is not None:
                grad_q[rows] = p @ k
            if grad_k is not None:
                grad_k.addmm_(p.T, q[rows])
        return grad_q, grad_k, None, None, None


def _dense_exps(q: Tensor, k: Tensor, temperature: float, diagonal: int | None) -> tuple[Tensor, Tensor, Tensor]:
    """e = exp(S - m) for the scores S `[N, M]` of `_block_scores`, their row maxima m `[N]` and z = e.sum(1)."""
    e = _block_scores(q, k, temperature, diagonal)
    m = e.amax(1, keepdim=True)
    return e, m.squeeze(1), e.sub_(m).exp_().sum(1)


class _DenseLSE(torch.autograd.Function):
    """lse_i = logsumexp_j q_i . k_j / T (j != i + `diagonal` unless it is None) over the whole score matrix.

    Computes in place and keeps exp(S - rowmax) `[N, M]` (autograd's logsumexp would keep S, and allocate
    three more blocks in backward), so backward is one in-place scaling of it into softmax x incoming gradient,
    and two products. A second backward through the same graph (`retain_graph=True`) recomputes it.
    """

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, temperature: float, diagonal: int | None) -> Tensor:
        e, m, z = _dense_exps(q, k, temperature, diagonal)
        lse = z.log().add_(m)
        ctx.save_for_backward(q, k)
        ctx.temperature, ctx.diagonal = temperature, diagonal
        ctx.exps = (e, z)  # not saved_tensors: backward overwrites e, which their version check forbids
        return lse

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:
        q, k = ctx.saved_tensors
        if ctx.exps is None:  # e was turned into the gradient of an earlier backward
            e, _, z = _dense_exps(q, k, ctx.temperature, ctx.diagonal)
        else:
            (e, z), ctx.exps = ctx.exps, None
        p = e.mul_((grad / (z * ctx.temperature))[:, None])  # softmax_rj * grad_r / T
        grad_q = p @ k if ctx.needs_input_grad[0] else None
        grad_k = p.T @ q if ctx.needs_input_grad[1] else None
        return grad_q, grad_k, None, None


def _two_view_exps(u1: Tensor, u2: Tensor, temperature: float) -> tuple[Tensor, ...]:
    """The shifted exponentials of the three score matrices of two views, and the shifts and sums.

    a = u1 u2^T / T, b = u1 u1^T / T, c = u2 u2^T / T (self-pairs of b and c at -inf). View 1's anchor i
    sees row i of a and of b, view 2's anchor j column j of a and row j of c; m1, m2 are their maxima,
    z1, z2 the sums of exp(score - m). Returns e1 = exp(a - m1 per row), e2 = exp(a - m2 per column),
    exp(b - m1), exp(c - m2), m1, m2, z1, z2.
    """
    a = _block_scores(u1, u2, temperature, None)
    b = _block_scores(u1, u1, temperature, 0)
    c = _block_scores(u2, u2, temperature, 0)
    m1 = torch.maximum(a.amax(1), b.amax(1))
    m2 = torch.maximum(a.amax(0), c.amax(1))
    e1 = (a - m1[:, None]).exp_()
    e2 = a.sub_(m2[None, :]).exp_()
    b.sub_(m1[:, None]).exp_()
    c.sub_(m2[:, None]).exp_()
    return e1, e2, b, c, m1, m2, e1.sum(1) + b.sum(1), e2.sum(0) + c.sum(1)


class _TwoViewLSE(torch.autograd.Function):
    """(lse1, lse2) `[N]` for unit rows u1, u2 `[N, D]`: lse1_i = logsumexp of u1_i . u2_j / T over all j and of
    u1_i . u1_j / T over j != i; lse2 the same with the views swapped (info_nce's intra-view candidates).

    Each of the three score matrices is computed once (two calls of info_nce compute u1 u2^T and, again, its
    transpose), their shifted exponentials are saved, and backward is a scaling of them and products.
    A second backward through the same graph recomputes them.
    """

    @staticmethod
    def forward(ctx, u1: Tensor, u2: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
        e1, e2, eb, ec, m1, m2, z1, z2 = _two_view_exps(u1, u2, temperature)
        ctx.save_for_backward(u1, u2)
        ctx.temperature = temperature
        ctx.exps = (e1, e2, eb, ec, z1, z2)  # not saved_tensors: backward overwrites them (see _DenseLSE)
        return z1.log().add_(m1), z2.log().add_(m2)

    @staticmethod
    @once_differentiable
    def backward(ctx, g1: Tensor, g2: Tensor) -> tuple[Tensor | None, ...]:
        u1, u2 = ctx.saved_tensors
        if ctx.exps is None:  # the saved exponentials became the gradients of an earlier backward
            e1, e2, eb, ec, _, _, z1, z2 = _two_view_exps(u1, u2, ctx.temperature)
        else:
            (e1, e2, eb, ec, z1, z2), ctx.exps = ctx.exps, None
        # d lse1_i / d s = exp(s - m1_i) / z1_i on row i of a and b; d lse2_j / d s = exp(s - m2_j) / z2_j on
        # column j of a and row j of c; every score is a dot product over T
        r1 = (g1 / (z1 * ctx.temperature))[:, None]
        r2 = g2 / (z2 * ctx.temperature)
        da = e1.mul_(r1).add_(e2.mul_(r2[None, :]))
        db, dc = eb.mul_(r1), ec.mul_(r2[:, None])
        grad_u1 = torch.addmm(da @ u2, db, u1).addmm_(db.T, u1)  # b is symmetric: u1 is on both sides
        grad_u2 = torch.addmm(da.T @ u1, dc, u2).addmm_(dc.T, u2)
        return grad_u1, grad_u2, None


def _pair_logsumexp(q: Tensor, k: Tensor, temperature: float, diagonal: int | None, chunk: int | None) -> Tensor:
    """lse_i = logsumexp_j q_i . k_j / T over rows of k -> `[N]`, leaving out j = i + `diagonal` unless it is None
    (the self-pair of q_i when q is rows `diagonal...` of k)."""
    if chunk is None:
        return _DenseLSE.apply(q, k, temperature, diagonal)
    return _ChunkedLSE.apply(q, k, temperature, diagonal, chunk)


# ----------------------------------------------------------------------------- contrastive


def info_nce(
    query: Tensor,
    positive: Tensor,
    negatives: Tensor | None = None,
    temperature: float = 0.1,
    intra_view: bool = False,
    energy: str = "cosine",
    chunk_size: int | None = None,
    exclude_positive: bool = False,
) -> Tensor:
    """InfoNCE: mean_i -log softmax over anchor i's candidates of its positive, s = energy / T.

    query, positive `[N, D]`; negatives None (in-batch: candidates s(q_i, p_j) for all j, plus
    s(q_i, q_j), j != i, when `intra_view`), `[M, D]` (shared bank/queue: s(q_i, p_i) and s(q_i, n_m)) or
    `[N, M, D]` (per anchor: s(q_i, p_i) and s(q_i, n_im)). loss_i = -s(q_i, p_i) + logsumexp(candidates).
    `chunk_size` bounds the live scores to chunk_size x candidates in forward and backward.
    `exclude_positive`: the positive is left out of the candidates, loss_i = -s(q_i, p_i) + logsumexp over the
    negatives only (GraphCL's eq. 3 and code; the "decoupled" loss of Yeh et al., 2022); not with `intra_view`.
    """
    fn = "info_nce"
    _validate(fn, query=query, positive=positive)
    _check_positive(fn, "temperature", temperature)
    try:
        get_energy(energy)
    except ValueError as e:
        raise ValueError(f"{fn}: {e}") from None
    _check_chunk_size(fn, chunk_size)
    if negatives is not None:
        _validate_negatives(fn, negatives, query, "query")
        if intra_view:
            shape = tuple(negatives.shape)
            raise ValueError(f"{fn}: intra_view=True needs negatives=None, got 'negatives' of shape {shape}")
    if exclude_positive and intra_view:
        raise ValueError(f"{fn}: exclude_positive=True is not supported with intra_view=True")
    if exclude_positive and negatives is None and len(query) < 2:
        raise ValueError(f"{fn}: exclude_positive=True with in-batch negatives needs N >= 2 rows, got "
                         f"{len(query)}")
    q, p, n = _compute(query, positive, negatives)
    if energy == "cosine":  # cosine is the dot product of unit rows: normalise once, outside the chunked LSE
        q, p, n = _unit(q), _unit(p), None if n is None else _unit(n)
    pos = (q * p).sum(-1) / temperature
    if n is None and intra_view:  # candidates: all of p, then q less the anchor itself (column N + i)
        lse = _pair_logsumexp(q, torch.cat([p, q]), temperature, len(q), chunk_size)
    elif n is None:  # column i is the positive
        lse = _pair_logsumexp(q, p, temperature, 0 if exclude_positive else None, chunk_size)
    else:
        lse = (_pair_logsumexp(q, n, temperature, None, chunk_size) if n.dim() == 2
               else (_pair_dot(q, n) / temperature).logsumexp(1))  # per-anchor negatives: N x M already
        if not exclude_positive:
            lse = torch.logaddexp(pos, lse)
    return (lse - pos).mean()


def nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.5, chunk_size: int | None = None) -> Tensor:
    """SimCLR's NT-Xent over all 2N anchors of z1, z2 `[N, D]` (cosine): each anchor's positive is its
    other view, the other 2N - 2 vectors are negatives, self-pairs excluded; mean over 2N anchors.

    Equals (info_nce(z1, z2, intra_view=True) + info_nce(z2, z1, intra_view=True)) / 2 (GRACE's loss).
    Without `chunk_size` the three N x N score matrices (z1 z2^T, z1 z1^T, z2 z2^T) are each computed once
    for both directions; `chunk_size` bounds the live scores as in `info_nce` (which it then calls twice).
    """
    fn = "nt_xent"
    _validate(fn, z1=z1, z2=z2)
    _check_positive(fn, "temperature", temperature)
    _check_chunk_size(fn, chunk_size)
    if chunk_size is not None:
        # anchors of view 1 see all of view 2 plus the rest of view 1: exactly info_nce with intra_view
        kwargs = dict(temperature=temperature, intra_view=True, chunk_size=chunk_size)
        return (info_nce(z1, z2, **kwargs) + info_nce(z2, z1, **kwargs)) / 2
    u1, u2 = map(_unit, _compute(z1, z2))
    pos = (u1 * u2).sum(-1) / temperature
    lse1, lse2 = _TwoViewLSE.apply(u1, u2, temperature)
    return ((lse1 - pos).mean() + (lse2 - pos).mean()) / 2


def pirl_nce(
    memory: Tensor,
    image: Tensor,
    transform: Tensor,
    negatives: Tensor,
    dataset_size: int,
    temperature: float = 0.07,
    lambd: float = 0.5,
    log_norm: float = 0.0,
) -> Tensor:
    """PIRL's NCE loss (Misra & van der Maaten 2020), s = cosine / T, c = Z K / dataset_size.

    memory m `[N, D]`, image f `[N, D]`, transform g `[N, D]`, negatives n `[K, D]` or `[N, K, D]`.
    h(a, b) = exp(s) / (exp(s) + c); L(m, v) = -log h(m, v) - sum_k log(1 - h(v, n_k)), with
    log h = logsigmoid(s - log c), log(1 - h) = logsigmoid(log c - s).
    loss = mean_i lambd L(m_i, g_i) + (1 - lambd) L(m_i, f_i).
    `log_norm` = log Z, NCE's normalising constant of exp(s) (exp(s) / Z is the model's probability of an item).
    0 is the formula as the paper prints it; implementations (Wu et al. 2018, VISSL's PIRL) estimate
    Z = dataset_size * mean exp(s) once, on the first batch (`nce_log_norm`). Without it, for a dataset much
    larger than K the K negative terms outweigh the positive one by orders of magnitude.
    """
    fn = "pirl_nce"
    _validate(fn, memory=memory, image=image, transform=transform)
    _validate_negatives(fn, negatives, memory, "memory")
    _check_positive(fn, "temperature", temperature)
    _check_positive(fn, "dataset_size", dataset_size)
    m, f, g, n = map(_unit, _compute(memory, image, transform, negatives))
    log_c = math.log(n.shape[-2] / dataset_size) + float(log_norm)

    def nce(v: Tensor) -> Tensor:
        pos = F.logsigmoid((m * v).sum(-1) / temperature - log_c)
        neg = F.logsigmoid(log_c - _pair_dot(v, n) / temperature).sum(-1)
        return -(pos + neg)

    return (lambd * nce(g) + (1 - lambd) * nce(f)).mean()


def nce_log_norm(query: Tensor, negatives: Tensor, dataset_size: int, temperature: float = 0.07) -> float:
    """log Z = log(dataset_size * mean exp(cos(q, n) / T)) over queries `[N, D]` and negatives `[K, D]` or
    `[N, K, D]`: the normalising-constant estimate of `pirl_nce`, computed once from a batch, no gradient."""
    fn = "nce_log_norm"
    _check_positive(fn, "temperature", temperature)
    _check_positive(fn, "dataset_size", dataset_size)
    with torch.no_grad():
        q, n = map(_unit, _compute(query, negatives))
        s = (_pair_dot(q, n) / temperature).flatten()
        return float(math.log(dataset_size) + s.logsumexp(0) - math.log(s.numel()))


def triplet(
    anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0, distance: str = "cosine"
) -> Tensor:
    """mean_i relu(d(a_i, p_i) - d(a_i, n_i) + margin) for `[N, D]` inputs; d = 1 - cos ("cosine") or
    Euclidean distance ("l2")."""
    fn = "triplet"
    _validate(fn, anchor=anchor, positive=positive, negative=negative)
    distances = {"cosine": lambda x, y: 1 - _row_cosine(x, y), "l2": lambda x, y: (x - y).norm(dim=-1)}
    if distance not in distances:
        raise ValueError(f"{fn}: unknown distance {distance!r}; choose from {sorted(distances)}")
    a, p, n = _compute(anchor, positive, negative)
    d = distances[distance]
    return F.relu(d(a, p) - d(a, n) + margin).mean()


# ----------------------------------------------------------------------------- mutual-information bounds


def jsd_mi(pos_scores: Tensor, neg_scores: Tensor) -> Tensor:
    """Jensen-Shannon MI estimator as a loss (Deep InfoMax / InfoGraph), any shapes:
    mean softplus(-pos) + mean softplus(neg) - 2 log 2."""
    _validate("jsd_mi", ndim=None, pos_scores=pos_scores)
    _validate("jsd_mi", ndim=None, neg_scores=neg_scores)
    pos, neg = _compute(pos_scores, neg_scores)
    return F.softplus(-pos).mean() + F.softplus(neg).mean() - 2 * math.log(2)


def dgi_bce(pos_scores: Tensor, neg_scores: Tensor) -> Tensor:
    """DGI's binary cross-entropy with logits, label 1 for pos and 0 for neg, averaged over all entries
    of both: (sum softplus(-pos) + sum softplus(neg)) / (|pos| + |neg|)."""
    _validate("dgi_bce", ndim=None, pos_scores=pos_scores)
    _validate("dgi_bce", ndim=None, neg_scores=neg_scores)
    pos, neg = _compute(pos_scores, neg_scores)
    return (F.softplus(-pos).sum() + F.softplus(neg).sum()) / (pos.numel() + neg.numel())


# ----------------------------------------------------------------------------- redundancy reduction


def barlow_twins(z1: Tensor, z2: Tensor, lambd: float = 5e-3) -> Tensor:
    """Barlow Twins on z1, z2 `[N, D]`, N >= 2: columns standardised over the batch (biased variance, eps 1e-5),
    c = z1n^T z2n / N `[D, D]`, loss = sum_i (c_ii - 1)^2 + lambd sum_{i != j} c_ij^2."""
    _validate("barlow_twins", min_rows=2, z1=z1, z2=z2)
    a, b = (F.batch_norm(z, None, None, training=True, eps=1e-5) for z in _compute(z1, z2))
    c = a.T @ b / len(a)
    return (c.diagonal() - 1).pow(2).sum() + lambd * _off_diagonal(c).pow(2).sum()


def vicreg(z1: Tensor, z2: Tensor, sim_coeff: float = 25.0, std_coeff: float = 25.0, cov_coeff: float = 1.0) -> Tensor:
    """VICReg on z1, z2 `[N, D]`, N >= 2: sim mse(z1, z2) + std mean relu(1 - sqrt(var + 1e-4)) / 2 per view
    + cov sum offdiag(zc^T zc / (N - 1))^2 / D per view."""
    _validate("vicreg", min_rows=2, z1=z1, z2=z2)
    a, b = _compute(z1, z2)

    def variance_covariance(z: Tensor) -> tuple[Tensor, Tensor]:
        z = z - z.mean(0)
        std = torch.sqrt(z.var(0) + 1e-4)
        cov = z.T @ z / (len(z) - 1)
        return F.relu(1 - std).mean() / 2, _off_diagonal(cov).pow(2).sum() / z.shape[1]

    (std_a, cov_a), (std_b, cov_b) = variance_covariance(a), variance_covariance(b)
    return sim_coeff * F.mse_loss(a, b) + std_coeff * (std_a + std_b) + cov_coeff * (cov_a + cov_b)


def cca_ssg(z1: Tensor, z2: Tensor, lambd: float = 1e-3) -> Tensor:
    """CCA-SSG (Zhang et al. 2021) on embeddings z1, z2 `[N, D]`, N >= 2, as the authors' code computes it.

    Columns are standardised over nodes, z = (h - mean) / std (unbiased std, clamped at 1e-12); with
    c = z1^T z2 / N, c1 = z1^T z1 / N, c2 = z2^T z2 / N (all `[D, D]`):
    loss = -tr(c) + lambd * (||c1 - I||_F^2 + ||c2 - I||_F^2).
    Since ||z||_F^2 = D (N - 1) after standardising, -tr(c) = ||z1 - z2||_F^2 / (2N) - D (N - 1) / N: the
    paper's invariance term ||z1 - z2||^2 / N at half weight plus a constant, so the paper's objective with
    weight lambd' is this one with lambd = lambd' / 2 (and the published lambd values are the code's).
    """
    fn = "cca_ssg"
    _validate(fn, min_rows=2, z1=z1, z2=z2)
    if not lambd >= 0:  # also rejects NaN
        raise ValueError(f"{fn}: lambd must be >= 0, got {lambd}")
    a, b = ((z - z.mean(0)) / z.std(0).clamp_min(1e-12) for z in _compute(z1, z2))
    n, eye = len(a), torch.eye(a.shape[1], dtype=a.dtype, device=a.device)
    invariance = -(a * b).sum() / n  # -tr(a^T b) / N without the D x D product
    decorrelation = (a.T @ a / n - eye).pow(2).sum() + (b.T @ b / n - eye).pow(2).sum()
    return invariance + lambd * decorrelation


# ----------------------------------------------------------------------------- clustering / distillation


@torch.no_grad()
def sinkhorn(scores: Tensor, iterations: int = 3, epsilon: float = 0.05) -> Tensor:
    """SwAV's Sinkhorn-Knopp codes for scores `[B, K]` -> `[B, K]` (no grad, at least float32).

    Q = exp((scores - max) / eps)^T / sum; each iteration scales rows of Q `[K, B]` to sum 1/K, then
    columns to 1/B; returns B Q^T: rows sum to 1, columns to ~B/K.
    """
    _validate("sinkhorn", scores=scores)
    _check_positive("sinkhorn", "epsilon", epsilon)
    if not (isinstance(iterations, int) and iterations >= 1):
        raise ValueError(f"sinkhorn: iterations must be an int >= 1, got {iterations!r}")
    (s,) = _compute(scores)
    q = ((s - s.max()) / epsilon).exp().T
    q /= q.sum()
    k, b = q.shape
    for _ in range(iterations):
        q /= q.sum(1, keepdim=True) * k
        q /= q.sum(0, keepdim=True) * b
    return (q * b).T


def swav(
    scores: Sequence[Tensor],
    temperature: float = 0.1,
    assign_views: Sequence[int] = (0, 1),
    iterations: int = 3,
    epsilon: float = 0.05,
    queue_scores: Sequence[Tensor] | None = None,
) -> Tensor:
    """SwAV swapped prediction; scores: V >= 2 prototype scores `[B, K]`, one per view.

    For each a in assign_views, codes q = sinkhorn(scores[a]) (with queue_scores[j] `[Q, K]` prepended
    for the j-th assigned view, keeping the last B codes); subloss = mean over v != a of
    mean_b -sum_k q log_softmax(scores[v] / T); loss = mean of sublosses.
    """
    fn = "swav"
    _validate(fn, **{f"scores[{v}]": s for v, s in enumerate(scores)})
    _check_positive(fn, "temperature", temperature)
    views = len(scores)
    if views < 2:
        raise ValueError(f"{fn}: 'scores' needs at least 2 views, got {views}")
    if not assign_views or any(not 0 <= a < views for a in assign_views):
        raise ValueError(f"{fn}: assign_views {tuple(assign_views)} must index the {views} views in 'scores'")
    if queue_scores is not None and len(queue_scores) != len(assign_views):
        raise ValueError(
            f"{fn}: 'queue_scores' has {len(queue_scores)} entries but assign_views has {len(assign_views)}"
        )
    logits = [s / temperature for s in _compute(*scores)]
    sublosses = []
    for j, a in enumerate(assign_views):
        assigned = scores[a].detach()
        if queue_scores is not None:
            _validate(fn, **{f"queue_scores[{j}]": queue_scores[j]})
            assigned = torch.cat([queue_scores[j].to(assigned), assigned])
        q = sinkhorn(assigned, iterations, epsilon)[-len(scores[a]) :]
        sublosses.append(torch.stack([_soft_cross_entropy(q, logits[v]) for v in range(views) if v != a]).mean())
    return torch.stack(sublosses).mean()


def neg_cosine(p: Tensor, z: Tensor) -> Tensor:
    """BYOL / SimSiam: -mean_i cos(p_i, stopgrad(z_i)) for `[N, D]` inputs."""
    _validate("neg_cosine", p=p, z=z)
    a, b = _compute(p, z)
    return -_row_cosine(a, b.detach()).mean()


def dino(
    student: Sequence[Tensor],
    teacher: Sequence[Tensor],
    center: Tensor,
    student_temp: float = 0.1,
    teacher_temp: float = 0.04,
) -> Tensor:
    """DINO: student V_s views `[B, K]`, teacher V_t global views `[B, K]` (teacher i pairs with student i),
    center `[K]` or `[1, K]`. t_i = stopgrad softmax((teacher_i - center) / teacher_temp); loss = mean over
    pairs (i, v), v != i, of mean_b -sum_k t_i log_softmax(student_v / student_temp)."""
    fn = "dino"
    views = {f"student[{v}]": s for v, s in enumerate(student)} | {f"teacher[{i}]": t for i, t in enumerate(teacher)}
    _validate(fn, **views)
    _check_positive(fn, "student_temp", student_temp)
    _check_positive(fn, "teacher_temp", teacher_temp)
    k = student[0].shape[1]
    if center.numel() != k or center.shape[-1] != k:
        raise ValueError(f"{fn}: 'center' has shape {tuple(center.shape)} but must be [{k}] or [1, {k}]")
    pairs = [(i, v) for i in range(len(teacher)) for v in range(len(student)) if v != i]
    if not pairs:
        raise ValueError(
            f"{fn}: needs a student view other than each teacher view, "
            f"got {len(student)} student and {len(teacher)} teacher views"
        )
    *s, c = _compute(*student, center)
    targets = [((t - c) / teacher_temp).softmax(-1).detach() for t in _compute(*teacher)]
    logits = [x / student_temp for x in s]
    return torch.stack([_soft_cross_entropy(targets[i], logits[v]) for i, v in pairs]).mean()


class DINOCenter(nn.Module):
    """DINO's teacher centre `[1, dim]`: an EMA of the teacher's batch mean (over all ranks).

    Call `update(teacher)` after computing the loss: center = m center + (1 - m) mean.
    """

    center: Tensor

    def __init__(self, dim: int, momentum: float = 0.9) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("center", torch.zeros(1, dim))

    @torch.no_grad()
    def update(self, teacher: Sequence[Tensor] | Tensor) -> None:
        rows = teacher if isinstance(teacher, Tensor) else torch.cat(list(teacher))
        rows = rows.reshape(-1, rows.shape[-1])
        total = torch.cat([rows.to(self.center).sum(0), self.center.new_tensor([len(rows)])])
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(total)  # sum of rows and row count: exact mean for unequal per-rank batches
        mean = total[:-1] / total[-1]
        self.center.mul_(self.momentum).add_(mean, alpha=1 - self.momentum)


# ----------------------------------------------------------------------------- reconstruction


def sce(x: Tensor, y: Tensor, alpha: float = 2.0) -> Tensor:
    """GraphMAE scaled cosine error: mean_i (1 - cos(x_i, y_i))^alpha for `[N, D]` inputs."""
    _validate("sce", x=x, y=y)
    _check_positive("sce", "alpha", alpha)
    a, b = _compute(x, y)
    return (1 - _row_cosine(a, b)).pow(alpha).mean()
