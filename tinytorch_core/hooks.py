"""Tensor hooks: code that sees a tensor's gradient during backward and may replace it
(``x.register_hook(lambda g: g.clamp(-1, 1))``), as in PyTorch.

Where a hook lives decides which gradient it sees:

- on a computed tensor, the hook belongs to the graph node that made it (``node._hooks``, by
  output index). The engine runs it on the output's summed gradient just before that node's
  backward, so what it returns flows on to everything below. A tensor changed in place later
  gets a new node; hooks registered before the change stay with the old value, as in PyTorch;
- on a leaf, the hook is kept on the tensor (``tensor._hooks``). The engine first sums every
  contribution of the pass, runs the hooks on that sum, and stores what they return in
  ``.grad`` (then the post-accumulate-grad hooks run). Which leaves are summed is decided when
  a pass starts: a hook put on a leaf that had none, while a pass is running (by another hook),
  acts from the next pass.

A hook gets a read-only Tensor (the array may be pending for other branches) under ``no_grad``.
It returns None (the gradient stays) or a new gradient of the same shape and dtype; anything
else is refused with the hook's name, as PyTorch does.
"""

from __future__ import annotations

import threading

import numpy as np

from .function import GraphError
from .tensor import RemovableHandle, Tensor


#: hooks are added and removed by reading a tuple and writing a longer or shorter one: one at a time
_CHANGING_HOOKS = threading.Lock()


def register_hook(tensor, hook):
    """Add ``hook(grad) -> new grad or None`` to ``tensor`` (see the module docstring); returns
    a handle whose ``remove()`` takes it off."""
    if not tensor.requires_grad:
        raise RuntimeError("register_hook: cannot register a hook on a tensor that does not require grad")
    if not callable(hook):
        raise TypeError(f"register_hook expects a callable, got {type(hook).__name__}")
    if tensor._node is None:  # a leaf: its hooks see the sum of the pass, before .grad
        with _CHANGING_HOOKS:
            tensor._hooks = (tensor._hooks or ()) + (hook,)

        def remove_from_leaf():
            with _CHANGING_HOOKS:
                tensor._hooks = _without(tensor._hooks, hook)

        return RemovableHandle(remove_from_leaf)
    node, index = tensor._node, tensor._out_index
    with _CHANGING_HOOKS:
        by_output = node.__dict__.setdefault("_hooks", {})  # a class attribute (None) until the first hook
        by_output[index] = by_output.get(index, ()) + (hook,)

    def remove():
        with _CHANGING_HOOKS:
            remaining = _without(by_output.get(index), hook)
            if remaining:
                by_output[index] = remaining
            else:  # an empty dict reads as "no hooks" (the engine and a compiled step's recorder ask)
                by_output.pop(index, None)

    return RemovableHandle(remove)


def _without(hooks, hook):
    return tuple(h for h in hooks or () if h is not hook) or None


def run_hooks(hooks, grad: np.ndarray) -> np.ndarray:
    """``grad`` passed through each hook in the order they were registered."""
    for hook in hooks:
        view = grad.view()
        view.setflags(write=False)  # the array may be shared with another branch's pending sum
        try:
            returned = hook(Tensor._wrap(view))
        except ValueError as exc:
            if "read-only" in str(exc) and hasattr(exc, "add_note"):  # g.mul_(2) inside the hook
                exc.add_note(f"hook {_name(hook)} got a read-only gradient (it may be shared with another branch): "
                             "return a new one instead (return g * 2)")
            raise
        if returned is not None:
            grad = _hook_result(hook, returned, grad)
    return grad


def _name(hook) -> str:
    return repr(getattr(hook, "__qualname__", type(hook).__name__))


def _hook_result(hook, returned, grad: np.ndarray) -> np.ndarray:
    """What a hook returned, as a gradient array: of the gradient's shape and dtype, or refused."""
    name = getattr(hook, "__qualname__", type(hook).__name__)
    array = returned.data if isinstance(returned, Tensor) else returned
    if type(array) is not np.ndarray:  # a subclass (np.matrix, a masked array) changes what * and sums mean
        raise GraphError(f"hook {name!r} returned a {type(returned).__name__}; return a Tensor or plain array "
                         f"of the gradient's shape {grad.shape}, or None to keep the gradient")
    if array.shape != grad.shape:
        raise GraphError(f"hook {name!r} has changed the shape of the gradient: it returned {array.shape}, "
                         f"the gradient has shape {grad.shape}")
    if array.dtype != grad.dtype:
        raise GraphError(f"hook {name!r} has changed the dtype of the gradient: it returned {array.dtype}, "
                         f"the gradient is {grad.dtype}")
    return array.copy()  # the hook's caller may hold it; a leaf's .grad owns its memory
