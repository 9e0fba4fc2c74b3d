"""In-place changes and autograd: how backward notices them, and how views follow them.

Three pieces of state, all rare to matter and cheap when they do not:

- ``IN_PLACE_CLOCK`` counts in-place changes to any tensor. A change stamps the tensor's
  version with a new tick, and every graph node notes the clock's time when it was recorded.
  "Changed since node N was recorded" is "version above N's time"; while the clock has not
  moved since N, nothing changed at all: one comparison per node in the usual case.
- ``REWRITTEN`` lists, by tensor ``id``, the graph nodes a tensor had before a *recorded*
  in-place write (``x[i] = w`` with ``w`` requiring grad gives ``x`` a new node). Nodes recorded
  before the write consumed the earlier value: the engine finds that node here.
- A view (``y[1:3]``, ``y.reshape(...)``, ``y.T``) knows its root, the tensor that owns the
  memory, and how to rebuild itself from the root (``link_view``); the root keeps weak references
  to its views. So a recorded write into a view is a write into its root, and after a recorded
  write into a root each of its views reads the new value, as in PyTorch.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np

from .checks import named_error
from .errstate import IGNORE_FLOATING_POINT_ERRORS, current_errstate, reset_errstate, set_errstate


class InPlaceClock:
    """Counts the in-place changes made to any tensor so far."""

    def __init__(self):
        self.now = 0
        self._lock = threading.Lock()

    def tick(self) -> int:
        """Advance the clock; returns the new time. Under a lock: were two threads to interleave,
        ``now`` could move back, and a node recorded after a write would look older than it."""
        with self._lock:
            self.now += 1
            return self.now


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


def link_view(view, source, view_op=None, options=()) -> None:
    """``view``, an op's output, shares ``source``'s memory. It shares its version counter (a write
    through either is seen by the nodes that saved the other) and gets ``view._view``, its link to
    its root (the tensor that owns the memory): ``(root, steps)``, where ``steps`` are the calls
    ``view_op(array, *options)`` (``Function.view``) that make the view from the root (``y.T[1:]``:
    a transpose, then a slice), as a chain, last first: ``(earlier steps, view_op, options)``,
    ending in ``()``. ``steps`` is None when the view has no graph link to its root
    (``detach()``, or an op that does not say how it views)."""
    view._version_counter = source._version_counter
    root, steps = (source, ()) if source._view is None else source._view
    steps = None if view_op is None or steps is None else (steps, view_op, options)
    view._view = (root, steps)
    if steps is not None:
        _remember_view(root, view)


def _remember_view(root, view) -> None:
    """Keep a weak reference to ``view`` in ``root._views`` (a recorded write into the root
    gives each live view a new node)."""
    views = root._views
    if views is None:
        root._views = [weakref.ref(view)]
        return
    views.append(weakref.ref(view))
    if len(views) >= 32 and len(views) & (len(views) - 1) == 0:  # at 32, 64, ...: forget dead views
        views[:] = [ref for ref in views if ref() is not None]


def _rebuild(steps, array: np.ndarray) -> np.ndarray:
    """The view that ``steps`` make of ``array`` (shaped like the root): first step first."""
    calls = []
    while steps:  # a loop, not recursion: a chain of views can be deeper than the recursion limit
        steps, view_op, options = steps
        calls.append((view_op, options))
    for view_op, options in reversed(calls):
        array = view_op(array, *options)
    return array


def view_of_a_root_that_requires_grad(tensor) -> bool:
    """Whether ``tensor`` is a view, linked in the graph, of a root that requires grad."""
    if tensor._view is None:
        return False
    root, steps = tensor._view
    return steps is not None and root.requires_grad


def _link_holds(view) -> bool:
    """Whether the view's steps still make its memory from its root's (``.data`` of either may
    have been reassigned since the view was made)."""
    root, steps = view._view
    try:
        return _same_memory(_rebuild(steps, root.data), view.data)
    except (IndexError, TypeError, ValueError):  # the root's data no longer has the view's shape
        return False


def _same_memory(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` and ``b`` are the same elements of the same memory."""
    return (a.__array_interface__["data"][0], a.shape, a.strides, a.dtype) == (
        b.__array_interface__["data"][0], b.shape, b.strides, b.dtype)


