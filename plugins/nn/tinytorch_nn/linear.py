"""The ``linear`` op: ``y = x @ weight.T + bias`` as one graph node with its own backward."""

from __future__ import annotations

from tinytorch_core import Function
from tinytorch_core.checks import require_one_float_dtype, shape_of
from tinytorch_core.flops import OpCall


def linear_flops(call: OpCall) -> int:
    """2 * in FLOPs per output element for the product, plus 1 for the bias."""
    out, in_features = call.output_size(), call.inputs[1][-1]
    has_bias = len(call.inputs) > 2 and isinstance(call.inputs[2], tuple)
    return 2 * out * in_features + (out if has_bias else 0)


def linear_backward_flops(call: OpCall) -> int:
    """A product of the forward's size for dx and for dweight, one sum per element for dbias."""
    out, in_features = call.output_size(), call.inputs[1][-1]
    needs = call.needs_input_grad
    return 2 * out * in_features * (needs[0] + needs[1]) + (out if needs[2] else 0)


class LinearFunction(Function):
    """``y = x @ weight.T + bias`` for ``x`` of shape (..., in), weight (out, in), bias (out,) or None.

    Every leading axis of ``x`` is flattened into the rows of one matrix, so a batch of
    sequences (B, T, in) is one (B * T, in) matrix product. Backward, on those rows:
    ``dx = dy @ weight``, ``dweight = dy.T @ x``, ``dbias = dy summed over the rows``.
    """

    flops = staticmethod(linear_flops)
    backward_flops = staticmethod(linear_backward_flops)

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        require_one_float_dtype(ctx, x, weight, bias)
        ctx.save_for_backward(x, weight)
        return linear_forward(x, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        return linear_backward(grad, x, weight, ctx.needs_input_grad)


def linear_forward(x, weight, bias):
    """The forward arithmetic on arrays: ``x @ weight.T + bias``, rows flattened and restored."""
    out = _rows(x) @ weight.T
    if bias is not None:
        out = out + bias
    return out if x.ndim == 2 else out.reshape(*x.shape[:-1], weight.shape[0])


def linear_backward(grad, x, weight, needs_input_grad):
    """The backward arithmetic on arrays: the gradients of x, weight and bias (None where
    ``needs_input_grad`` says no one asked)."""
    need_x, need_weight, need_bias = needs_input_grad
    grad_rows = _rows(grad)
    grad_x = grad_weight = grad_bias = None
    if need_x:
        grad_x = (grad_rows @ weight).reshape(x.shape)
    if need_weight:
        grad_weight = grad_rows.T @ _rows(x)
    if need_bias:
        grad_bias = grad_rows.sum(axis=0)
    return grad_x, grad_weight, grad_bias


def _rows(a):
    """``a`` (..., features) as one (rows, features) matrix; a 2-D array already is one."""
    return a if a.ndim == 2 else a.reshape(-1, a.shape[-1])


def linear(x, weight, bias=None):
    """``x @ weight.T + bias``: x (..., in_features), weight (out_features, in_features), bias (out_features,)."""
    check_linear_operands("linear", x, weight, bias)
    return LinearFunction.apply(x, weight, bias)


def check_linear_operands(op, x, weight, bias) -> None:
    """A clear error, naming ``op``, for a weight that is not 2-D, an input whose last axis is
    not the weight's in_features, or a bias that is not (out_features,) (the forward checks that
    they are floats of one dtype)."""
    xs, ws = shape_of(x), shape_of(weight)
    if len(ws) != 2:
        raise ValueError(f"{op}: weight must be 2-D (out_features, in_features), got shape {ws}")
    if len(xs) == 0 or xs[-1] != ws[1]:
        raise ValueError(
            f"{op}: input of shape {xs} does not fit weight {ws}: the input's last dimension "
            f"must be in_features={ws[1]}"
        )
    if bias is not None and shape_of(bias) != (ws[0],):
        raise ValueError(f"{op}: bias must have shape ({ws[0]},) to match weight {ws}, got {shape_of(bias)}")
