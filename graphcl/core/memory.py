"""Stores of past embeddings used as negatives: a per-index EMA bank (InstDisc, PIRL) and a FIFO queue (MoCo).

Both keep their whole state in persistent buffers, so they travel with `state_dict` into checkpoints.
"""
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["MemoryBank", "Queue"]


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")


def _check_rows(name: str, x: Tensor, rows: int | None, dim: int) -> None:
    """Raise unless `x` is `[rows, dim]` (`rows=None`: any number of rows)."""
    if x.dim() != 2 or x.shape[1] != dim or (rows is not None and x.shape[0] != rows):
        expected = f"[{'B' if rows is None else rows}, {dim}]"
        raise ValueError(f"{name} must have shape {expected}, got {list(x.shape)}")


class MemoryBank(nn.Module):
    """One unit-norm embedding per dataset index, refreshed by an exponential moving average.

    `update` sets `bank[i] = normalise(m * bank[i] + (1 - m) * feature)`: `momentum` weights the OLD entry
    (PIRL uses 0.5). Rows start as random unit vectors drawn from the global RNG and marked unfilled in
    `filled`; the first `update` of a row writes `normalise(feature)` (no momentum) and marks it filled.
    A state_dict saved before `filled` existed loads as all rows filled.

    Args:
        size: number of entries (usually the dataset size).
        dim: embedding dimension.
        momentum: weight of the old entry in [0, 1].
    """

    bank: Tensor
    filled: Tensor

    def __init__(self, size: int, dim: int, momentum: float = 0.5) -> None:
        super().__init__()
        _check_positive(size=size, dim=dim)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must lie in [0, 1], got {momentum}")
        self.size, self.dim, self.momentum = size, dim, momentum
        self.register_buffer("bank", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("filled", torch.zeros(size, dtype=torch.bool))  # rows `update` has written

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        if prefix + "bank" in state_dict and prefix + "filled" not in state_dict:  # saved before `filled`
            state_dict[prefix + "filled"] = torch.ones(self.size, dtype=torch.bool)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"size={self.size}, dim={self.dim}, momentum={self.momentum}"

    def _check_indices(self, name: str, indices: Tensor) -> Tensor:
        if indices.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"{name} must be an integer tensor, got dtype {indices.dtype}")
        if indices.numel() and (indices.min() < 0 or indices.max() >= self.size):
            raise ValueError(
                f"{name} must lie in [0, {self.size}), got values in "
                f"[{int(indices.min())}, {int(indices.max())}] (shape {list(indices.shape)})"
            )
        return indices.to(self.bank.device)

    def get(self, indices: Tensor) -> Tensor:
        """Entries at `indices` (any shape `[*]`) -> `[*, dim]`, a copy (safe to keep across `update`)."""
        return self.bank[self._check_indices("indices", indices)]

    def positives(self, indices: Tensor, fallback: Tensor) -> Tensor:
        """Entries at `indices` `[B]` -> `[B, dim]`, where a never-filled row is `normalise(fallback)` detached."""
        indices = self._check_indices("indices", indices)
        _check_rows("fallback", fallback, indices.numel(), self.dim)
        fallback = F.normalize(fallback.detach(), dim=1).to(self.bank)
        return torch.where(self.filled[indices].unsqueeze(1), self.bank[indices], fallback)

    @torch.no_grad()
    def update(self, indices: Tensor, features: Tensor) -> None:
        """EMA-refresh the entries at `indices` `[B]` with `features` `[B, dim]`; a never-filled row takes the feature.

        An index that appears several times in one batch is updated once, with the mean of its
        features, so the result does not depend on write order.
        """
        indices = self._check_indices("indices", indices)
        if indices.dim() != 1:
            raise ValueError(f"indices must be 1-D [B], got shape {list(indices.shape)}")
        _check_rows("features", features, indices.numel(), self.dim)
        unique, inverse = torch.unique(indices, return_inverse=True)
        counts = torch.bincount(inverse, minlength=unique.numel()).unsqueeze(1)
        new = torch.zeros(unique.numel(), self.dim, dtype=self.bank.dtype, device=self.bank.device)
        new.index_add_(0, inverse, features.to(new)).div_(counts)
        # lerp(new, old, m) = m * old + (1 - m) * new, exact at m = 0 and m = 1.
        mixed = torch.lerp(new, self.bank[unique], self.momentum)
        self.bank[unique] = F.normalize(torch.where(self.filled[unique].unsqueeze(1), mixed, new), dim=1)
        self.filled[unique] = True

    def sample(self, num: int, generator: torch.Generator | None = None, exclude: Tensor | None = None,
               filled_only: bool = False) -> Tensor:
        """`num` indices `[num]` drawn uniformly with replacement, skipping those in `exclude` (any shape)
        and, with `filled_only`, the rows never filled.

        Drawn on the generator's device (so a CPU generator works with a GPU bank), returned on the bank's.
        """
        if num < 0:
            raise ValueError(f"num must be non-negative, got {num}")
        device = generator.device if generator is not None else self.bank.device
        if exclude is None and not filled_only:
            picked = torch.randint(self.size, (num,), generator=generator, device=device)
        else:
            keep = torch.ones(self.size, dtype=torch.bool, device=device)
            if filled_only:
                keep &= self.filled.to(device)
            if exclude is not None:
                keep[self._check_indices("exclude", exclude).to(device)] = False
            pool = keep.nonzero().squeeze(1)
            if pool.numel() == 0:
                why = "exclude" if not filled_only else "filled_only" if exclude is None else "exclude and filled_only"
                raise ValueError(f"{why} leave none of the {self.size} entries of the bank to sample")
            picked = pool[torch.randint(pool.numel(), (num,), generator=generator, device=device)]
        return picked.to(self.bank.device)

    def negatives(
        self, batch_size: int, num: int, generator: torch.Generator | None = None, exclude: Tensor | None = None
    ) -> Tensor:
        """`num` uniformly sampled entries for each of `batch_size` anchors -> `[batch_size, num, dim]`."""
        return self.get(self.sample(batch_size * num, generator, exclude).view(batch_size, num))


