"""Moving and cutting a tensor's entries, with PyTorch's names: ``flip``, ``roll``, ``repeat``,
and the pieces of a tensor (``split``, ``chunk``, ``unbind``, ``narrow``) and its expansion
(``expand``).

``flip``, ``roll`` and ``repeat`` copy, as in PyTorch. The pieces are views of their input, as
in PyTorch: ``Split`` says how it views (``Function.view``, with each piece's position), so a
write into a piece reaches the tensor it was cut from and a write into that tensor reaches the
pieces, with the graph following both ways (``inplace.py``). Backward puts each piece's
gradient back where the piece was cut from; a piece nobody used sends zeros (the engine's
``_output_specs``).
"""

from __future__ import annotations

import math
import numbers
import sys

import numpy as np

from .. import flops as count  # FLOP formulas
from .. import function  # its Tensor, looked up at call time (core's one import cycle)
from ..checks import normalize_axes, normalize_axis, shape_of
from ..function import Function
from ..host.samples import Sample, randn
from .shape import BroadcastTo, GetItem, tuple_argument


class Flip(Function):
    """``a`` with the order of its entries reversed along ``axes`` (a copy, as in PyTorch).
    Backward: reversing is its own inverse, so the gradient is reversed the same way."""

    flops = staticmethod(count.no_arithmetic)

    @staticmethod
    def forward(ctx, a, axes):
        ctx.axes = axes
        return np.flip(a, axes).copy()  # np.flip is a view; PyTorch's flip is a new tensor

    @staticmethod
    def backward(ctx, grad):
        return np.flip(grad, ctx.axes), None


class Roll(Function):
    """``a`` shifted by ``shifts`` along ``axes`` (None: the flattened tensor), the entries that
    fall off one end coming back at the other. Backward: the gradient rolled back, by ``-shifts``."""

    flops = staticmethod(count.no_arithmetic)

    @staticmethod
    def forward(ctx, a, shifts, axes):
        ctx.shifts, ctx.axes = shifts, axes
        return np.roll(a, shifts, axes)

    @staticmethod
    def backward(ctx, grad):
        back = tuple(-s for s in ctx.shifts) if isinstance(ctx.shifts, tuple) else -ctx.shifts
        return np.roll(grad, back, ctx.axes), None, None


class Repeat(Function):
    """``a`` tiled ``sizes[i]`` times along axis ``i`` (PyTorch's ``repeat``, NumPy's ``tile``);
    extra leading sizes add axes. Backward: every copy of an entry sends its gradient back, so the
    gradient is cut into the copies (shape ``(r0, d0, r1, d1, ...)``) and summed over them."""

    flops = staticmethod(count.no_arithmetic)

    @staticmethod
    def forward(ctx, a, sizes):
        ctx.shape, ctx.sizes = a.shape, sizes
        dims = (1,) * (len(sizes) - a.ndim) + a.shape
        out_shape = tuple(r * d for r, d in zip(sizes, dims))
        if math.prod(out_shape) * a.itemsize > sys.maxsize:
            raise MemoryError(f"{Repeat.display_name()}: the result of shape {out_shape} would need more memory "
                              "than any array can hold")
        if math.prod(out_shape) == 0:  # np.tile would first build the copies along the other axes
            return np.zeros(out_shape, a.dtype)
        return np.tile(a, sizes)

    @staticmethod
    def backward(ctx, grad):
        dims = (1,) * (len(ctx.sizes) - len(ctx.shape)) + ctx.shape  # the input's shape, with the new axes
        interleaved = [n for pair in zip(ctx.sizes, dims) for n in pair]  # (r0, d0, r1, d1, ...)
        summed = grad.reshape(interleaved).sum(axis=tuple(range(0, 2 * len(dims), 2)))  # over the copies
        return summed.reshape(ctx.shape), None


def piece(array: np.ndarray, bounds: tuple, axis: int, drop_axis: bool, index: int) -> np.ndarray:
    """Piece ``index`` of ``array``: entries ``bounds[index]`` (start, stop) along ``axis``, a view;
    with ``drop_axis`` (unbind) the one entry there, the axis removed (``...`` keeps a 0-d piece a
    view, not a NumPy scalar)."""
    start, stop = bounds[index]
    return array[(slice(None),) * axis + ((start, Ellipsis) if drop_axis else (slice(start, stop),))]


