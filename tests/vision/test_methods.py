"""The nine image methods: the loss falls, their state (queue, bank, centre, targets, prototypes) changes as
specified through real training steps and survives a state_dict round trip."""
import copy
import io
import math

import pytest
import torch
import torch.nn.functional as F

from graphcl.core.momentum import cosine_schedule
from graphcl.train.trainer import Trainer

from .conftest import CASES, make, train_steps


@pytest.mark.parametrize("name", sorted(CASES))
def test_loss_falls_on_digits(name, batch):
    if name == "dino":
        # DINO's centre starts at 0 and needs ~1 / (1 - 0.9) steps to track the teacher's mean; the loss of
        # those first steps is against an uncentred teacher, so compare after that warm-up
        losses = train_steps(make(name, center_momentum=0.9), batch, 60, lr=1e-3)
        before, after = losses[10:20], losses[-10:]
    else:
        losses = train_steps(make(name), batch, 20)
        # MoCo's first step contrasts in-batch keys (64 candidates), later ones the full queue (65)
        before, after = (losses[1:6] if name == "moco" else losses[:5]), losses[-5:]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(after) / len(after) < sum(before) / len(before), losses


@pytest.mark.parametrize("name", sorted(CASES))
def test_embed_is_backbone_features(name, batch):
    method = make(name).eval()
    z = method.embed(batch)
    assert z.shape == (64, method.encoder.feature_dim)
    torch.testing.assert_close(z, method.encoder(batch[0]))


