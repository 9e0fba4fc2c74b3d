"""Argument checks shared by core and every stage: one meaning per name.

An op or layer that gets bad input raises a clear error that says what was expected, what
came, and where (``where`` is the op or layer name the message starts with). Stages import
these instead of writing their own copies.

A Tensor is recognised by its ``.data`` ndarray (duck typing), so that this module needs nothing
from ``tensor.py``, which itself uses these checks.
"""

from __future__ import annotations

import numbers

import numpy as np

from .errstate import IGNORE_FLOATING_POINT_ERRORS, reset_errstate, set_errstate
from .grad_mode import _per_thread
from .observers import report_data_read


def array_of(value) -> np.ndarray:
    """The array behind ``value``: a Tensor's data, an ndarray itself, anything else converted."""
    if isinstance(value, np.ndarray):
        return value
    data = getattr(value, "data", None)
    if not isinstance(data, np.ndarray):
        return np.asarray(value)
    if _per_thread.modes.observer is not None:  # a compiled step's recorder must know what went in
        report_data_read(value)
    return data


def array_from_list(where: str, position: int, values: list) -> np.ndarray:
    """A list of numbers passed where an op takes an array, as the array ``np.asarray`` makes;
    a clear error for a list NumPy cannot make one numeric array of (ragged, or holding
    tensors: converting those would silently drop their gradients)."""
    try:
        array = np.asarray(values)
    except ValueError as exc:  # ragged nesting
        raise ValueError(f"{where}: argument {position} is a list that is not rectangular ({exc})") from None
    except RuntimeError:  # Tensor.__array__ refuses a tensor that requires grad
        raise TypeError(
            f"{where}: argument {position} is a list holding Tensor values that require grad, whose gradients an "
            "array would drop; pass one Tensor (tt.stack makes one tensor of a list of tensors)"
        ) from None
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"{where}: argument {position} is a list holding {type(values[0]).__name__ if values else 'nothing'} "
            "values, not numbers; pass a Tensor or an array (tt.stack makes one tensor of a list of tensors)"
        )
    return array


def owned_array(data, dtype, default_float) -> np.ndarray:
    """The array a new ``Tensor(data)`` owns: always a copy; float data in ``default_float``
    unless ``dtype`` says otherwise; NumPy's refusals (ragged lists, inf as an integer) named."""
    refuse_masked("Tensor", data)
    errstate = set_errstate(IGNORE_FLOATING_POINT_ERRORS)  # 1e40 as float32 is inf, as in PyTorch, without a warning
    try:
        if dtype is not None and not isinstance(data, np.ndarray):
            _refuse_what_a_cast_would_hide(data)
        array = np.array(data, dtype=dtype)
        if dtype is None and array.dtype.kind == "f" and array.dtype != default_float:
            array = array.astype(default_float)
        if not array.dtype.isnative:  # big-endian file data: stored in this machine's order, as PyTorch does
            array = array.astype(array.dtype.newbyteorder("="))
    except (IndexError, OverflowError, TypeError, ValueError) as exc:
        raise named_error("Tensor", exc, f"data of type {type(data).__name__}") from None
    finally:
        reset_errstate(errstate)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"Tensor: unsupported data type {array.dtype} (expected float, int or bool data)")
    if dtype is None and array.dtype == np.uint64 and not isinstance(data, (np.ndarray, np.generic)):
        raise OverflowError(f"Tensor: Python integers up to {array.max()} do not fit int64 (NumPy would make them "
                            "uint64); pass dtype=np.uint64 if that is meant")
    return array


def _refuse_what_a_cast_would_hide(data) -> None:
    """Data a cast to a number dtype would quietly turn into numbers: None (NaN), text ("1.5"
    parses) or complex values (the imaginary part dropped). PyTorch refuses them."""
    given = np.asarray(data)
    hidden = given.dtype.kind in "USc" or (given.dtype.kind == "O" and any(  # big ints and Fractions are numbers
        value is None or isinstance(value, (str, bytes, complex)) for value in given.flat))
    if hidden:
        raise TypeError(f"unsupported data type {given.dtype} (expected float, int or bool data)")  # named by the caller


