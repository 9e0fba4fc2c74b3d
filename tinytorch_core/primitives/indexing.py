"""Picking and masking entries by index: ``gather``, ``index_select``, ``masked_fill``, and the
triangles of a matrix (``tril``, ``triu``).

An index is checked before it is used: integers, of the shape the op needs, each in
``[0, size)``. NumPy would read ``-1`` as the last entry and say nothing of the op, so a wrong
index would give a wrong answer instead of an error. Backward sends each output entry's
gradient back to the entry it was read from; where an index reads one entry several times,
the gradients add up (``np.add.at``, never a plain assignment, which would keep only one).
"""

from __future__ import annotations

import numpy as np

from .. import flops as count  # FLOP formulas
from ..checks import array_of, check_fill_fits, dtype_of, normalize_axis, shape_of
from ..function import Function
from ..host.samples import Sample, randn


def checked_index(op: str, index, size: int, axis: int) -> np.ndarray:
    """``index`` as an int array whose every entry lies in ``[0, size)``, or a clear error."""
    index = np.asarray(index)
    if index.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must hold integers, got {index.dtype} data")
    if index.size and (index.min() < 0 or index.max() >= size):
        bad = index[(index < 0) | (index >= size)].flat[0]
        raise IndexError(f"{op}: index {bad} is out of range for axis {axis} of size {size} "
                         f"(expected every index in [0, {size}))")
    return index.astype(np.intp)  # a private copy: backward reads it after the caller may change theirs


def _positions(index: np.ndarray, axis: int) -> tuple:
    """Where ``gather`` reads: for each entry of ``index``, its own coordinates, with the one along
    ``axis`` replaced by the index value (an open grid, broadcast by NumPy, not a loop)."""
    grid = list(np.indices(index.shape, sparse=True))
    grid[axis] = index
    return tuple(grid)


class Gather(Function):
    """``out[i][j] = a[index[i][j]][j]`` for ``axis`` 0 (and so on for other axes), as PyTorch's
    ``gather``: ``index`` has ``a``'s number of dimensions and is no larger than ``a`` along the
    other axes. Backward: each ``a`` entry gets the sum of the gradients of the outputs read from it."""

    flops = staticmethod(count.no_arithmetic)

    @staticmethod
    def forward(ctx, a, axis, index):
        op, index = Gather.display_name(), np.asarray(index)
        ctx.shape, ctx.out_shape = a.shape, index.shape
        if a.ndim == 0 and index.ndim <= 1:  # PyTorch's 0-d rule: a scalar is one entry along axis 0
            a, index = a.reshape(1), index.reshape(-1)
        _check_gather_shapes(op, a.shape, index.shape, axis)
        ctx.positions = _positions(checked_index(op, index, a.shape[axis], axis), axis)
        ctx.read_shape = index.shape  # of a[ctx.positions]: the index's shape (1-D for a 0-d input)
        return a[ctx.positions].reshape(ctx.out_shape)

    @staticmethod
    def backward(ctx, grad):
        full = np.zeros(ctx.shape or (1,), dtype=grad.dtype)
        np.add.at(full, ctx.positions, grad.reshape(ctx.read_shape))  # repeated positions add up
        return full.reshape(ctx.shape), None, None


def _check_gather_shapes(op: str, shape: tuple, index_shape: tuple, axis: int) -> None:
    if len(index_shape) != len(shape):
        raise ValueError(f"{op}: index must have as many dimensions as the input ({len(shape)}), "
                         f"got index of shape {index_shape}")
    too_large = [d for d in range(len(shape)) if d != axis and index_shape[d] > shape[d]]
    if too_large:
        raise ValueError(f"{op}: index of shape {index_shape} is larger than the input {shape} "
                         f"along axis {too_large[0]} (only axis {axis} may be larger)")


