"""A short CPC run on a synthetic signal (class = frequency): the loss falls and the frozen representation
separates the classes better than the same encoder randomly initialised; plus views and the task protocol."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from graphcl.data.sequences import SequenceSet
from graphcl.evaluate.sequence import ts_svm
from graphcl.sequence import CPC, SequenceBatch, SequenceView, build_sequence_encoder, random_crop


def _signals(n, seed, length=64, freqs=(0.05, 0.11, 0.19)):
    """Sinusoids of one of `freqs` cycles/step with random phase, amplitude and noise; variable lengths."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % len(freqs)
    t = torch.arange(length, dtype=torch.float32)
    phase = torch.rand(n, 1, generator=g) * 2 * math.pi
    amp = 0.5 + torch.rand(n, 1, generator=g)
    x = amp * torch.sin(2 * math.pi * torch.tensor(freqs)[y][:, None] * t + phase)
    x = x + 0.3 * torch.randn(n, length, generator=g)
    lengths = torch.randint(length // 2, length + 1, (n,), generator=g)
    mask = t[None, :] < lengths[:, None]
    return SequenceSet((x * mask)[:, None, :], mask, y)


def test_short_cpc_run_lowers_loss_and_beats_random_encoder():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    train, test = _signals(96, 0), _signals(96, 1)
    enc = build_sequence_encoder("tcn", 1, 16, 16, 3, context="gru", context_channels=16)
    random_enc = build_sequence_encoder("tcn", 1, 16, 16, 3, context="gru", context_channels=16)
    random_enc.load_state_dict(enc.state_dict())
    model = CPC(enc, steps=4, negatives="batch", num_negatives=8, view=SequenceView(24, 48))
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    losses = []
    for epoch in range(12):
        perm = torch.randperm(len(train))
        for i in range(0, len(train), 32):
            idx = perm[i: i + 32]
            loss = model(SequenceBatch(train.x[idx], train.mask[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            model.after_step(0, 0)
            losses.append(loss.item())
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.3

    def acc(e):
        e.eval()
        return ts_svm(e.pool(train.x, train.mask), train.y, e.pool(test.x, test.mask), test.y)["test"]

    trained, random = acc(model.encoder), acc(random_enc)
    assert trained > random, (trained, random)
    assert trained > 0.8


def test_views_crop_inside_real_steps_and_keep_padding_zero():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(40.0).repeat(4, 2, 1) + 1  # values = position + 1 (never 0)
    mask = torch.arange(40)[None, :] < torch.tensor([40, 25, 10, 30])[:, None]
    x = x * mask[:, None]
    cx, cm = random_crop(x, mask, 20, g)
    assert cx.shape == (4, 2, 20) and cm.shape == (4, 20)
    assert cm.sum(1).tolist() == [20, 20, 10, 20]
    assert ((cx[:, 0] > 0) == cm).all()  # every kept step is real, every padded one is zero
    assert (cx[:, 0, 1:][cm[:, 1:]] - cx[:, 0, :-1][cm[:, 1:]] == 1).all()  # contiguous
    v = SequenceView(8, 16, scale=0.2, jitter=0.1, channel_mask=0.5)
    vx, vm = v(x, mask, g)
    assert 8 <= vx.shape[2] <= 16 and (vx[~vm[:, None, :].expand_as(vx)] == 0).all()
    assert ((vx.abs().sum(2) > 0).sum(1) >= 1).all()  # channel masking never removes every channel
    with pytest.raises(ValueError, match="channel_mask"):
        SequenceView(channel_mask=1.0)


def test_sequence_task_protocol_on_user_data():
    from graphcl.sequence.encoders import SequenceEncoder
    from graphcl.train.tasks.sequence import SequenceTask

    cfg = OmegaConf.create({
        "data": {"name": "synthetic", "root": None, "batch_size": 16},
        "model": {"encoder": {"name": "tcn", "hidden_channels": 8, "out_channels": 8, "num_layers": 2,
                              "options": {"context": "causal_transformer", "heads": 2}},
                  "params": {"steps": 2, "negatives": "queue", "num_negatives": 5, "queue_size": 128}},
        "augment": {"params": {"min_length": 16, "max_length": 32, "jitter": 0.1}},
        "eval": {"params": {}},
    })
    torch.manual_seed(0)
    task = SequenceTask(cfg, torch.device("cpu"), dataset=(_signals(40, 0), _signals(30, 1)))
    method = task.build_method()
    assert isinstance(method.encoder, SequenceEncoder) and method.queue is not None
    torch.manual_seed(1)
    first = [b.x.clone() for b in task.batches()]
    torch.manual_seed(1)
    again = [b.x for b in task.batches()]
    assert len(first) == 3 and all(torch.equal(a, b) for a, b in zip(first, again))  # seeded from the global RNG
    for step, batch in enumerate(task.batches()):
        method(batch).backward()
        method.after_step(step, 3)
    builder, spec = task.encoder_spec()
    assert builder == "sequence"
    rebuilt = build_sequence_encoder(**spec)
    rebuilt.load_state_dict(method.encoder.state_dict())
    result = task.evaluate(rebuilt.eval(), seed=0)
    assert result["protocol"] == "ts_svm" and result["C"] == "inf" and 0 <= result["test"] <= 1
    assert task.embed(rebuilt).shape == (70, 8)
    z1, z2 = task.diagnostic_pair(rebuilt)
    assert z1.shape == z2.shape == (40, 8) and not torch.equal(z1, z2)