def broadcasts_to(shape: tuple, target: tuple) -> bool:
    """Whether an array of ``shape`` broadcasts to ``target`` (``copy_``, ``expand``)."""
    try:
        return np.broadcast_shapes(shape, target) == tuple(target)
    except ValueError:
        return False


def named_error(where: str, exc: Exception, context: str) -> Exception:
    """``exc`` (NumPy's, which names no op) as the same kind of error, saying where and on what."""
    for kind in (IndexError, OverflowError, TypeError, ValueError):
        if isinstance(exc, kind):
            return kind(f"{where}: {exc} ({context})")
    return exc


def refuse_masked(where: str, value) -> None:
    """A masked array cannot be an op's input or a tensor's data: nothing would honour its mask
    (``np.asarray`` drops it without a word)."""
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(f"{where}: a masked array's mask would be ignored; fill it first (np.ma.filled) "
                        "or pass the data and a mask of your own")


def shape_of(value) -> tuple:
    """The shape of a Tensor, an array, or a (nested) sequence of numbers."""
    if isinstance(value, np.ndarray):
        return value.shape
    data = getattr(value, "data", None)
    if isinstance(data, np.ndarray):
        return data.shape
    try:
        return np.shape(value)
    except RuntimeError:  # a list holding tensors that require grad (Tensor.__array__ refuses them; so will the op)
        return np.shape(_arrays_for_tensors(value))


def _arrays_for_tensors(value):
    """A nested list with each Tensor in it replaced by its array (to read its shape)."""
    if isinstance(value, (list, tuple)):
        return [_arrays_for_tensors(item) for item in value]
    data = getattr(value, "data", None)
    return data if isinstance(data, np.ndarray) else value


def dtype_of(value):
    """The dtype of a Tensor or an array; None for anything else (a list, a number)."""
    if isinstance(value, (np.ndarray, np.generic)):
        return value.dtype
    data = getattr(value, "data", None)
    return data.dtype if isinstance(data, np.ndarray) else None


def positive_int(value, what: str, where: str) -> int:
    """``value`` as an int > 0 (bools are refused: ``True`` is not a size)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{where}: {what} must be a positive int, got {value!r}")
    return int(value)


def non_negative_int(value, what: str, where: str) -> int:
    """``value`` as an int >= 0 (bools are refused)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{where}: {what} must be a non-negative int, got {value!r}")
    return int(value)