class IndexSelect(Function):
    """The slices of ``a`` at positions ``index`` (a 1-D list) along ``axis``:
    ``np.take(a, index, axis)``. Backward: the gradient of each selected slice is added back
    where it was taken from (twice for a position named twice)."""

    flops = staticmethod(count.no_arithmetic)

    @staticmethod
    def forward(ctx, a, axis, index):
        op = IndexSelect.display_name()
        if np.ndim(index) > 1:
            raise ValueError(f"{op}: index must be a 1-D list of positions, got shape {np.shape(index)}")
        ctx.shape = a.shape
        if a.ndim == 0:  # PyTorch's 0-d rule: a scalar is one entry along axis 0, and stays 0-d
            a = a.reshape(1)
        index = checked_index(op, np.reshape(index, -1), a.shape[axis], axis)
        ctx.where = (slice(None),) * axis + (index,)  # a[ctx.where] is the result
        out = np.take(a, index, axis=axis)
        return out.reshape(()) if not ctx.shape and out.size == 1 else out

    @staticmethod
    def backward(ctx, grad):
        full = np.zeros(ctx.shape or (1,), dtype=grad.dtype)
        np.add.at(full, ctx.where, grad.reshape(full[ctx.where].shape))  # repeated positions add up
        return full.reshape(ctx.shape), None, None


class MaskedFill(Function):
    """``value`` where ``mask`` is True, ``a`` elsewhere (``mask`` broadcasts with ``a``; the result
    keeps ``a``'s dtype). Backward: ``a`` gets the gradient where the mask is False; ``value``
    (a 0-d tensor) the sum of the gradient where it is True."""

    flops = staticmethod(count.no_arithmetic)

    @staticmethod
    def forward(ctx, a, mask, value):
        ctx.save_for_backward(mask)  # saved, not kept aside: a Tensor mask changed in place is caught
        check_fill_fits(MaskedFill.display_name(), value, a.dtype)  # a Python int of any size, exactly
        fill = np.asarray(value, dtype=a.dtype) if isinstance(value, int) else np.asarray(value)
        if fill.dtype.kind not in "biuf":  # None would fill NaN, "1.5" 1.5
            raise TypeError(f"{MaskedFill.display_name()}: value must be a number or a 0-d tensor, got {value!r:.40}")
        return np.where(mask, fill.astype(a.dtype), a)

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        _, _, need_value = ctx.needs_input_grad
        zero = np.zeros((), dtype=grad.dtype)
        grad_value = np.where(mask, grad, zero) if need_value else None  # the engine sums it to 0-d
        return np.where(mask, zero, grad), None, grad_value


class _Triangle(Function):
    """The lower (``tril``) or upper (``triu``) triangle of the last two axes, the rest zeros;
    ``diagonal`` moves the border: 0 is the main diagonal, 1 the one above it, -1 the one below.
    Backward: the same triangle of the gradient (the zeroed entries do not depend on ``a``)."""

    flops = staticmethod(count.no_arithmetic)
    keep = staticmethod(np.tril)

    @classmethod
    def _forward(cls, ctx, a, diagonal):
        if a.ndim < 2:
            raise ValueError(f"{cls.display_name()}: expected a matrix or a batch of matrices, got shape {a.shape}")
        if not isinstance(diagonal, int) or isinstance(diagonal, bool):
            raise TypeError(f"{cls.display_name()}: diagonal must be an int, got {diagonal!r}")
        ctx.diagonal = diagonal
        return cls.keep(a, diagonal)  # np.where, not a product: an inf or NaN outside becomes 0

    @classmethod
    def _backward(cls, ctx, grad):
        return cls.keep(grad, ctx.diagonal), None


class Tril(_Triangle):
    keep = staticmethod(np.tril)

    @staticmethod
    def forward(ctx, a, diagonal=0):
        return Tril._forward(ctx, a, diagonal)

    @staticmethod
    def backward(ctx, grad):
        return Tril._backward(ctx, grad)


class Triu(_Triangle):
    keep = staticmethod(np.triu)

    @staticmethod
    def forward(ctx, a, diagonal=0):
        return Triu._forward(ctx, a, diagonal)

    @staticmethod
    def backward(ctx, grad):
        return Triu._backward(ctx, grad)


