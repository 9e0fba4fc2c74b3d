"""The ``embedding`` op: a table lookup whose backward scatter-adds into the table.

Forward gathers rows of ``weight`` (``num_embeddings``, ``embedding_dim``) at integer
``indices`` of any shape; the result has shape ``indices.shape + (embedding_dim,)``.
Backward adds every output row's gradient into the row it came from, so an index that
appears several times collects the sum of its gradients.

``padding_idx`` marks padding tokens: their positions embed to the zero vector, whatever the
padding row holds, and the padding row gets no gradient. (PyTorch instead returns the padding
row itself, which it keeps at zero; defining the forward this way makes "no gradient" the exact
derivative, so the op passes a finite-difference check with padding too.)
"""

from __future__ import annotations

import numpy as np

from tinytorch_core import Function, Sample, Tensor
from tinytorch_core import flops as count  # FLOP formulas
from tinytorch_core.checks import array_of, shape_of

#: up to this table size the backward builds the one-hot matrix of the indices (see scatter_add_rows)
ONE_HOT_MAX_ROWS = 128


class EmbeddingLookup(Function):
    """``weight[indices]`` with a scatter-add backward (see module docstring)."""

    flops = staticmethod(count.no_arithmetic)

    @staticmethod
    def forward(ctx, indices, weight, padding_idx=None):
        ctx.save_for_backward(indices)
        ctx.weight_shape = weight.shape
        ctx.padding_idx = padding_idx
        out = np.take(weight, indices, axis=0)
        if padding_idx is not None:
            out[indices == padding_idx] = 0  # padding tokens embed to zeros (see module docstring)
        return out

    @staticmethod
    def backward(ctx, grad):
        (indices,) = ctx.saved_tensors
        if not ctx.needs_input_grad[1]:
            return None, None, None
        rows, dim = ctx.weight_shape
        grad_weight = scatter_add_rows(indices.reshape(-1), grad.reshape(-1, dim), rows)
        if ctx.padding_idx is not None:
            grad_weight[ctx.padding_idx] = 0
        return None, grad_weight, None  # None: indices and padding_idx


def scatter_add_rows(index, values, rows: int):
    """``out[index[i]] += values[i]`` for every ``i`` (repeated indices add up), vectorised.

    A lookup is a one-hot matrix times the table, so its gradient is ``one_hot.T @ values``:
    one matrix product. The one-hot matrix has a column per row of the table, so above
    ``ONE_HOT_MAX_ROWS`` rows ``np.add.at`` adds each value into its row in place instead; so it
    does for values that are not all finite (the product's ``0 * inf`` would put NaN in rows no
    index chose).
    """
    if rows <= ONE_HOT_MAX_ROWS and np.isfinite(values).all():
        one_hot = (index[:, None] == np.arange(rows)).astype(values.dtype)
        return one_hot.T @ values
    out = np.zeros((rows, values.shape[1]), dtype=values.dtype)
    np.add.at(out, index, values)
    return out


def check_indices(indices, size: int, where: str) -> np.ndarray:
    """The integer index array inside ``indices``, or a clear error for float or out-of-range ones."""
    arr = array_of(indices)
    kind = "tensor" if isinstance(indices, Tensor) else "array"
    if arr.dtype.kind not in "iu":
        example = f" (first value {arr.flat[0]!r})" if arr.size else ""
        raise TypeError(
            f"{where}: indices into a table of size {size} must be integers, got a {arr.dtype} "
            f"{kind}{example}; convert token ids with .astype(np.int64)"
        )
    if arr.size:
        low, high = arr.min(), arr.max()
        if low < 0 or high >= size:
            bad = high if high >= size else low
            position = tuple(int(p) for p in np.argwhere(arr == bad)[0])
            raise IndexError(
                f"{where}: index {int(bad)} at position {position} is out of range for a table of "
                f"size {size} (valid indices are 0..{size - 1})"
            )
    return arr


def normalize_padding_idx(padding_idx, size: int, where: str):
    if padding_idx is None:
        return None
    if not isinstance(padding_idx, (int, np.integer)) or isinstance(padding_idx, bool):
        raise TypeError(f"{where}: padding_idx must be an int or None, got {padding_idx!r}")
    if not -size <= padding_idx < size:
        raise IndexError(f"{where}: padding_idx {padding_idx} is out of range for a table of size {size}")
    return int(padding_idx) % size


def embedding(indices, weight, padding_idx=None):
    """Rows of ``weight`` (V, E) at integer ``indices`` (any shape) -> ``indices.shape + (E,)``.

    ``padding_idx`` (optional) names the padding id: its positions give zero vectors and its
    row receives no gradient. Float indices
    raise ``TypeError``; an index outside ``[0, V)`` raises ``IndexError`` naming it.
    """
    shape = shape_of(weight)
    if len(shape) != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got shape {shape}")
    index = check_indices(indices, shape[0], "embedding")
    padding_idx = normalize_padding_idx(padding_idx, shape[0], "embedding")
    return EmbeddingLookup.apply(index, weight, padding_idx)


def embedding_samples(rng):
    """Gradcheck inputs: repeated indices, several index shapes, padding rows, a large table."""
    weight = rng.standard_normal((6, 3))
    yield Sample(np.array([0, 2, 2, 5, 2]), weight)  # 1-D, index 2 three times
    yield Sample(np.array([[1, 4, 1], [3, 1, 0]]), weight)  # 2-D batch, repeats across rows
    yield Sample(np.array([[1, 0, 0], [3, 0, 5]]), weight, padding_idx=0)  # padding row gets no grad
    yield Sample(np.array([[5, 2], [2, 5]]), weight, padding_idx=-1)  # negative padding_idx = last row
    big = rng.standard_normal((ONE_HOT_MAX_ROWS + 5, 2))  # takes the np.add.at path
    yield Sample(np.array([[0, 130, 7], [130, 7, 130]]), big, padding_idx=7)
