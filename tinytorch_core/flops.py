"""FLOP formulas: how many floating-point operations one op call does, from its shapes.

An op states its count with its ``Function``: ``flops`` for the forward and ``backward_flops``
for the backward, each a function of an ``OpCall`` returning an int. An op without a formula
reports no count ("-" in a profile), never a guess.

The conventions, those of the usual FLOP counters:

- a multiply-add is 2 FLOPs: a (M, K) @ (K, N) product is 2*M*N*K;
- an elementwise step is 1 FLOP per element it writes, whatever the function (exp counts 1);
- a reduction is 1 FLOP per element it reads;
- moving data (reshape, transpose, indexing, joining, casts, copies) is 0 FLOPs;
- a fused op counts its matrix products and the elementwise steps its docstring names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(slots=True)
class OpCall:
    """What a FLOP formula sees of one op call: shapes and options, never the data."""

    inputs: tuple  # per positional argument: its shape if it is an array, else the value itself
    outputs: tuple  # the shape of each output
    options: dict = field(default_factory=dict)  # the keyword arguments
    needs_input_grad: tuple = ()  # per positional input: does the backward compute its gradient

    def size(self, shape) -> int:
        """Elements in an array of ``shape`` (1 for a number)."""
        return math.prod(shape) if isinstance(shape, tuple) else 1

    def output_size(self) -> int:
        return sum(self.size(shape) for shape in self.outputs)

    def gradients_computed(self) -> int:
        """How many of the inputs get a gradient from the backward."""
        return sum(bool(n) for n in self.needs_input_grad)


def per_output_element(call: OpCall) -> int:
    """Elementwise ops: one FLOP per output element."""
    return call.output_size()


def per_input_element(call: OpCall) -> int:
    """Reductions: one FLOP per element of the (first) input."""
    return call.size(call.inputs[0])


def no_arithmetic(call: OpCall) -> int:
    """Data movement: reshapes, transposes, indexing, joins, casts and copies."""
    return 0


def per_output_element_per_gradient(call: OpCall) -> int:
    """The backward of a binary elementwise op: one product per output element for each
    input whose gradient it computes."""
    return call.output_size() * call.gradients_computed()


def matmul(call: OpCall) -> int:
    """``a @ b``: 2*K FLOPs per output element, K the contracted length."""
    return 2 * call.output_size() * call.inputs[0][-1]


def matmul_backward(call: OpCall) -> int:
    """One product of the forward's size per input that needs its gradient
    (``grad @ b.T`` for ``a``, ``a.T @ grad`` for ``b``)."""
    return matmul(call) * call.gradients_computed()


def variance(call: OpCall) -> int:
    """Four FLOPs per input element: sum for the mean, subtract it, square, sum."""
    return 4 * call.size(call.inputs[0])


def per_input_element_times(steps: int):
    """The formula of a fused op that makes ``steps`` elementwise passes over its first input."""

    def formula(call: OpCall) -> int:
        return steps * call.size(call.inputs[0])

    formula.__doc__ = f"{steps} FLOPs per element of the first input."
    return formula
