"""The backward engine: iterative, one visit per node, validated gradients.

``backward(root)`` runs in four steps:

1. seed: the gradient of the root (ones for a one-element loss);
2. count: how many edges lead into each node from the nodes above it (``_count_consumers``);
3. walk: nodes run in topological order (Kahn's algorithm): a node runs its backward once
   every consumer has sent its gradient, so it runs once, with their sum;
4. deliver: each input's gradient is checked and fitted to the input (``gradients.fitted_gradient``), then either
   stored as a leaf's ``.grad`` or added to the pending gradient of the input's node.

Three seams let code act *during* a pass. Tensor hooks (``x.register_hook``, ``hooks.py``) see a
tensor's summed gradient and may replace it. Data-parallel training sends each gradient as soon as
it is final, while the rest of backward runs: a leaf's post-accumulate-grad hooks run once its
``.grad`` holds every contribution of the pass (step 2 also counts the edges into hooked
leaves), and ``queue_callback(fn)`` runs ``fn`` when the pass has delivered every gradient.
Unused, they cost a few attribute reads per node and per leaf edge and one empty list per pass.

The same pass serves ``autograd.grad``: with a ``capture`` it hands the gradients it was asked
for to the capture instead of storing any leaf's ``.grad``.

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
from .hooks import run_hooks
from .inplace import IN_PLACE_CLOCK, REWRITTEN, node_seen_by, saved_array_changed_in_place
from .observers import BACKWARD
from .tensor import Tensor


def backward(root: Tensor, grad=None, retain_graph: bool = False) -> None:
    """``root.backward(grad)``: the gradient of ``root`` into every leaf's ``.grad``."""
    run_pass([(root, grad)], retain_graph)


def run_pass(seeds: list, retain_graph: bool = False, capture=None, name: str = BACKWARD) -> None:
    """One backward pass from the roots ``[(tensor, gradient or None), ...]``. With a ``capture``
    (``autograd.grad``) the gradients of the tensors it asks for go there, and no leaf's ``.grad`` changes."""
    if type(retain_graph) is not bool:  # "no" would read as True
        retain_graph = true_or_false(retain_graph, "retain_graph", "backward()")
    pending, leaf_seeds = {}, []  # node -> the gradient of each output; the seeds of roots that are leaves
    for root, grad in seeds:  # step 1
        seed = seed_gradient(root, grad)
        if root._node is None:  # a leaf: its own gradient is the seed
            leaf_seeds.append((root, seed))
            continue
        slots = pending.setdefault(root._node, [None] * root._node._n_outputs)
        slots[root._out_index] = seed if slots[root._out_index] is None else slots[root._out_index] + seed
    modes = current_modes()
    grad_on, modes.grad = modes.grad, False  # a backward pass records nothing
    errstate = set_errstate(IGNORE_FLOATING_POINT_ERRORS)  # IEEE results, no RuntimeWarning
    observer = modes.observer  # a profiler watching this thread, or None (observers.py)
    started = None if observer is None else observer.pass_started(name)
    outer_callbacks, modes.pass_callbacks = modes.pass_callbacks, []
    try:
        walk = _Walk(pending, *_count_consumers(list(pending), leaf_seeds, capture), retain_graph, capture)
        if capture is not None:
            capture.find_nodes_to_run(list(pending))
        for leaf, seed in leaf_seeds:
            walk.deliver_to_leaf(leaf, seed)
        walk.run(modes.anomaly, observer)
        for callback in modes.pass_callbacks:  # the pass's end: every gradient is delivered
            callback()
    finally:
        modes.pass_callbacks = outer_callbacks
        reset_errstate(errstate)
        modes.grad = grad_on
        if observer is not None:
            observer.pass_finished(started)


