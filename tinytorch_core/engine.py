"""The backward engine: iterative, one visit per node, validated gradients.

Nodes are processed in topological order (Kahn's algorithm over the number of
consumers each node has inside the graph), so every node runs its backward once
with the sum of all gradients that reach it, and depth is limited only by memory,
never by Python's recursion limit.
"""

from __future__ import annotations

import numpy as np

from .anomaly import check_backward
from .backend import IGNORE_FLOATING_POINT_ERRORS, reset_errstate, set_errstate
from .function import GraphError, _saved_changed_in_place
from .grad_mode import current_modes
from .tensor import IN_PLACE_CLOCK, REWRITTEN, Tensor

_ndarray = np.ndarray
_make_tensor = Tensor._wrap


_UNIT_SEEDS: dict = {}


def _seed_for(root: Tensor):
    """The implicit gradient of a one-element root: ones of its shape and dtype. The 0-d case
    (every loss) is one cached, read-only array: a backward that wrongly wrote into its
    incoming gradient fails loudly instead of corrupting the next seed."""
    data = root.data
    if data.ndim:
        return np.ones_like(data)
    seed = _UNIT_SEEDS.get(data.dtype)
    if seed is None:
        seed = _UNIT_SEEDS[data.dtype] = np.ones((), data.dtype)
        seed.setflags(write=False)
    return seed


def backward(root: Tensor, grad=None, retain_graph: bool = False) -> None:
    if not root.requires_grad:
        raise GraphError(
            "backward() was called on a tensor that does not require grad: it was not created with "
            "requires_grad=True, was computed under no_grad(), or holds integer/bool data"
        )
    if grad is None:
        if root.data.size != 1:
            raise GraphError(
                f"backward() of a non-scalar tensor (shape {root.data.shape}) needs a gradient "
                "argument of the same shape, e.g. t.backward(np.ones_like(t.data)), or reduce "
                "it first (t.sum().backward())"
            )
        seed = _seed_for(root)
    else:
        seed = np.array(grad.data if isinstance(grad, Tensor) else grad, dtype=root.data.dtype)
        if seed.shape != root.data.shape:
            raise GraphError(
                f"backward(): the gradient argument has shape {seed.shape}, "
                f"expected the tensor's shape {root.data.shape}"
            )

    claimed: set[int] = set()  # ids of arrays already stored as some leaf's .grad
    node = root._node
    if node is None:
        _accumulate_leaf(root, seed, claimed)
        return

    # how many inputs of graph nodes each node feeds: a node runs once all of them reported
    # tensors written in place after joining a graph (usually none): which node each consumer saw
    rewritten = REWRITTEN if REWRITTEN else None
    consumers = {node: 0}
    stack = [node]
    while stack:
        consumer = stack.pop()
        for p in consumer._parents:
            if p is not None:
                pn = p._node
                if rewritten is not None and id(p) in rewritten:
                    pn = _edge_seen_by(consumer, p)[0]
                if pn is not None:
                    count = consumers.get(pn)
                    if count is None:
                        consumers[pn] = 1
                        stack.append(pn)
                    else:
                        consumers[pn] = count + 1

    # pending gradients: the array itself for single-output nodes, a list of slots otherwise
    if node._output_meta is None:
        pending = {node: seed}
    else:
        pending = {node: [None] * node._n_outputs}
        pending[node][root._out_index] = seed
    ready = [node]
    modes = current_modes()
    grad_on = modes.grad
    modes.grad = False
    errstate = set_errstate(IGNORE_FLOATING_POINT_ERRORS)  # IEEE results (inf, nan), no RuntimeWarning
    anomaly = modes.anomaly
    try:
        # The loop body is the hot path of every backward: kept inline, with fast paths
        # for the common case (gradient already in the input's shape and dtype).
        while ready:
            n = ready.pop()
            out_grads = pending.pop(n)
            if n._saved is None:
                raise GraphError(
                    f"backward through {n.display_name()} a second time: its saved arrays were freed by "
                    "the first backward(); pass retain_graph=True to that first call"
                )
            recorded = n._recorded
            if recorded is not None and recorded[0] != IN_PLACE_CLOCK.now and _saved_changed_in_place(n):
                raise GraphError(
                    f"{n.display_name()}: an array it saved for backward was modified in place after "
                    "the forward; gradients would be wrong. Use an out-of-place operation or clone "
                    "the tensor before modifying it"
                )
            try:
                if n._output_meta is None:
                    result = n.backward(n, out_grads)
                else:  # several outputs: the ones that got no gradient contribute zeros
                    result = n.backward(n, *[
                        np.zeros(shape, dtype) if g is None else g
                        for g, (shape, dtype) in zip(out_grads, n._output_meta)
                    ])
            except GraphError:
                raise
            except Exception as exc:
                if hasattr(exc, "add_note"):
                    exc.add_note(f"raised in the backward of {n.display_name()}")
                raise
            if type(result) is not tuple:
                result = (result,)
            parents = n._parents
            if len(result) != len(parents) and not (
                len(result) > len(parents) and all(g is None for g in result[len(parents):])
            ):  # one per input; None for the inputs of forward the caller did not pass is fine
                raise GraphError(
                    f"backward of {n.display_name()} returned {len(result)} gradient(s) for "
                    f"{len(parents)} forward input(s); return one per input (None for non-tensors)"
                )
            index = -1
            for p in parents:
                index += 1
                if p is None:
                    continue
                g = result[index]
                if type(g) is not _ndarray:
                    if g is None:
                        raise GraphError(
                            f"backward of {n.display_name()} returned None for input {index}, which "
                            "requires grad; return its gradient (zeros if it truly has none)"
                        )
                    g = np.asarray(g)
                target = p.data
                if g.shape != target.shape:
                    g = _unbroadcast(g, target.shape, n, index)
                if g.dtype is not target.dtype and g.dtype != target.dtype:  # identity: the cheap common case
                    g = g.astype(target.dtype)
                if anomaly:
                    check_backward(n, index, g)
                pn = p._node
                if rewritten is not None and id(p) in rewritten:  # n may have consumed an earlier value of p
                    pn = _edge_seen_by(n, p)[0]
                if pn is None:
                    if p.grad is None and g.base is None and id(g) not in claimed and g.flags.writeable:
                        claimed.add(id(g))  # the first gradient of this leaf, an array of its own
                        p.grad = _make_tensor(g)
                    else:
                        _accumulate_leaf(p, g, claimed)
                    continue
                if pn._output_meta is None:
                    waiting = pending.get(pn)
                    pending[pn] = g if waiting is None else waiting + g
                else:
                    slots = pending.get(pn)
                    if slots is None:
                        slots = pending[pn] = [None] * pn._n_outputs
                    k = p._out_index if pn is p._node else _edge_seen_by(n, p)[1]
                    slots[k] = g if slots[k] is None else slots[k] + g
                remaining = consumers[pn] - 1
                consumers[pn] = remaining
                if remaining == 0:
                    ready.append(pn)
            if not retain_graph:
                n._saved = None
                n._recorded = None  # and the inputs it kept for that check
    finally:
        reset_errstate(errstate)
        modes.grad = grad_on


