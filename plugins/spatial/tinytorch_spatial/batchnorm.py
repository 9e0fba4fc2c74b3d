"""2-D batch normalisation: per-channel statistics over (N, H, W)."""

from __future__ import annotations

import numbers

import numpy as np

from tinytorch_core import Function, Tensor, no_grad
from tinytorch_core import flops as count  # FLOP formulas
from tinytorch_core.checks import array_of, computed_in_float32, not_floating, true_or_false

from .geometry import array_shape, check_nchw

__all__ = ["BatchNorm2dFunction", "batch_norm2d"]

AXES = (0, 2, 3)  # every axis but the channels: the statistics are per channel


def _per_channel(values):
    """A (C,) vector shaped (1, C, 1, 1), to broadcast over NCHW."""
    return values.reshape(1, -1, 1, 1)


class BatchNorm2dFunction(Function):
    """``(x - mean) / sqrt(var + eps) * weight + bias`` with per-channel statistics.

    ``batch_stats=True`` (training): ``mean``/``var`` are the batch statistics of ``x`` over
    (N, H, W), biased variance; they are computed here when not passed in, and the backward
    accounts for their dependence on ``x``. ``batch_stats=False`` (eval): ``mean``/``var`` are
    constants (the running statistics). ``weight``/``bias`` may be None (no affine part).
    """

    flops = staticmethod(count.per_input_element_times(7))  # mean, subtract, square, sum, normalize, scale, shift

    @staticmethod
    def forward(ctx, x, weight=None, bias=None, mean=None, var=None, batch_stats=True, eps=1e-5):
        if x.dtype.kind != "f":
            raise not_floating(ctx, x)
        stored, x = x.dtype, computed_in_float32(x)
        if batch_stats and mean is None:
            mean = x.mean(axis=AXES)
        if batch_stats and var is None:
            var = x.var(axis=AXES)
        dtype = x.dtype
        rstd = 1.0 / np.sqrt(np.asarray(var, dtype) + dtype.type(eps))
        xhat = (x - _per_channel(np.asarray(mean, dtype))) * _per_channel(rstd)
        y = xhat.copy() if weight is None else xhat * _per_channel(weight)  # xhat is saved: never hand it out
        if bias is not None:
            y += _per_channel(bias)
        ctx.save_for_backward(xhat, rstd, weight)
        ctx.batch_stats = batch_stats
        return y.astype(stored, copy=False)

    @staticmethod
    def backward(ctx, grad):
        xhat, rstd, weight = ctx.saved_tensors
        needs = ctx.needs_input_grad
        grad_b = grad.sum(axis=AXES)
        grad_w = (grad * xhat).sum(axis=AXES)
        grad_x = None
        if needs[0]:
            scale = _per_channel(rstd if weight is None else rstd * weight)
            if ctx.batch_stats:
                # d/dx of the normalised value, with the batch mean and variance depending on x
                count = grad.size // grad.shape[1]
                grad_x = (grad - _per_channel(grad_b / count) - xhat * _per_channel(grad_w / count)) * scale
            else:
                grad_x = grad * scale
        return grad_x, grad_w if needs[1] else None, grad_b if needs[2] else None


def batch_norm2d(x, running_mean=None, running_var=None, weight=None, bias=None, training=False,
                 momentum=0.1, eps=1e-5):
    """Batch normalisation of NCHW ``x`` over (N, H, W) per channel; PyTorch's ``F.batch_norm``
    arguments, so evaluation (``training=False``) by default, as there.

    Training: normalises with the batch mean and biased variance, and updates the running
    buffers in place (when given) with the unbiased variance:
    ``running = (1 - momentum) * running + momentum * batch``. Eval: uses the running buffers.
    """
    return checked_batch_norm2d(x, running_mean, running_var, weight, bias, training, momentum, eps,
                                "batch_norm2d")


def checked_batch_norm2d(x, running_mean, running_var, weight, bias, training, momentum, eps, where: str):
    """``batch_norm2d`` whose errors name ``where`` (the layer that called it, say)."""
    shape = check_nchw(x, where)
    for name, value in (("running_mean", running_mean), ("running_var", running_var),
                        ("weight", weight), ("bias", bias)):
        if value is not None and array_shape(value, name, where) != (shape[1],):
            raise ValueError(
                f"{where}: input has {shape[1]} channel(s) (shape {shape}) but {name} has shape "
                f"{array_shape(value, name, where)}; expected ({shape[1]},)"
            )
    check_momentum_and_eps(momentum, eps, where)
    if not true_or_false(training, "training", where):
        if running_mean is None or running_var is None:
            raise ValueError(f"{where}: evaluation mode needs running_mean and running_var, got None")
        mean, var = array_of(running_mean), array_of(running_var)
        if not (np.isfinite(mean).all() and np.isfinite(var).all() and (var >= 0).all()):  # a loaded state, say
            raise ValueError(f"{where}: running_mean must be finite and running_var finite and >= 0 to normalise "
                             f"in evaluation mode; running_var holds values in [{var.min()}, {var.max()}], "
                             f"running_mean in [{mean.min()}, {mean.max()}]")
        return BatchNorm2dFunction.apply(x, weight, bias, mean=array_of(running_mean), var=array_of(running_var),
                                         batch_stats=False, eps=eps)
    count = shape[0] * shape[2] * shape[3]
    if count < 2:
        raise ValueError(
            f"{where}: training needs more than one value per channel to compute batch statistics, "
            f"got input shape {shape}"
        )
    with np.errstate(all="ignore"):  # outside apply: inf input gives inf/NaN stats silently, as in the op
        values = computed_in_float32(array_of(x))  # float16 adds up in float32
        mean = values.mean(axis=AXES)
        var = values.var(axis=AXES)
    y = BatchNorm2dFunction.apply(x, weight, bias, mean=mean, var=var, batch_stats=True, eps=eps)
    _update_running(running_mean, mean, momentum)  # after the op: an input it refuses changes nothing
    _update_running(running_var, var * (count / (count - 1)), momentum)  # the unbiased variance
    return y


def check_momentum_and_eps(momentum, eps, where: str) -> None:
    """``momentum`` in [0, 1] and ``eps`` > 0, both real numbers (not bools)."""
    def is_real(value):
        return isinstance(value, numbers.Real) and not isinstance(value, bool)

    if not is_real(momentum) or not 0.0 <= momentum <= 1.0:
        raise ValueError(f"{where}: momentum must be a number in [0, 1], got {momentum!r}")
    if not is_real(eps) or not eps > 0:
        raise ValueError(f"{where}: eps must be positive, got {eps!r}")


def _update_running(buffer, batch_value, momentum: float) -> None:
    """``buffer = (1 - momentum) * buffer + momentum * batch_value``, in place (None: no buffer)."""
    if buffer is None:
        return
    if isinstance(buffer, Tensor):
        with no_grad():
            buffer.mul_(1.0 - momentum)
            buffer.add_(batch_value, alpha=momentum)
    else:
        buffer *= 1.0 - momentum
        buffer += momentum * batch_value