def true_or_false(value, what: str, where: str) -> bool:
    """``value`` as a bool, refusing anything else: ``bias=0.5`` or a seed would read as True."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where}: {what} must be True or False, got {value!r}")
    return bool(value)


def target_dtype(value, where: str):
    """The dtype ``value`` names for ``.to(...)``, or None for ``"cpu"``: PyTorch code moves
    tensors to its device, and the CPU is the only one here."""
    device = value.split(":")[0] if isinstance(value, str) else None
    if device == "cpu":
        return None
    if device in ("cuda", "mps", "xpu", "meta") or value is None:  # np.dtype(None) would be float64
        raise ValueError(f"{where}: expected a dtype or the device 'cpu' (TinyTorch runs on NumPy), got {value!r}")
    try:
        return np.dtype(value)
    except TypeError:
        raise TypeError(f"{where}: expected a dtype (tt.float32, 'float64') or the device 'cpu', got {value!r}") from None


def normalize_axis(axis, ndim: int, where: str) -> int:
    """One axis as a non-negative index into ``ndim`` dimensions (``-1`` is the last)."""
    if not isinstance(axis, numbers.Integral) or isinstance(axis, bool):
        raise TypeError(f"{where}: axis must be an int, got {type(axis).__name__}")
    if not -max(ndim, 1) <= axis < max(ndim, 1):  # a 0-d input's axis 0 or -1: itself, as in PyTorch
        raise ValueError(f"{where}: axis {axis} is out of range for an input with {ndim} dimension(s)")
    return int(axis) % max(ndim, 1)


def normalize_axes(axis, ndim: int, where: str) -> tuple | None:
    """None (every axis) stays None; an int or a sequence of ints becomes a tuple of distinct
    non-negative axes."""
    if axis is None:
        return None
    if isinstance(axis, numbers.Integral) and not isinstance(axis, bool):
        axes = (axis,)
    elif isinstance(axis, (tuple, list)):
        axes = tuple(axis)
    else:  # a Tensor, an array, a float: never iterated or guessed at (a 0-d tensor iterates as no axes)
        raise TypeError(f"{where}: axis must be an int or a tuple of ints, got {type(axis).__name__}")
    normalized = tuple(normalize_axis(a, ndim, where) for a in axes)
    if ndim == 0:  # a 0-d input has no axis to reduce: axis 0 (or -1) means itself, as in PyTorch
        return ()
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"{where}: repeated axis in {axis}")
    return normalized


def axis_or_dim(axis, dim, where: str, names=("axis", "dim")):
    """``dim``, PyTorch's name for ``axis``, accepted as an alias (one of the two, not both);
    ``names`` for another such pair (``mask`` and ``attn_mask``)."""
    if dim is None:
        return axis
    if axis is not None:
        raise TypeError(f"{where}: pass {names[0]} or {names[1]} (its PyTorch name), not both")
    return dim


def keepdims_or_keepdim(keepdims, keepdim, where: str, names=("keepdims", "keepdim")) -> bool:
    """``keepdim``, PyTorch's name for ``keepdims``, accepted as an alias (one, not both);
    ``names`` for another such pair of flags (``causal`` and ``is_causal``)."""
    if keepdim is not None:
        if keepdims:
            raise TypeError(f"{where}: pass {names[0]} or {names[1]} (its PyTorch name), not both")
        keepdims = keepdim
    if not isinstance(keepdims, (bool, np.bool_)):  # "no" or a tensor would be read as True
        raise TypeError(f"{where}: {names[0]} must be True or False, got {keepdims!r}")
    return bool(keepdims)


def dtype_mismatch(layer, x, expected, what: str = "input") -> TypeError:
    """The error a layer raises when its input's dtype differs from its parameters' dtype
    (mixing float32 and float64 would otherwise upcast silently and slowly)."""
    name = f"{type(layer).__name__}({layer.extra_repr()})"
    got = getattr(x, "dtype", None)
    if got is None:
        return TypeError(f"{name}: expected the {what} as a Tensor of dtype {expected}, got a {type(x).__name__}")
    hint = f"cast the {what} to {expected} (x.to(np.{expected}))"
    if np.dtype(got).kind == "f":
        hint += f" or the model to {got} (model.to(np.{got}))"
    return TypeError(f"{name}: {what} dtype {got} does not match the layer's parameters ({expected}); {hint}")


def computed_in_float32(array: np.ndarray) -> np.ndarray:
    """``array`` itself, or as float32 when it holds float16: a kernel that sums many values
    works in float32 and stores its result in float16, as PyTorch does on the CPU (a float16
    sum of 70,000 ones overflows to inf; so did the variance of 1,000 values near 300)."""
    return array.astype(np.float32) if array.dtype.char == "e" else array


def accumulator_dtype(dtype) -> np.dtype:
    """The dtype a sum of ``dtype`` values runs in: float32 for float16 (see ``computed_in_float32``)."""
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if dtype.char == "e" else dtype


def require_one_float_dtype(op, x: np.ndarray, weight=None, bias=None, roles=("input", "weight", "bias")) -> None:
    """An input and the weights it meets (arrays, in a kernel's forward; None where absent) are
    floating-point of one dtype, as PyTorch requires of ``linear``, ``conv2d`` and ``layer_norm``:
    NumPy would widen a float32 input and a float64 weight to float64 without a word. ``op`` is
    the op's node or its name; ``roles`` name the three operands in its errors."""
    dtype = x.dtype
    if (weight is None or weight.dtype is dtype) and (bias is None or bias.dtype is dtype) and dtype.kind == "f":
        return  # the usual case: one float dtype (builtin dtypes are singletons)
    name = op if isinstance(op, str) else op.display_name()
    operands = {role: array for role, array in zip(roles, (x, weight, bias)) if array is not None}
    for role, array in operands.items():
        if array.dtype.kind != "f":
            raise TypeError(f"{name}: expected a floating-point {role}, got {array.dtype} data; cast it first, "
                            "e.g. x.to(np.float32)")
    if len({array.dtype.newbyteorder("=") for array in operands.values()}) > 1:  # byte order is storage, not type
        listed = ", ".join(f"{role} {array.dtype}" for role, array in operands.items())
        raise TypeError(f"{name}: the operands must share one dtype, got {listed}; cast one of them "
                        "(x.to(np.float32), or the model with model.to(...))")


def require_floating(op, *arrays) -> None:
    """Raise ``not_floating`` for the first of ``arrays`` that holds no floating-point data."""
    for array in arrays:
        if array.dtype.kind != "f":
            raise not_floating(op, array)


def not_floating(op, array) -> TypeError:
    """The error of a floating-point op (exp, sigmoid, softmax, a loss) given integer or bool data.

    One rule for every such op: it refuses the input instead of answering in float64 (NumPy's
    choice) or failing somewhere inside its kernel. ``op`` is the op's node or its name.
    """
    name = op if isinstance(op, str) else op.display_name()
    return TypeError(
        f"{name}: expected a floating-point tensor, got {np.asarray(array).dtype} data; "
        "cast it first, e.g. x.to(np.float32)"
    )


def values_that_do_not_fit(array: np.ndarray, dtype) -> str:
    """Why ``array``'s values would change when stored in ``dtype`` ("" when they fit): integers
    outside its range would wrap around, finite floats beyond its largest would become inf.
    (Rounding float64 to float32 is a normal copy, as in PyTorch.)"""
    dtype = np.dtype(dtype)
    if array.size == 0 or array.dtype.kind not in "iuf" or np.can_cast(array.dtype, dtype):
        return ""
    if dtype.kind in "iu":
        info, low, high = np.iinfo(dtype), array.min(), array.max()
        if low < info.min or high > info.max:
            return f"values in [{low}, {high}], outside {dtype}'s [{info.min}, {info.max}]"
    elif dtype.kind == "f":
        finite = np.abs(array[np.isfinite(array)])
        if finite.size and finite.max() > np.finfo(dtype).max:
            return f"a value of magnitude {finite.max():.3g}, beyond {dtype}'s largest {np.finfo(dtype).max:.3g}"
    return ""


def check_fill_fits(op: str, value, dtype) -> None:
    """A finite fill ``value`` that ``dtype`` can hold: 1e10 would be inf in float16 and 300 would
    wrap around in int8, where PyTorch refuses both. Python ints are compared exactly, any size."""
    dtype = np.dtype(dtype)
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        fits = _int_fits(int(value), dtype)
    else:
        number = np.asarray(value)
        if number.dtype.kind not in "biuf" or not np.isfinite(number):
            return  # NaN and inf fill floats as they are; the callers refuse them for integers
        if dtype.kind in "iu":
            fits = np.iinfo(dtype).min <= number <= np.iinfo(dtype).max
        else:
            with np.errstate(over="ignore"):  # the cast's inf is the answer sought, not a warning
                fits = dtype.kind != "f" or bool(np.isfinite(number.astype(dtype)))
    if not fits:
        raise OverflowError(f"{op}: the value {value!r:.40} does not fit the dtype {dtype} "
                            "(it would wrap around or become inf)")


def _int_fits(value: int, dtype) -> bool:
    if dtype.kind in "iu":
        return np.iinfo(dtype).min <= value <= np.iinfo(dtype).max
    if dtype.kind != "f":
        return True  # a bool holds any number as True or False
    try:
        with np.errstate(over="ignore"):
            return bool(np.isfinite(np.asarray(float(value)).astype(dtype)))
    except OverflowError:  # beyond float64 itself
        return False