class Split(Function):
    """The pieces of ``a`` along ``axis``, one per ``(start, stop)`` in ``bounds``, as views.
    Backward: the pieces' gradients put side by side again (``np.concatenate``; ``np.stack``
    for ``drop_axis``, unbind's pieces without the axis)."""

    flops = staticmethod(count.no_arithmetic)
    view = staticmethod(piece)  # piece(array, bounds, axis, drop_axis, index)

    @staticmethod
    def forward(ctx, a, bounds, axis, drop_axis):
        ctx.shape, ctx.axis, ctx.drop_axis = a.shape, axis, drop_axis
        return tuple(piece(a, bounds, axis, drop_axis, i) for i in range(len(bounds)))

    @staticmethod
    def backward(ctx, *grads):
        join = np.stack if ctx.drop_axis else np.concatenate
        return join(grads, axis=ctx.axis), None, None, None


# ---- front-ends ---------------------------------------------------------------------------------------
def flip(x, *dims_args, dims=None):
    """``x`` reversed along ``dims`` (``flip(x, (0, 1))``, ``x.flip(0, 1)``)."""
    given = tuple_argument(dims_args) if dims is None else (dims if isinstance(dims, (tuple, list)) else (dims,))
    if dims is None and not dims_args:
        raise TypeError("flip: dims is required (an int or a tuple of ints), as in PyTorch")
    ndim = len(shape_of(x))
    axes = normalize_axes(tuple(given), ndim, "flip")  # refuses a repeated dim, as PyTorch does
    return Flip.apply(x, axes)


def roll(x, shifts, dims=None):
    """``x`` shifted by ``shifts`` along ``dims`` (ints or tuples of one length; ``dims=None``: the
    flattened tensor, shape kept)."""
    ndim = len(shape_of(x))
    shift_list = shifts if isinstance(shifts, (tuple, list)) else (shifts,)
    for s in shift_list:
        if not isinstance(s, numbers.Integral) or isinstance(s, bool):
            raise TypeError(f"roll: shifts must be ints, got {s!r}")
    if dims is None:
        if len(shift_list) != 1:
            raise ValueError(f"roll: {len(shift_list)} shifts need as many dims, got none")
        return Roll.apply(x, int(shift_list[0]), None)
    dim_list = dims if isinstance(dims, (tuple, list)) else (dims,)
    if ndim == 0:
        raise ValueError("roll: a 0-d tensor has no dimension to roll along (roll(x, shifts) without dims works)")
    if len(dim_list) != len(shift_list):
        raise ValueError(f"roll: shifts and dims must have one length, got shifts {shifts!r} and dims {dims!r}")
    axes = tuple(normalize_axis(d, ndim, "roll") for d in dim_list)  # NumPy rolls a repeated axis twice, as PyTorch
    return Roll.apply(x, tuple(int(s) for s in shift_list), axes)


def repeat(x, *sizes):
    """``x`` tiled ``sizes[i]`` times along axis ``i``; at least one size per axis of ``x``."""
    sizes = tuple_argument(sizes)
    ndim = len(shape_of(x))
    sizes = tuple(_count(s, "repeat: each size", 0) for s in sizes)
    if len(sizes) < ndim:
        raise ValueError(f"repeat: {len(sizes)} size(s) for a tensor of {ndim} dimensions; give one per "
                         "dimension (more add leading dimensions)")
    return Repeat.apply(x, sizes)


def _axis_to_cut(x, dim, op: str) -> tuple[int, int]:
    """``(axis, its size)`` for ``dim`` of ``x``, which needs at least one dimension to cut."""
    shape = shape_of(x)
    if not shape:
        raise ValueError(f"{op}: expected a tensor with at least one dimension, got a 0-d tensor")
    axis = normalize_axis(dim, len(shape), op)
    return axis, shape[axis]


def split(x, split_size_or_sections=None, dim: int = 0, *, split_size=None):
    """Pieces of ``x`` along ``dim``: of ``split_size`` entries each (the last may be shorter), or
    of the sizes in a list of sections, which must add up to the axis's size. A tuple of views.
    (``split_size=`` is ``Tensor.split``'s keyword in PyTorch, ``split_size_or_sections`` ``torch.split``'s.)"""
    if (split_size is None) == (split_size_or_sections is None):
        raise TypeError("split: give the piece size (or the list of sections) once: split_size_or_sections or split_size")
    split_size_or_sections = split_size if split_size is not None else split_size_or_sections
    axis, size = _axis_to_cut(x, dim, "split")
    if isinstance(split_size_or_sections, (tuple, list)):
        sections = [_count(s, "split: each section", 0) for s in split_size_or_sections]
        if sum(sections) != size:
            raise ValueError(f"split: sections {list(sections)} add up to {sum(sections)}, but axis {axis} "
                             f"has size {size}")
    else:
        step = _count(split_size_or_sections, "split: split_size", 0)
        if step == 0 and size:
            raise ValueError(f"split: split_size 0 cannot cut axis {axis} of size {size}")
        sections = [min(step, size - start) for start in range(0, size, step)] if size else [0]
    stops = np.cumsum(sections).tolist()
    return Split.apply(x, tuple(zip([0] + stops[:-1], stops)), axis, False)


