"""Sparse inputs for full-batch training: CSR node features and a CSR adjacency; sparse operands (constant CSR
matrices whose products backpropagate through a precomputed transpose), e.g. a mini-batch's adjacency.

Bag-of-words features are ~99% zeros (Cora: 98.7%); as a CSR matrix the first layer's `X W` costs
O(nnz * D) instead of O(N * F * D). PyG's linear layers and GCNConv accept both layouts as they are.
"""
from __future__ import annotations

import warnings

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.transforms import ToSparseTensor

# CSR support is "beta" in PyTorch; the ops used here (linear, spmm, construction) are stable. Invariant
# checks stay off (PyTorch's default) but say so explicitly, which silences its warning on every build.
warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")
torch.sparse.check_sparse_tensor_invariants.disable()


def density(x: Tensor) -> float:
    """Fraction of non-zero entries of a dense tensor."""
    return float(torch.count_nonzero(x)) / max(x.numel(), 1)


def to_sparse_features(x: Tensor, max_density: float = 0.1) -> Tensor:
    """`x` as a CSR matrix when at most `max_density` of its entries are non-zero, else unchanged."""
    if x.layout == torch.sparse_csr or x.dim() != 2 or max_density <= 0 or density(x) > max_density:
        return x
    return x.to_sparse_csr()


class _PermuteRows(torch.autograd.Function):
    """`x[perm]` for a permutation: the backward is a gather by the inverse permutation, not an
    accumulating scatter (which must allow for repeated indices)."""

    @staticmethod
    def forward(ctx, x: Tensor, perm: Tensor) -> Tensor:
        ctx.save_for_backward(perm)
        return x[perm]

    @staticmethod
    def backward(ctx, grad: Tensor):
        (perm,) = ctx.saved_tensors
        inverse = torch.empty_like(perm)
        inverse[perm] = torch.arange(perm.numel(), device=perm.device)
        return grad[inverse], None


def permute_rows(x: Tensor, perm: Tensor) -> Tensor:
    """`x[perm]` for a permutation `perm`, for dense and CSR matrices (CSR has no row indexing in PyTorch);
    O(nnz), no Python loop."""
    if x.layout != torch.sparse_csr:
        return _PermuteRows.apply(x, perm) if x.requires_grad else x[perm]
    crow, col, val = x.crow_indices(), x.col_indices(), x.values()
    lengths = (crow[1:] - crow[:-1])[perm]
    new_crow = torch.zeros_like(crow)
    torch.cumsum(lengths, 0, out=new_crow[1:])
    # position of every stored entry of the new matrix inside the old one
    starts = torch.repeat_interleave(crow[:-1][perm] - new_crow[:-1], lengths)
    src = starts + torch.arange(int(new_crow[-1]), device=x.device)
    return torch.sparse_csr_tensor(new_crow, col[src], val[src], x.shape)


def graph_inputs(batch: Data) -> tuple[Tensor, object]:
    """(x, adjacency) of a batch: `adj_t` when the batch carries a sparse adjacency, else `edge_index`."""
    adj = batch.adj_t if "adj_t" in batch else batch.edge_index
    return batch.x, adj


def sparse_full_batch(data: Data, max_density: float = 0.1) -> Data:
    """A copy of `data` for fast full-batch training: CSR features (when sparse enough) and the adjacency
    as a CSR `adj_t` (PyG's transposed layout; row i lists the sources of node i), which PyG's convs accept
    in place of `edge_index`."""
    # keep edge_index too: methods that perturb edges (edge dropping) start from it
    out = ToSparseTensor(remove_edge_index=False, layout=torch.sparse_csr)(data.clone())
    if out.x is not None:
        out.x = to_sparse_features(out.x, max_density)
    return out


class _ConstantSparseMM(torch.autograd.Function):
    """`a @ b` for a constant sparse `a` with a precomputed transpose: backward is `a_t @ grad`.

    PyTorch's own backward re-derives the transpose of a CSR matrix (a sort) at every step.
    """

    @staticmethod
    def forward(ctx, a: Tensor, a_t: Tensor, b: Tensor) -> Tensor:
        ctx.a_t = a_t
        return a @ b

    @staticmethod
    def backward(ctx, grad: Tensor):
        return None, None, ctx.a_t @ grad


class SparseOperand:
    """A constant matrix (CSR or dense) used as the left factor of products with trainable right factors.

    `a_t`: the transpose of a CSR `a` as CSR, when the caller has it (else it is derived once here)."""

    def __init__(self, a: Tensor, a_t: Tensor | None = None) -> None:
        self.a = a
        if a.layout == torch.sparse_csr and a_t is None:
            a_t = a.t().to_sparse_csr()
        self.a_t = a_t if a.layout == torch.sparse_csr else None

    def __matmul__(self, b: Tensor) -> Tensor:
        if self.a_t is None:
            return self.a @ b
        return _ConstantSparseMM.apply(self.a, self.a_t, b)


def _csr_ones(rows: Tensor, cols: Tensor, shape: tuple[int, int], dtype: torch.dtype) -> Tensor:
    """The CSR matrix with a 1 at every (rows, cols), duplicates kept (a product sums them); the entries are
    sorted by row (stably: each row keeps the input order) only when `rows` is not sorted already."""
    if rows.numel() > 1 and not bool((rows[1:] >= rows[:-1]).all()):
        cols = cols[torch.argsort(rows, stable=True)]
    crow = torch.zeros(shape[0] + 1, dtype=torch.long, device=rows.device)
    torch.cumsum(torch.bincount(rows, minlength=shape[0]), 0, out=crow[1:])
    return torch.sparse_csr_tensor(crow, cols, torch.ones(cols.numel(), dtype=dtype, device=cols.device), shape)


def adjacency_operand(edge_index: Tensor, num_nodes: int, dtype: torch.dtype = torch.float32) -> SparseOperand:
    """The adjacency of `edge_index` (flow source -> target) as PyG's `adj_t` in both orientations: `adj @ x`
    sums `x` over the sources of every node -- PyG's sum aggregation, a repeated edge counted as often as it
    occurs -- and its backward is a product with the precomputed transpose. One sort per orientation at
    most: none for the rows of the transpose when `edge_index` is sorted by source (a PyG `Batch` of coalesced
    graphs, and every view of one that keeps edges in order)."""
    src, dst = edge_index
    shape = (num_nodes, num_nodes)
    return SparseOperand(_csr_ones(dst, src, shape, dtype), _csr_ones(src, dst, shape, dtype))
