"""``autograd.grad``: the gradients of outputs with respect to tensors you name, returned
instead of added to ``.grad`` (PyTorch's ``torch.autograd.grad``).

It runs an ordinary backward pass (``engine.run_pass``) with a ``Capture``: where the engine
would store a leaf's gradient in ``.grad``, or has summed a computed tensor's gradient, the
capture keeps it if it was asked for. No leaf's ``.grad`` changes and no post-accumulate-grad
hook runs; tensor hooks (``register_hook``) and ``retain_grad`` work as in ``backward()``. As in
PyTorch, only the nodes that lead to an asked-for tensor run: the rest of the graph is neither
run nor freed, and its hooks do not fire.
"""

from __future__ import annotations

import numpy as np

from .checks import true_or_false
from .engine import run_pass
from .function import GraphError
from .inplace import node_seen_by
from .tensor import Tensor

#: the pass's name for observers: a compiled step's recorder refuses it (a replay fills .grad)
GRAD = "grad"


class Capture:
    """The gradients of the tensors ``autograd.grad`` asks for, filled in by the engine."""

    def __init__(self, tensors: tuple):
        self.grads = [None] * len(tensors)
        self._leaves, self._outputs = {}, {}  # id(leaf) / (node, output index) -> positions in tensors
        for position, t in enumerate(tensors):
            if t._node is None:
                self._leaves.setdefault(id(t), []).append(position)
            else:
                self._outputs.setdefault((t._node, t._out_index), []).append(position)

    def find_nodes_to_run(self, root_nodes: list) -> None:
        """``to_run``: the nodes below the roots whose backward leads to an asked-for tensor
        (a depth-first walk that decides each node after all the nodes below it)."""
        leads = {}  # node -> whether its backward leads to an asked-for tensor (False while undecided)
        stack = [(node, False) for node in root_nodes]
        while stack:
            node, below_decided = stack.pop()
            sources = [(tensor, node_seen_by(node, tensor)) for tensor in node._parents if tensor is not None]
            if below_decided:
                leads[node] = any(self.wants_leaf(tensor) if source is None
                                  else leads[source] or (source, index) in self._outputs
                                  for tensor, (source, index) in sources)
            elif node not in leads:
                leads[node] = False
                stack.append((node, True))
                stack.extend((source, False) for _, (source, _) in sources if source is not None and source not in leads)
        self.to_run = {node for node, reaches in leads.items() if reaches}

    def asks_for_outputs_of(self, node) -> bool:
        return any(asked_node is node for asked_node, _ in self._outputs)

    def wants_leaf(self, leaf: Tensor) -> bool:
        return id(leaf) in self._leaves

    def take_leaf(self, leaf: Tensor, g: np.ndarray) -> None:
        for position in self._leaves[id(leaf)]:
            self.grads[position] = g.copy()  # the engine's array may be shared or read-only

    def take_outputs(self, node, output_grads: list) -> None:
        """``node`` is about to run: the summed gradients of its outputs are final."""
        for index, g in enumerate(output_grads):
            for position in self._outputs.get((node, index), ()) if g is not None else ():
                self.grads[position] = g.copy()


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=None,
         is_grads_batched=False, materialize_grads=False) -> tuple:
    """The gradients of ``outputs`` (a tensor or a sequence) with respect to each of ``inputs``, as
    a tuple of tensors; ``grad_outputs`` seeds non-scalar outputs, as ``backward(gradient)``
    does. An input the outputs do not depend on is an error unless ``allow_unused`` (then None,
    or zeros with ``materialize_grads``)."""
    if create_graph is not False or is_grads_batched is not False:
        raise NotImplementedError("autograd.grad: create_graph (higher-order gradients) and is_grads_batched "
                                  "are not supported")
    outputs, inputs = _tensors("outputs", outputs), _tensors("inputs", inputs)
    seeds = _seeds(outputs, grad_outputs)
    materialize = true_or_false(materialize_grads, "materialize_grads", "autograd.grad")
    allow_unused = materialize if allow_unused is None else true_or_false(allow_unused, "allow_unused", "autograd.grad")
    for position, t in enumerate(inputs):
        if not t.requires_grad:
            raise GraphError(f"autograd.grad: input {position} does not require grad; there is no gradient to find")
    capture = Capture(inputs)
    run_pass(seeds, False if retain_graph is None else retain_graph, capture, GRAD)
    return tuple(_result(position, t, g, allow_unused, materialize) for position, (t, g)
                 in enumerate(zip(inputs, capture.grads)))


def _tensors(name: str, value) -> tuple:
    iterable = hasattr(value, "__iter__") and not isinstance(value, (str, bytes, np.ndarray))  # a generator too
    tensors = (value,) if isinstance(value, Tensor) else tuple(value) if iterable else None
    if not tensors or not all(isinstance(t, Tensor) for t in tensors):
        raise TypeError(f"autograd.grad: {name} must be a Tensor or a non-empty sequence of Tensors, "
                        f"got {type(value).__name__}")
    return tensors


def _seeds(outputs: tuple, grad_outputs) -> list:
    """``[(output, its gradient or None), ...]``: one gradient per output, as given."""
    if grad_outputs is None or isinstance(grad_outputs, (Tensor, np.ndarray)):
        grad_outputs = (grad_outputs,) * len(outputs) if grad_outputs is None else (grad_outputs,)
    grad_outputs = tuple(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"autograd.grad: {len(grad_outputs)} grad_outputs for {len(outputs)} outputs; give one "
                         "per output (None for a one-element output)")
    for k, (output, given) in enumerate(zip(outputs, grad_outputs)):
        if not output.requires_grad:
            raise GraphError(f"autograd.grad: output {k} does not require grad: nothing it was computed from does")
        if given is None and output.data.size != 1:
            raise GraphError(f"autograd.grad: output {k} has shape {output.data.shape}; pass its gradient in "
                             "grad_outputs, or reduce it to one element first (.sum())")
    return list(zip(outputs, grad_outputs))


def _result(position: int, tensor: Tensor, g, allow_unused: bool, materialize: bool):
    if g is not None:
        return Tensor._wrap(g)
    if not allow_unused:
        raise GraphError(f"autograd.grad: input {position} was not used to compute the outputs; pass "
                         "allow_unused=True to get None for it")
    return Tensor._wrap(np.zeros_like(tensor.data)) if materialize else None
