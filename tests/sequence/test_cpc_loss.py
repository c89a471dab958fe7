"""CPC's loss against an independent float64 reference (explicit loops over sequences, t, k and negatives),
the masking of padded steps, and the queue of latents from earlier batches."""
from __future__ import annotations

import math

import pytest
import torch

from graphcl.sequence import CPC, SequenceBatch, build_sequence_encoder, cpc_loss
from graphcl.sequence.steps import StepPredictors

DT = torch.float64


pytestmark = pytest.mark.usefixtures("single_thread")  # see conftest.py


def _inputs(seed: int, lengths, t_max: int = 9, d: int = 5, h: int = 4, steps: int = 3):
    g = torch.Generator().manual_seed(seed)
    b = len(lengths)
    z = torch.randn(b, t_max, d, generator=g, dtype=DT)
    c = torch.randn(b, t_max, h, generator=g, dtype=DT)
    zmask = torch.arange(t_max)[None, :] < torch.tensor(lengths)[:, None]
    pred = StepPredictors(h, d, steps).to(DT)
    with torch.no_grad():
        pred.linear.weight.copy_(torch.randn(pred.linear.weight.shape, generator=g, dtype=DT) * 0.5)
    return z, c, zmask, pred


def _reference(z, c, lengths, pred, negatives_of) -> torch.Tensor:
    """mean over anchors (b, t, k), t + k < len_b, of -log( e^{s+} / (e^{s+} + sum_m e^{s-_m}) ),
    s = W_k c_{b,t} . z; negatives_of(b, t, k, n) -> list of latent vectors for anchor number n."""
    terms, n = [], 0
    for b in range(len(lengths)):
        for t in range(lengths[b]):
            for k in range(1, pred.steps + 1):
                if t + k >= lengths[b]:
                    continue
                w = pred.weight(k)
                q = [sum(w[i, j] * c[b, t, j] for j in range(c.shape[2])) for i in range(w.shape[0])]
                score = lambda v: sum(q[i] * v[i] for i in range(len(q)))  # noqa: E731
                pos = score(z[b, t + k])
                neg = [score(v) for v in negatives_of(b, t, k, n)]
                terms.append(-pos + torch.logsumexp(torch.stack([pos, *neg]), 0))
                n += 1
    return torch.stack(terms).mean()


@pytest.mark.parametrize("mode", ["batch", "same_sequence"])
@pytest.mark.parametrize("seed", [0, 1])
def test_cpc_loss_equals_float64_reference(mode, seed):
    lengths = [9, 6, 3, 7]
    z, c, zmask, pred = _inputs(seed, lengths)
    g = torch.Generator().manual_seed(seed + 10)
    loss, det = cpc_loss(z, c, zmask, pred, mode, num_negatives=4, generator=g, return_details=True)
    negs = det["negatives"]
    b, t, k = det["pairs"]
    # every negative is a real step, never the positive; same_sequence stays inside the anchor's sequence
    for n in range(len(b)):
        for nb, nt in negs[n].tolist():
            assert nt < lengths[nb]
            assert (nb, nt) != (int(b[n]), int(t[n] + k[n]))
            if mode == "same_sequence":
                assert nb == int(b[n])
    assert len(b) == sum(max(0, L - k_) for L in lengths for k_ in range(1, 4))
    ref = _reference(z, c, lengths, pred, lambda b_, t_, k_, n: [z[nb, nt] for nb, nt in negs[n].tolist()])
    torch.testing.assert_close(loss, ref, rtol=1e-10, atol=1e-10)
    # gradients too, through z, c and W
    params = [z.requires_grad_(), c.requires_grad_(), pred.linear.weight]
    g1 = torch.autograd.grad(cpc_loss(z, c, zmask, pred, mode, 4, generator=torch.Generator().manual_seed(seed + 10)),
                             params)
    g2 = torch.autograd.grad(_reference(z, c, lengths, pred,
                                        lambda b_, t_, k_, n: [z[nb, nt] for nb, nt in negs[n].tolist()]), params)
    for a, e in zip(g1, g2):
        torch.testing.assert_close(a, e, rtol=1e-9, atol=1e-10)