# ---- front-ends: PyTorch's argument order (input, dim, index) ---------------------------------------
def gather(x, dim: int, index):
    """``out[i][j][k] = x[i][index[i][j][k]][k]`` for ``dim`` 1 (PyTorch's ``gather``)."""
    return Gather.apply(x, normalize_axis(dim, len(shape_of(x)), "gather"), index)


def index_select(x, dim: int, index):
    """The slices of ``x`` at positions ``index`` (1-D) along ``dim``."""
    return IndexSelect.apply(x, normalize_axis(dim, len(shape_of(x)), "index_select"), index)


def masked_fill(x, mask, value):
    """``x`` with ``value`` (a number or a 0-d tensor, which gets a gradient) where ``mask`` is True."""
    mask_dtype = dtype_of(mask) if dtype_of(mask) is not None else np.asarray(mask).dtype
    if mask_dtype != np.bool_:
        raise TypeError(f"masked_fill: the mask must be a bool tensor, got {mask_dtype}")
    if shape_of(value) != ():
        raise ValueError(f"masked_fill: value must be a number or a 0-d tensor, got shape {shape_of(value)}")
    try:
        np.broadcast_shapes(shape_of(x), shape_of(mask))
    except ValueError:
        raise ValueError(f"masked_fill: a mask of shape {shape_of(mask)} does not broadcast with the tensor's shape "
                         f"{shape_of(x)}") from None
    _check_fill_fits(dtype_of(x), value)
    return MaskedFill.apply(x, mask, value)


def _check_fill_fits(dtype, value) -> None:
    """A fractional or infinite value cannot fill an integer tensor (NumPy would cut it silently)."""
    value_dtype = dtype_of(value) if dtype_of(value) is not None else np.asarray(value).dtype
    if dtype is None or dtype.kind not in "biu" or value_dtype.kind != "f":
        return  # the usual case, decided without reading the value
    number = array_of(value)
    if not (np.isfinite(number) and float(number).is_integer()):
        raise TypeError(f"masked_fill: the value {float(number)!r} cannot fill a {dtype} tensor; "
                        "cast the tensor to a floating-point dtype first")


def tril(x, diagonal: int = 0):
    return Tril.apply(x, diagonal)


def triu(x, diagonal: int = 0):
    return Triu.apply(x, diagonal)


# ---- sample inputs ----------------------------------------------------------------------------------
def gather_samples(rng):
    yield Sample(randn(rng, 3, 4), 1, rng.integers(0, 4, (3, 5)))  # repeats add up
    yield Sample(randn(rng, 4, 3), 0, rng.integers(0, 4, (2, 2)))  # smaller than the input along axis 1
    yield Sample(randn(rng, 2, 3, 4), 2, rng.integers(0, 4, (2, 3, 1)))


def index_select_samples(rng):
    yield Sample(randn(rng, 3, 4), 1, np.array([3, 0, 3]))
    yield Sample(randn(rng, 4, 2, 3), 0, np.array([1, 1, 2, 0, 1]))
    yield Sample(randn(rng, 3, 4), 1, np.zeros(0, np.int64))  # no position: an empty result


def masked_fill_samples(rng):
    mask = rng.random((3, 4)) > 0.5
    yield Sample(randn(rng, 3, 4), mask, -1.5)
    yield Sample(randn(rng, 3, 4), mask[0], randn(rng))  # a row mask broadcast; a 0-d value gets a gradient
    yield Sample(randn(rng, 4), mask, 0.0)  # the mask broadcasts the input to its shape


def triangle_samples(rng):
    yield Sample(randn(rng, 4, 4))
    yield Sample(randn(rng, 2, 3, 5), 1)
    yield Sample(randn(rng, 5, 3), -2)


INDEXING_OPS = [
    ("gather", Gather, gather_samples, gather),
    ("index_select", IndexSelect, index_select_samples, index_select),
    ("masked_fill", MaskedFill, masked_fill_samples, masked_fill),
    ("tril", Tril, triangle_samples, tril),
    ("triu", Triu, triangle_samples, triu),
]
