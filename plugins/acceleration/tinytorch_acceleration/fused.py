"""Fused kernels: two ops' work as one op, for a replay to run in place of the pair.

A fused kernel is an ordinary registered op (``acceleration::linear_relu``), gradient-checked
through its samples like every other op, and callable by anyone. ``compile`` uses it when a
recorded step runs the pair it fuses (``fusion.py``); the user's model and its eager steps are
never rewritten. Its arithmetic is the pair's own, step for step, so a replay that uses it gives
bitwise the eager step's results.
"""

from __future__ import annotations

import numpy as np

from tinytorch_core import Function, Sample
from tinytorch_core.checks import require_one_float_dtype
from tinytorch_core.flops import OpCall
from tinytorch_nn.linear import (
    check_linear_operands,
    linear_backward,
    linear_backward_flops,
    linear_flops,
    linear_forward,
)


def linear_relu_flops(call: OpCall) -> int:
    """The linear op's FLOPs and one max per output element."""
    return linear_flops(call) + call.output_size()


def linear_relu_backward_flops(call: OpCall) -> int:
    """The linear op's backward and one product per output element (ReLU's mask)."""
    return linear_backward_flops(call) + call.output_size()


class LinearReLUFunction(Function):
    """``relu(x @ weight.T + bias)`` as one node.

    Forward: the linear op's arithmetic, then ``max(., 0)`` written over the product (nothing
    needs the pre-activation again). Backward: ReLU's ``grad * ~(out <= 0)``, then the linear op's
    backward. Against the two ops it saves an array, a node and a gradient handed between them.
    """

    flops = staticmethod(linear_relu_flops)
    backward_flops = staticmethod(linear_relu_backward_flops)

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        require_one_float_dtype(ctx, x, weight, bias)
        out = linear_forward(x, weight, None)  # the product, a fresh array: bias and ReLU go into it in place
        if bias is not None:
            np.add(out, bias, out=out)  # one dtype: checked above
        np.maximum(out, 0, out=out)  # ReLU: the same values as np.maximum(out, 0)
        ctx.save_for_backward(x, weight, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight, out = ctx.saved_tensors
        grad = grad * ~(out <= 0)  # ReLU's backward
        return linear_backward(grad, x, weight, ctx.needs_input_grad)


def linear_relu(x, weight, bias=None):
    """``relu(x @ weight.T + bias)`` as one op: x (..., in_features), weight (out_features,
    in_features), bias (out_features,) or None."""
    check_linear_operands("linear_relu", x, weight, bias)
    return LinearReLUFunction.apply(x, weight, bias)


def linear_relu_samples(rng):
    """Gradient-check samples whose pre-activations keep away from ReLU's kink at 0 (a finite
    difference across it would disagree with either one-sided derivative)."""
    for x_shape, out_features, with_bias in (((4, 5), 3, True), ((2, 3, 4), 2, False), ((3,), 2, True)):
        while True:
            x = rng.standard_normal(x_shape)
            weight = rng.standard_normal((out_features, x_shape[-1]))
            bias = rng.standard_normal(out_features) if with_bias else None
            pre = x @ weight.T + (0 if bias is None else bias)
            if np.abs(pre).min() > 0.1 and (pre > 0).any():
                break
        yield Sample(x, weight, bias) if with_bias else Sample(x, weight)
