"""Shape primitives: reshape, transpose, broadcast, indexing, concatenate, stack."""

from __future__ import annotations

import math

import numpy as np

from ..checks import array_of, axis_or_dim, broadcasts_to, dtype_of, normalize_axes, normalize_axis, shape_of
from ..dtypes import promote
from .. import flops as count  # FLOP formulas
from .. import function  # its Tensor, looked up at call time (core's one import cycle)
from ..inplace import assign_at
from ..function import Function
from ..host.samples import Sample, randn


class Reshape(Function):
    flops = staticmethod(count.no_arithmetic)
    view = staticmethod(np.reshape)  # a view when NumPy can make one (see Function.view)

    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.shape), None


class Transpose(Function):
    flops = staticmethod(count.no_arithmetic)
    view = staticmethod(np.transpose)

    @staticmethod
    def forward(ctx, a, axes):
        ctx.axes = axes
        return a.transpose(axes)

    @staticmethod
    def backward(ctx, grad):
        if ctx.axes is None:
            return grad.transpose(), None
        return grad.transpose(np.argsort(ctx.axes)), None


class BroadcastTo(Function):
    """``a`` broadcast to ``shape`` without a copy (PyTorch's ``expand``): a read-only view, in
    which one entry of ``a`` shows at several positions. Backward: each position sends its gradient
    back to the one entry, so the broadcast axes are summed (the engine does that)."""

    flops = staticmethod(count.no_arithmetic)
    view = staticmethod(np.broadcast_to)  # a write into ``a`` reaches its broadcast views

    @staticmethod
    def forward(ctx, a, shape):
        return np.broadcast_to(a, shape)

    @staticmethod
    def backward(ctx, grad):
        return grad, None  # the engine sums the broadcast axes away


def element_view(a: np.ndarray, index):
    """``a[index]``, and a 0-d view (not NumPy's detached scalar) when the index names one element
    with ints: ``x[0]`` of a 1-D tensor sees later writes into ``x``, and writes through it reach
    ``x``, as in PyTorch. A trailing ``...`` keeps NumPy from turning the element into a scalar."""
    picked = a[index]
    if isinstance(picked, np.ndarray):
        return picked
    return a[(*index, Ellipsis) if type(index) is tuple else (index, Ellipsis)]


class GetItem(Function):
    flops = staticmethod(count.no_arithmetic)
    view = staticmethod(element_view)  # a view for a basic index (ints, slices, None, ...)

    @staticmethod
    def forward(ctx, a, index):
        ctx.shape, ctx.index = a.shape, _private_index(index)
        return element_view(a, index)

    @staticmethod
    def backward(ctx, grad):
        full = np.zeros(ctx.shape, dtype=grad.dtype)
        if _is_basic(ctx.index):
            full[ctx.index] = grad  # basic indexing never repeats an element
        else:
            np.add.at(full, ctx.index, grad)  # arrays and lists may repeat indices: they must add up
        return full, None


def _private_index(index):
    """``index`` with its arrays and lists copied: backward scatters through it, after the caller
    may have changed the index array it passed."""
    if type(index) is tuple:
        return tuple(_private_index(part) for part in index)
    if isinstance(index, (np.ndarray, list)):
        return np.array(index)
    return index


class SetItem(Function):
    """``a`` with ``a[index] = value``, as a new array: how an in-place write into a tensor is
    recorded when a gradient is involved (``Tensor.__setitem__``, ``copy_``, ``fill_``).

    Backward: the written positions got their value from ``value``, so ``a``'s gradient is zero
    there and ``value``'s is the gradient at those positions (summed back to ``value``'s shape
    by the engine when it was broadcast). An index that names a position twice writes it twice:
    only the write that stayed gets its gradient.
    """

    flops = staticmethod(count.no_arithmetic)

    @staticmethod
    def forward(ctx, a, value, index):
        out = a.copy()
        assign_at(out, index, value)
        ctx.index, ctx.value_ndim = _private_index(index), np.ndim(value)
        return out

    @staticmethod
    def backward(ctx, grad):
        need_a, need_value = ctx.needs_input_grad[:2]
        grad_a = grad_value = None
        if need_a:
            grad_a = grad.copy()
            grad_a[ctx.index] = 0
        if need_value:
            grad_value = grad[ctx.index]
            if not _is_basic(ctx.index):  # integer arrays may repeat a position
                grad_value = np.where(_writes_that_stayed(grad.shape, ctx.index, grad_value.shape), grad_value, 0)
            extra = ctx.value_ndim - grad_value.ndim
            if extra > 0:  # leading size-1 axes of value, which NumPy drops when it assigns: back in place
                grad_value = grad_value.reshape((1,) * extra + grad_value.shape)
        return grad_a, grad_value, None