def test_cpc_loss_queue_bank_equals_reference():
    lengths = [5, 8]
    z, c, zmask, pred = _inputs(3, lengths)
    bank = torch.randn(6, z.shape[2], dtype=DT, generator=torch.Generator().manual_seed(7))
    loss = cpc_loss(z, c, zmask, pred, "queue", num_negatives=None, bank=bank)
    ref = _reference(z, c, lengths, pred, lambda *_: list(bank))
    torch.testing.assert_close(loss, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mode", ["batch", "same_sequence"])
def test_padded_steps_never_enter_a_score(mode):
    lengths = [9, 4, 2, 6]
    z, c, zmask, pred = _inputs(5, lengths)
    clean = cpc_loss(z, c, zmask, pred, mode, 8, generator=torch.Generator().manual_seed(1))
    z_nan, c_nan = z.clone(), c.clone()
    z_nan[~zmask], c_nan[~zmask] = math.nan, math.nan
    z_nan.requires_grad_(), c_nan.requires_grad_()
    loss = cpc_loss(z_nan, c_nan, zmask, pred, mode, 8, generator=torch.Generator().manual_seed(1))
    assert torch.isfinite(loss)
    torch.testing.assert_close(loss, clean, rtol=0, atol=0)
    loss.backward()
    assert (z_nan.grad[~zmask] == 0).all() and (c_nan.grad[~zmask] == 0).all()
    assert torch.isfinite(z_nan.grad).all() and torch.isfinite(pred.linear.weight.grad).all()


def test_encoder_outputs_at_real_steps_ignore_padding():
    torch.manual_seed(0)
    for name, ctx, length in (("tcn", "gru", 30), ("tcn", "causal_transformer", 30), ("cpc_audio", "gru", 1500)):
        enc = build_sequence_encoder(name, 2, 16, 8, 3, context=ctx, context_channels=8).eval()
        x = torch.randn(3, 2, length)
        mask = torch.arange(length)[None, :] < torch.tensor([length, length // 2, length - 7])[:, None]
        x2 = x.clone()
        x2[~mask[:, None, :].expand_as(x)] = 1e3  # garbage after each sequence's end
        z1, c1, m1 = enc.encode(x, mask)
        z2, c2, m2 = enc.encode(x2, mask)
        assert torch.equal(m1, m2)
        torch.testing.assert_close(c1[m1], c2[m1])
        torch.testing.assert_close(enc.pool(x, mask), enc.pool(x2, mask))
        # the latent count matches the conv arithmetic of the real samples
        single = enc.encode(x[1:2, :, : int(mask[1].sum())])[0]
        assert single.shape[1] == int(m1[1].sum())


def _cpc(negatives="queue", **kw):
    torch.manual_seed(0)
    enc = build_sequence_encoder("tcn", 1, 8, 6, 2, context="gru", context_channels=8)
    return CPC(enc, steps=2, negatives=negatives, num_negatives=None, queue_size=64, **kw)


def _batch(seed, lengths, length=12):
    g = torch.Generator().manual_seed(seed)
    mask = torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]
    return SequenceBatch(torch.randn(len(lengths), 1, length, generator=g) * mask[:, None], mask)


def test_queue_negatives_come_from_earlier_batches_and_survive_state_dict():
    m = _cpc()
    a, b = _batch(0, [12, 7, 10]), _batch(1, [12, 5])
    m(a)
    assert len(m.queue) == 0  # nothing is enqueued before the optimiser step
    m.after_step(1, 2)
    with torch.no_grad():
        za, _, ma = m.encoder.encode(a.x, a.mask)
    real_a = za[ma]
    assert len(m.queue) == len(real_a) == 29  # only the real steps of batch a
    torch.testing.assert_close(m.queue.read(), real_a)
    loss_b = m(b)
    z, c, zm = m.encoder.encode(b.x, b.mask)
    expected = cpc_loss(z, c, zm, m.predictors, "queue", None, bank=real_a)
    torch.testing.assert_close(loss_b, expected)
    # checkpoint round trip: a fresh CPC with the state dict has the same queue and the same loss
    m2 = _cpc()
    with torch.no_grad():
        for p in m2.parameters():
            p.add_(1.0)
    m2.load_state_dict(m.state_dict())
    torch.testing.assert_close(m2.queue.read(), m.queue.read())
    assert int(m2.queue.ptr) == int(m.queue.ptr)
    torch.testing.assert_close(m2(b), loss_b)


def test_queue_first_step_falls_back_to_batch_and_modes_validate():
    m = _cpc()
    assert torch.isfinite(m(_batch(0, [12, 9])))
    with pytest.raises(ValueError, match="negatives"):
        _cpc(negatives="memory")
    with pytest.raises(ValueError, match="num_negatives"):
        _cpc(negatives="batch")  # num_negatives=None is only meaningful for the queue
