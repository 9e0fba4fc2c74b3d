"""The backward engine: iterative, one visit per node, validated gradients.

``backward(root)`` runs in four steps:

1. seed: the gradient of the root (ones for a one-element loss);
2. count: how many edges lead into each node from the nodes above it (``_count_consumers``);
3. walk: nodes run in topological order (Kahn's algorithm): a node runs its backward once
   every consumer has sent its gradient, so it runs once, with their sum;
4. deliver: each input's gradient is checked and fitted to the input (``gradients.fitted_gradient``), then either
   stored as a leaf's ``.grad`` or added to the pending gradient of the input's node.

Two seams let code act *during* a pass (data-parallel training sends each gradient as soon as it
is final, while the rest of backward runs): a leaf's post-accumulate-grad hooks run once its
``.grad`` holds every contribution of the pass (step 2 also counts the edges into hooked
leaves), and ``queue_callback(fn)`` runs ``fn`` when the pass has delivered every gradient.
Unused, they cost one attribute read per leaf edge and one empty list per pass.

Depth is limited only by memory, never by Python's recursion limit.
"""

from __future__ import annotations

import numpy as np

from .anomaly import check_backward
from .checks import true_or_false
from .errstate import IGNORE_FLOATING_POINT_ERRORS, reset_errstate, set_errstate
from .function import GraphError
from .gradients import accumulate_leaf, fitted_gradient, seed_gradient
from .grad_mode import current_modes
from .inplace import IN_PLACE_CLOCK, REWRITTEN, node_seen_by, saved_array_changed_in_place
from .observers import BACKWARD
from .tensor import Tensor


def backward(root: Tensor, grad=None, retain_graph: bool = False) -> None:
    if type(retain_graph) is not bool:  # "no" would read as True
        retain_graph = true_or_false(retain_graph, "retain_graph", "backward()")
    seed = seed_gradient(root, grad)
    claimed: set[int] = set()  # ids of arrays already stored as some leaf's .grad
    if root._node is None:  # a leaf: its own gradient is the seed
        _backward_of_a_leaf(root, seed, claimed)
        return
    pending = {root._node: [None] * root._node._n_outputs}  # node -> the gradient of each output
    pending[root._node][root._out_index] = seed
    modes = current_modes()
    grad_on, modes.grad = modes.grad, False  # a backward pass records nothing
    errstate = set_errstate(IGNORE_FLOATING_POINT_ERRORS)  # IEEE results, no RuntimeWarning
    observer = modes.observer  # a profiler watching this thread, or None (observers.py)
    started = None if observer is None else observer.pass_started(BACKWARD)
    outer_callbacks, modes.pass_callbacks = modes.pass_callbacks, []
    try:
        _walk(root._node, pending, _count_consumers(root._node), claimed, retain_graph, modes.anomaly, observer)
        for callback in modes.pass_callbacks:  # the pass's end: every gradient is delivered
            callback()
    finally:
        modes.pass_callbacks = outer_callbacks
        reset_errstate(errstate)
        modes.grad = grad_on
        if observer is not None:
            observer.pass_finished(started)


def _walk(root_node, pending: dict, consumers: dict, claimed: set, retain_graph: bool, anomaly: bool, observer):
    """Step 3: run every node once, when all its consumers have sent their gradients."""
    ready = [root_node]
    while ready:
        node = ready.pop()
        if node._retained is not None:  # outputs that keep their gradient (retain_grad): final now
            _retain_output_grads(node, pending[node], claimed)
        if observer is None:
            input_grads = _run_node(node, pending.pop(node))
        else:  # a profiler times the node's backward
            started, output_grads = observer.op_started(type(node), BACKWARD), pending.pop(node)
            input_grads = _run_node(node, output_grads)
            observer.backward_finished(started, node, output_grads, input_grads)
        for index, tensor in enumerate(node._parents):
            if tensor is None:
                continue
            g = input_grads[index]
            if type(g) is not np.ndarray or g.shape != tensor.data.shape or g.dtype != tensor.data.dtype:
                g = fitted_gradient(g, tensor, node, index)
            if anomaly:
                check_backward(node, index, g)
            # step 4: deliver, to a leaf's .grad or to the pending sum of the node that made it
            source, out_index = node_seen_by(node, tensor) if REWRITTEN else (tensor._node, tensor._out_index)
            if source is None:
                accumulate_leaf(tensor, g, claimed)
                if tensor._grad_hooks is not None:
                    consumers[tensor] -= 1
                    if consumers[tensor] == 0:  # the leaf's last contribution: its .grad is final
                        _run_grad_hooks(tensor)
                continue
            if source not in pending:
                pending[source] = [None] * source._n_outputs
            slots = pending[source]
            slots[out_index] = g if slots[out_index] is None else slots[out_index] + g
            consumers[source] -= 1
            if consumers[source] == 0:
                ready.append(source)
        if not retain_graph:  # free what the node kept for backward
            node._saved, node._inputs, node._outputs = None, (), ()


