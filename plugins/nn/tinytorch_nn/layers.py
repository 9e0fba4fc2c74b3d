"""Layers of stage ``nn``: ``Linear``, containers, dropout and the activation modules."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import numpy as np

from tinytorch_core import Module, Parameter, resolve_generator
from tinytorch_core.module import MODULE_CLOCK
from tinytorch_core.checks import axis_or_dim, dtype_mismatch, dtype_of, non_negative_int, true_or_false

from . import functional as F
from . import init

__all__ = [
    "GELU", "Identity", "LeakyReLU", "Linear", "LogSoftmax", "ReLU", "Sequential", "Sigmoid", "Softmax",
    "Tanh", "Dropout",
]


class Linear(Module):
    """``y = x @ weight.T + bias`` with weight (out_features, in_features) and bias (out_features,).

    Initialised as PyTorch does: weight from ``kaiming_uniform_(a=sqrt(5))`` and bias from
    U(-1/sqrt(in_features), 1/sqrt(in_features)), which makes both uniform in that same range.
    ``generator`` (a Generator or int seed) makes the initial values reproducible.
    """

    def __init__(self, in_features, out_features, bias=True, *, generator=None, dtype=np.float32):
        super().__init__()
        self.in_features = non_negative_int(in_features, "in_features", "Linear")
        self.out_features = non_negative_int(out_features, "out_features", "Linear")
        rng = resolve_generator(generator)
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dtype=dtype), dtype=dtype)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=rng)
        if true_or_false(bias, "bias", "Linear"):
            bound = 1.0 / math.sqrt(self.in_features) if self.in_features else 0.0
            self.bias = Parameter(np.empty(self.out_features, dtype=dtype), dtype=dtype)
            init.uniform_(self.bias, -bound, bound, generator=rng)
        else:
            self.bias = None

    def forward(self, x):
        if dtype_of(x) != self.weight.dtype:
            raise dtype_mismatch(self, x, self.weight.dtype)
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Sequential(Module):
    """Modules applied in order; children are named ``0``, ``1``, ... (the state-dict keys), or
    by the keys of one dict given instead (PyTorch's ``Sequential(OrderedDict(...))``). A slice
    keeps its modules' names, as in PyTorch, so its state dict matches the whole one's keys."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], Mapping):
            for name, module in modules[0].items():
                self._add(name, module)
            return
        if len(modules) == 1 and isinstance(modules[0], (list, tuple)):
            modules = tuple(modules[0])
        for module in modules:
            self.append(module)

    def append(self, module) -> "Sequential":
        """Add ``module`` at the end, named by the next free number."""
        number = len(self._modules)
        while str(number) in self._modules:  # a slice of a longer Sequential keeps its names
            number += 1
        return self._add(str(number), module)

    def _add(self, name, module) -> "Sequential":
        if not isinstance(module, Module):
            raise TypeError(f"Sequential holds Modules, got {type(module).__name__}")
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"Sequential: a module's name must be a non-empty string without dots, got {name!r}")
        self._modules[name] = module
        object.__setattr__(self, "_layers", tuple(self._modules.values()))
        MODULE_CLOCK.tick()  # a compiled step records again
        return self

    def _renumber(self, modules) -> None:
        """Hold exactly ``modules``, named 0, 1, ... (PyTorch renumbers after a deletion)."""
        self._modules.clear()
        object.__setattr__(self, "_layers", ())
        for module in modules:
            self.append(module)

    def __setattr__(self, name, value):
        super().__setattr__(name, value)
        if isinstance(value, Module) or name in self._modules:
            # setattr(seq, "0", layer) replaces layer 0: forward and seq[0] run the new one
            object.__setattr__(self, "_layers", tuple(m for m in self._modules.values() if m is not None))

    def forward(self, x):
        for module in self._layers:
            x = module(x)
        return x

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(dict(self._named_layers()[index]))
        if not isinstance(index, numbers.Integral):
            raise TypeError(f"Sequential indices must be int or slice, got {type(index).__name__}")
        n = len(self._layers)
        if not -n <= index < n:
            raise IndexError(f"Sequential index {index} is out of range for {n} module(s)")
        return self._layers[index]

    def __setitem__(self, index, module) -> None:
        """Replace the module at ``index``; it keeps its name."""
        self[index]  # noqa: B018 - the index checks of __getitem__
        if isinstance(index, slice):
            raise TypeError("Sequential: assign one module at an int index, not a slice")
        setattr(self, self._named_layers()[index][0], module)

    def _named_layers(self) -> list:
        """(name, module) of the layers that run, in order (a name set to None holds no layer)."""
        return [(name, m) for name, m in self._modules.items() if m is not None]

    def __delitem__(self, index) -> None:
        """Remove the module(s) at ``index`` (an int or a slice); the rest are renumbered 0, 1, ..."""
        if not isinstance(index, slice):
            self[index]  # noqa: B018 - the index checks of __getitem__
        kept = list(self._layers)
        del kept[index]
        self._renumber(kept)

    def __add__(self, other) -> "Sequential":
        """A new Sequential of this one's modules, then ``other``'s, numbered 0, 1, ..."""
        if not isinstance(other, Sequential):
            return NotImplemented
        return Sequential(*self._layers, *other._layers)

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

    def __init__(self, p=0.5, *, generator=None):
        super().__init__()
        if not isinstance(p, numbers.Real) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
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
        if not isinstance(negative_slope, numbers.Real) or isinstance(negative_slope, bool):
            raise TypeError(f"LeakyReLU: negative_slope must be a number, got {negative_slope!r}")
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
    """``softmax`` along ``axis`` (or ``dim``, PyTorch's name for it; without one, the last axis of
    a 1-D or 2-D input, and an error from 3-D on, where PyTorch would pick another)."""

    def __init__(self, axis=None, dim=None):
        super().__init__()
        self.axis = axis_or_dim(axis, dim, "Softmax")

    def forward(self, x):
        return F.softmax(x, self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class LogSoftmax(Module):
    """``log_softmax`` along ``axis`` (or ``dim``; the default as for ``Softmax``)."""

    def __init__(self, axis=None, dim=None):
        super().__init__()
        self.axis = axis_or_dim(axis, dim, "LogSoftmax")

    def forward(self, x):
        return F.log_softmax(x, self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"
