"""PyTorch's spellings on a tensor: the metadata methods (``size()``, ``numel()``, ``dim()``), the
device calls that are no-ops on NumPy's one device (``cpu()``, ``contiguous()``), a few reductions
PyTorch names apart (``amax``, ``std``), transposes (``t()``, ``mT``), ``x.where(c, y)``,
``equal``, ``detach_`` and ``retain_grad`` (the engine fills the ``.grad``), the shape calls over
core's ops (``expand``, ``view_as``, ``chunk``, ``unbind``, ``narrow``) and the ``new_*``
factories. Each is a line or two over what ``Tensor`` has, so code written for PyTorch runs, and
``tensor.py`` keeps to what a tensor is. (A registered op is a method without a line here:
``x.flip(0)`` is ``tt.ops.flip(x, 0)``, see ``Tensor.__getattr__``.)
"""

from __future__ import annotations

import numpy as np

from .checks import normalize_axis
from .observers import report_value_read


class TorchNames:
    """PyTorch's names of ``Tensor``'s metadata and conveniences (a base of ``Tensor``; no state)."""

    __slots__ = ()

    def size(self, dim=None):
        """The shape, or the length of axis ``dim`` (``numel()`` counts elements)."""
        if dim is None:
            return self.data.shape
        return self.data.shape[normalize_axis(dim, self.data.ndim, "size")]

    def numel(self) -> int:
        return self.data.size

    nelement = numel

    def dim(self) -> int:
        """PyTorch's name for ``ndim``."""
        return self.data.ndim

    ndimension = dim

    def element_size(self) -> int:
        """Bytes per element."""
        return self.data.itemsize

    def is_floating_point(self) -> bool:
        return self.data.dtype.kind == "f"

    @property
    def device(self) -> str:
        """Always ``"cpu"``: TinyTorch computes with NumPy."""
        return "cpu"

    def cpu(self):
        return self

    def contiguous(self):
        """Itself: NumPy reads any memory order, and a copy would leave the graph's view links."""
        return self

    def half(self):
        return self.to("float16")

    def amax(self, dim=None, keepdim: bool = False):
        """The largest values along ``dim`` (an int or a tuple; every axis by default), no indices."""
        return self.max(axis=dim, keepdims=keepdim)

    def amin(self, dim=None, keepdim: bool = False):
        return self.min(axis=dim, keepdims=keepdim)

    def std(self, dim=None, unbiased=None, keepdim=None, **options):
        """The square root of ``var`` with the same arguments (PyTorch's ``n - 1`` by default)."""
        return self.var(dim, unbiased, keepdim, **options).sqrt()

    def t(self):
        """The transpose of a matrix (a 0-d or 1-D tensor as it is), as PyTorch's ``t()``."""
        if self.data.ndim > 2:
            raise ValueError(f"t(): expects a tensor of at most 2 dimensions, got {self.data.ndim}; use mT or transpose")
        return self.T if self.data.ndim == 2 else self

    @property
    def H(self):  # noqa: N802 - PyTorch's name
        """The conjugate transpose of a matrix: its transpose, for real data."""
        if self.data.ndim != 2:
            raise ValueError(f"H: expected a matrix (2-D), got a {self.data.ndim}-d tensor; use mH for a batch")
        return self.T

    @property
    def mH(self):  # noqa: N802 - PyTorch's name
        return self.mT

    def type(self, dtype=None):
        """The dtype's name, or (given a dtype) the tensor cast to it."""
        return str(self.data.dtype) if dtype is None else self.to(dtype)

    def equal(self, other) -> bool:
        """Whether ``other`` has this tensor's shape and the same values (a Python bool)."""
        report_value_read(self)
        other = getattr(other, "data", other)
        return bool(np.shape(other) == self.data.shape and np.array_equal(self.data, other))

    @property
    def mT(self):  # noqa: N802 - PyTorch's name
        """The matrix transpose: the last two axes swapped (a batch of matrices)."""
        if self.data.ndim < 2:
            raise ValueError(f"mT: expected a matrix or a batch of matrices, got a {self.data.ndim}-d tensor")
        return self.swapaxes(-2, -1)

    def where(self, condition, other):
        """``x.where(condition, y)``: ``where(condition, x, y)``, x where the condition holds."""
        from .primitives import where  # primitives import Tensor, whose base this is

        return where(condition, self, other)

    def detach_(self):
        """Leave the graph in place: no node, no longer requiring grad."""
        if self._view is not None and self._view[1] is not None:
            raise RuntimeError("detach_() on a view of another tensor; use detach(), which makes a new tensor")
        self._node, self._requires_grad = None, False
        return self

    def retain_grad(self) -> None:
        """Keep this computed tensor's gradient in its ``.grad`` at each backward pass (a leaf keeps
        one anyway), to look at it; it does not change what flows on."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad(): the tensor does not require grad")
        if self._node is None:
            return
        # the node holds the tensor (a cycle the garbage collector frees with the graph; pickles keep it)
        self._node.__dict__.setdefault("_retained", {})[self._out_index] = self

    def register_hook(self, hook):
        """Call ``hook(grad)`` with this tensor's gradient at each backward pass; what it returns
        (if not None) replaces the gradient (``hooks.py``). Returns a handle with ``remove()``."""
        from .hooks import register_hook  # hooks.py imports Tensor, whose base this is

        return register_hook(self, hook)

    # ---- shapes, over core's ops (primitives/layout.py) -------------------------------------------
    def expand(self, *sizes, size=None):
        """This tensor broadcast to ``sizes`` without a copy (-1 keeps a size): a read-only view."""
        return _primitives().expand(self, *sizes, size=size)

    def expand_as(self, other):
        return _primitives().expand(self, _tensor_argument(other, "expand_as").shape)

    def view_as(self, other):
        return self.view(_tensor_argument(other, "view_as").shape)

    def chunk(self, chunks: int, dim: int = 0):
        return _primitives().chunk(self, chunks, dim)

    def unbind(self, dim: int = 0):
        return _primitives().unbind(self, dim)

    def narrow(self, dim: int, start: int, length: int):
        return _primitives().narrow(self, dim, start, length)

    def type_as(self, other):
        """This tensor cast to ``other``'s dtype (in the graph, as ``to``)."""
        return self.to(_tensor_argument(other, "type_as").dtype)

    # ---- new tensors of this tensor's dtype, outside the graph (factories.py) ------------------------
    def new_zeros(self, *sizes, size=None, dtype=None, requires_grad: bool = False):
        from .factories import zeros  # factories import Tensor, whose base this is

        return zeros(*sizes, size=size, dtype=self.data.dtype if dtype is None else dtype, requires_grad=requires_grad)

    def new_ones(self, *sizes, size=None, dtype=None, requires_grad: bool = False):
        from .factories import ones

        return ones(*sizes, size=size, dtype=self.data.dtype if dtype is None else dtype, requires_grad=requires_grad)

    def new_full(self, size, fill_value, *, dtype=None, requires_grad: bool = False):
        from .factories import full

        return full(size, fill_value, dtype=self.data.dtype if dtype is None else dtype, requires_grad=requires_grad)

    def new_tensor(self, data, *, dtype=None, requires_grad: bool = False):
        """A copy of ``data`` (a tensor's values too, detached) in this tensor's dtype unless told."""
        from .factories import tensor  # copies a tensor's values, without its graph

        return tensor(data, dtype=self.data.dtype if dtype is None else dtype, requires_grad=requires_grad)


def _tensor_argument(other, method: str):
    if not isinstance(other, TorchNames):  # a dtype's name or a number has no .shape or .dtype to take
        raise TypeError(f"{method} expects a tensor, got {type(other).__name__} {other!r:.40}")
    return other


def _primitives():
    """Core's ops (``primitives/``), which import ``Tensor``, whose base this is: looked up at call time."""
    from . import primitives

    return primitives