def chunk(x, chunks: int, dim: int = 0):
    """``x`` cut into ``chunks`` pieces along ``dim``, each of ``ceil(size / chunks)`` entries (the
    last shorter, and fewer pieces when that size divides less), as PyTorch's ``chunk``."""
    axis, size = _axis_to_cut(x, dim, "chunk")
    chunks = _count(chunks, "chunk: chunks", 1)
    if size == 0:  # PyTorch's rule: as many empty pieces as asked for
        return Split.apply(x, ((0, 0),) * chunks, axis, False)
    return split(x, math.ceil(size / chunks), axis)


def unbind(x, dim: int = 0):
    """The entries of ``x`` along ``dim``, each without that axis: ``tuple(x[i] for i ...)``, in one op."""
    axis, size = _axis_to_cut(x, dim, "unbind")
    return Split.apply(x, tuple((i, i + 1) for i in range(size)), axis, True)


def _count(value, what: str, least: int) -> int:
    """``value`` as an int of at least ``least`` (a bool is no count: ``True`` would read as 1)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{what} must be an int, got {value!r}")
    if value < least:
        raise ValueError(f"{what} must be an int >= {least}, got {value!r}")
    return int(value)


def narrow(x, dim: int, start: int, length: int):
    """Entries ``start .. start + length`` of ``x`` along ``dim``, a view (``start`` may count from the
    end: -1 is the last)."""
    axis, size = _axis_to_cut(x, dim, "narrow")
    if isinstance(start, function.Tensor):  # a 0-d integer tensor, as PyTorch allows
        start = start.__index__()
    if not isinstance(start, numbers.Integral) or isinstance(start, bool):
        raise TypeError(f"narrow: start must be an int, got {start!r}")
    length = _count(length, "narrow: length", 0)
    if not -size <= start <= size:
        raise IndexError(f"narrow: start {start} is out of range for axis {axis} of size {size} "
                         f"(expected -{size} <= start <= {size})")
    start = start + size if start < 0 else start
    if start + length > size:
        raise ValueError(f"narrow: start ({start}) + length ({length}) exceeds axis {axis} of size {size}")
    return GetItem.apply(x, (slice(None),) * axis + (slice(start, start + length),))


def expand(x, *sizes, size=None):
    """``x`` broadcast to ``sizes`` (or ``size=``, PyTorch's keyword) without copying (a read-only
    view): -1 keeps an axis's size; new axes go in front."""
    if size is not None:
        if sizes:
            raise TypeError("expand: give the sizes once, as arguments or as size=")
        sizes = (size,)
    sizes, shape = tuple_argument(sizes), shape_of(x)
    if len(sizes) < len(shape):
        raise ValueError(f"expand: {len(sizes)} size(s) for a tensor of {len(shape)} dimensions; give one per "
                         "dimension (more add leading dimensions)")
    lead = len(sizes) - len(shape)
    for i, s in enumerate(sizes):
        if _count(s, "expand: each size", -1) == -1 and i < lead:
            raise ValueError(f"expand: -1 keeps an existing size; dimension {i} of {sizes} is a new one")
    target = tuple(shape[i - lead] if s == -1 else int(s) for i, s in enumerate(sizes))
    if any(d not in (1, t) for d, t in zip(shape, target[lead:])):
        raise ValueError(f"expand: a tensor of shape {shape} cannot be expanded to {target}: only axes of size "
                         "1 grow")
    return BroadcastTo.apply(x, target)


# ---- sample inputs ----------------------------------------------------------------------------------
def flip_samples(rng):
    yield Sample(randn(rng, 3, 4), 0)
    yield Sample(randn(rng, 2, 3, 4), (0, -1))


def roll_samples(rng):
    yield Sample(randn(rng, 3, 4), 2)  # the flattened tensor
    yield Sample(randn(rng, 3, 4), (1, -3), (0, -1))
    yield Sample(randn(rng, 2, 5), 7, 1)  # more than the axis's length: wraps around


def repeat_samples(rng):
    yield Sample(randn(rng, 2, 3), 2, 1)
    yield Sample(randn(rng, 3), (2, 1, 2))  # new leading axes
    yield Sample(randn(rng, 2, 1, 3), 1, 4, 1)


def split_samples(rng):
    yield Sample(randn(rng, 5, 3), 2)  # pieces 2, 2, 1
    yield Sample(randn(rng, 3, 6), [1, 0, 5], dim=-1)  # sections, one of them empty
    yield Sample(randn(rng, 2, 4), 4, 1)  # one piece


LAYOUT_OPS = [
    ("flip", Flip, flip_samples, flip),
    ("roll", Roll, roll_samples, roll),
    ("repeat", Repeat, repeat_samples, repeat),
    ("split", Split, split_samples, split),
]
