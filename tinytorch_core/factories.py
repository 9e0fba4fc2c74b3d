"""Tensor constructors."""

from __future__ import annotations

import numpy as np

from .primitives.shape import tuple_argument
from .random import resolve_generator
from .tensor import DEFAULT_FLOAT, Tensor


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def as_tensor(data, dtype=None) -> Tensor:
    """Wrap an array without copying and without changing its dtype (batches, loaded weights).

    Unlike ``tensor()``, float64 stays float64 and the tensor shares memory with ``data``
    when ``data`` already is an ndarray of the requested dtype.
    """
    if isinstance(data, Tensor):
        data = data.data
    arr = np.asarray(data, dtype=dtype)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"as_tensor: unsupported data type {arr.dtype} (expected float, int or bool data)")
    return Tensor._wrap(arr)


def zeros(*shape, dtype=DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    return Tensor._wrap(np.zeros(tuple_argument(shape), dtype)).requires_grad_(requires_grad)


def ones(*shape, dtype=DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    return Tensor._wrap(np.ones(tuple_argument(shape), dtype)).requires_grad_(requires_grad)


def full(shape, value, dtype=DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    return Tensor._wrap(np.full(shape, value, dtype)).requires_grad_(requires_grad)


def zeros_like(t: Tensor, requires_grad: bool = False) -> Tensor:
    return zeros(t.shape, dtype=t.dtype, requires_grad=requires_grad)


def ones_like(t: Tensor, requires_grad: bool = False) -> Tensor:
    return ones(t.shape, dtype=t.dtype, requires_grad=requires_grad)


def arange(*args, dtype=None) -> Tensor:
    return Tensor._wrap(np.arange(*args, dtype=dtype))


def randn(*shape, generator=None, dtype=DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    data = resolve_generator(generator).standard_normal(tuple_argument(shape)).astype(dtype)
    return Tensor._wrap(data).requires_grad_(requires_grad)


def rand(*shape, generator=None, dtype=DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    data = resolve_generator(generator).random(tuple_argument(shape)).astype(dtype)
    return Tensor._wrap(data).requires_grad_(requires_grad)
