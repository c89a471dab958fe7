import math

import pytest
import torch
from torch import nn

from graphcl.core.momentum import copy_as_target, cosine_schedule, ema_update


def make_net() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


def pair() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    online, target = make_net(), make_net()
    online(torch.randn(8, 3))  # moves the online BatchNorm running statistics away from the target's
    return online, target


@pytest.mark.parametrize("m", [0.0, 0.5, 1.0])
def test_ema_update_arithmetic(m):
    online, target = pair()
    before = {n: p.clone() for n, p in target.named_parameters()}
    ema_update(online, target, m)
    for (name, p_on), (_, p_tg) in zip(online.named_parameters(), target.named_parameters()):
        expected = m * before[name] + (1 - m) * p_on
        assert torch.allclose(p_tg, expected, atol=1e-7), name
    if m == 0.0:
        assert all(torch.equal(a, b) for a, b in zip(online.parameters(), target.parameters()))
    if m == 1.0:
        assert all(torch.equal(before[n], p) for n, p in target.named_parameters())


def test_ema_update_copies_buffers_and_builds_no_graph():
    online, target = pair()
    ema_update(online, target, 0.9)
    bn_on, bn_tg = online[1], target[1]
    assert torch.equal(bn_tg.running_mean, bn_on.running_mean)
    assert torch.equal(bn_tg.running_var, bn_on.running_var)
    assert int(bn_tg.num_batches_tracked) == 1
    assert all(p.grad_fn is None for p in target.parameters())


def test_ema_update_validation():
    online, target = pair()
    for m in (-0.01, 1.01):
        with pytest.raises(ValueError, match="m must"):
            ema_update(online, target, m)
    with pytest.raises(ValueError, match=r"'3\.weight'"):
        ema_update(online, nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 5)), 0.5)
    with pytest.raises(ValueError, match=r"'3\.weight'"):  # target lacks the last layer
        ema_update(online, nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)), 0.5)


def test_copy_as_target():
    online = make_net()
    target = copy_as_target(online)
    assert all(not p.requires_grad for p in target.parameters())
    assert all(p.requires_grad for p in online.parameters())
    assert all(torch.equal(a, b) for a, b in zip(online.parameters(), target.parameters()))
    assert all(a.data_ptr() != b.data_ptr() for a, b in zip(online.parameters(), target.parameters()))


def test_cosine_schedule_values():
    assert cosine_schedule(0, 100, 0.996, 1.0) == 0.996
    assert cosine_schedule(100, 100, 0.996, 1.0) == 1.0
    assert cosine_schedule(50, 100, 0.0, 1.0) == 0.5
    assert cosine_schedule(50, 100, 0.996, 1.0) == pytest.approx(0.998, abs=1e-12)
    assert cosine_schedule(25, 100, 0.0, 1.0) == pytest.approx((1 - math.cos(math.pi / 4)) / 2)
    # A decreasing schedule (e.g. a learning rate) works the same way.
    assert cosine_schedule(0, 10, 1.0, 0.1) == 1.0 and cosine_schedule(10, 10, 1.0, 0.1) == 0.1


def test_cosine_schedule_clamps_and_is_monotone():
    assert cosine_schedule(-5, 100, 0.996, 1.0) == 0.996
    assert cosine_schedule(500, 100, 0.996, 1.0) == 1.0
    values = [cosine_schedule(k, 20, 0.9, 1.0) for k in range(21)]
    assert all(a < b for a, b in zip(values, values[1:]))
    assert cosine_schedule(0, 0, 0.9, 1.0) == 1.0
    with pytest.raises(ValueError, match="total"):
        cosine_schedule(0, -1, 0.9, 1.0)