def _retain_output_grads(node, output_grads: list, claimed: set) -> None:
    """Store each summed output gradient in the ``.grad`` of the tensor that asked to keep it."""
    for index, tensor in node._retained.items():
        if output_grads[index] is not None:
            accumulate_leaf(tensor, output_grads[index], claimed)  # copied when shared, as a leaf's is


def _backward_of_a_leaf(leaf: Tensor, seed, claimed: set) -> None:
    """A pass with no node to run: the seed goes to the leaf's ``.grad``; an observer still sees
    the pass (a compiled step's recorder must know that a gradient was delivered)."""
    observer = current_modes().observer
    started = None if observer is None else observer.pass_started(BACKWARD)
    try:
        accumulate_leaf(leaf, seed, claimed)
        _run_grad_hooks(leaf)
    finally:
        if observer is not None:
            observer.pass_finished(started)


def _count_consumers(root_node) -> dict:
    """Step 2: for every node reachable from ``root_node``, and every leaf with grad hooks, how
    many edges lead into it."""
    consumers = {root_node: 0}
    stack = [root_node]
    while stack:
        node = stack.pop()
        for tensor in node._parents:
            if tensor is None:
                continue
            source = node_seen_by(node, tensor)[0] if REWRITTEN else tensor._node
            if source is None:
                if tensor._grad_hooks is not None:
                    consumers[tensor] = consumers.get(tensor, 0) + 1
                continue
            if source not in consumers:
                consumers[source] = 0
                stack.append(source)
            consumers[source] += 1
    return consumers


def _run_node(node, output_grads: list) -> tuple:
    """Step 3, for one node: its backward, given the summed gradient of each output."""
    if node._saved is None:
        raise GraphError(
            f"backward through {node.display_name()} a second time: the graph was freed by the first "
            "backward(), with the arrays its ops saved; pass retain_graph=True to that first call"
        )
    if node._recorded_at != IN_PLACE_CLOCK.now and saved_array_changed_in_place(node):
        raise GraphError(
            f"{node.display_name()}: an array it saved for backward was modified in place after "
            "the forward; gradients would be wrong. Use an out-of-place operation or clone the "
            "tensor before modifying it"
        )
    if node._output_specs is not None:  # outputs that got no gradient contribute zeros
        output_grads = [np.zeros(shape, dtype) if g is None else g
                        for g, (shape, dtype) in zip(output_grads, node._output_specs)]
    try:
        result = node.backward(node, *output_grads)
    except GraphError:
        raise
    except Exception as exc:
        if hasattr(exc, "add_note"):  # Python >= 3.11
            exc.add_note(f"raised in the backward of {node.display_name()}")
        raise
    result = result if type(result) is tuple else (result,)
    n_inputs = len(node._parents)  # extra Nones: for forward inputs the caller did not pass
    if len(result) != n_inputs and (len(result) < n_inputs or any(g is not None for g in result[n_inputs:])):
        raise GraphError(
            f"backward of {node.display_name()} returned {len(result)} gradient(s) for "
            f"{n_inputs} forward input(s); return one per input (None for non-tensors)"
        )
    return result


def _run_grad_hooks(leaf: Tensor) -> None:
    """A leaf's ``.grad`` is final for this pass: call its post-accumulate-grad hooks."""
    for hook in leaf._grad_hooks or ():
        hook(leaf)


def queue_callback(callback) -> None:
    """Run ``callback()`` when the backward pass now running has delivered every gradient (before
    ``backward()`` returns; not when the pass raises). Call it during a pass, from a hook."""
    callbacks = current_modes().pass_callbacks
    if callbacks is None:
        raise GraphError("queue_callback() is called during a backward pass (from a grad hook); no pass is running")
    callbacks.append(callback)