def _index_in_root(view):
    """Where the view's elements sit in its root, as an index: one int array per root axis, shaped
    like the view. None for a 0-d root, whose one element the view is."""
    root, steps = view._view
    if root.data.ndim == 0:
        return None
    positions = _rebuild(steps, np.arange(root.data.size).reshape(root.data.shape))
    return np.unravel_index(positions, root.data.shape)


def _gather(root, index, shape: tuple):
    """A view's elements read from ``root`` by an op that copies them (a view of the root, made
    here, would join the root's views)."""
    return root.broadcast_to(shape) if index is None else root[index]


def assign_at(array: np.ndarray, index, value) -> None:
    """``array[index] = value``, where ``value`` may carry leading size-1 axes that NumPy drops only
    sometimes (it refuses them for one element, ``y[0, 0] = v`` with v (1, 1), and for a mask):
    dropped here as PyTorch drops them."""
    try:
        array[index] = value
        return
    except (ValueError, TypeError):
        squeezed = np.asarray(value)
        if not (squeezed.ndim and squeezed.shape[0] == 1):
            raise
    while squeezed.ndim and squeezed.shape[0] == 1:
        squeezed = squeezed[0]
        try:
            array[index] = squeezed
            return
        except (ValueError, TypeError):
            continue
    array[index] = value  # NumPy's own error for what no squeezing fits


def write_plain(tensor, op: str, value, index=Ellipsis, in_place=None):
    """An in-place change with no gradient involved: a NumPy write, ``data[index] = value`` or
    ``in_place(data, value)`` (``operator.iadd`` runs ``data += value``), then a new version.
    NumPy's errors say which write failed; a value beyond the dtype's range is inf, as in
    PyTorch, without NumPy's warning."""
    # already so inside an optimizer's step (the usual caller): set only when not
    errstate = None if current_errstate() is IGNORE_FLOATING_POINT_ERRORS else set_errstate(IGNORE_FLOATING_POINT_ERRORS)
    try:
        if in_place is None:
            assign_at(tensor.data, index, value)
        else:
            in_place(tensor.data, value)
    except (IndexError, OverflowError, TypeError, ValueError) as exc:
        written = f"an in-place write into a {tensor.data.dtype} tensor of shape {tensor.data.shape}"
        raise named_error(op, exc, written) from exc
    finally:
        if errstate is not None:
            reset_errstate(errstate)
    tensor._bump()
    return tensor


def record_in_place(tensor, op: str, recorded_result, written=None):
    """An in-place change of ``tensor`` recorded in the graph, as in PyTorch, so that no gradient
    is silently lost (``x = zeros(3); x[0:1] = w`` must give ``w`` a gradient):

    1. ``before``: a snapshot of the current value, carrying the tensor's graph node;
    2. ``after = recorded_result(before)``: the new value, computed by ordinary ops;
    3. ``after`` is copied into the tensor's memory, and the tensor takes ``after``'s node;
    4. each view of the tensor takes a node that reads the new value.

    Nodes recorded earlier that consumed the tensor keep the node it had then (``REWRITTEN``).
    A view's change is recorded as its root's (``_record_through_view``). ``written`` is the
    memory the change writes, when known (``memory_of``); None: all of the tensor.
    """
    _check_recordable(tensor, op)
    if tensor._view is not None and shares_memory_owner(tensor.data, tensor._view[0].data):
        return _record_through_view(tensor, op, recorded_result)
    before = type(tensor)._wrap(tensor.data.copy(), tensor.requires_grad, tensor._node, tensor._out_index)
    after = _fit_result(op, recorded_result(before), tensor.data)
    tensor.data[...] = after.data
    tick = tensor._bump()
    _take_node(tensor, after, tick)
    _views_read_new_value(tensor, tick, written)
    return tensor


