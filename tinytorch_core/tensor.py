"""``Tensor``: an array, whether it requires grad, its gradient, and the node that made it."""

from __future__ import annotations

import functools
import operator

import numpy as np

from .checks import (axis_or_dim, broadcasts_to, keepdims_or_keepdim, normalize_axes, owned_array, target_dtype,
                     true_or_false)
from .grad_mode import _per_thread
from .inplace import (IN_PLACE_CLOCK, is_region_of, link_view, memory_of, record_in_place,
                      view_of_a_root_that_requires_grad, write_plain)
from .torch_names import TorchNames
from .values import ValueReads

DEFAULT_FLOAT = np.float32


def _bitwise_operator(function, reflected: bool = False):
    """The operator method ``self <op> other`` (``other <op> self`` when ``reflected``) of a bitwise ufunc."""
    if reflected:
        return lambda self, other: _P.bitwise(other, self, function)
    return lambda self, other: _P.bitwise(self, other, function)


def _in_place_operator(symbol: str, recorded, in_place):
    """The method ``self <symbol> other`` (``**=``): ``Tensor._in_place`` with those operators."""
    return lambda self, other: self._in_place(symbol, other, recorded, in_place)


class Tensor(ValueReads, TorchNames):
    """A NumPy array with autograd. Float data defaults to float32; integer data stays integer.
    Reading values out (``item()``, ``numpy()``, ``float(t)``, ``x.long()``) comes from ``ValueReads``,
    PyTorch's other spellings (``size()``, ``dim()``, ``cpu()``, ``std()``) from ``TorchNames``."""

    __slots__ = ("data", "_requires_grad", "grad", "_node", "_out_index", "_version_counter", "_grad_hooks",
                 "_hooks", "_view", "_views", "__weakref__")
    __array_ufunc__ = None  # make `ndarray + tensor` call Tensor.__radd__ instead of looping
    __hash__ = object.__hash__  # __eq__ is elementwise; identity hashing keeps tensors usable as keys

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = owned_array(data.data if isinstance(data, Tensor) else data, dtype, DEFAULT_FLOAT)
        self.grad = None
        self._node = None
        self._out_index = 0
        self._version_counter = [0]
        self._grad_hooks = self._hooks = self._view = self._views = None  # hooks (hooks.py); view links (inplace.py)
        self._requires_grad = False
        if true_or_false(requires_grad, "requires_grad", "Tensor"):
            self.requires_grad_(True)

    @staticmethod
    def _wrap(data, requires_grad=False, node=None, out_index=0) -> "Tensor":
        """A tensor around an array the framework computed: no copy, no checks. ``node`` is the
        graph node (the Function) that produced it, ``out_index`` which of its outputs it is."""
        t = object.__new__(Tensor)
        t.data = data
        t._requires_grad = requires_grad
        t.grad = None
        t._node = node
        t._out_index = out_index
        t._version_counter = [0]
        t._grad_hooks = t._hooks = t._view = t._views = None
        return t

    # ---- metadata -------------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def grad_fn(self):
        return self._node

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def _version(self) -> int:
        """0 until the data is changed in place; then larger after every in-place change."""
        return self._version_counter[0]

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self):
        """The sub-tensors along the first axis (a 0-d tensor has none to give: an error, not an
        empty loop, as in PyTorch)."""
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[index] for index in range(len(self.data)))

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extras = []
        if self.data.dtype != DEFAULT_FLOAT:
            extras.append(f"dtype={self.data.dtype}")
        if self._node is not None:
            extras.append(f"grad_fn=<{self._node.display_name()}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return f"tensor({body}{''.join(', ' + e for e in extras)})"

    # ---- autograd -----------------------------------------------------------------------
    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        requires_grad = true_or_false(requires_grad, "requires_grad", "requires_grad_")
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(
                f"only floating-point tensors can require gradients; this one holds {self.data.dtype}"
            )
        if not requires_grad and getattr(self, "_node", None) is not None:  # unset while a pickle loads
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor; use .detach() instead")
        self._requires_grad = requires_grad
        return self

    # read on every op (a C-level getter: no Python call); set only as requires_grad_() sets it, checked
    # (False on a computed tensor would cut the graph silently; PyTorch refuses it too)
    requires_grad = property(operator.attrgetter("_requires_grad"), requires_grad_)

    def detach(self) -> "Tensor":
        """Same data, no graph. Shares memory and the version counter with this tensor."""
        t = Tensor._wrap(self.data.view())
        link_view(t, self)  # without a graph link: a recorded write into it is refused
        return t

    def clone(self) -> "Tensor":
        return _P.Clone.apply(self)

    def backward(self, gradient=None, retain_graph: bool = False, create_graph: bool = False, inputs=None, *,
                 grad=None) -> None:
        """Gradients of this tensor into every leaf's ``.grad`` (``engine.backward``); ``gradient``
        (or ``grad``) is needed when it has more than one element. PyTorch's ``create_graph`` and
        ``inputs`` are refused: no higher-order gradients here, and every leaf receives its own."""
        if create_graph is not False or inputs is not None or (grad is not None and gradient is not None):
            raise NotImplementedError("backward(): create_graph (higher-order gradients) and inputs= are not "
                                      "supported, and the gradient is given once (gradient= or grad=)")
        _run_backward(self, gradient if grad is None else grad, retain_graph)

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(tensor)`` in every backward pass once this leaf's ``.grad`` holds all the
        pass's contributions (as in PyTorch; data-parallel training sends gradients from here).
        Returns a handle: ``handle.remove()`` (or ``handle()``) takes the hook off."""
        if not self.is_leaf or not self.requires_grad:
            raise RuntimeError("register_post_accumulate_grad_hook: only a leaf tensor that requires grad "
                               "accumulates a .grad; this one is computed or does not require grad")
        if not callable(hook):
            raise TypeError(f"register_post_accumulate_grad_hook expects a callable, got {type(hook).__name__}")
        self._grad_hooks = (self._grad_hooks or ()) + (hook,)
        return RemovableHandle(lambda: setattr(self, "_grad_hooks",
                                               tuple(h for h in self._grad_hooks or () if h is not hook) or None))

    def zero_grad(self) -> None:
        self.grad = None

    # ---- in-place changes: x[i] = v, copy_, fill_, add_, x += v ... ------------------------------
    def _bump(self) -> int:
        """Stamp this tensor's version with a new tick of the in-place clock; returns the tick."""
        tick = IN_PLACE_CLOCK.tick()
        self._version_counter[0] = tick
        return tick

    def _records_in_place(self, operand) -> bool:
        """Whether an in-place change must be recorded in the graph: grad mode is on and this
        tensor, ``operand``, or the root this tensor views requires grad. Otherwise (an optimizer
        step under ``no_grad``, say) the change is a plain NumPy write followed by ``_bump()``."""
        return _per_thread.modes.grad and (
            self.requires_grad or (isinstance(operand, Tensor) and operand.requires_grad)
            or view_of_a_root_that_requires_grad(self)
        )

    def _record_in_place(self, op: str, recorded_result, index=Ellipsis) -> "Tensor":
        """An in-place change of ``self[index]`` recorded in the graph (``inplace.record_in_place``)."""
        return record_in_place(self, op, recorded_result, memory_of(self.data, index))

    def __setitem__(self, index, value) -> None:
        index = _P.index_operand(index)
        if (split := _P.ints_first(index)) is not None:  # y[0, :, [0, 1]] = v: PyTorch's axis order
            return self[split[0]].__setitem__(split[1], value)
        if self._records_in_place(value):
            if is_region_of(value, self, index):  # x[i] += w: the add wrote through the view x[i]
                return
            self._record_in_place("__setitem__", lambda before: _P.SetItem.apply(before, value, index), index)
        else:
            write_plain(self, "__setitem__", self._operand(value), index)

    def copy_(self, source) -> "Tensor":
        src_shape = np.shape(self._operand(source))
        if not broadcasts_to(src_shape, self.data.shape):
            raise ValueError(f"copy_: source shape {src_shape} does not fit tensor shape {self.data.shape}")
        if self._records_in_place(source):
            return self._record_in_place("copy_", lambda before: _P.SetItem.apply(before, source, Ellipsis))
        return write_plain(self, "copy_", self._operand(source))

    def fill_(self, value) -> "Tensor":
        if self._records_in_place(value):  # value itself may require grad (a 0-d tensor)
            return self._record_in_place("fill_", lambda before: _P.SetItem.apply(before, value, Ellipsis))
        return write_plain(self, "fill_", self._operand(value))

    def zero_(self) -> "Tensor":
        return self.fill_(0)

    def add_(self, other, alpha=1) -> "Tensor":
        if self._records_in_place(other):
            return self._record_in_place("add_", lambda before: before + (other * alpha if alpha != 1 else other))
        other = other.data if isinstance(other, Tensor) else other
        return write_plain(self, "add_", other * alpha if alpha != 1 else other, in_place=operator.iadd)

    def sub_(self, other, alpha=1) -> "Tensor":
        if self._records_in_place(other):
            return self._record_in_place("sub_", lambda before: before - (other * alpha if alpha != 1 else other))
        other = other.data if isinstance(other, Tensor) else other
        return write_plain(self, "sub_", other * alpha if alpha != 1 else other, in_place=operator.isub)

    def mul_(self, other) -> "Tensor":
        return self._in_place("mul_", other, operator.mul, operator.imul)

    def div_(self, other) -> "Tensor":
        return self._in_place("div_", other, operator.truediv, operator.itruediv)

    def _in_place(self, op: str, other, recorded, in_place) -> "Tensor":
        """``self = recorded(self, other)`` written into self: in the graph when a gradient is
        involved, else ``in_place(self.data, other)`` (``operator.imul``: ``data *= other``)."""
        if self._records_in_place(other):
            return self._record_in_place(op, lambda before: recorded(before, other))
        return write_plain(self, op, self._operand(other), in_place=in_place)

    # ``x += v`` acts on x itself, as in PyTorch and NumPy (a parameter stays the same object; a
    # view writes through to the tensor it views).
    __iadd__, __isub__, __imul__, __itruediv__ = add_, sub_, mul_, div_

    def __ifloordiv__(self, other):
        _P.refuse_integer_division_by_zero("//=", self.data, self._operand(other))  # NumPy's 7 // 0 is 0
        return self._in_place("//=", other, operator.floordiv, operator.ifloordiv)

    def __imod__(self, other):
        _P.refuse_integer_division_by_zero("%=", self.data, self._operand(other))
        return self._in_place("%=", other, operator.mod, operator.imod)

    # x **= y, x &= y, ...: in place, as the four above (recorded in the graph when a gradient is involved)
    __ipow__, __iand__, __ior__, __ixor__, __ilshift__, __irshift__ = (
        _in_place_operator(symbol, recorded, in_place) for symbol, recorded, in_place in (
            ("**=", operator.pow, operator.ipow), ("&=", operator.and_, operator.iand),
            ("|=", operator.or_, operator.ior), ("^=", operator.xor, operator.ixor),
            ("<<=", operator.lshift, operator.ilshift), (">>=", operator.rshift, operator.irshift)))

    def _operand(self, value):
        return value.data if isinstance(value, Tensor) else value

    # ---- arithmetic -------------------------------------------------------------------------
    def __add__(self, other):
        return _P.add(self, other)

    def __radd__(self, other):
        return _P.add(other, self)

    def __sub__(self, other):
        return _P.sub(self, other)

    def __rsub__(self, other):
        return _P.sub(other, self)

    def __mul__(self, other):
        return _P.mul(self, other)

    def __rmul__(self, other):
        return _P.mul(other, self)

    def __truediv__(self, other):
        return _P.div(self, other)

    def __rtruediv__(self, other):
        return _P.div(other, self)

    def __pow__(self, other):
        return _P.pow(self, other)

    def __rpow__(self, other):
        return _P.pow(other, self)

    def __floordiv__(self, other):
        return _P.floor_divide(self, other)

    def __rfloordiv__(self, other):
        return _P.floor_divide(other, self)

    def __mod__(self, other):
        return _P.remainder(self, other)

    def __rmod__(self, other):
        return _P.remainder(other, self)

    def __neg__(self):
        return _P.Neg.apply(self)

    def __pos__(self):
        return self

    def __matmul__(self, other):
        return _P.matmul(self, other)

    def __rmatmul__(self, other):
        return _P.matmul(other, self)

    def exp(self):
        return _P.Exp.apply(self)

    def log(self):
        return _P.Log.apply(self)

    def sqrt(self):
        return _P.Sqrt.apply(self)

    def abs(self):
        return _P.Abs.apply(self)
    __abs__ = abs

    def maximum(self, other):
        return _P.maximum(self, other)

    def minimum(self, other):
        return _P.minimum(self, other)

    def clip(self, min=None, max=None):
        return _P.clip(self, min, max)

    clamp = clip  # PyTorch's name

    def to(self, *args, dtype=None, device=None) -> "Tensor":
        """Differentiable cast (float64 for numerical checks, float32 for speed), in PyTorch's forms:
        ``to(dtype)``, ``to("cpu")``, ``to("cpu", dtype)``, ``to(other_tensor)``, ``to(dtype=...)``."""
        given = (*args, *(a for a in (device, dtype) if a is not None))
        wanted = [target_dtype(a.data.dtype if isinstance(a, Tensor) else a, "Tensor.to") for a in given]
        wanted = [d for d in wanted if d is not None]  # None: the device "cpu"
        if len(wanted) > 1:
            raise TypeError(f"Tensor.to: got {len(wanted)} dtypes, expected at most one")
        if not wanted or wanted[0] == self.data.dtype:
            return self
        return _P.Cast.apply(self, wanted[0])

    # ---- comparisons: bool tensors, never differentiable ------------------------------------
    def __lt__(self, other):
        return _P.compare(self, other, np.less)

    def __le__(self, other):
        return _P.compare(self, other, np.less_equal)

    def __gt__(self, other):
        return _P.compare(self, other, np.greater)

    def __ge__(self, other):
        return _P.compare(self, other, np.greater_equal)

    def __eq__(self, other):  # t == None and t == "text" are False, as in PyTorch
        return NotImplemented if other is None or isinstance(other, str) else _P.compare(self, other, np.equal)

    def __ne__(self, other):
        return NotImplemented if other is None or isinstance(other, str) else _P.compare(self, other, np.not_equal)

    def __invert__(self):
        if self.data.dtype.kind not in "biu":
            raise TypeError(f"~ needs a bool or integer tensor, got {self.data.dtype}")
        return _P.LogicalNot.apply(self)

    # & | ^ << >>: logical for bools, bit by bit for integers (primitives.bitwise refuses floats)
    __and__, __or__, __xor__, __lshift__, __rshift__ = (
        _bitwise_operator(f) for f in (np.bitwise_and, np.bitwise_or, np.bitwise_xor, np.left_shift, np.right_shift))
    __rand__, __ror__, __rxor__, __rlshift__, __rrshift__ = (
        _bitwise_operator(f, reflected=True)
        for f in (np.bitwise_and, np.bitwise_or, np.bitwise_xor, np.left_shift, np.right_shift))

    def any(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> "Tensor":
        """A bool tensor: whether any entry (along ``axis``/``dim``) is nonzero; ``if x.any():`` reads it."""
        axis, keepdims = axis_or_dim(axis, dim, "any"), keepdims_or_keepdim(keepdims, keepdim, "any")
        return _P.AnyAll.apply(self, normalize_axes(axis, self.data.ndim, "any"), keepdims, False)

    def all(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> "Tensor":
        """A bool tensor: whether every entry (along ``axis``/``dim``) is nonzero."""
        axis, keepdims = axis_or_dim(axis, dim, "all"), keepdims_or_keepdim(keepdims, keepdim, "all")
        return _P.AnyAll.apply(self, normalize_axes(axis, self.data.ndim, "all"), keepdims, True)

    def argmax(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None):
        axis, keepdims = axis_or_dim(axis, dim, "argmax"), keepdims_or_keepdim(keepdims, keepdim, "argmax")
        return _P.ArgExtreme.apply(self, axis, keepdims, True)

    def argmin(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None):
        axis, keepdims = axis_or_dim(axis, dim, "argmin"), keepdims_or_keepdim(keepdims, keepdim, "argmin")
        return _P.ArgExtreme.apply(self, axis, keepdims, False)

    # ---- reductions (``dim``/``keepdim``, PyTorch's names, work too) --------------------------
    def sum(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None):
        return _P.sum(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def mean(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None):
        return _P.mean(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def max(self, dim=None, keepdim=None, *, axis=None, keepdims=None):  # x.max(1): (values, indices)
        return _P.max(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def min(self, dim=None, keepdim=None, *, axis=None, keepdims=None):
        return _P.min(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def var(self, dim=None, unbiased=None, keepdim=None, **options):  # PyTorch's order; ddof: see primitives.var
        return _P.var(self, dim, unbiased, keepdim, **options)

    # ---- shape ------------------------------------------------------------------------------
    def reshape(self, *shape):
        return _P.reshape(self, *shape)

    def view(self, *shape):
        return _P.view(self, *shape)

    def flatten(self, start_axis: int = 0, end_axis: int = -1, *, start_dim=None, end_dim=None):
        """Merge axes ``start_axis..end_axis`` (PyTorch: ``start_dim``, ``end_dim``) into one."""
        start, end = (start_axis if start_dim is None else start_dim), (end_axis if end_dim is None else end_dim)
        return _P.flatten(self, start, end)

    def transpose(self, *axes):
        return _P.transpose(self, *axes)

    def permute(self, *axes):
        return _P.permute(self, *axes)

    def swapaxes(self, axis1: int, axis2: int):
        return _P.swapaxes(self, axis1, axis2)

    @property
    def T(self):
        return _P.transpose(self)

    def squeeze(self, dim=None, *, axis=None):
        return _P.squeeze(self, dim, axis=axis)

    def unsqueeze(self, axis: int = None, *, dim=None):
        return _P.unsqueeze(self, axis_or_dim(axis, dim, "unsqueeze"))

    expand_dims = unsqueeze  # NumPy's name

    def broadcast_to(self, shape):
        return _P.broadcast_to(self, shape)

    def __getitem__(self, index):
        index = _P.index_operand(index)
        if (split := _P.ints_first(index)) is not None:  # y[0, :, [0, 1]]: PyTorch's axis order
            return self[split[0]][split[1]]
        return _P.GetItem.apply(self, index)

    # ---- every registered op as a method: x.relu(), x.softmax(-1), x.conv2d(w) ------------------
    def __getattr__(self, name):
        """Called only for a name Tensor does not define: the registered op of that name, bound to
        this tensor (``x.relu()`` is ``tt.ops.relu(x)``). Plugins register ops; they never add
        methods to Tensor. A name whose stage is not installed raises ``MissingStageError``."""
        if name.startswith("_"):  # Python's and NumPy's protocol probes: never ops
            raise AttributeError(f"'Tensor' object has no attribute '{name}'")
        from .host.runtime import default_runtime  # the host loads plugins; tensor.py sits below it

        try:
            op = default_runtime().resolve("ops", name)
        except AttributeError as exc:
            raise AttributeError(f"'Tensor' object has no attribute '{name}', and {exc}") from None
        return functools.partial(op, self)


class RemovableHandle:
    """What registering a hook returns: ``handle.remove()`` (PyTorch's spelling) or ``handle()``
    takes the hook off again."""

    __slots__ = ("_remove",)

    def __init__(self, remove):
        self._remove = remove

    def remove(self) -> None:
        self._remove()

    __call__ = remove


# The one import cycle in core, by design: Tensor's operators are Functions (primitives/),
# a Function's outputs are Tensors, and backward() is the engine's. Bound last, so that those
# modules find Tensor defined when they import it (docs/architecture.md, "Import order").
from . import primitives as _P  # noqa: E402
from .engine import backward as _run_backward  # noqa: E402
from .function import GraphError  # noqa: E402