def _writes_that_stayed(shape, index, region_shape) -> np.ndarray:
    """For ``a[index] = value``, in the shape of ``a[index]``: which writes are in the result. Where
    ``index`` names a position twice, NumPy keeps one of the writes; the same write here tells which."""
    writes = np.arange(int(np.prod(region_shape))).reshape(region_shape)
    writer = np.full(shape, -1, dtype=writes.dtype)
    writer[index] = writes
    return writer[index] == writes


def index_operand(index):
    """An index as NumPy takes it: tensors unwrapped, ``[]`` as an int array (indexing nothing)."""
    if type(index) is tuple:
        return tuple(index_operand(part) for part in index)
    if isinstance(index, function.Tensor):  # a 0-d integer tensor indexes as its int (a view), as in PyTorch
        return int(index.data) if index.data.ndim == 0 and index.data.dtype.kind in "iu" else index.data
    return np.zeros(0, dtype=np.intp) if type(index) is list and not index else index


def ints_first(index):
    """``(ints, rest)`` for an index that mixes ints with integer or bool arrays, else None.

    PyTorch reads such an int as a basic index, its axis gone first; NumPy reads it as one more
    array, and moves the array axes to the front when a slice separates them: ``y[0, :, [0, 1]]``
    has shape ``(d1, 2)`` in PyTorch, ``(2, d1)`` in NumPy. Indexing with ``ints`` (the ints, the
    rest full slices), then with ``rest`` (the arrays), gives PyTorch's order.
    """
    parts = index if type(index) is tuple else (index,)
    arrays = [np.asarray(p) for p in parts if isinstance(p, (np.ndarray, list))]
    if not arrays or not any(isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in parts):
        return None
    ints, rest, arrays = [], [], iter(arrays)
    for p in parts:
        if isinstance(p, (np.ndarray, list)):
            array = next(arrays)
            ints += [slice(None)] * (array.ndim if array.dtype == np.bool_ else 1)  # a mask spans its axes
            rest.append(p)
        elif isinstance(p, (int, np.integer)) and not isinstance(p, bool):
            ints.append(p)
        else:  # a slice, None or Ellipsis: applied with the ints; the arrays then see its result
            ints.append(p)
            rest.append(Ellipsis if p is Ellipsis else slice(None))
    return tuple(ints), tuple(rest)


def _is_basic(index) -> bool:
    """Only ints, slices, None and Ellipsis: NumPy basic indexing (a Python list is advanced)."""
    parts = index if type(index) is tuple else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (int, np.integer, slice)) for p in parts)


class Concatenate(Function):
    flops = staticmethod(count.no_arithmetic)

    @staticmethod
    def forward(ctx, *arrays, axis=0):
        ctx.axis = axis
        ctx.splits = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return np.concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        return tuple(np.split(grad, ctx.splits, axis=ctx.axis))


