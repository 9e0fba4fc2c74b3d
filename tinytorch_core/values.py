"""Reading a tensor's values out of the graph: into Python numbers and lists, into NumPy, and
PyTorch's dtype conversions (``x.float()``, ``x.long()``), as methods every ``Tensor`` has.

Each read tells the thread's observer (``report_value_read``): a compiled step that decides
something on a value (``if loss.item() > 0``) cannot replay that decision, and says so.
"""

from __future__ import annotations

import numpy as np

from .observers import report_value_read


class ValueReads:
    """The value-reading methods of ``Tensor`` (its base class; it holds no state of its own)."""

    __slots__ = ()

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item(): the tensor has {self.data.size} elements, expected exactly 1")
        report_value_read(self)
        return self.data.item()

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied); refused while it requires grad, as in PyTorch."""
        if self.requires_grad:  # a write into the shared array would change what backward reads, unseen
            raise RuntimeError("numpy(): the tensor requires grad, and a write into its array would go unseen by "
                               "backward; use tensor.detach().numpy()")
        report_value_read(self)
        return self.data

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """``np.asarray(t)``, ``np.array(t)``, a list of tensors given to NumPy: the array ``numpy()``
        gives, as in PyTorch (without it NumPy would build an array of 0-d tensor objects)."""
        if self.requires_grad:
            raise RuntimeError("np.asarray(tensor): the tensor requires grad, and NumPy's result would not carry "
                               "its gradient; use tensor.detach() first (tt.stack joins tensors in the graph)")
        array = self.numpy()
        if dtype is not None and np.dtype(dtype) != array.dtype:
            if copy is False:
                raise ValueError(f"np.asarray(tensor, dtype={np.dtype(dtype)}, copy=False): a {array.dtype} tensor "
                                 "cannot become another dtype without a copy")
            return array.astype(dtype)
        return array.copy() if copy else array

    def tolist(self):
        report_value_read(self)
        return self.data.tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __format__(self, spec: str) -> str:
        """``f"{loss:.3f}"``: a one-element tensor formats as its number."""
        if spec and self.data.size == 1:
            return format(self.item(), spec)
        return format(str(self), spec)

    def __index__(self) -> int:
        """An integer tensor of one element as an index (``items[t]``, ``range(t)``), as in PyTorch."""
        if self.data.dtype.kind not in "iu" or self.data.size != 1:
            raise TypeError(f"only integer tensors of a single element can be used as an index, got a "
                            f"{self.data.dtype} tensor of shape {self.data.shape}")
        return int(self.item())

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(
                f"the truth value of a tensor with {self.data.size} elements is ambiguous; use .any() or .all()"
            )
        report_value_read(self)
        return bool(self.data)

    # ---- copies: pickle and copy.deepcopy -----------------------------------------------------
    def __getstate__(self):
        """What ``pickle`` and ``copy.deepcopy`` keep of a tensor: its data, ``.grad``, graph node
        and version (and a subclass's own attributes). Hooks are dropped, as PyTorch drops them (a
        copy of a model must not run the original's hooks), and so are view links: NumPy copies
        a view's array on its own, so the copy shares memory with nothing."""
        slots = {name: getattr(self, name) for name in _slot_names(type(self)) if hasattr(self, name)}
        slots.update(_grad_hooks=None, _hooks=None, _view=None, _views=None)
        return getattr(self, "__dict__", None) or None, slots

    def __setstate__(self, state) -> None:
        """The state ``__getstate__`` made, or an older pickle's (without the slots added since)."""
        attributes, slots = state
        for name in ("_grad_hooks", "_hooks", "_view", "_views"):
            setattr(self, name, None)
        for name, value in slots.items():
            setattr(self, name, value)
        if attributes:
            self.__dict__.update(attributes)

    def __copy__(self):
        """A shallow copy shares the array, and so its version, views and hooks too."""
        copied = object.__new__(type(self))
        for name in _slot_names(type(self)):
            if hasattr(self, name):
                setattr(copied, name, getattr(self, name))
        if hasattr(self, "__dict__"):
            copied.__dict__.update(self.__dict__)
        return copied

    # PyTorch's dtype conversions, differentiable between float dtypes (``to`` is Tensor's)
    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    def long(self):
        return self.to(np.int64)

    def int(self):
        return self.to(np.int32)

    def bool(self):
        return self.to(np.bool_)


def _slot_names(cls) -> list:
    """The names of a tensor's state: every ``__slots__`` entry of its classes."""
    return [name for klass in cls.__mro__ for name in klass.__dict__.get("__slots__", ()) if name != "__weakref__"]
