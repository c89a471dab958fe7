"""Synthetic node-classification graphs with planted classes: a small dense one for tests and demos
(`make_synthetic_node_data`), and sparse ones of any size up to OGB scale (`make_synthetic_graph`), cached
and loadable by name as `synthetic:arxiv-like`, `synthetic:products-like` or `synthetic:nodes=...,edges=...`.
"""
import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

import torch
from torch import Tensor
from torch_geometric.data import Data, InMemoryDataset

from graphcl.data.paths import cache_dir
from graphcl.data.registry import SYNTHETIC_DEFAULTS, check_synthetic, synthetic_kwargs

__all__ = ["make_synthetic_node_data", "make_synthetic_graph", "SyntheticNodeDataset", "GENERATOR_VERSION"]

# Part of every cache file's name: bump it whenever the generator's output changes, so stale graphs are
# never served from the cache.
GENERATOR_VERSION = 1
# Pairs and feature rows are drawn in chunks of this many, which bounds the temporaries (a few hundred MB)
# on graphs of any size; the chunk size is part of the random stream, so it is fixed.
_CHUNK = 1 << 22
# Give up when duplicate or self-loop pairs keep the edge count short after this many top-up rounds.
_MAX_ROUNDS = 50


def make_synthetic_node_data(
    num_nodes: int = 200,
    num_classes: int = 4,
    num_features: int = 32,
    seed: int = 0,
    train_per_class: int = 5,
    avg_degree: float = 8.0,
    homophily: float = 0.8,
) -> Data:
    """An undirected stochastic-block-model graph with planted classes and Planetoid-style masks.

    Classes are balanced; an edge joins two nodes of the same class with probability chosen so that
    about `homophily` of a node's `avg_degree` neighbours share its class. Features are a class centroid
    plus unit Gaussian noise. Masks follow Planetoid: `train_per_class` nodes per class for training,
    then a quarter of all nodes for validation and half for test. Same arguments, same graph. Edges are
    sampled densely (`num_nodes ** 2` draws): meant for graphs of up to a few thousand nodes; see
    `make_synthetic_graph` for large ones.
    """
    sizes = (num_classes * train_per_class, num_nodes // 4, num_nodes // 2)
    if sum(sizes) > num_nodes:
        raise ValueError(f"{num_nodes} nodes are too few for {train_per_class} training nodes per class")
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(num_nodes, generator=gen)
    y = torch.empty(num_nodes, dtype=torch.long)
    y[perm] = torch.arange(num_nodes) % num_classes

    class_size = num_nodes / num_classes
    p_in = avg_degree * homophily / max(class_size - 1, 1)
    p_out = avg_degree * (1 - homophily) / max(num_nodes - class_size, 1)
    same = y[:, None] == y[None, :]
    adj = torch.rand(num_nodes, num_nodes, generator=gen) < torch.where(same, p_in, p_out)
    adj = adj.triu(diagonal=1)
    edge_index = (adj | adj.t()).nonzero().t().contiguous()

    centroids = torch.randn(num_classes, num_features, generator=gen)
    x = centroids[y] + torch.randn(num_nodes, num_features, generator=gen)

    # Classes cycle along `perm`, so its first `train_per_class * num_classes` nodes hold each class equally.
    bounds = list(accumulate(sizes, initial=0))
    masks = {}
    for split, start, stop in zip(("train_mask", "val_mask", "test_mask"), bounds, bounds[1:]):
        masks[split] = torch.zeros(num_nodes, dtype=torch.bool)
        masks[split][perm[start:stop]] = True
    return Data(x=x, edge_index=edge_index, y=y, **masks)


def make_synthetic_graph(
    num_nodes: int,
    num_edges: int,
    num_features: int,
    num_classes: int,
    homophily: float = SYNTHETIC_DEFAULTS["homophily"],
    skew: float = SYNTHETIC_DEFAULTS["skew"],
    noise: float = SYNTHETIC_DEFAULTS["noise"],
    train: float = SYNTHETIC_DEFAULTS["train"],
    valid: float = SYNTHETIC_DEFAULTS["valid"],
    seed: int = SYNTHETIC_DEFAULTS["seed"],
) -> Data:
    """A sparse undirected graph with planted classes, skewed degrees and class-informative features.

    Sizes are exact: `num_nodes` nodes and `num_edges` distinct undirected node pairs without self-loops,
    each stored in both directions (as PyG stores ogbn-products), so `edge_index` is `[2, 2 * num_edges]`:
    the pairs `(u, v)`, `u < v`, sorted, followed by the same pairs reversed.

    Model (a degree-corrected stochastic block model, sampled pair by pair in O(num_edges)):
    - classes have unequal sizes, proportional to `1 / sqrt(c + 1)` (every class holds a node at least);
    - a node of within-class rank `r` (in random order) has a weight `~ r ** -skew`: degrees follow a
      power law with exponent `1 + 1 / skew` (`skew=0`: uniform, Erdos-Renyi-like);
    - each node has an affinity `a = u ** (1 / homophily - 1)` (`u` uniform: mean `homophily`, a few nodes
      mostly heterophilous) and a partner class (another class, drawn by size);
    - each pair draws its first end by class size and weight, then its second end by weight: in the first
      end's class with probability `a`, else in its partner class. So `homophily` is the expected fraction
      of same-class pairs (a little less where duplicate hub pairs are dropped);
    - features are `x = mu[y] + noise * sqrt(num_features) * eps`, with unit Gaussian class centroids `mu`
      and noise `eps`. At `noise=0.5` a linear probe on `x` alone scores ~43 % on 40 classes, and one on
      the 2-hop neighbourhood mean ~90 % (30k nodes, 13 neighbours on average, `homophily=0.65`).

    Splits are random: `train` and `valid` fractions of the nodes, the rest test, as masks (`train_mask`,
    `val_mask`, `test_mask`). Same arguments, same tensors. Peak memory is about 1.5x the output's (products-like:
    4.5 GB for 3 GB; generated in ~30 s on one core, arxiv-like in ~1 s).

    Returns:
        `Data` with `x [N, F]` float32, `edge_index [2, 2E]` int64, `y [N]` int64 and the three `[N]` masks.
    """
    try:
        check_synthetic(nodes=num_nodes, edges=num_edges, features=num_features, classes=num_classes,
                        homophily=homophily, skew=skew, noise=noise, train=train, valid=valid, seed=seed)
    except ValueError as err:
        raise ValueError(f"make_synthetic_graph: {err}") from None
    gen = torch.Generator().manual_seed(seed)
    blocks = _Blocks.draw(num_nodes, num_classes, homophily, skew, gen)
    y = torch.empty(num_nodes, dtype=torch.long)
    y[blocks.perm] = blocks.class_of

    pairs = _distinct_pairs(num_edges, blocks, gen)
    edge_index = torch.empty(2, 2 * num_edges, dtype=torch.long)
    # Written in place: the 2 GB of a products-sized edge_index are never copied.
    torch.div(pairs, num_nodes, rounding_mode="floor", out=edge_index[0, :num_edges])
    torch.remainder(pairs, num_nodes, out=edge_index[1, :num_edges])
    del pairs
    edge_index[0, num_edges:] = edge_index[1, :num_edges]
    edge_index[1, num_edges:] = edge_index[0, :num_edges]

    centroids = torch.randn(num_classes, num_features, generator=gen)
    x = torch.randn(num_nodes, num_features, generator=gen).mul_(noise * math.sqrt(num_features))
    for start in range(0, num_nodes, _CHUNK):
        x[start:start + _CHUNK] += centroids[y[start:start + _CHUNK]]

    order = torch.randperm(num_nodes, generator=gen)
    bounds = [0, round(train * num_nodes), round((train + valid) * num_nodes), num_nodes]
    masks = {}
    for split, start, stop in zip(("train_mask", "val_mask", "test_mask"), bounds, bounds[1:]):
        masks[split] = torch.zeros(num_nodes, dtype=torch.bool)
        masks[split][order[start:stop]] = True
    return Data(x=x, edge_index=edge_index, y=y, **masks)


@dataclass(frozen=True)
class _Blocks:
    """The planted structure. Nodes are laid out by class ("positions"); per position: its node id
    (`perm`, random), class, same-class affinity and partner class; `skew` shapes the weights by rank."""

    perm: Tensor  # [N] node id of each position
    sizes: Tensor  # [C] class sizes
    starts: Tensor  # [C] first position of each class
    class_of: Tensor  # [N] class of each position
    affinity: Tensor  # [N] probability that a pair drawn from this node stays in its class
    partner: Tensor  # [N] the class its other pairs go to
    skew: float

    @staticmethod
    def draw(num_nodes: int, num_classes: int, homophily: float, skew: float, gen: torch.Generator) -> "_Blocks":
        """Classes sized `~ 1 / sqrt(c + 1)` (each with a node at least); affinities `u ** (1 / h - 1)`
        (mean `h`; some nodes mostly heterophilous); partners drawn by class size among the other classes."""
        weights = (torch.arange(num_classes, dtype=torch.float64) + 1).rsqrt()
        sizes = 1 + ((num_nodes - num_classes) * weights / weights.sum()).long()
        sizes[: num_nodes - int(sizes.sum())] += 1  # the rounding remainder, fewer than num_classes nodes
        class_of = torch.repeat_interleave(torch.arange(num_classes), sizes)
        perm = torch.randperm(num_nodes, generator=gen)
        exponent = 1 / homophily - 1 if homophily > 0 else math.inf
        affinity = torch.rand(num_nodes, generator=gen).pow_(exponent)
        partner = class_of[torch.randint(num_nodes, (num_nodes,), generator=gen)]  # a uniform position: by size
        shift = torch.randint(1, num_classes, (num_nodes,), generator=gen)
        partner = torch.where(partner == class_of, (class_of + shift) % num_classes, partner)
        return _Blocks(perm, sizes, sizes.cumsum(0) - sizes, class_of, affinity, partner, skew)

    def positions(self, classes: Tensor, gen: torch.Generator) -> Tensor:
        """A position in each of `classes [n]`: rank `r` of a class of size `s` with probability `~ r ** -skew`,
        by inverse transform, `r = floor(s * u ** (1 / (1 - skew)))` for uniform `u`."""
        u = torch.rand(classes.numel(), generator=gen, dtype=torch.float64)
        size = self.sizes.index_select(0, classes)
        rank = u.pow_(1.0 / (1.0 - self.skew)).mul_(size).long()
        return torch.minimum(rank, size - 1).add_(self.starts.index_select(0, classes))


def _distinct_pairs(count: int, blocks: _Blocks, gen: torch.Generator) -> Tensor:
    """`[count]` sorted, distinct keys `u * N + v` (`u < v`) of sampled node pairs.

    One round draws `count` pairs and drops self-loops and duplicates with one sort; later rounds top up
    the shortfall (a few % of hub pairs on sparse graphs) with fresh pairs not drawn before, drawing more
    the fewer were fresh in the round before.
    """
    keys = _unique_keys(_draw_keys(count, blocks, gen))
    fresh_rate = keys.numel() / count
    for _ in range(_MAX_ROUNDS):
        missing = count - keys.numel()
        if missing <= 0:
            return keys
        draws = int(missing / max(fresh_rate, 0.01) * 1.2) + 64
        fresh = _unique_keys(_draw_keys(draws, blocks, gen))
        if keys.numel():  # drop pairs already kept
            at = torch.searchsorted(keys, fresh).clamp_(max=keys.numel() - 1)
            fresh = fresh[keys[at] != fresh]
        fresh_rate = fresh.numel() / draws
        # A random subset, not the smallest keys, so the top-up does not favour low node ids.
        fresh = fresh[torch.randperm(fresh.numel(), generator=gen)[:missing]]
        keys = torch.cat([keys, fresh]).sort().values
    raise ValueError(f"could not draw {count} distinct pairs on {blocks.perm.numel()} nodes in {_MAX_ROUNDS} "
                     f"rounds (the graph is too dense for its skew and homophily); use fewer edges or a lower skew")


def _unique_keys(keys: Tensor) -> Tensor:
    """Sorted distinct keys, self-loops (marked -1) removed."""
    keys = torch.unique(keys)
    return keys[1:] if keys.numel() and keys[0] < 0 else keys


def _draw_keys(count: int, blocks: _Blocks, gen: torch.Generator) -> Tensor:
    """`[count]` keys `min(u, v) * N + max(u, v)` of independently drawn pairs; -1 marks a self-loop.

    A pair's first end is drawn by class size and weight; its second end, by weight, in the first end's class
    with the first end's affinity, else in its partner class.
    """
    num_nodes = blocks.perm.numel()
    keys = torch.empty(count, dtype=torch.long)
    # index_select, not t[index]: 3-4x faster for these random gathers, which dominate the time.
    for start in range(0, count, _CHUNK):
        n = min(_CHUNK, count - start)
        uniform = torch.randint(num_nodes, (n,), generator=gen)  # a uniform position: a class by size
        first = blocks.class_of.index_select(0, uniform)
        pos = blocks.positions(first, gen)
        same = torch.rand(n, generator=gen) < blocks.affinity.index_select(0, pos)
        second = torch.where(same, first, blocks.partner.index_select(0, pos))
        u = blocks.perm.index_select(0, pos)
        v = blocks.perm.index_select(0, blocks.positions(second, gen))
        key = torch.minimum(u, v).mul_(num_nodes).add_(torch.maximum(u, v))
        keys[start:start + n] = key.masked_fill_(u == v, -1)
    return keys


class SyntheticNodeDataset(InMemoryDataset):
    """A `make_synthetic_graph` graph by its name (`synthetic:arxiv-like`, see `registry.synthetic_kwargs`),
    generated once into `$GRAPHCL_CACHE/synthetic/` and memory-mapped from there afterwards.

    Behaves like a PyG node dataset: one graph, `dataset[0]`, `num_features`, `num_classes`, `name`, and
    OGB's `get_idx_split()` from the masks, so `eval.protocol: ogb` applies.
    """

    def __init__(self, name: str, transform=None) -> None:
        self.name, kwargs = synthetic_kwargs(name)
        super().__init__(None, transform)
        self.path = cache_file(kwargs)
        self._data, self.slices = _load_or_generate(self.path, kwargs), None
        self._num_classes = kwargs["num_classes"]

    @property
    def num_classes(self) -> int:
        return self._num_classes

    def get_idx_split(self) -> dict[str, Tensor]:
        """OGB's split dictionary: `{"train", "valid", "test"}` node index tensors `[n_split]`."""
        data = self._data
        masks = {"train": data.train_mask, "valid": data.val_mask, "test": data.test_mask}
        return {split: mask.nonzero().view(-1) for split, mask in masks.items()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def cache_file(kwargs: dict) -> Path:
    """Where the graph of `make_synthetic_graph(**kwargs)` (every argument given) is cached: named by its
    sizes and a hash of the arguments and of `GENERATOR_VERSION`."""
    stamp = json.dumps({**kwargs, "version": GENERATOR_VERSION}, sort_keys=True)
    digest = hashlib.sha256(stamp.encode()).hexdigest()[:12]
    return cache_dir() / "synthetic" / f"n{kwargs['num_nodes']}-e{kwargs['num_edges']}-{digest}.pt"


_KEYS = ("x", "edge_index", "y", "train_mask", "val_mask", "test_mask")


def _load_or_generate(path: Path, kwargs: dict) -> Data:
    """The cached graph at `path`, else a freshly generated one, written there atomically first."""
    if path.is_file():
        try:
            stored = torch.load(path, mmap=True, weights_only=True)  # pages in on use: instant reload
            if set(stored) == set(_KEYS):
                return Data(**stored)
        except Exception:  # unreadable (e.g. truncated by hand): generated again and replaced below
            pass
    data = make_synthetic_graph(**kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written under a temporary name and renamed: a crash mid-write never leaves a partial cache file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({key: data[key] for key in _KEYS}, f)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the graph from other users of a shared cache
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return data
