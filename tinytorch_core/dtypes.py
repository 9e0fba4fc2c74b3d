"""The dtype rule of elementwise ops: numbers and 0-d tensors do not widen a tensor.

NumPy 2 promotes ``float32_array / np.float64(2.0)`` to float64, and the next float32 layer then
refuses its input. TinyTorch follows PyTorch's rule instead. Every operand is one of three
kinds, from the weakest to the strongest:

1. a number: a Python ``bool``/``int``/``float`` or a NumPy scalar such as ``np.sqrt(4.0)``;
2. a 0-d tensor (or 0-d array);
3. a tensor (or array) with at least one axis.

and has a category: bool < integer < floating point. The result's category is the highest
category among the operands. Its width comes from the strongest kind of operand that holds that
category:

- tensors with axes of that category: NumPy's promotion among them (float32 with a float64
  matrix gives float64: a dimensioned float64 operand may still widen the result);
- else 0-d tensors of that category: NumPy's promotion among them;
- else only a number has it: the default dtype of the category (float32, int64, bool).

So ``float32 * np.float64(2)``, ``float32 + tensor(1.0, dtype=float64)`` and
``float32 / np.int64(3)`` stay float32, and ``int_tensor * 0.5`` is float32. Operands whose
dtype differs from the result are cast (a tensor by the differentiable ``Tensor.to``), numbers
stay numbers.
"""

from __future__ import annotations

import numpy as np


from .tensor import DEFAULT_FLOAT, Tensor

DEFAULT_INT = np.dtype(np.int64)

_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}
_NUMBER_KIND, _ZERO_DIM_KIND, _DIMENSIONED_KIND = 0, 1, 2
_DEFAULT_OF_CATEGORY = {0: np.dtype(np.bool_), 1: DEFAULT_INT, 2: np.dtype(DEFAULT_FLOAT)}


def as_python_number(value):
    """A NumPy scalar (``np.float64(2.0)``, ``np.int64(3)``) as the Python number it holds: Python
    numbers are "weak" in NumPy's promotion, so they never widen an array they meet."""
    return value.item() if isinstance(value, np.generic) else value


def _describe(value):
    """``(kind, dtype)`` of an operand, or None for something the rule does not know."""
    array = value.data if isinstance(value, Tensor) else value
    if isinstance(array, np.ndarray):
        return (_DIMENSIONED_KIND if array.ndim else _ZERO_DIM_KIND), array.dtype
    if isinstance(value, bool):
        return _NUMBER_KIND, np.dtype(np.bool_)
    if isinstance(value, int):
        return _NUMBER_KIND, DEFAULT_INT
    if isinstance(value, float):
        return _NUMBER_KIND, np.dtype(DEFAULT_FLOAT)
    return None


def result_dtype(*operands, floating: bool = False, op: str = "an elementwise op") -> np.dtype | None:
    """The dtype of an elementwise op of ``operands`` under the rule above (None when an operand
    is not a number, tensor or array, or holds no bool/int/float data). ``floating``: the op's
    result is floating-point whatever its operands (true division: ``int / int`` is float32).
    Integers with no common integer dtype (uint64 and a signed one) are refused naming ``op``."""
    described = []
    for value in operands:
        kind_and_dtype = _describe(as_python_number(value))
        if kind_and_dtype is None or kind_and_dtype[1].kind not in _CATEGORY:
            return None
        described.append(kind_and_dtype)
    category = max(_CATEGORY[dtype.kind] for _, dtype in described)
    for kind in (_DIMENSIONED_KIND, _ZERO_DIM_KIND):
        holders = [dtype for k, dtype in described if k == kind and _CATEGORY[dtype.kind] == category]
        if holders:
            dtype = np.result_type(*holders)
            if category == 1 and dtype.kind == "f":  # NumPy's float64 would round integers above 2**53
                raise TypeError(f"{op}: {' and '.join(sorted({str(h) for h in holders}))} have no common integer "
                                "dtype (NumPy would give float64 and lose precision); cast one with .to(np.int64)")
            return _DEFAULT_OF_CATEGORY[2] if floating and dtype.kind != "f" else dtype
    return _DEFAULT_OF_CATEGORY[2 if floating else category]


_PYTHON_NUMBERS = (int, float)


def _already_common(a, b) -> bool:
    """The usual case, with nothing to promote: two float tensors of one dtype, or a float tensor
    and a Python number."""
    if type(a) is Tensor:
        dtype = a.data.dtype
        if dtype.kind != "f":
            return False
        return (type(b) is Tensor and b.data.dtype == dtype) or type(b) in _PYTHON_NUMBERS
    return type(b) is Tensor and type(a) in _PYTHON_NUMBERS and b.data.dtype.kind == "f"


def promote(*operands, floating: bool = False, op: str = "an elementwise op") -> tuple:
    """``operands`` of an elementwise op, each array or tensor cast to ``result_dtype`` (numbers
    become Python numbers and stay as they are)."""
    if len(operands) == 2 and _already_common(*operands):
        return operands
    target = result_dtype(*operands, floating=floating, op=op)
    promoted = []
    for value in operands:
        value = list(value) if type(value) is tuple else as_python_number(value)  # numbers in a tuple: a list
        if target is not None:
            if isinstance(value, Tensor):
                if value.data.dtype != target:
                    value = value.to(target)
            elif isinstance(value, np.ndarray) and value.dtype != target:
                value = value.astype(target)
        promoted.append(value)
    return tuple(promoted)


# ---- PyTorch's dtype names: tt.float32, tt.long, ... (NumPy dtypes; tensors hold NumPy arrays) ----
float16 = half = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = double = np.dtype(np.float64)
int8, int16, int32, int64, uint8 = (np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64, np.uint8))
long = int64
bool_ = np.dtype(np.bool_)