class _Walk:
    """Steps 3 and 4 of one pass, and the state they share."""

    def __init__(self, pending: dict, consumers: dict, leaf_edges: dict, retain_graph: bool, capture):
        self.pending = pending  # node -> the gradient of each output, summed so far
        self.consumers = consumers  # node -> edges into it still to deliver
        self.leaf_edges = leaf_edges  # leaf with hooks (or asked for by a capture) -> edges still to deliver
        self.retain_graph = retain_graph
        self.capture = capture  # autograd.grad's: where the asked-for gradients go, or None
        self.claimed: set[int] = set()  # ids of arrays already stored as some leaf's .grad
        self.leaf_sums: dict = {}  # leaf with tensor hooks -> its gradient so far (the hooks see the sum)
        # leaves whose gradient is summed before it is stored (they have tensor hooks, or a capture
        # is on): decided when the pass starts, so a hook removed during it strands nothing
        self.summed_leaves = {leaf for leaf in leaf_edges if leaf._hooks is not None or capture is not None}

    def run(self, anomaly: bool, observer) -> None:
        """Step 3: run every node once, when all its consumers have sent their gradients."""
        pending, consumers, leaf_edges, capture = self.pending, self.consumers, self.leaf_edges, self.capture
        claimed, retain_graph = self.claimed, self.retain_graph
        ready = [node for node in pending if consumers[node] == 0]
        while ready:
            node = ready.pop()
            if capture is not None and node not in capture.to_run:  # autograd.grad: nothing asked for below
                if capture.asks_for_outputs_of(node):
                    self.final_output_grads(node)
                pending.pop(node)
                continue
            if node._hooks or node._retained is not None or capture is not None:
                self.final_output_grads(node)
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
                    if leaf_edges and tensor in leaf_edges:  # counted at the start: hooks, or a capture
                        self.deliver_to_leaf(tensor, g)
                    else:  # no hooks when the pass started (one added since acts from the next pass)
                        accumulate_leaf(tensor, g, claimed)
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

    def final_output_grads(self, node) -> None:
        """``node``'s output gradients are summed: its tensors' hooks run on them, then the
        tensors that asked to keep theirs (``retain_grad``, ``autograd.grad``) get them."""
        output_grads = self.pending[node]
        if node._hooks:
            for index, hooks in tuple(node._hooks.items()):  # a hook may add or remove hooks
                if output_grads[index] is not None:
                    output_grads[index] = run_hooks(hooks, output_grads[index])
                    self.claimed.add(id(output_grads[index]))  # a hook may keep it: a .grad gets a copy
        if self.capture is not None:
            self.capture.take_outputs(node, output_grads)
        if node._retained is not None:  # outputs that keep their gradient (retain_grad): final now
            for index, tensor in node._retained.items():
                if output_grads[index] is not None:
                    accumulate_leaf(tensor, output_grads[index], self.claimed)  # copied when shared, as a leaf's is

    def deliver_to_leaf(self, leaf: Tensor, g) -> None:
        """Step 4 for a leaf counted at the start (it has hooks, or a capture asks for it): tensor
        hooks see the leaf's whole gradient of the pass, then it goes to ``.grad`` (or to the
        capture) and the post-accumulate-grad hooks run."""
        if self.capture is not None and not self.capture.wants_leaf(leaf):
            return  # autograd.grad: leaves it was not asked about keep their .grad as it is
        if leaf in self.summed_leaves:
            self.leaf_sums[leaf] = g if leaf not in self.leaf_sums else self.leaf_sums[leaf] + g
        else:  # post-accumulate hooks only when the pass started: added as it comes
            accumulate_leaf(leaf, g, self.claimed)
        self.leaf_edges[leaf] -= 1
        if self.leaf_edges[leaf]:
            return
        if leaf in self.summed_leaves:  # the leaf's last contribution: its gradient of the pass is whole
            g = self.leaf_sums.pop(leaf)
            if leaf._hooks:
                g = run_hooks(leaf._hooks, g)
                self.claimed.add(id(g))  # a hook may keep the array it saw: .grad gets its own copy
            if self.capture is not None:
                self.capture.take_leaf(leaf, g)
                return
            accumulate_leaf(leaf, g, self.claimed)
        _run_grad_hooks(leaf)


def _count_consumers(root_nodes: list, leaf_seeds: list, capture) -> tuple[dict, dict]:
    """Step 2: for every node reachable from the roots, how many edges lead into it; and the same
    for every leaf with hooks (or, in a pass that captures, every leaf)."""
    consumers, leaf_edges = dict.fromkeys(root_nodes, 0), {}
    for leaf, _ in leaf_seeds:  # a root that is a leaf receives its seed
        leaf_edges[leaf] = leaf_edges.get(leaf, 0) + 1
    stack = list(root_nodes)
    while stack:
        node = stack.pop()
        for tensor in node._parents:
            if tensor is None:
                continue
            source = node_seen_by(node, tensor)[0] if REWRITTEN else tensor._node
            if source is None:
                if tensor._grad_hooks is not None or tensor._hooks is not None or capture is not None:
                    leaf_edges[tensor] = leaf_edges.get(tensor, 0) + 1
                continue
            if source not in consumers:
                consumers[source] = 0
                stack.append(source)
            consumers[source] += 1
    return consumers, leaf_edges


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