def _edge_seen_by(consumer, tensor):
    """``(node, output index)`` that ``tensor`` had when ``consumer`` was recorded: a tensor
    written in place afterwards has a newer node, and ``REWRITTEN[id(tensor)]`` lists the ones before
    (with the clock tick of each write)."""
    for tick, node, out_index in REWRITTEN[id(tensor)]:
        if consumer._created_at < tick:
            return node, out_index
    return tensor._node, tensor._out_index


def _unbroadcast(g, shape, node, index):
    """Sum a gradient computed in the broadcast shape back to the input's shape."""
    original = g.shape
    lead = g.ndim - len(shape)
    if lead > 0:
        g = g.sum(axis=tuple(range(lead)))
    if lead >= 0:
        axes = tuple(k for k, s in enumerate(shape) if s == 1 and g.shape[k] != 1)
        if axes:
            g = g.sum(axis=axes, keepdims=True)
    if g.shape != shape:
        raise GraphError(
            f"backward of {node.display_name()} returned a gradient of shape {original} for "
            f"input {index}, whose shape is {shape} (not reducible by un-broadcasting)"
        )
    return g


def _accumulate_leaf(leaf: Tensor, g, claimed: set) -> None:
    # A stored gradient must own its memory: users and optimizers modify .grad in place.
    existing = leaf.grad
    if existing is None:
        if g.base is not None or id(g) in claimed or not g.flags.writeable:
            g = g.copy()
        claimed.add(id(g))
        leaf.grad = Tensor._wrap(g)
    else:
        # out of place: g may still be pending elsewhere in this backward pass
        leaf.grad = Tensor._wrap(existing.data + g)