def _record_through_view(view, op: str, recorded_result):
    """A recorded change of a view is a change of its root: gather the view's elements from the
    root (by their index in it), change them, and scatter them back (a ``core::setitem``)."""
    from .function import GraphError  # the error of graph misuse (function.py imports this module)
    from .primitives import SetItem

    root, steps = view._view
    if steps is None:
        raise GraphError(
            f"{op}: recording an in-place change of a view that has no graph link to the tensor whose "
            "memory it shares (made by detach(), or by an op that does not say how it views): that "
            "tensor would not see the gradient. clone() the view first, or write into that tensor"
        )
    if not _link_holds(view):
        raise GraphError(
            f"{op}: recording an in-place change of a view whose .data, or the .data of the tensor it "
            "views, was reassigned after the view was made: where the write lands is no longer known. "
            "clone() the view first, or write into that tensor"
        )
    index = _index_in_root(view)

    def write_into_root(before_root):
        after_view = _fit_result(op, recorded_result(_gather(before_root, index, view.data.shape)), view.data)
        if index is None:  # a 0-d root: the view is its one element
            return after_view.reshape(())
        return SetItem.apply(before_root, after_view, index)

    record_in_place(root, op, write_into_root, view.data)  # step 4 re-reads this view too
    return view


def _fit_result(op: str, after, target: np.ndarray):
    if after.data.shape != target.shape:
        raise ValueError(f"{op}: the result has shape {after.data.shape}, the tensor {target.shape}")
    return after if after.data.dtype == target.dtype else after.to(target.dtype)


def _take_node(tensor, source, tick: int) -> None:
    """``tensor`` now holds ``source``'s value: it takes ``source``'s node; earlier consumers
    still see the node it had before (None for a leaf: they send the leaf its gradient)."""
    if tensor._node is not None or tensor.requires_grad:
        remember_node_before_write(tensor, tick)
    _move_retained_grad(tensor, source)
    tensor._node, tensor._out_index, tensor._requires_grad = source._node, source._out_index, source.requires_grad


def _move_retained_grad(tensor, source) -> None:
    """A tensor that keeps its gradient (``retain_grad``) keeps that of its new value, as in PyTorch."""
    retained = tensor._node._retained if tensor._node is not None else None
    if retained and retained.get(tensor._out_index) is tensor and source._node is not None:
        del retained[tensor._out_index]
        source._node.__dict__.setdefault("_retained", {})[source._out_index] = tensor


def memory_of(array: np.ndarray, index):
    """The memory of ``array[index]``, as a view of it; None when the index copies (integer
    arrays, a mask) or is invalid (the write will say so)."""
    try:
        region = array[index]
    except (IndexError, TypeError, ValueError):
        return None
    return region if np.may_share_memory(region, array) else None


def _views_read_new_value(root, tick: int, written) -> None:
    """After a recorded write into ``root``, each live view of it that overlaps the ``written``
    memory (all of them when that is None) gathers its elements from the root's new node, as in
    PyTorch (also a view the user had made a leaf). A view the write missed keeps its node: the
    values it reads did not change. A view whose ``.data`` was reassigned no longer views the root."""
    for ref in list(root._views or ()):
        view = ref()
        if view is None or (written is not None and not np.may_share_memory(view.data, written)):
            continue
        if _link_holds(view):
            _take_node(view, _gather(root, _index_in_root(view), view.data.shape), tick)


def is_region_of(value, tensor, index) -> bool:
    """Whether ``value`` is the view ``tensor[index]`` itself, linked in the graph: ``x[i] += w``
    runs as ``x[i] = x[i].__iadd__(w)``, and the add already wrote through that view."""
    if getattr(value, "_view", None) is None or value._view[1] is None or value._node is None:
        return False  # not a view in the graph (a leaf view must get the write's gradient)
    try:
        return _same_memory(value.data, tensor.data[index])  # a basic index views; others copy
    except (IndexError, TypeError, ValueError):  # the write itself will say what is wrong
        return False


def _check_recordable(tensor, op: str) -> None:
    if not tensor.data.flags.writeable:  # a plain write gets NumPy's "assignment destination is read-only"
        raise ValueError(
            f"{op}: the tensor is read-only: its array cannot be written (an expanded view, as expand() and "
            "broadcast_to() make, shows one element at several positions; from_numpy() keeps a read-only "
            "array read-only); clone() it first"
        )
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
