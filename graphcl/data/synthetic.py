"""A small synthetic node-classification graph, for tests and demos that need no data on disk."""
from itertools import accumulate

import torch
from torch_geometric.data import Data

__all__ = ["make_synthetic_node_data"]


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
    sampled densely (`num_nodes ** 2` draws): meant for graphs of up to a few thousand nodes.
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
