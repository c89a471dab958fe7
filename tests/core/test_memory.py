import pytest
import torch
import torch.nn.functional as F

from graphcl.core.memory import MemoryBank, Queue


def rows(*values: float, dim: int = 2) -> torch.Tensor:
    """One row per value, every entry equal to the value: easy to track through a FIFO."""
    return torch.tensor(values, dtype=torch.float).unsqueeze(1).repeat(1, dim)


# ----------------------------------------------------------------------------- MemoryBank
def test_bank_starts_with_unit_rows_and_is_a_buffer():
    bank = MemoryBank(10, 4)
    assert bank.bank.shape == (10, 4)
    assert torch.allclose(bank.bank.norm(dim=1), torch.ones(10))
    assert not bank.filled.any() and bank.filled.shape == (10,)
    assert {"bank", "filled"} <= set(bank.state_dict()) and not list(bank.parameters())


def test_bank_first_visit_writes_the_feature_then_ema():
    torch.manual_seed(0)
    bank = MemoryBank(5, 3, momentum=0.25)
    old = bank.bank.clone()
    idx, first = torch.tensor([1, 3]), torch.randn(2, 3)
    bank.update(idx, first)  # first visit: the feature itself, no momentum
    assert torch.allclose(bank.bank[idx], F.normalize(first, dim=1), atol=1e-6)
    assert bank.filled.tolist() == [False, True, False, True, False]
    untouched = [0, 2, 4]
    assert torch.equal(bank.bank[untouched], old[untouched])
    written, second = bank.bank.clone(), torch.randn(2, 3)
    bank.update(idx, second)  # second visit: the EMA
    for row, i in enumerate(idx.tolist()):
        mixed = 0.25 * written[i] + 0.75 * second[row]
        assert torch.allclose(bank.bank[i], mixed / mixed.norm(), atol=1e-6)
    assert torch.equal(bank.bank[untouched], old[untouched])


def test_bank_update_mixes_first_visits_and_filled_rows():
    bank = MemoryBank(4, 2, momentum=0.5)
    bank.update(torch.tensor([0]), torch.tensor([[1.0, 0.0]]))
    bank.update(torch.tensor([0, 2]), torch.tensor([[0.0, 1.0], [0.0, -3.0]]))
    s = 2**-0.5
    assert torch.allclose(bank.bank[0], torch.tensor([s, s]))  # EMA of a filled row
    assert torch.allclose(bank.bank[2], torch.tensor([0.0, -1.0]))  # first visit in the same batch
    assert bank.filled.tolist() == [True, False, True, False]


def test_bank_update_renormalises_and_momentum_extremes():
    bank = MemoryBank(4, 3, momentum=0.0)
    bank.update(torch.tensor([2]), torch.tensor([[3.0, 0.0, 4.0]]))
    assert torch.allclose(bank.bank[2], torch.tensor([0.6, 0.0, 0.8]))
    frozen = MemoryBank(4, 3, momentum=1.0)
    frozen.update(torch.tensor([0, 1]), torch.randn(2, 3))  # first visits are written even at momentum 1
    before = frozen.bank.clone()
    frozen.update(torch.tensor([0, 1]), torch.randn(2, 3))
    assert torch.allclose(frozen.bank, before)


def test_bank_duplicate_indices_are_averaged():
    bank = MemoryBank(3, 2, momentum=0.0)
    bank.update(torch.tensor([1, 1, 0]), torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, -2.0]]))
    s = 2**-0.5
    assert torch.allclose(bank.bank[1], torch.tensor([s, s]))
    assert torch.allclose(bank.bank[0], torch.tensor([0.0, -1.0]))
    # Order of the duplicates does not matter.
    other = MemoryBank(3, 2, momentum=0.0)
    other.update(torch.tensor([0, 1, 1]), torch.tensor([[0.0, -2.0], [0.0, 1.0], [1.0, 0.0]]))
    assert torch.allclose(other.bank[:2], bank.bank[:2])


def test_bank_get_returns_a_copy_of_any_shape():
    bank = MemoryBank(6, 3)
    got = bank.get(torch.tensor([[0, 5], [2, 2]]))
    assert got.shape == (2, 2, 3) and torch.equal(got[1, 0], bank.bank[2])
    snapshot = got.clone()
    bank.update(torch.tensor([0, 5, 2]), torch.randn(3, 3))
    assert torch.equal(got, snapshot)


