"""Layers of stage ``nn``: ``Linear``, containers, dropout and the activation modules."""

from __future__ import annotations

import math
import numbers

import numpy as np

from tinytorch_core import Module, Parameter, Tensor, resolve_generator

from . import functional as F
from . import init

__all__ = [
    "GELU", "Identity", "LeakyReLU", "Linear", "LogSoftmax", "ReLU", "Sequential", "Sigmoid", "Softmax",
    "Tanh", "Dropout",
]


def dtype_mismatch(layer, x, expected, what: str = "input") -> TypeError:
    """The error a layer raises when its input's dtype differs from its parameters' dtype.

    Layers compare dtypes on every call (one comparison, cheap) and build this message only
    when they differ: mixing float32 and float64 would otherwise upcast silently and slowly.
    """
    name = f"{type(layer).__name__}({layer.extra_repr()})"
    got = getattr(x, "dtype", None)
    if got is None:
        return TypeError(f"{name}: expected the {what} as a Tensor of dtype {expected}, got a {type(x).__name__}")
    hint = f"cast the {what} to {expected} (x.to(np.{expected}))"
    if np.dtype(got).kind == "f":
        hint += f" or the model to {got} (model.to(np.{got}))"
    return TypeError(f"{name}: {what} dtype {got} does not match the layer's parameters ({expected}); {hint}")


def _dtype_of(x):
    """The dtype of a Tensor or array input (None for anything else), without property calls."""
    return x.data.dtype if isinstance(x, Tensor) else getattr(x, "dtype", None)


def _check_size(layer: str, name: str, value) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{layer}: {name} must be a non-negative int, got {value!r}")
    return int(value)


class Linear(Module):
    """``y = x @ weight.T + bias`` with weight (out_features, in_features) and bias (out_features,).

    Initialised as PyTorch does: weight from ``kaiming_uniform_(a=sqrt(5))`` and bias from
    U(-1/sqrt(in_features), 1/sqrt(in_features)), which makes both uniform in that same range.
    ``generator`` (a Generator or int seed) makes the initial values reproducible.
    """

    def __init__(self, in_features, out_features, bias=True, generator=None, dtype=np.float32):
        super().__init__()
        self.in_features = _check_size("Linear", "in_features", in_features)
        self.out_features = _check_size("Linear", "out_features", out_features)
        rng = resolve_generator(generator)
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dtype=dtype), dtype=dtype)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=rng)
        if bias:
            bound = 1.0 / math.sqrt(self.in_features) if self.in_features else 0.0
            self.bias = Parameter(np.empty(self.out_features, dtype=dtype), dtype=dtype)
            init.uniform_(self.bias, -bound, bound, generator=rng)
        else:
            self.bias = None

    def forward(self, x):
        weight = self.weight
        dtype = _dtype_of(x)
        if dtype is not weight.data.dtype and dtype != weight.data.dtype:
            raise dtype_mismatch(self, x, weight.dtype)
        return F.linear(x, weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Sequential(Module):
    """Modules applied in order; children are named ``0``, ``1``, ... (the state-dict keys)."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (list, tuple)):
            modules = tuple(modules[0])
        for module in modules:
            self.append(module)

    def append(self, module) -> "Sequential":
        if not isinstance(module, Module):
            raise TypeError(f"Sequential holds Modules, got {type(module).__name__}")
        self._modules[str(len(self._modules))] = module
        object.__setattr__(self, "_layers", tuple(self._modules.values()))
        return self

    def forward(self, x):
        for module in self._layers:
            x = module(x)
        return x

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(*self._layers[index])
        if not isinstance(index, numbers.Integral):
            raise TypeError(f"Sequential indices must be int or slice, got {type(index).__name__}")
        n = len(self._layers)
        if not -n <= index < n:
            raise IndexError(f"Sequential index {index} is out of range for {n} module(s)")
        return self._layers[index]

    def __len__(self) -> int:
        return len(self._layers)

    def __iter__(self):
        return iter(self._layers)

    _layers: tuple = ()


class Identity(Module):
    def forward(self, x):
        return x


class Dropout(Module):
    """Zero elements with probability ``p`` while training (scaling the rest by ``1/(1-p)``);
    the identity in eval mode. An int ``generator`` seeds this layer's own stream once, so
    successive calls draw different masks, reproducibly."""

    def __init__(self, p=0.5, generator=None):
        super().__init__()
        if not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)
        self.generator = None if generator is None else resolve_generator(generator)

    def forward(self, x):
        return F.dropout(x, self.p, self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ReLU(Module):
    def forward(self, x):
        return F.relu(x)


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class GELU(Module):
    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Softmax(Module):
    def __init__(self, axis=-1):
        super().__init__()
        self.axis = axis

    def forward(self, x):
        return F.softmax(x, self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class LogSoftmax(Module):
    def __init__(self, axis=-1):
        super().__init__()
        self.axis = axis

    def forward(self, x):
        return F.log_softmax(x, self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"
