import math

import pytest
import torch

from graphcl.evaluate.diagnostics import alignment, effective_rank, feature_std, uniformity


def test_alignment_known_values():
    z = torch.randn(10, 4)
    assert alignment(z, z) == 0.0
    assert alignment(z, 3 * z) == pytest.approx(0.0, abs=1e-10)  # scale-free: rows are normalised
    e = torch.eye(2)
    assert alignment(e, -e) == pytest.approx(4.0)  # antipodal unit vectors: ||2u||^2
    assert alignment(e, e.flip(0), alpha=1) == pytest.approx(math.sqrt(2))  # orthogonal: ||u - v|| = sqrt(2)
    assert isinstance(alignment(z, z), float)
    with pytest.raises(ValueError, match="same shape"):
        alignment(z, z[:5])


def test_uniformity_known_values():
    e = torch.eye(3)  # all pairwise squared distances are 2
    assert uniformity(e) == pytest.approx(-4.0)
    assert uniformity(e, t=1) == pytest.approx(-2.0)
    collapsed = torch.ones(6, 3)
    assert uniformity(collapsed) == pytest.approx(0.0, abs=1e-6)  # the maximum
    spread = torch.randn(200, 3, generator=torch.Generator().manual_seed(0))
    assert uniformity(spread) < uniformity(spread[:, :1].repeat(1, 3) + 0.1 * spread)
    with pytest.raises(ValueError, match="N >= 2"):
        uniformity(torch.ones(1, 3))


def test_uniformity_subsamples_deterministically():
    z = torch.randn(500, 8, generator=torch.Generator().manual_seed(1))
    sub = uniformity(z, max_rows=100)
    assert sub == uniformity(z, max_rows=100)
    assert sub == pytest.approx(uniformity(z), abs=0.1)


def test_effective_rank_known_values():
    q, _ = torch.linalg.qr(torch.randn(16, 16, dtype=torch.float64))
    assert effective_rank(q[:8]) == pytest.approx(8.0, rel=1e-4)  # orthonormal rows: D = 8 equal sigmas
    assert effective_rank(q) == pytest.approx(16.0, rel=1e-4)
    collapsed = torch.randn(1, 8).repeat(50, 1)
    assert effective_rank(collapsed) == pytest.approx(1.0, abs=1e-3)
    assert effective_rank(torch.zeros(4, 3)) == 0.0
    assert 1.0 < effective_rank(torch.randn(100, 8)) < 8.0


def test_feature_std_known_values():
    assert feature_std(torch.randn(1, 8).repeat(30, 1)) == pytest.approx(0.0, abs=1e-6)
    # Signed one-hot rows: each coordinate is +-1 on 1/D of the rows, so std ~ sqrt(1/D).
    d = 4
    e = torch.cat([torch.eye(d), -torch.eye(d)]).repeat(100, 1)
    assert feature_std(e) == pytest.approx(math.sqrt(1 / d), rel=0.01)
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        feature_std(torch.randn(8))


def test_diagnostics_match_a_float64_reference_on_random_inputs():
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 6)), rng.normal(size=(50, 6))
    ua = a / np.linalg.norm(a, axis=1, keepdims=True)
    ub = b / np.linalg.norm(b, axis=1, keepdims=True)
    ref_align = np.mean(np.sum((ua - ub) ** 2, axis=1))
    pairs = [np.sum((ua[i] - ua[j]) ** 2) for i in range(50) for j in range(i + 1, 50)]
    ref_unif = np.log(np.mean(np.exp(-2 * np.array(pairs))))
    s = np.linalg.svd(a, compute_uv=False)
    p = s / s.sum() + 1e-7
    ref_rank = np.exp(-(p * np.log(p)).sum())
    ref_std = ua.std(axis=0, ddof=1).mean()
    ta, tb = torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32)
    assert abs(alignment(ta, tb) - ref_align) < 1e-5
    assert abs(uniformity(ta) - ref_unif) < 1e-5
    assert abs(effective_rank(ta) - ref_rank) < 1e-4
    assert abs(feature_std(ta) - ref_std) < 1e-6