class Queue(nn.Module):
    """FIFO of the most recent `size` embeddings (MoCo's dictionary).

    Contract: `read()` the negatives BEFORE `enqueue`-ing the current batch's keys, so a batch never
    contrasts with itself. `read` returns a copy, so enqueueing after the loss is built but before
    `backward` is safe. The queue starts empty (`len(q) == 0`, `read()` is `[0, dim]`) rather than
    holding random vectors, so early steps only see real keys.

    Args:
        size: capacity in rows.
        dim: embedding dimension.
    """

    queue: Tensor
    ptr: Tensor
    filled: Tensor

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        _check_positive(size=size, dim=dim)
        self.size, self.dim = size, dim
        self.register_buffer("queue", torch.zeros(size, dim))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))  # row the next key goes to
        self.register_buffer("filled", torch.zeros((), dtype=torch.long))  # number of valid rows

    def extra_repr(self) -> str:
        return f"size={self.size}, dim={self.dim}"

    def __len__(self) -> int:
        return int(self.filled)

    def read(self) -> Tensor:
        """The valid rows, oldest first -> `[len(self), dim]` (a copy)."""
        if len(self) < self.size:  # never wrapped yet: rows 0 .. filled-1 in arrival order
            return self.queue[: len(self)].clone()
        p = int(self.ptr)
        return torch.cat((self.queue[p:], self.queue[:p]))

    @torch.no_grad()
    def enqueue(self, x: Tensor) -> None:
        """Append keys `x` `[B, dim]`, overwriting the oldest rows; if `B > size` only the last `size` are kept."""
        _check_rows("x", x, None, self.dim)
        x = x[-self.size :]
        # Positions stay on the device (no host sync): B <= size, so they are distinct.
        rows = (self.ptr + torch.arange(x.shape[0], device=self.queue.device)) % self.size
        self.queue[rows] = x.to(self.queue)
        self.ptr.add_(x.shape[0]).remainder_(self.size)
        self.filled.add_(x.shape[0]).clamp_(max=self.size)