def test_bank_sampling_range_and_uniformity():
    bank = MemoryBank(10, 2)
    gen = torch.Generator().manual_seed(0)
    idx = bank.sample(20_000, generator=gen)
    assert idx.shape == (20_000,) and idx.dtype == torch.long
    assert idx.min() >= 0 and idx.max() < 10
    counts = torch.bincount(idx, minlength=10).float()
    chi2 = ((counts - 2000) ** 2 / 2000).sum()
    assert chi2 < 40  # 9 degrees of freedom: p < 1e-5 for a uniform sampler
    again = bank.sample(20_000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(idx, again)


def test_bank_sampling_excludes_and_negatives_shape():
    bank = MemoryBank(6, 4)
    gen = torch.Generator().manual_seed(1)
    idx = bank.sample(3000, generator=gen, exclude=torch.tensor([0, 2, 4]))
    assert set(idx.tolist()) == {1, 3, 5}
    negs = bank.negatives(5, 7, generator=gen, exclude=torch.tensor([1]))
    assert negs.shape == (5, 7, 4)
    assert torch.allclose(negs.norm(dim=-1), torch.ones(5, 7))
    with pytest.raises(ValueError, match="exclude"):
        bank.sample(1, exclude=torch.arange(6))


def test_bank_sampling_filled_only_never_returns_an_unfilled_row():
    bank = MemoryBank(10, 2)
    with pytest.raises(ValueError, match="filled_only"):
        bank.sample(1, filled_only=True)  # nothing written yet
    bank.update(torch.tensor([2, 5, 7]), torch.randn(3, 2))
    gen = torch.Generator().manual_seed(0)
    assert set(bank.sample(3000, generator=gen, filled_only=True).tolist()) == {2, 5, 7}
    idx = bank.sample(3000, generator=gen, exclude=torch.tensor([5]), filled_only=True)
    assert set(idx.tolist()) == {2, 7}
    with pytest.raises(ValueError, match="exclude and filled_only"):
        bank.sample(1, exclude=torch.tensor([2, 5, 7]), filled_only=True)


def test_bank_positives_fall_back_to_the_detached_feature():
    bank = MemoryBank(4, 2, momentum=0.5)
    bank.update(torch.tensor([1]), torch.tensor([[0.0, 2.0]]))
    fallback = torch.tensor([[3.0, 4.0], [5.0, 5.0]], requires_grad=True)
    pos = bank.positives(torch.tensor([0, 1]), fallback)
    assert torch.allclose(pos[0], torch.tensor([0.6, 0.8]))  # row 0 never filled: normalise(fallback)
    assert torch.equal(pos[1], bank.bank[1])  # row 1 filled: the bank row
    assert not pos.requires_grad
    with pytest.raises(ValueError, match="fallback"):
        bank.positives(torch.tensor([0, 1]), torch.randn(3, 2))


def test_bank_validation():
    with pytest.raises(ValueError, match="momentum"):
        MemoryBank(4, 2, momentum=1.5)
    with pytest.raises(ValueError, match="momentum"):
        MemoryBank(4, 2, momentum=-0.1)
    bank = MemoryBank(4, 2)
    with pytest.raises(ValueError, match=r"indices.*\[0, 4\).*\[0, 4\]"):
        bank.get(torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="indices"):
        bank.update(torch.tensor([-1]), torch.randn(1, 2))
    with pytest.raises(ValueError, match=r"features.*\[2, 2\].*\[2, 3\]"):
        bank.update(torch.tensor([0, 1]), torch.randn(2, 3))
    with pytest.raises(ValueError, match="integer"):
        bank.get(torch.tensor([0.0]))


def test_bank_state_dict_round_trip():
    bank = MemoryBank(8, 3)
    bank.update(torch.tensor([1, 2]), torch.randn(2, 3))
    fresh = MemoryBank(8, 3)
    assert not torch.equal(fresh.bank, bank.bank)
    fresh.load_state_dict(bank.state_dict())
    assert torch.equal(fresh.bank, bank.bank) and torch.equal(fresh.filled, bank.filled)
    assert fresh.filled.sum() == 2


def test_bank_loads_a_state_dict_saved_before_filled_as_all_filled():
    old = MemoryBank(8, 3)
    state = old.state_dict()
    del state["filled"]  # what a MemoryBank without `filled` saved
    fresh = MemoryBank(8, 3)
    fresh.load_state_dict(state)  # strict
    assert torch.equal(fresh.bank, old.bank) and fresh.filled.all()
    feature = torch.randn(1, 3)
    fresh.update(torch.tensor([0]), feature)  # the EMA, as before `filled` existed
    mixed = 0.5 * old.bank[0] + 0.5 * feature[0]
    assert torch.allclose(fresh.bank[0], mixed / mixed.norm(), atol=1e-6)


# ----------------------------------------------------------------------------- Queue
def test_queue_starts_empty():
    q = Queue(4, 2)
    assert len(q) == 0 and q.read().shape == (0, 2)
    assert {"queue", "ptr", "filled"} <= set(q.state_dict())


def test_queue_fifo_order_before_and_after_filling():
    q = Queue(4, 2)
    q.enqueue(rows(1, 2))
    assert len(q) == 2 and torch.equal(q.read(), rows(1, 2))
    q.enqueue(rows(3, 4))
    assert len(q) == 4 and torch.equal(q.read(), rows(1, 2, 3, 4))
    q.enqueue(rows(5))
    assert len(q) == 4 and torch.equal(q.read(), rows(2, 3, 4, 5))


def test_queue_wraps_when_batch_does_not_divide_size():
    q = Queue(5, 2)
    seen = []
    for start in range(0, 21, 3):  # batches of 3 into a queue of 5
        batch = list(range(start, start + 3))
        q.enqueue(rows(*batch))
        seen += batch
        assert torch.equal(q.read(), rows(*seen[-5:]))
        assert int(q.ptr) == len(seen) % 5
    assert len(q) == 5


def test_queue_batch_larger_than_size_keeps_the_last_rows():
    q = Queue(3, 2)
    q.enqueue(rows(0))
    q.enqueue(rows(10, 11, 12, 13, 14))
    assert torch.equal(q.read(), rows(12, 13, 14)) and len(q) == 3
    q.enqueue(rows(15))
    assert torch.equal(q.read(), rows(13, 14, 15))


def test_queue_read_before_enqueue_never_contrasts_a_batch_with_itself():
    """MoCo step: negatives are read, then the batch's keys are enqueued, then backward runs."""
    q = Queue(6, 3)
    q.enqueue(torch.randn(4, 3))
    query = torch.randn(2, 3, requires_grad=True)
    keys = torch.randn(2, 3)
    negatives = q.read()
    assert not any(torch.equal(k, n) for k in keys for n in negatives)
    loss = (query @ negatives.T).logsumexp(dim=1).sum()
    q.enqueue(keys)  # in-place update of the buffer must not break the graph built on `negatives`
    loss.backward()
    assert query.grad is not None
    assert torch.equal(q.read()[-2:], keys)  # the keys only show up for the next batch


def test_queue_validation():
    with pytest.raises(ValueError, match="size"):
        Queue(0, 2)
    q = Queue(4, 2)
    with pytest.raises(ValueError, match=r"x.*\[B, 2\].*\[3, 5\]"):
        q.enqueue(torch.randn(3, 5))


def test_queue_state_dict_round_trip():
    q = Queue(5, 2)
    for start in range(0, 12, 3):
        q.enqueue(rows(start, start + 1, start + 2))
    fresh = Queue(5, 2)
    fresh.load_state_dict(q.state_dict())
    assert torch.equal(fresh.read(), q.read())
    assert int(fresh.ptr) == int(q.ptr) and len(fresh) == len(q)
    q.enqueue(rows(99))
    fresh.enqueue(rows(99))
    assert torch.equal(fresh.read(), q.read())


def test_queue_partial_state_dict_round_trip():
    q = Queue(5, 2)
    q.enqueue(rows(7, 8))
    fresh = Queue(5, 2)
    fresh.load_state_dict(q.state_dict())
    assert len(fresh) == 2 and torch.equal(fresh.read(), rows(7, 8))


def test_queue_stores_in_its_own_dtype():
    q = Queue(3, 2)
    q.enqueue(F.normalize(torch.randn(2, 2, dtype=torch.float64), dim=1))
    assert q.read().dtype == torch.float32
