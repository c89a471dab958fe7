"""`graphcl.core.losses.cca_ssg`: an independent float64 loop reference (values and gradients), the identity
with the paper's invariance term, invariances, dtypes and bad input."""
from __future__ import annotations

import pytest
import torch

from graphcl.core.losses import cca_ssg

F64 = torch.float64


pytestmark = pytest.mark.usefixtures("single_thread")  # see conftest.py


def randn(*shape: int, seed: int = 0, dtype: torch.dtype = F64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def reference(h1: torch.Tensor, h2: torch.Tensor, lambd: float) -> torch.Tensor:
    """The CCA-SSG code's loss with explicit loops over nodes and dimensions (scalar torch ops, so autograd
    works): columns standardised with the unbiased std, then -sum_d c_dd + lambd sum_{d,e} (c1_de - I_de)^2 +
    (c2_de - I_de)^2 with c = z1^T z2 / N, c1 = z1^T z1 / N, c2 = z2^T z2 / N."""
    n, dims = h1.shape

    def standardise(h):
        columns = []
        for d in range(dims):
            values = [h[i, d] for i in range(n)]
            mean = sum(values) / n
            std = (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5
            columns.append([(v - mean) / std for v in values])
        return columns  # columns[d][i]

    def corr(a, b, d, e):
        return sum(a[d][i] * b[e][i] for i in range(n)) / n

    a, b = standardise(h1), standardise(h2)
    loss = -sum(corr(a, b, d, d) for d in range(dims))
    for z in (a, b):
        for d in range(dims):
            for e in range(dims):
                loss = loss + lambd * (corr(z, z, d, e) - (1.0 if d == e else 0.0)) ** 2
    return loss


@pytest.mark.parametrize("n,dims,lambd", [(2, 1, 0.5), (5, 3, 1e-3), (9, 4, 0.1), (6, 6, 0.0)])
def test_matches_loop_reference_values_and_gradients(n: int, dims: int, lambd: float) -> None:
    h1, h2 = randn(n, dims, seed=n), randn(n, dims, seed=n + 100) * 2 + 1
    got_leaves = [h1.clone().requires_grad_(), h2.clone().requires_grad_()]
    ref_leaves = [h1.clone().requires_grad_(), h2.clone().requires_grad_()]
    got, ref = cca_ssg(*got_leaves, lambd), reference(*ref_leaves, lambd)
    assert got.dim() == 0 and got.dtype == F64
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10)
    for g, r in zip(torch.autograd.grad(got, got_leaves), torch.autograd.grad(ref, ref_leaves)):
        torch.testing.assert_close(g, r, rtol=1e-8, atol=1e-10)


def test_float32_close_to_float64_reference() -> None:
    h1, h2 = randn(30, 5, seed=1), randn(30, 5, seed=2)
    got = cca_ssg(h1.float(), h2.float(), 0.01)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), reference(h1, h2, 0.01), rtol=1e-4, atol=1e-5)


def test_invariance_term_is_half_the_papers_plus_a_constant() -> None:
    """-tr(c) = ||z1 - z2||_F^2 / (2N) - D (N - 1) / N for standardised z (the paper's Eq. with weight 1/2)."""
    n, dims = 40, 6
    h1, h2 = randn(n, dims, seed=3), randn(n, dims, seed=4)
    z1, z2 = ((h - h.mean(0)) / h.std(0) for h in (h1, h2))
    expected = (z1 - z2).pow(2).sum() / (2 * n) - dims * (n - 1) / n
    torch.testing.assert_close(cca_ssg(h1, h2, lambd=0.0), expected)


def test_identical_decorrelated_views() -> None:
    """z1 = z2 with centred orthogonal columns: c = c1 = c2 = (N - 1) / N I, so the loss is
    -D (N - 1) / N + lambd * 2 D / N^2."""
    n, dims, lambd = 8, 4, 0.5
    basis = randn(n, n, seed=5)
    basis[:, 0] = 1.0
    q, _ = torch.linalg.qr(basis)  # q[:, 0] is parallel to the ones vector, the other columns are centred
    h = q[:, 1 : dims + 1] * 3.0
    expected = -dims * (n - 1) / n + lambd * 2 * dims / n**2
    torch.testing.assert_close(cca_ssg(h, h.clone(), lambd), torch.tensor(expected, dtype=F64))


def test_invariant_to_featurewise_affine_maps_and_symmetric() -> None:
    h1, h2 = randn(20, 4, seed=6), randn(20, 4, seed=7)
    scale, shift = randn(4, seed=8).abs() + 0.5, randn(4, seed=9)
    torch.testing.assert_close(cca_ssg(h1 * scale + shift, h2, 0.1), cca_ssg(h1, h2, 0.1))
    torch.testing.assert_close(cca_ssg(h2, h1, 0.1), cca_ssg(h1, h2, 0.1))


def test_half_precision_is_computed_in_float32() -> None:
    h1, h2 = randn(32, 8, seed=10, dtype=torch.float32), randn(32, 8, seed=11, dtype=torch.float32)
    low = cca_ssg(h1.bfloat16(), h2.bfloat16(), 1e-3)
    assert low.dtype == torch.float32
    torch.testing.assert_close(low, cca_ssg(h1.bfloat16().float(), h2.bfloat16().float(), 1e-3))


def test_constant_column_gives_finite_loss_and_gradient() -> None:
    h1, h2 = randn(10, 3, seed=12).requires_grad_(), randn(10, 3, seed=13)
    h1.data[:, 0] = 2.0
    loss = cca_ssg(h1, h2, 0.1)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(h1.grad).all()


@pytest.mark.parametrize("z1,z2,lambd,match", [
    (torch.zeros(4, 3), torch.zeros(4, 2), 0.1, "shape"),
    (torch.zeros(1, 3), torch.zeros(1, 3), 0.1, "at least 2 rows"),
    (torch.zeros(4), torch.zeros(4), 0.1, "2-D"),
    (torch.full((4, 3), float("nan")), torch.zeros(4, 3), 0.1, "NaN"),
    (torch.ones(4, 3), torch.ones(4, 3), -1.0, "lambd"),
    (torch.ones(4, 3), torch.ones(4, 3), float("nan"), "lambd"),
])
def test_bad_input_raises_one_line_error(z1, z2, lambd, match) -> None:
    with pytest.raises(ValueError, match=match):
        cca_ssg(z1, z2, lambd)
