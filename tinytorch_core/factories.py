"""Tensor constructors."""

from __future__ import annotations

import numpy as np

from .primitives.shape import tuple_argument
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
    when ``data`` already is an ndarray of the requested dtype.
    """
    if isinstance(data, Tensor):
        data = data.data
    arr = np.asarray(data, dtype=dtype)
    if dtype is None and not isinstance(data, (np.ndarray, np.generic)) and arr.dtype.kind == "f":
        arr = arr.astype(DEFAULT_FLOAT)  # Python floats: PyTorch's float32 (an array keeps its dtype)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"as_tensor: unsupported data type {arr.dtype} (expected float, int or bool data)")
    return Tensor._wrap(arr)


def zeros(*shape, dtype=DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    return Tensor._wrap(np.zeros(tuple_argument(shape), dtype)).requires_grad_(requires_grad)


def ones(*shape, dtype=DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    return Tensor._wrap(np.ones(tuple_argument(shape), dtype)).requires_grad_(requires_grad)


def full(shape, value, dtype=None, requires_grad: bool = False) -> Tensor:
    """``shape`` filled with ``value``; without ``dtype``, PyTorch's choice from the value: bool
    for a bool, int64 for an int, float32 for a float."""
    if dtype is None:
        dtype = np.bool_ if isinstance(value, (bool, np.bool_)) else (
            np.int64 if isinstance(value, (int, np.integer)) else DEFAULT_FLOAT)
    return Tensor._wrap(np.full(shape, value, dtype)).requires_grad_(requires_grad)


def zeros_like(t: Tensor, requires_grad: bool = False) -> Tensor:
    return zeros(t.shape, dtype=t.dtype, requires_grad=requires_grad)


def ones_like(t: Tensor, requires_grad: bool = False) -> Tensor:
    return ones(t.shape, dtype=t.dtype, requires_grad=requires_grad)


def arange(*args, dtype=None) -> Tensor:
    """NumPy's ``arange``; without ``dtype``, float steps give float32 (PyTorch's default) and
    int steps int64."""
    values = np.arange(*args, dtype=dtype)
    if dtype is None:
        values = values.astype(DEFAULT_FLOAT if values.dtype.kind == "f" else np.int64, copy=False)
    return Tensor._wrap(values)


def randn(*shape, generator=None, dtype=DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    data = resolve_generator(generator).standard_normal(tuple_argument(shape)).astype(dtype)
    return Tensor._wrap(data).requires_grad_(requires_grad)


def rand(*shape, generator=None, dtype=DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    data = resolve_generator(generator).random(tuple_argument(shape)).astype(dtype)
    return Tensor._wrap(data).requires_grad_(requires_grad)
