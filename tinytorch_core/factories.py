"""Tensor constructors."""

from __future__ import annotations

import math
import numbers
import operator
import sys

import numpy as np

from .checks import check_fill_fits
from .errstate import IGNORE_FLOATING_POINT_ERRORS, reset_errstate, set_errstate
from .primitives.shape import tuple_argument
from .observers import report_value_read
from .random import resolve_generator
from .tensor import DEFAULT_FLOAT, Tensor


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """A new tensor holding a copy of ``data``, with PyTorch's ``torch.tensor`` dtypes: an array,
    a NumPy number or a tensor keeps its dtype; Python floats become float32 (``Tensor(...)``
    makes any float data float32, as ``torch.Tensor(...)`` does)."""
    if dtype is None and isinstance(data, (Tensor, np.ndarray, np.generic)):
        dtype = data.dtype
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def as_tensor(data, dtype=None) -> Tensor:
    """Wrap an array without copying and without changing its dtype (batches, loaded weights).

    Unlike ``tensor()``, float64 stays float64 and the tensor shares memory with ``data``
    when ``data`` already is an ndarray of the requested dtype. A tensor comes back as it is,
    or cast (in the graph) to ``dtype``, as in PyTorch: its gradient is kept.
    """
    if isinstance(data, Tensor):
        return data if dtype is None else data.to(dtype)
    arr = np.asarray(data, dtype=dtype)
    if dtype is None and not isinstance(data, (np.ndarray, np.generic)) and arr.dtype.kind == "f":
        arr = arr.astype(DEFAULT_FLOAT)  # Python floats: PyTorch's float32 (an array keeps its dtype)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"as_tensor: unsupported data type {arr.dtype} (expected float, int or bool data)")
    return Tensor._wrap(arr)


# ---- checking what a factory is asked for ---------------------------------------------------------
def _checked_dtype(factory: str, dtype, kinds: str = "fiub") -> np.dtype:
    """``dtype`` as a NumPy dtype of one of ``kinds`` (float, int, uint, bool); None is float32,
    PyTorch's default (``np.dtype(None)`` would be float64)."""
    if dtype is None:
        return np.dtype(DEFAULT_FLOAT)
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{factory}: expected a dtype (tt.float32, 'int64'), got {dtype!r}") from None
    if dtype.kind not in kinds:
        wanted = "a floating-point dtype" if kinds == "f" else "a float, int or bool dtype"
        raise TypeError(f"{factory}: expected {wanted}, got {dtype}")
    return dtype


def _checked_shape(factory: str, args: tuple) -> tuple:
    """``f(2, 3)``, ``f((2, 3))`` and ``f([2, 3])`` as the tuple ``(2, 3)``, every dimension a
    non-negative int (NumPy's own refusals name neither the factory nor the shape)."""
    shape = tuple_argument(args)
    if len(shape) == 1 and isinstance(shape[0], Tensor) and shape[0].ndim == 1:
        shape = tuple(shape[0].tolist())  # zeros(x.shape_tensor), a 1-D tensor of sizes
    for dim in shape:
        integer_tensor = isinstance(dim, Tensor) and dim.data.dtype.kind in "iu" and dim.data.size == 1
        if isinstance(dim, (bool, np.bool_)) or not (isinstance(dim, (int, np.integer)) or integer_tensor):
            raise TypeError(f"{factory}: a shape dimension must be an int, got {dim!r} "
                            f"({type(dim).__name__}) in shape {shape!r}")
        if operator.index(dim) < 0:
            raise ValueError(f"{factory}: a shape dimension must be non-negative, got {dim} in shape {shape!r}")
    return tuple(operator.index(dim) for dim in shape)  # a one-element integer tensor as its int


def _shape_or_size(factory: str, shape: tuple, size) -> tuple:
    """The shape given positionally (``zeros(2, 3)``) or as PyTorch's ``size=`` keyword, not both."""
    if size is None:
        return shape
    if shape:
        raise TypeError(f"{factory}: give the shape once, positionally or as size=, not both")
    return (size,)