class Stack(Function):
    flops = staticmethod(count.no_arithmetic)

    @staticmethod
    def forward(ctx, *arrays, axis=0):
        ctx.axis = axis
        return np.stack(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        return tuple(np.moveaxis(grad, ctx.axis, 0))


# ---- front-ends ---------------------------------------------------------------------------------
def tuple_argument(args: tuple) -> tuple:
    """``f(2, 3)`` and ``f((2, 3))`` (or ``f([2, 3])``) mean the same: the numbers as one tuple."""
    return tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else args


def _check_reshape_dims(op: str, shape: tuple) -> None:
    """Every dimension an int >= 0, or one -1 to infer: NumPy reads any negative number as -1,
    so ``reshape(-5)`` would pass; PyTorch refuses it, and so do we."""
    for dim in shape:  # the usual shape, plain ints of at least -1, in one quick pass
        if type(dim) is not int or dim < -1:
            break
    else:
        if shape.count(-1) <= 1:
            return
    for dim in shape:
        if isinstance(dim, (bool, np.bool_)) or not isinstance(dim, (int, np.integer)):
            raise TypeError(f"{op}: a shape dimension must be an int, got {dim!r} "
                            f"({type(dim).__name__}) in shape {shape!r}")
        if dim < -1:
            raise ValueError(f"{op}: invalid shape dimension {dim} in shape {shape!r}; "
                             "only -1 (inferred from the other dimensions) may be negative")
    if shape.count(-1) > 1:
        raise ValueError(f"{op}: only one dimension can be inferred, but shape {shape!r} has several -1")


def _reshaped(x, shape: tuple, op: str):
    """``x`` reshaped to ``shape`` (checked first), for ``op``: reshape or view."""
    _check_reshape_dims(op, shape)
    src = shape_of(x)
    try:
        target = np.empty(src, dtype=np.bool_).reshape(shape).shape  # validates -1 and sizes cheaply
    except ValueError:
        raise ValueError(
            f"{op}: cannot reshape a tensor of shape {src} ({int(np.prod(src))} elements) into {shape}"
        ) from None
    return Reshape.apply(x, target)


def reshape(x, *shape):
    return _reshaped(x, tuple_argument(shape), "reshape")


def view(x, *shape):
    """``reshape`` that always shares memory, as in PyTorch: a layout it cannot view is refused
    (a copy would silently lose every write into the result)."""
    result = _reshaped(x, tuple_argument(shape), "view")
    if result.data.size and not np.may_share_memory(result.data, array_of(x)):
        raise ValueError(f"view: a tensor of shape {shape_of(x)} with strides {array_of(x).strides} cannot be "
                         f"viewed as {result.data.shape} without a copy; use reshape()")
    return result


def transpose(x, *axes):
    """Two axes: swap them (PyTorch's ``transpose(dim0, dim1)``; ``x.transpose(0, 1)`` of a
    matrix is its transpose). Otherwise NumPy's: a permutation of every axis, or none to reverse
    them."""
    axes = tuple_argument(axes)
    if len(axes) == 2:
        return swapaxes(x, *axes)
    return permute(x, *axes)


def permute(x, *axes):
    """The axes in the order ``axes`` (a permutation of all of them; none: reversed)."""
    axes = tuple_argument(axes)
    ndim = len(shape_of(x))
    if not axes:
        return Transpose.apply(x, None)
    permutation = tuple(normalize_axis(a, ndim, "permute") for a in axes)
    if sorted(permutation) != list(range(ndim)):
        raise ValueError(f"permute: axes {axes} are not a permutation of the {ndim} axes")
    return Transpose.apply(x, permutation)


def flatten(x, start_axis: int = 0, end_axis: int = -1):
    """Merge axes ``start_axis..end_axis`` into one."""
    shape = shape_of(x)
    ndim = max(len(shape), 1)
    start, end = normalize_axis(start_axis, ndim, "flatten"), normalize_axis(end_axis, ndim, "flatten")
    if start > end:
        raise ValueError(f"flatten: start axis {start} comes after end axis {end}")
    # the merged size spelled out, not -1: NumPy cannot infer -1 for an empty tensor
    return Reshape.apply(x, (*shape[:start], math.prod(shape[start:end + 1]), *shape[end + 1:]))


def swapaxes(x, axis1: int, axis2: int):
    ndim = len(shape_of(x))
    axis1, axis2 = (normalize_axis(a, ndim, "swapaxes") for a in (axis1, axis2))
    perm = list(range(ndim))
    perm[axis1], perm[axis2] = perm[axis2], perm[axis1]
    return Transpose.apply(x, tuple(perm))


def squeeze(x, dim=None, *, axis=None):
    """Remove axes of size 1: every one, or those named. Each library keeps its rule for a named
    axis of another size: PyTorch's ``dim`` leaves it, NumPy's ``axis`` refuses it."""
    shape = shape_of(x)
    if dim is not None and axis is not None:
        raise TypeError("squeeze: pass axis or dim (its PyTorch name), not both")
    named = axis if dim is None else dim
    if named is None:
        return Reshape.apply(x, tuple(s for s in shape if s != 1))
    axes = normalize_axes(named, len(shape), "squeeze")
    if dim is None:
        for a in axes:
            if shape[a] != 1:
                raise ValueError(f"squeeze: axis {a} has size {shape[a]}, only axes of size 1 can be removed")
    return Reshape.apply(x, tuple(s for i, s in enumerate(shape) if not (i in axes and s == 1)))


def unsqueeze(x, axis: int):
    shape = shape_of(x)
    axis = normalize_axis(axis, len(shape) + 1, "unsqueeze")  # an axis of the result
    return Reshape.apply(x, shape[:axis] + (1,) + shape[axis:])


def broadcast_to(x, shape):
    shape = tuple(shape)
    src = shape_of(x)
    lead = len(shape) - len(src)  # -1 keeps an existing axis's size, as PyTorch's expand does
    shape = tuple(src[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(shape))
    if not broadcasts_to(src, shape):
        raise ValueError(f"broadcast_to: a tensor of shape {src} cannot be broadcast to {shape}")
    return BroadcastTo.apply(x, shape)


def _check_joinable(op: str, tensors, axis: int, same_axis: bool):
    if not tensors:
        raise ValueError(f"{op}: needs at least one tensor")
    shapes = [shape_of(t) for t in tensors]
    ndim = len(shapes[0])
    if same_axis and ndim == 0:
        raise ValueError(f"{op}: 0-d tensors have no axis to join along; stack them instead")
    axis = normalize_axis(axis, ndim + (0 if same_axis else 1), op)  # stack: an axis of the result
    for s in shapes[1:]:
        a = list(s)
        b = list(shapes[0])
        if same_axis and len(a) == len(b):
            a[axis] = b[axis] = 0
        if a != b:
            rule = "match except along the axis" if same_axis else "have the same shape"
            raise ValueError(f"{op}: all tensors must {rule}; got shapes {shapes} (axis={axis})")
    return axis


def concatenate(tensors, axis: int = None, *, dim: int = None):
    """Join ``tensors`` along an existing ``axis`` (default 0; PyTorch's ``cat(..., dim)``)."""
    tensors = _common_dtype(list(tensors), "concatenate")
    axis = _check_joinable("concatenate", tensors, _axis_or_first(axis, dim, "concatenate"), same_axis=True)
    return Concatenate.apply(*tensors, axis=axis)


cat = concatenate  # PyTorch's name


def stack(tensors, axis: int = None, *, dim: int = None):
    """Join ``tensors`` along a new ``axis`` (default 0; PyTorch's ``dim``)."""
    tensors = _common_dtype(list(tensors), "stack")
    axis = _check_joinable("stack", tensors, _axis_or_first(axis, dim, "stack"), same_axis=False)
    return Stack.apply(*tensors, axis=axis)


def _common_dtype(tensors: list, op: str) -> list:
    """Tensors of different dtypes brought to one by the elementwise ops' rule (``dtypes.py``: int
    and float32 give float32, where NumPy's concatenate gives float64)."""
    if len({dtype_of(t) for t in tensors}) > 1:
        return list(promote(*tensors, op=op))
    return tensors


def _axis_or_first(axis, dim, where: str) -> int:
    axis = axis_or_dim(axis, dim, where)
    return 0 if axis is None else axis


# ---- sample inputs ------------------------------------------------------------------------------
def reshape_samples(rng):
    yield Sample(randn(rng, 3, 4), (2, 6))
    yield Sample(randn(rng, 2, 3, 4), (-1, 4))


def transpose_samples(rng):
    yield Sample(randn(rng, 3, 4), None)
    yield Sample(randn(rng, 2, 3, 4), (2, 0, 1))


def broadcast_samples(rng):
    yield Sample(randn(rng, 3, 1), (2, 3, 4))
    yield Sample(randn(rng, 4), (3, 4))


def getitem_samples(rng):
    x = randn(rng, 4, 5)
    yield Sample(x, (slice(1, 3), slice(None, None, 2)))
    yield Sample(x, (None, Ellipsis, 1))
    yield Sample(x, (np.array([0, 2, 2, 3]),))  # repeated integer indices accumulate
    yield Sample(x, x > 0)  # boolean mask
    yield Sample(randn(rng, 2, 3, 4), (Ellipsis, np.array([1, 0, 1])))
    yield Sample(x, 2)


def setitem_samples(rng):
    yield Sample(randn(rng, 4, 5), randn(rng, 2, 5), (slice(1, 3),))
    yield Sample(randn(rng, 4, 5), randn(rng, 5), np.array([0, 2]))  # a row broadcast into two rows
    yield Sample(randn(rng, 3, 4), randn(rng, 1), (slice(None), 1))  # broadcast into a column
    yield Sample(randn(rng, 2, 3), 0.5, Ellipsis)  # fill with a number
    yield Sample(randn(rng, 4, 3), randn(rng, 3, 3), np.array([2, 0, 2]))  # row 2 written twice


def concatenate_samples(rng):
    yield Sample(randn(rng, 2, 3), randn(rng, 4, 3), axis=0)
    yield Sample(randn(rng, 2, 3), randn(rng, 2, 1), randn(rng, 2, 2), axis=1)


def stack_samples(rng):
    yield Sample(randn(rng, 2, 3), randn(rng, 2, 3), axis=0)
    yield Sample(randn(rng, 2, 3), randn(rng, 2, 3), randn(rng, 2, 3), axis=2)