def _round_trip(method):
    buffer = io.BytesIO()
    torch.save(method.state_dict(), buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("name", sorted(CASES))
def test_checkpoint_round_trip_continues_identically(name, batch):
    trained = make(name)
    train_steps(trained, batch, 3)
    fresh = make(name, seed=1)
    fresh.load_state_dict(_round_trip(trained))
    for (k, a), (_, b) in zip(trained.state_dict().items(), fresh.state_dict().items()):
        assert torch.equal(a, b), k
    torch.manual_seed(5)
    expected = trained(batch)
    torch.manual_seed(5)
    torch.testing.assert_close(fresh(batch), expected)


def test_moco_queue_and_key_encoder_through_trainer(batch):
    method = make("moco", queue_size=96)  # batches of 64
    keys = []
    # both views go through in one call; the keys are the second view's rows
    method.key_projector.register_forward_hook(lambda mod, inp, out: keys.append(out.detach()[64:].clone()))
    before = copy.deepcopy(method)
    trainer = Trainer(method, torch.optim.SGD(method.parameters(), lr=0.1), lambda: [batch, batch],
                      epochs=1, progress=False)
    trainer.fit()
    # two steps of 64 keys: the queue wrapped once, holding the last 96 keys, oldest first
    assert len(method.queue) == 96 and int(method.queue.ptr) == 128 % 96
    expected = F.normalize(torch.cat(keys), dim=1)[-96:]
    torch.testing.assert_close(method.queue.read(), expected)
    # key encoder = EMA of the query encoder, never trained by the optimiser
    assert all(not p.requires_grad for p in method.key_encoder.parameters())
    changed = [not torch.equal(a, b) for a, b in zip(before.key_encoder.parameters(), method.key_encoder.parameters())]
    assert any(changed)
    restored = make("moco", seed=3, queue_size=96)
    restored.load_state_dict(_round_trip(method))
    assert torch.equal(restored.queue.read(), method.queue.read()) and int(restored.queue.ptr) == 32


def test_moco_key_encoder_is_ema(batch):
    method = make("moco", momentum=0.9)
    key_before = [p.clone() for p in method.key_encoder.parameters()]
    train_steps(method, batch, 1)
    for k0, q, k in zip(key_before, method.encoder.parameters(), method.key_encoder.parameters()):
        torch.testing.assert_close(k, 0.9 * k0 + 0.1 * q)


def test_pirl_bank_refreshed_with_image_features(batch):
    method = make("pirl")
    feats = []
    method.image_head.register_forward_hook(lambda mod, inp, out: feats.append(out.detach().clone()))
    old = method.bank.bank.clone()
    # two steps: the first visit writes the features, the second mixes them in with momentum 0.5
    Trainer(method, torch.optim.SGD(method.parameters(), lr=0.1), lambda: [batch, batch], epochs=1,
            progress=False).fit()
    idx = batch[1]
    new = method.bank.bank
    expected = F.normalize(0.5 * F.normalize(feats[0], dim=1) + 0.5 * feats[1], dim=1)
    torch.testing.assert_close(new[idx], expected)
    untouched = torch.ones(len(old), dtype=torch.bool)
    untouched[idx] = False
    assert torch.equal(new[untouched], old[untouched])
    assert torch.equal(method.bank.filled, ~untouched)
    restored = make("pirl", seed=2)
    restored.load_state_dict(_round_trip(method))
    assert torch.equal(restored.bank.bank, new) and torch.equal(restored.bank.filled, method.bank.filled)


def test_pirl_first_visit_positives_are_the_detached_features(batch, monkeypatch):
    import graphcl.vision.methods.pirl as pirl

    calls = []
    monkeypatch.setattr(pirl, "pirl_nce", lambda memory, f, g, negatives, *args: calls.append((memory, f, negatives))
                        or (memory * f).sum())
    method = make("pirl", num_negatives=32)  # batches of 64: after one step enough rows are filled
    method(batch)
    written = method.bank.bank[batch[1]].clone()
    method(batch)
    (first, f1, _), (second, _, negatives) = calls
    torch.testing.assert_close(first, F.normalize(f1.detach(), dim=1))  # not the bank's random init
    assert not first.requires_grad and f1.requires_grad
    torch.testing.assert_close(second, F.normalize(f1.detach(), dim=1))  # the row the first step wrote
    assert all(any(torch.equal(n, w) for w in written) for n in negatives)  # only filled rows


def test_pirl_estimates_the_nce_constant_once_and_checkpoints_it(batch):
    method = make("pirl", num_negatives=32)
    assert method.log_norm.isnan()
    method(batch)
    first = float(method.log_norm)
    assert math.isfinite(first) and first > math.log(len(method.bank.bank))  # log N + log mean exp(s / T) > log N
    method(batch)
    assert float(method.log_norm) == first  # fixed after the first step
    restored = make("pirl", seed=2, num_negatives=32)
    restored.load_state_dict(_round_trip(method))
    assert float(restored.log_norm) == first
    assert not make("pirl", normalise=False).log_norm.isnan()  # Z = 1: the paper's formula


def test_pirl_needs_indices(batch):
    with pytest.raises(ValueError, match="indices"):
        make("pirl")(batch[0])


def test_swav_codes_equipartitioned(digits):
    method = make("swav", num_prototypes=8, sinkhorn_iterations=3)
    x = digits.train_x[:256].float() / 255
    codes = method.codes(x)
    assert codes.shape == (256, 8)
    torch.testing.assert_close(codes.sum(1), torch.ones(256))
    per_prototype = codes.sum(0)
    assert (per_prototype - 256 / 8).abs().max() < 0.1 * 256 / 8, per_prototype  # ~B / K each
    hard = codes.argmax(1).bincount(minlength=8)
    assert hard.min() > 0  # no empty cluster


def test_swav_prototypes_normalised_and_frozen_first_epoch(batch):
    method = make("swav", steps_per_epoch=2, freeze_prototypes_epochs=1)
    train_steps(method, batch, 1)
    w1 = method.prototypes.weight.detach().clone()
    torch.testing.assert_close(w1.norm(dim=1), torch.ones(16))  # normalised in the step
    train_steps(method, batch, 1, first_step=2)
    assert method.prototypes.weight.grad is None  # frozen: no gradient in epoch 1 (steps 1, 2)
    torch.testing.assert_close(method.prototypes.weight, w1)
    train_steps(method, batch, 1, first_step=3)
    assert method.prototypes.weight.grad is not None and int(method.steps) == 3
    assert not torch.allclose(method.prototypes.weight, w1)


def test_swav_queue_fills_then_joins(batch):
    method = make("swav", queue_size=64)
    train_steps(method, batch, 2)
    assert all(len(q) == 64 for q in method.queues)
    assert torch.isfinite(method(batch))


def test_dino_centre_moves_and_teacher_temperature_warms_up(batch):
    method = make("dino", center_momentum=0.9, steps_per_epoch=2, warmup_teacher_temp_epochs=2,
                  warmup_teacher_temp=0.04, teacher_temp=0.07)
    outs = []
    method.teacher_head.register_forward_hook(lambda mod, inp, out: outs.append(out.detach().clone()))
    assert torch.equal(method.center.center, torch.zeros(1, 64))
    assert method.teacher_temp() == pytest.approx(0.04)
    train_steps(method, batch, 1)
    torch.testing.assert_close(method.center.center, 0.1 * outs[0].mean(0, keepdim=True))
    assert method.teacher_temp() == pytest.approx(0.04 + 0.03 / 4)
    train_steps(method, batch, 3, first_step=2)
    assert method.teacher_temp() == pytest.approx(0.07)
    assert not torch.allclose(method.center.center, 0.1 * outs[0].mean(0, keepdim=True))


def test_byol_target_follows_cosine_momentum(batch):
    method = make("byol", momentum_start=0.9, total_steps=20)
    target_before = [p.clone() for p in method.target_encoder.parameters()]
    train_steps(method, batch, 1)
    m = cosine_schedule(0, 20, 0.9, 1.0)
    for t0, o, t in zip(target_before, method.encoder.parameters(), method.target_encoder.parameters()):
        torch.testing.assert_close(t, m * t0 + (1 - m) * o)


def test_simsiam_stop_gradient(batch):
    method = make("simsiam")
    x, _ = batch
    z = method.projector(method.encoder(x))
    p = method.predictor(z)
    from graphcl.core.losses import neg_cosine

    neg_cosine(p, z).backward()
    # with the stop-gradient the target branch contributes nothing: the gradient equals that of a detached z
    g = [q.grad.clone() for q in method.encoder.parameters()]
    method.zero_grad()
    p2 = method.predictor(method.projector(method.encoder(x)))
    neg_cosine(p2, z.detach()).backward()
    for a, q in zip(g, method.encoder.parameters()):
        torch.testing.assert_close(a, q.grad)
