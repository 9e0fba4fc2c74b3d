"""The functions Tensor's operators and ``tt.add``, ``tt.where`` ... call: they check and promote
their operands, then apply the primitive of ``arithmetic.py``.

Elementwise ops with two or more value operands first bring them to one dtype (see dtypes.py:
a number or a 0-d tensor never widens a tensor).
"""

from __future__ import annotations

import numpy as np

from .. import function  # its Tensor, looked up at call time (core's one import cycle)
from ..checks import dtype_of, shape_of
from ..dtypes import DEFAULT_FLOAT, promote
from .arithmetic import (Abs, Add, Clip, Compare, Div, Exp, FloorDivide, Log, MatMul, Maximum, Minimum, Mul, Pow,
                         Remainder, Sqrt, Sub, Where)


def add(a, b):
    return Add.apply(*promote(a, b, op="core::add"))


def sub(a, b):
    if _is_bool(a) or _is_bool(b):  # PyTorch's rule (1 - mask meant ~mask); NumPy's error names no op
        raise TypeError("core::sub: subtraction with a bool tensor is not supported; invert a mask with ~, "
                        "compare (x != y), or cast to int first")
    return Sub.apply(*promote(a, b, op="core::sub"))


def _dtype(value) -> np.dtype:
    """The dtype of an operand, without reading its values (a compiled step's recorder is told of
    value reads, ``checks.array_of``; a dtype is not one): a number's as NumPy sees it."""
    dtype = dtype_of(value)
    return dtype if dtype is not None else np.asarray(value).dtype


def _is_array(value) -> bool:
    """A Tensor or a NumPy array (not a list of numbers, which takes the other operand's dtype)."""
    return isinstance(value, (function.Tensor, np.ndarray))


def _is_bool(value) -> bool:
    return isinstance(value, (bool, np.bool_)) or _dtype(value) == np.bool_


def mul(a, b):
    return Mul.apply(*promote(a, b, op="core::mul"))


def div(a, b):
    return Div.apply(*promote(a, b, floating=True, op="core::div"))  # true division: int / int is float32


def pow(a, b):  # noqa: A001 - mirrors the NumPy name on purpose
    return Pow.apply(*promote(a, b, op="core::pow"))


def compare(a, b, function):
    """``function(a, b)`` for a comparison ufunc (``np.less``...), in the operands' promoted dtype
    as PyTorch compares (a float32 0.1 equals a float64 0-d 0.1; an int64 16777217 equals the
    float 16777216.0 in float32). A Python int is compared exactly, as NumPy does (uint8 < -1)."""
    if isinstance(b, int) and not isinstance(b, bool):
        return Compare.apply(a, b, function)
    if _dtype(a).kind in "iu" and _dtype(b).kind in "iu":  # integers compare exactly (uint64 and int64 too)
        return Compare.apply(a, b, function)
    return Compare.apply(*promote(a, b, op=f"core::{function.__name__}"), function)


def matmul(a, b):
    sa, sb = shape_of(a), shape_of(b)
    if len(sa) == 0 or len(sb) == 0:
        raise ValueError(f"matmul: both operands need at least 1 dimension, got shapes {sa} and {sb}")
    if _is_array(a) and _is_array(b) and _dtype(a) != _dtype(b):  # PyTorch's rule
        raise TypeError(f"matmul: both tensors must have the same dtype, got {_dtype(a)} and {_dtype(b)} "
                        "(cast one with .to(dtype))")
    inner_b = sb[0] if len(sb) == 1 else sb[-2]
    if sa[-1] != inner_b:
        raise ValueError(
            f"matmul: shapes {sa} and {sb} are not aligned: the last axis of the first ({sa[-1]}) "
            f"must equal the {'only' if len(sb) == 1 else 'second-to-last'} axis of the second ({inner_b})"
        )
    return MatMul.apply(a, b)


def clip(a, low=None, high=None):
    if low is None and high is None:
        raise ValueError("clip: give at least one of min and max")
    bounds = [bound for bound in (low, high) if bound is not None]
    promoted = iter(promote(a, *bounds, op="core::clip"))  # the bounds take part in the dtype like any operand
    a = next(promoted)
    low, high = (None if bound is None else next(promoted) for bound in (low, high))
    return Clip.apply(a, low, high)


def where(condition, a, b):
    if _dtype(condition) != np.bool_:
        raise TypeError(f"where: the condition must be a bool tensor, got {_dtype(condition)}")
    a, b = promote(a, b, op="where")
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):  # two numbers: PyTorch's float32 (not float64)
        a = np.asarray(a, DEFAULT_FLOAT if isinstance(a, float) or isinstance(b, float) else None)
    # the condition as given: a tensor's version counter tells backward that it was changed in place
    return Where.apply(condition, a, b)


_BITWISE = {np.bitwise_and: ("&", "biu"), np.bitwise_or: ("|", "biu"), np.bitwise_xor: ("^", "biu"),
            np.left_shift: ("<<", "iu"), np.right_shift: (">>", "iu")}


def bitwise(a, b, function):
    """``a & b``, ``a | b``, ``a ^ b`` (logical for bools, bit by bit for integers) or ``a << b``,
    ``a >> b`` (integers); refused for floats (PyTorch's rule; NumPy's error names no op)."""
    symbol, kinds = _BITWISE[function]
    for operand in (a, b):
        if _dtype(operand).kind not in kinds:
            wanted = "bool or integer" if "b" in kinds else "integer"
            raise TypeError(f"{symbol} needs {wanted} operands, got {_dtype(operand)}")
    return Compare.apply(*promote(a, b, op=symbol), function)


def exp(x):
    return Exp.apply(x)


def log(x):
    return Log.apply(x)


def sqrt(x):
    return Sqrt.apply(x)


def abs(x):  # noqa: A001 - mirrors the NumPy name on purpose
    return Abs.apply(x)


def floor_divide(a, b):
    return FloorDivide.apply(*promote(a, b, op="core::floor_divide"))


def remainder(a, b):
    return Remainder.apply(*promote(a, b, op="core::remainder"))


def maximum(a, b):
    return Maximum.apply(*promote(a, b, op="core::maximum"))


def minimum(a, b):
    return Minimum.apply(*promote(a, b, op="core::minimum"))
