"""In-place changes and autograd: how backward notices them.

Two pieces of state, both rare to matter and cheap when they do not:

- ``IN_PLACE_CLOCK`` counts in-place changes to any tensor. A change stamps the tensor's
  version with a new tick, and every graph node notes the clock's time when it was recorded.
  "Changed since node N was recorded" is "version above N's time"; while the clock has not
  moved since N, nothing changed at all: one comparison per node in the usual case.
- ``REWRITTEN`` lists, by tensor ``id``, the graph nodes a tensor had before a *recorded*
  in-place write (``x[i] = w`` with ``w`` requiring grad gives ``x`` a new node). Nodes recorded
  before the write consumed the earlier value: the engine finds that node here.
"""

from __future__ import annotations

import itertools
import weakref

import numpy as np


class InPlaceClock:
    """Counts the in-place changes made to any tensor so far."""

    def __init__(self):
        self.now = 0
        self._ticks = itertools.count(1)

    def tick(self) -> int:
        """Advance the clock; returns the new time (``next()`` is atomic: threads never share one)."""
        tick = next(self._ticks)
        self.now = tick
        return tick


IN_PLACE_CLOCK = InPlaceClock()

#: id(tensor) -> ((tick of the write, node before it, output index before it), ...)
REWRITTEN: dict = {}


def remember_node_before_write(tensor, tick: int) -> None:
    """``tensor`` is about to take a new node at ``tick``: keep the one it had for earlier consumers."""
    key = id(tensor)
    if key not in REWRITTEN:
        weakref.finalize(tensor, REWRITTEN.pop, key, None)  # the entry goes with its tensor
    REWRITTEN[key] = REWRITTEN.get(key, ()) + ((tick, tensor._node, tensor._out_index),)


def node_seen_by(consumer, tensor):
    """``(node, output index)`` that made ``tensor`` when ``consumer`` was recorded."""
    for tick, node, out_index in REWRITTEN.get(id(tensor), ()):
        if consumer._recorded_at < tick:
            return node, out_index
    return tensor._node, tensor._out_index


def shares_memory_owner(a, b) -> bool:
    """True when arrays ``a`` and ``b`` are, or view, the same owner's memory (either way round:
    a saved array viewed by an output is changed by a write into that output)."""
    return (a if a.base is None else a.base) is (b if b.base is None else b.base)


def saved_array_changed_in_place(node) -> bool:
    """Whether an array ``node`` saved for backward belongs to a tensor (an input or an output
    of the node) changed in place since the node was recorded. An array that owns its memory
    and belongs to no tensor is private to the node: nothing outside can change it."""
    owners = [(a.data, a._version_counter) for a in node._inputs if hasattr(a, "_version_counter")]
    owners += node._outputs
    changed = [data for data, counter in owners if counter[0] > node._recorded_at]
    return any(
        shares_memory_owner(saved, data)
        for saved in node._saved
        if type(saved) is np.ndarray
        for data in changed
    )


def record_in_place(tensor, op: str, recorded_result):
    """An in-place change of ``tensor`` recorded in the graph, as in PyTorch, so that no gradient
    is silently lost (``x = zeros(3); x[0:1] = w`` must give ``w`` a gradient):

    1. ``before``: a snapshot of the current value, carrying the tensor's graph node;
    2. ``after = recorded_result(before)``: the new value, computed by ordinary ops;
    3. ``after`` is copied into the tensor's memory, and the tensor takes ``after``'s node.

    Nodes recorded earlier that consumed the tensor keep the node it had then (``REWRITTEN``).
    """
    _check_recordable(tensor, op)
    before = type(tensor)._wrap(tensor.data.copy(), tensor.requires_grad, tensor._node, tensor._out_index)
    after = recorded_result(before)
    if after.data.shape != tensor.data.shape:
        raise ValueError(f"{op}: the result has shape {after.data.shape}, the tensor {tensor.data.shape}")
    if after.data.dtype != tensor.data.dtype:
        after = after.to(tensor.data.dtype)
    tensor.data[...] = after.data
    tick = tensor._bump()
    if tensor._node is not None:  # earlier consumers still see the node the tensor had before
        remember_node_before_write(tensor, tick)
    tensor._node, tensor._out_index, tensor.requires_grad = after._node, after._out_index, after.requires_grad
    return tensor


def _check_recordable(tensor, op: str) -> None:
    from .function import GraphError  # the error of graph misuse (function.py imports this module)

    if tensor._node is None and tensor.requires_grad:
        raise RuntimeError(
            f"{op}: in-place change of a leaf tensor that requires grad while grad mode is on "
            "(a parameter, say); wrap the update in no_grad() or use the out-of-place operation"
        )
    if tensor.data.dtype.kind != "f":
        raise TypeError(
            f"{op}: cannot write a value that requires grad into a {tensor.data.dtype} tensor; "
            "only floating-point tensors carry gradients"
        )
    if tensor.data.base is not None:
        raise GraphError(
            f"{op}: recording an in-place change of a view (a slice, reshape or detach of another "
            "tensor) is not supported: the tensor it views would not see the gradient. Write into "
            "the tensor that owns the memory, or clone() the view first"
        )