def _size_text(nbytes: int) -> str:
    """``4000000000000`` as ``3.64 TiB``: how NumPy writes sizes, so the numbers compare."""
    size, unit = float(nbytes), "bytes"
    for bigger in ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if size < 1024:
            break
        size, unit = size / 1024, bigger
    return f"{size:.3g} {unit}"


def _allocate(call: str, shape: tuple, dtype, make) -> np.ndarray:
    """``make()``, the new array of ``shape`` and ``dtype``; running out of memory is reported as
    a MemoryError that names ``call``, the shape, the dtype and the bytes it needed."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > sys.maxsize:  # NumPy's "array is too big": no allocation is even tried
        raise MemoryError(f"{call}: a tensor of shape {shape} and dtype {dtype} would need "
                          f"{_size_text(nbytes)}, more than any array can hold")
    errstate = set_errstate(IGNORE_FLOATING_POINT_ERRORS)  # full((2,), 1e10, dtype=float16) is inf, silently
    try:
        return make()
    except MemoryError:
        raise MemoryError(f"{call}: not enough memory for a tensor of shape {shape} and dtype {dtype} "
                          f"({_size_text(nbytes)})") from None
    finally:
        reset_errstate(errstate)


def _checked_fill_value(value):
    """``full``'s value as a number: text, None or complex would be NumPy's to convert or refuse."""
    if isinstance(value, (Tensor, np.ndarray)) and value.ndim == 0 and value.dtype.kind in "biuf":
        value = value.item()  # a 0-d tensor fills as its number, as in PyTorch
    if not isinstance(value, (numbers.Real, np.bool_)):
        raise TypeError(f"full: the fill value must be a number (bool, int or float), "
                        f"got {type(value).__name__} {value!r}")
    return value


# ---- the factories ------------------------------------------------------------------------------
def zeros(*shape, size=None, dtype=DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    shape, dtype = _checked_shape("zeros", _shape_or_size("zeros", shape, size)), _checked_dtype("zeros", dtype)
    data = _allocate("zeros", shape, dtype, lambda: np.zeros(shape, dtype))
    return Tensor._wrap(data).requires_grad_(requires_grad)


def ones(*shape, size=None, dtype=DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    shape, dtype = _checked_shape("ones", _shape_or_size("ones", shape, size)), _checked_dtype("ones", dtype)
    data = _allocate("ones", shape, dtype, lambda: np.ones(shape, dtype))
    return Tensor._wrap(data).requires_grad_(requires_grad)


def full(size, fill_value, dtype=None, requires_grad: bool = False) -> Tensor:
    """``size`` (a shape) filled with ``fill_value``; without ``dtype``, PyTorch's choice from the
    value: bool for a bool, int64 for an int, float32 for a float."""
    shape, value = _checked_shape("full", (size,)), fill_value
    value = _checked_fill_value(value)
    if dtype is None:
        dtype = np.bool_ if isinstance(value, (bool, np.bool_)) else (
            np.int64 if isinstance(value, (int, np.integer)) else DEFAULT_FLOAT)
    dtype = _checked_dtype("full", dtype)
    if dtype.kind in "iu" and not math.isfinite(value):  # NumPy would fill with its minimum
        raise ValueError(f"full: the fill value {value!r} cannot be held by a tensor of dtype {dtype}")
    check_fill_fits("full", value, dtype)
    data = _allocate("full", shape, dtype, lambda: np.full(shape, value, dtype))
    return Tensor._wrap(data).requires_grad_(requires_grad)


def empty(*shape, size=None, dtype=DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    """PyTorch's ``empty``, filled with zeros: NumPy's ``empty`` would hand out whatever the memory
    held before (a previous tensor's values, NaN), a source of results that change run to run."""
    return zeros(*shape, size=size, dtype=dtype, requires_grad=requires_grad)


def allclose(a, b, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    """Whether ``a`` and ``b`` (tensors, arrays or numbers) are equal within ``atol + rtol * |b|``."""
    values = [getattr(v, "data", v) for v in (a, b)]
    for v in (a, b):
        if isinstance(v, Tensor):
            report_value_read(v)
    return bool(np.allclose(*values, rtol=rtol, atol=atol, equal_nan=equal_nan))


def eye(n: int, m: int | None = None, dtype=DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    """The ``n`` x ``m`` identity (``m = n`` by default)."""
    shape, dtype = _checked_shape("eye", (n, n if m is None else m)), _checked_dtype("eye", dtype)
    data = _allocate("eye", shape, dtype, lambda: np.eye(*shape, dtype=dtype))
    return Tensor._wrap(data).requires_grad_(requires_grad)


def linspace(start, end, steps: int, dtype=DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end``, both included (PyTorch's order)."""
    (steps,) = _checked_shape("linspace", (steps,))
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise TypeError(f"linspace: {name} must be a finite number, got {value!r}")
    dtype = _checked_dtype("linspace", dtype, "f")
    data = _allocate("linspace", (steps,), dtype, lambda: np.linspace(start, end, steps, dtype=dtype))
    return Tensor._wrap(data).requires_grad_(requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing ``array``'s memory and dtype (PyTorch's ``from_numpy``): a write into either
    shows in the other."""
    if not isinstance(array, np.ndarray) or isinstance(array, (np.matrix, np.ma.MaskedArray)):
        # np.matrix makes * a matrix product; a masked array's mask would be ignored
        raise TypeError(f"from_numpy: expected a NumPy array, got {type(array).__name__}")
    array = np.asarray(array)  # a subclass such as np.memmap as a plain array on the same memory
    if array.dtype.kind not in "fiub" or not array.dtype.isnative:
        raise TypeError(f"from_numpy: unsupported dtype {array.dtype} (expected float, int or bool data in this "
                        "machine's byte order)")
    return Tensor._wrap(array)


def zeros_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return zeros(t.shape, dtype=t.dtype if dtype is None else dtype, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return ones(t.shape, dtype=t.dtype if dtype is None else dtype, requires_grad=requires_grad)


empty_like = zeros_like  # filled with zeros, as ``empty``


def full_like(t: Tensor, value, dtype=None, requires_grad: bool = False) -> Tensor:
    return full(t.shape, value, dtype=t.dtype if dtype is None else dtype, requires_grad=requires_grad)


def rand_like(t: Tensor, generator=None, dtype=None, requires_grad: bool = False) -> Tensor:
    return rand(t.shape, generator=generator, dtype=t.dtype if dtype is None else dtype, requires_grad=requires_grad)


def randn_like(t: Tensor, generator=None, dtype=None, requires_grad: bool = False) -> Tensor:
    return randn(t.shape, generator=generator, dtype=t.dtype if dtype is None else dtype, requires_grad=requires_grad)


def randint(low: int, high: int | None = None, size=(), generator=None, dtype=np.int64) -> Tensor:
    """Integers drawn uniformly from ``[low, high)``; ``randint(high, size)`` draws from ``[0, high)``
    (PyTorch's two forms)."""
    if high is None or (size == () and isinstance(high, (tuple, list))):  # randint(high, size)
        low, high, size = 0, low, (high if high is not None else size)
    for name, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"randint: {name} must be an int, got {value!r}")
    if not low < high:
        raise ValueError(f"randint: expected low < high, got low={low}, high={high}")
    shape, dtype = _checked_shape("randint", (size,)), _checked_dtype("randint", dtype, "iu")
    rng = resolve_generator(generator)
    data = _allocate("randint", shape, dtype, lambda: rng.integers(low, high, size=shape, dtype=dtype))
    return Tensor._wrap(data)


def _arange_length(args: tuple) -> int | None:
    """How many values ``np.arange(*args)`` makes, or None where NumPy is left to refuse the
    arguments (no stop, a step of 0, NaN, infinity, not numbers)."""
    if not 1 <= len(args) <= 3 or not all(isinstance(a, numbers.Real) for a in args):
        return None
    start, stop, step = (0, args[0], 1) if len(args) == 1 else (*args, 1)[:3]
    try:
        return max(0, math.ceil((stop - start) / step))
    except (ZeroDivisionError, OverflowError, ValueError):
        return None


def arange(*args, start=None, end=None, step=None, dtype=None, requires_grad: bool = False) -> Tensor:
    """NumPy's ``arange``; without ``dtype``, float steps give float32 (PyTorch's default) and
    int steps int64. PyTorch's keywords work too: ``arange(end=5)``, ``arange(0, 3, step=0.5)``."""
    if start is not None or end is not None or step is not None:
        # one positional argument is the end, unless start= or end= is given: then it is the start (PyTorch's)
        one_is_end = len(args) == 1 and start is None and end is None
        given = dict(zip(("end",) if one_is_end else ("start", "end", "step"), args))
        for name, value in (("start", start), ("end", end), ("step", step)):
            if value is not None:
                if name in given:
                    raise TypeError(f"arange: {name} is given twice, positionally and as {name}=")
                given[name] = value
        if "end" not in given:
            raise TypeError("arange: end is missing (arange(end), arange(start, end[, step]))")
        args = (given.get("start", 0), given["end"], given.get("step", 1))
    return _arange(args, dtype).requires_grad_(requires_grad)


def _arange(args: tuple, dtype) -> Tensor:
    length = _arange_length(args)
    call = f"arange({', '.join(map(repr, args))})"
    if dtype is not None:
        dtype = _checked_dtype("arange", dtype, "fiu")
        if dtype.kind in "iu" and not all(isinstance(a, numbers.Integral) or float(a).is_integer() for a in args
                                          if isinstance(a, numbers.Real)):
            raise ValueError(f"{call}: start, stop and step must be whole numbers for dtype {dtype} "
                             "(NumPy would count in that dtype, and a step of 0.5 would stand still)")
    if length is None:  # no stop, a step of 0, NaN, infinity, not numbers: NumPy's reason, with the call
        try:
            values = np.arange(*args, dtype=dtype)
        except (TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:
            kind = TypeError if isinstance(exc, TypeError) else ValueError
            raise kind(f"{call}: {exc or type(exc).__name__} (arange takes finite numbers start, stop and a "
                       "nonzero step)") from None
    else:
        floats = any(isinstance(a, (float, np.floating)) for a in args)
        result_dtype = dtype if dtype is not None else (DEFAULT_FLOAT if floats else np.int64)
        values = _allocate(call, (length,), result_dtype, lambda: np.arange(*args, dtype=dtype))
    if dtype is None:
        values = values.astype(DEFAULT_FLOAT if values.dtype.kind == "f" else np.int64, copy=False)
    return Tensor._wrap(values)


def randn(*shape, size=None, generator=None, dtype=DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    shape = _checked_shape("randn", _shape_or_size("randn", shape, size))
    dtype = _checked_dtype("randn", dtype, "f")  # samples are floats
    rng = resolve_generator(generator)
    data = _allocate("randn", shape, dtype, lambda: rng.standard_normal(shape).astype(dtype))
    return Tensor._wrap(data).requires_grad_(requires_grad)


def rand(*shape, size=None, generator=None, dtype=DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    shape = _checked_shape("rand", _shape_or_size("rand", shape, size))
    dtype = _checked_dtype("rand", dtype, "f")  # samples are floats
    rng = resolve_generator(generator)
    data = _allocate("rand", shape, dtype, lambda: rng.random(shape).astype(dtype))
    return Tensor._wrap(data).requires_grad_(requires_grad)
