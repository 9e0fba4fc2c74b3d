"""The ``linear`` op: ``y = x @ weight.T + bias`` as one graph node with its own backward."""

from __future__ import annotations

from tinytorch_core import Function
from tinytorch_core.checks import not_floating, shape_of


class LinearFunction(Function):
    """``y = x @ weight.T + bias`` for ``x`` of shape (..., in), weight (out, in), bias (out,) or None.

    Every leading axis of ``x`` is flattened into the rows of one matrix, so a batch of
    sequences (B, T, in) is one (B * T, in) matrix product. Backward, on those rows:
    ``dx = dy @ weight``, ``dweight = dy.T @ x``, ``dbias = dy summed over the rows``.
    """

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        for operand in (x, weight):
            if operand.dtype.kind != "f":
                raise not_floating(ctx, operand)
        ctx.save_for_backward(x, weight)
        rows = x.reshape(-1, x.shape[-1])
        out = (rows @ weight.T).reshape(*x.shape[:-1], weight.shape[0])
        return out if bias is None else out + bias

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        need_x, need_weight, need_bias = ctx.needs_input_grad
        grad_rows = grad.reshape(-1, weight.shape[0])
        grad_x = grad_weight = grad_bias = None
        if need_x:
            grad_x = (grad_rows @ weight).reshape(x.shape)
        if need_weight:
            grad_weight = grad_rows.T @ x.reshape(-1, x.shape[-1])
        if need_bias:
            grad_bias = grad_rows.sum(axis=0)
        return grad_x, grad_weight, grad_bias


def linear(x, weight, bias=None):
    """``x @ weight.T + bias``: x (..., in_features), weight (out_features, in_features), bias (out_features,)."""
    xs, ws = shape_of(x), shape_of(weight)
    if len(ws) != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape {ws}")
    if len(xs) == 0 or xs[-1] != ws[1]:
        raise ValueError(
            f"linear: input of shape {xs} does not fit weight {ws}: the input's last dimension "
            f"must be in_features={ws[1]}"
        )
    if bias is not None and shape_of(bias) != (ws[0],):
        raise ValueError(f"linear: bias must have shape ({ws[0]},) to match weight {ws}, got {shape_of(bias)}")
    return LinearFunction.apply(x, weight, bias)
