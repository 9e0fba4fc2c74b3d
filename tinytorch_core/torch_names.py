"""PyTorch's spellings on a tensor: the metadata methods (``size()``, ``numel()``, ``dim()``), the
device calls that are no-ops on NumPy's one device (``cpu()``, ``contiguous()``), and a few
reductions PyTorch names apart (``amax``, ``std``). Each is one line over what ``Tensor`` has, so
code written for PyTorch runs, and ``tensor.py`` keeps to what a tensor is.
"""

from __future__ import annotations

from .checks import normalize_axis


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
