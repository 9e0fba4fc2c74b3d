"""The differentiable ops of stage ``nn``: one fused ``Function`` per op, plus the functional API.

Every op here is a single ``Function`` with a hand-written backward, so a layer costs one graph
node instead of a chain of primitives (``linear`` is one matrix product with its bias,
``cross_entropy`` is log-softmax, pick and mean in one step with the ``softmax - onehot``
backward). The formulas are the numerically stable ones: nothing overflows or warns for
inputs of size +-1000, and float32 stays float32.

The ``*Function`` classes are what the plugin registers as ``nn::<name>`` ops; the lower-case
functions are the user-facing API: they validate their arguments with a clear error and call
``<Class>.apply``.
"""

from __future__ import annotations

import functools
import math
import numbers

import numpy as np

from tinytorch_core import Function, Tensor, array_module, resolve_generator
from tinytorch_core.backend import column_sums, extremes, row_sums, scalar, sum_all
from tinytorch_core.dtypes import not_floating

from .special import erfc

__all__ = [
    "BCE_EPS",
    "BinaryCrossEntropyFunction", "BinaryCrossEntropyWithLogitsFunction", "CrossEntropyFunction",
    "DropoutFunction", "GELUFunction", "LeakyReLUFunction", "LinearFunction", "LogSoftmaxFunction",
    "MSELossFunction", "NLLLossFunction", "ReLUFunction", "SigmoidBinaryCrossEntropyFunction",
    "SigmoidFunction", "SoftmaxFunction", "TanhFunction",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "dropout", "gelu",
    "leaky_relu", "linear", "log_softmax", "mse_loss", "nll_loss", "relu", "sigmoid", "softmax", "tanh",
]

_REDUCTIONS = ("mean", "sum", "none")

_UNSIGNED = {size: np.dtype(f"u{size}") for size in (1, 2, 4, 8)}

# whole-array sum as a direct ufunc call: the ndarray method adds a Python-level wrapper that
# costs more than the reduction itself on the small arrays losses see
_array_sum = np.add.reduce


def _data(x):
    return x.data if isinstance(x, Tensor) else x


def _shape(x) -> tuple:
    if isinstance(x, Tensor):
        return x.data.shape
    return x.shape if isinstance(x, np.ndarray) else np.shape(x)


def _as_array(x):
    """The array behind ``x`` (a Tensor's data, an ndarray, or a nested list converted once)."""
    x = _data(x)
    return x if isinstance(x, np.ndarray) else np.asarray(x)


def _check_reduction(op: str, reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _normalize_axis(op: str, axis, ndim: int) -> int:
    if not isinstance(axis, numbers.Integral):
        raise TypeError(f"{op}: axis must be an int, got {type(axis).__name__}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for an input with {ndim} dimension(s)")
    return int(axis) % ndim


def _reduce(loss, reduction):
    if reduction == "mean":
        # sum / size: ndarray.mean is ~4x slower on the small arrays losses usually reduce
        return _array_sum(loss, axis=None) / loss.size if loss.size else np.array(np.nan, dtype=loss.dtype)
    if reduction == "sum":
        return _array_sum(loss, axis=None)
    return loss


def _grad_scale(grad, reduction, n):
    """The factor a per-element loss gradient is multiplied by (0-d, or elementwise for 'none')."""
    if reduction == "mean":
        # Python arithmetic on the one number: a 0-d NumPy division costs several times more
        return np.array(float(grad) / n, grad.dtype) if n else grad * 0
    return grad


# ---- linear ------------------------------------------------------------------------------------
class LinearFunction(Function):
    """``y = x @ weight.T + bias`` for ``x`` of shape (..., in), weight (out, in), bias (out,) or None."""

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        if x.dtype.kind != "f" or weight.dtype.kind != "f":
            raise not_floating(ctx, x if x.dtype.kind != "f" else weight)
        ctx.save_for_backward(x, weight)
        if x.ndim > 2:  # one 2-D matrix product is faster than a broadcast batched matmul
            out = (x.reshape(-1, x.shape[-1]) @ weight.T).reshape(*x.shape[:-1], weight.shape[0])
        else:
            out = x @ weight.T
        if bias is not None:
            if bias.dtype == out.dtype:
                out += bias
            else:
                out = out + bias
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        if grad.ndim == 2:  # (batch, features): no reshapes needed
            g2, x2 = grad, x
        else:
            g2, x2 = grad.reshape(-1, weight.shape[0]), x.reshape(-1, x.shape[-1])
        grad_x = grad_w = grad_b = None
        if need_x:
            grad_x = g2 @ weight
            if grad_x.shape != x.shape:
                grad_x = grad_x.reshape(x.shape)
        if need_w:
            grad_w = g2.T @ x2
        if need_b:
            grad_b = column_sums(g2)
        return grad_x, grad_w, grad_b


def linear(x, weight, bias=None):
    """``x @ weight.T + bias``: x (..., in_features), weight (out_features, in_features), bias (out_features,)."""
    xs = x.data.shape if isinstance(x, Tensor) else _shape(x)
    ws = weight.data.shape if isinstance(weight, Tensor) else _shape(weight)
    if len(ws) != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape {ws}")
    if len(xs) == 0 or xs[-1] != ws[1]:
        raise ValueError(
            f"linear: input of shape {xs} does not fit weight {ws}: the input's last dimension "
            f"must be in_features={ws[1]}"
        )
    if bias is not None and (bias.data.shape if isinstance(bias, Tensor) else _shape(bias)) != (ws[0],):
        raise ValueError(f"linear: bias must have shape ({ws[0]},) to match weight {ws}, got {_shape(bias)}")
    return LinearFunction.apply(x, weight, bias)


# ---- activations -------------------------------------------------------------------------------
class ReLUFunction(Function):
    @staticmethod
    def forward(ctx, x):
        out = np.maximum(x, scalar(0, x.dtype))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (out > scalar(0, out.dtype))


def relu(x):
    """``max(x, 0)``; the gradient at exactly 0 is taken as 0."""
    return ReLUFunction.apply(x)


class LeakyReLUFunction(Function):
    @staticmethod
    def forward(ctx, x, negative_slope=0.01):
        if x.dtype.kind != "f":
            raise not_floating(ctx, x)
        positive = x > 0
        ctx.save_for_backward(positive)
        ctx.negative_slope = negative_slope
        return np.where(positive, x, x * negative_slope)

    @staticmethod
    def backward(ctx, grad):
        (positive,) = ctx.saved_tensors
        return np.where(positive, grad, grad * ctx.negative_slope)


def leaky_relu(x, negative_slope=0.01):
    """``x`` where positive, ``negative_slope * x`` elsewhere."""
    if not isinstance(negative_slope, numbers.Real):
        raise TypeError(f"leaky_relu: negative_slope must be a number, got {type(negative_slope).__name__}")
    return LeakyReLUFunction.apply(x, negative_slope=float(negative_slope))


def _exp_neg_abs(x):
    """``exp(-|x|)``: in (0, 1] for every x, so it never overflows."""
    e = np.abs(x)
    np.negative(e, out=e)
    np.exp(e, out=e)
    return e


class SigmoidFunction(Function):
    """``1 / (1 + exp(-x))``: a few ulps of relative error in both tails, no cancellation.

    ``-x`` is capped where ``exp`` would overflow, so nothing overflows or warns: where the
    true sigmoid is below the smallest normal number (x below about -87 in float32, -708 in
    float64) the result stops at ``1 / (1 + largest float)``, about 3e-39 and 6e-309.
    Five array operations, fewer than the seven of a branch-free ``exp(-|x|)`` form. Backward
    ``s (1 - s)``, as in PyTorch: zero where s rounds to 1 (x above about 17 in float32, 37 in
    float64).
    """

    @staticmethod
    def forward(ctx, x):
        if x.dtype.kind != "f":
            raise not_floating(ctx, x)
        s = _sigmoid(x)
        ctx.save_for_backward(s)
        return s

    @staticmethod
    def backward(ctx, grad):
        (s,) = ctx.saved_tensors
        slope = scalar(1, s.dtype) - s
        slope *= s
        slope *= grad
        return slope


@functools.lru_cache(maxsize=None)
def _largest_exp_argument(dtype):
    """The largest x whose exp(x) is finite in ``dtype`` (88.72 float32, 709.78 float64)."""
    bound = np.log(np.finfo(dtype).max).astype(dtype)
    with np.errstate(over="ignore"):
        while not np.isfinite(np.exp(bound)):  # log rounded up: step down into range
            bound = np.nextafter(bound, dtype.type(0))
    return scalar(bound, dtype)


def _sigmoid(x):
    dtype = x.dtype
    s = np.negative(x)
    # capped where exp would overflow: a true sigmoid below ~1e-38 (float32) comes out as
    # ~3e-39, and nothing warns; cheaper than silencing the overflow with np.errstate
    np.minimum(s, _largest_exp_argument(dtype), out=s)
    np.exp(s, out=s)
    s += scalar(1, dtype)
    np.reciprocal(s, out=s)
    return s


def sigmoid(x):
    return SigmoidFunction.apply(x)


class TanhFunction(Function):
    @staticmethod
    def forward(ctx, x):
        if x.dtype.kind != "f":
            raise not_floating(ctx, x)
        out = np.tanh(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (1.0 - out * out)


def tanh(x):
    return TanhFunction.apply(x)


_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715


class GELUFunction(Function):
    """GELU, ``x * Phi(x)``. ``approximate='none'``: the exact normal CDF via erfc;
    ``'tanh'``: ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``. Each backward
    differentiates its own forward formula."""

    @staticmethod
    def forward(ctx, x, approximate="none"):
        if x.dtype.kind != "f":
            raise not_floating(ctx, x)
        ctx.approximate = approximate
        if approximate == "tanh":
            inner = x * x
            inner *= _GELU_CUBIC
            inner += 1.0
            inner *= x
            inner *= _SQRT_2_OVER_PI
            t = np.tanh(inner, out=inner)
            ctx.save_for_backward(x, t)
            out = t + 1.0
            out *= x
            out *= 0.5
            return out
        # Phi(x) = erfc(-x / sqrt 2) / 2 keeps full relative precision in the left tail
        cdf = erfc(x * -_SQRT_HALF)
        cdf *= 0.5
        ctx.save_for_backward(x, cdf)
        return x * cdf

    @staticmethod
    def backward(ctx, grad):
        if ctx.approximate == "tanh":
            x, t = ctx.saved_tensors
            x2 = x * x
            # d/dx [0.5 x (1 + t)] = 0.5 (1 + t) + 0.5 x (1 - t^2) * sqrt(2/pi) (1 + 3 c x^2)
            d_inner = x2 * (3.0 * _GELU_CUBIC)
            d_inner += 1.0
            d_inner *= _SQRT_2_OVER_PI
            d_inner *= 1.0 - t * t
            d_inner *= x
            d_inner += 1.0 + t
            d_inner *= 0.5
            return grad * d_inner
        x, cdf = ctx.saved_tensors
        pdf = x * x
        pdf *= -0.5
        np.exp(pdf, out=pdf)
        pdf *= _INV_SQRT_2PI
        pdf *= x
        pdf += cdf
        return grad * pdf


def gelu(x, approximate="none"):
    """Gaussian error linear unit; ``approximate`` is ``'none'`` (exact erf form) or ``'tanh'``."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELUFunction.apply(x, approximate=approximate)


class SoftmaxFunction(Function):
    @staticmethod
    def forward(ctx, x, axis=-1):
        if x.dtype.kind != "f":
            raise not_floating(ctx, x)
        y = x - x.max(axis=axis, keepdims=True)  # max-subtraction: exp never overflows
        np.exp(y, out=y)
        y /= y.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        gy = grad * y
        gy -= y * gy.sum(axis=ctx.axis, keepdims=True)
        return gy


def softmax(x, axis=-1):
    """``exp(x) / sum(exp(x))`` along ``axis``, computed after subtracting the maximum."""
    return SoftmaxFunction.apply(x, axis=_normalize_axis("softmax", axis, len(_shape(x))))


class LogSoftmaxFunction(Function):
    @staticmethod
    def forward(ctx, x, axis=-1):
        if x.dtype.kind != "f":
            raise not_floating(ctx, x)
        z = x - x.max(axis=axis, keepdims=True)
        z -= np.log(np.exp(z).sum(axis=axis, keepdims=True))
        ctx.save_for_backward(z)
        ctx.axis = axis
        return z

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        g = np.exp(out)
        g *= grad.sum(axis=ctx.axis, keepdims=True)
        np.subtract(grad, g, out=g)
        return g


def log_softmax(x, axis=-1):
    """``x - logsumexp(x)`` along ``axis`` (stable for very negative or very large logits)."""
    return LogSoftmaxFunction.apply(x, axis=_normalize_axis("log_softmax", axis, len(_shape(x))))


# ---- dropout -----------------------------------------------------------------------------------
class DropoutFunction(Function):
    """``x * mask`` for a given mask that already holds the ``1 / (1 - p)`` scaling."""

    @staticmethod
    def forward(ctx, x, mask=None):
        if x.dtype.kind != "f":
            raise not_floating(ctx, x)
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask


def dropout(x, p=0.5, training=True, generator=None):
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    Identity when ``training`` is False or ``p == 0``. ``generator`` is a
    ``numpy.random.Generator`` (its stream advances) or an int seed (the same mask on
    every call with that seed); None draws from the default generator.
    """
    if not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be a probability in [0, 1], got {p!r}")
    if not training or p == 0:
        return x
    data = _as_array(x)
    dtype = data.dtype if data.dtype.kind == "f" else np.dtype(np.float32)
    xp = array_module(data)
    if p == 1:
        mask = xp.zeros(data.shape, dtype=dtype)
    else:
        rng = resolve_generator(generator)
        uniform_dtype = np.float32 if dtype == np.float32 else np.float64
        keep = rng.random(data.shape, dtype=uniform_dtype) >= p
        mask = keep.astype(dtype)
        mask *= 1.0 / (1.0 - p)
    return DropoutFunction.apply(x, mask=mask)


# ---- regression and binary losses ----------------------------------------------------------------
class MSELossFunction(Function):
    @staticmethod
    def forward(ctx, input, target, reduction="mean"):
        if input.dtype.kind != "f":
            raise not_floating(ctx, input)
        diff = input - target
        ctx.save_for_backward(diff)
        ctx.reduction = reduction
        if reduction == "none":
            return diff * diff
        flat = diff.reshape(-1)
        total = np.dot(flat, flat)  # one pass, no squared temporary
        if reduction == "sum":
            return total
        return total / flat.size if flat.size else np.array(np.nan, dtype=diff.dtype)

    @staticmethod
    def backward(ctx, grad):
        (diff,) = ctx.saved_tensors
        g = diff * (2.0 * _grad_scale(grad, ctx.reduction, diff.size))
        need_input, need_target = ctx.needs_input_grad[:2]
        return (g if need_input else None), (-g if need_target else None)


def _loss_operands(op, input, target, probabilities=False):
    """The target as an array of the input's float dtype (integer 0/1 labels are fine), or as
    itself when it is a tensor that requires grad (it keeps its own dtype); with
    ``probabilities``, checked to lie in [0, 1]. One function without helpers: every training
    step of a small model runs it."""
    data = input.data if isinstance(input, Tensor) else np.asarray(input)
    differentiable = False
    if isinstance(target, Tensor):
        t, differentiable = target.data, target.requires_grad
    else:
        t = target if isinstance(target, np.ndarray) else np.asarray(target)
    if t.shape != data.shape:
        raise ValueError(f"{op}: input shape {data.shape} and target shape {t.shape} must be equal")
    if probabilities and t.size:
        lo, hi = extremes(t)
        if not (lo >= 0 and hi <= 1):  # also catches NaN
            raise ValueError(
                f"{op}: target must be probabilities in [0, 1], found values in "
                f"[{t.dtype.type(lo)}, {t.dtype.type(hi)}]"
            )
    if differentiable:
        return target
    dtype = data.dtype
    if t.dtype is not dtype and t.dtype != dtype and dtype.kind == "f":
        t = t.astype(dtype)  # e.g. integer 0/1 labels: compute in the input's precision
    return t


def mse_loss(input, target, reduction="mean"):
    """Mean squared error ``(input - target)**2``, reduced by ``reduction`` (mean/sum/none)."""
    _check_reduction("mse_loss", reduction)
    target = _loss_operands("mse_loss", input, target)
    return MSELossFunction.apply(input, target, reduction=reduction)


_EPS_BY_DTYPE: dict = {}


def _bce_eps(dtype) -> float:
    eps = _EPS_BY_DTYPE.get(dtype)
    if eps is None:
        eps = _EPS_BY_DTYPE[dtype] = float(np.finfo(dtype).eps)
    return eps


#: probabilities are clamped to [eps, 1 - eps], eps = machine epsilon of the input's dtype
BCE_EPS = {"float32": _bce_eps(np.float32), "float64": _bce_eps(np.float64)}


def _bce_forward(p, target, reduction):
    """Clamped BCE of probabilities ``p``: returns ``(loss, clamped p, log(p / (1 - p)))``, where
    the clamped p *is* ``p`` when the clamp has nothing to do.

    It rejects ``p`` outside [0, 1] (or NaN) itself, so the registered ops are safe to call
    directly; the min and max taken for that check also say whether the clamp has anything
    to do (usually not, and then it costs nothing).
    """
    if p.size:
        lo, hi = extremes(p)
        if not (lo >= 0 and hi <= 1):  # also catches NaN
            raise ValueError(
                f"binary_cross_entropy: input must be probabilities in [0, 1], found values in "
                f"[{p.dtype.type(lo)}, {p.dtype.type(hi)}] (apply sigmoid first, or use "
                "binary_cross_entropy_with_logits on raw scores)"
            )
        eps = _bce_eps(p.dtype)
        if lo < eps or hi > 1.0 - eps:  # np.clip, without its dispatch cost
            p = np.maximum(p, scalar(eps, p.dtype))
            np.minimum(p, scalar(1.0 - eps, p.dtype), out=p)
    log_q = np.log1p(-p)
    log_ratio = np.log(p)
    log_ratio -= log_q  # log(p / (1 - p)); the loss is -(t * log_ratio + log_q)
    # (from p even when p is a sigmoid's output: taking the logits as log_ratio would leave
    # log_q's rounding near p = 1 in the loss of a target of 1, which this form cancels)
    if reduction != "none" and type(target) is np.ndarray and target.shape == p.shape and target.dtype == p.dtype:
        # the reduced loss without the per-element array: two dot products, added as Python
        # floats (0-d NumPy arithmetic costs more than the dot products)
        total = -(float(np.vdot(target, log_ratio)) + float(sum_all(log_q)))
        if reduction == "mean":
            total = total / p.size if p.size else math.nan
        return np.array(total, p.dtype), p, log_ratio
    loss = target * log_ratio
    loss += log_q
    np.negative(loss, out=loss)
    return _reduce(loss, reduction), p, log_ratio


class BinaryCrossEntropyFunction(Function):
    """``-(t log p + (1 - t) log(1 - p))`` on probabilities ``p`` clamped to ``[eps, 1 - eps]``."""

    @staticmethod
    def forward(ctx, input, target, reduction="mean"):
        if input.dtype.kind != "f":
            raise not_floating(ctx, input)
        loss, p, log_ratio = _bce_forward(input, target, reduction)
        ctx.save_for_backward(p, target, log_ratio if ctx.needs_input_grad[1] else None)
        ctx.reduction = reduction
        return loss

    @staticmethod
    def backward(ctx, grad):
        p, target, log_ratio = ctx.saved_tensors
        scale = _grad_scale(grad, ctx.reduction, p.size)
        need_input, need_target = ctx.needs_input_grad[:2]
        grad_input = grad_target = None
        if need_input:
            # d/dp at the clamped p: a saturated wrong prediction still gets a (large) push back
            variance = scalar(1, p.dtype) - p
            variance *= p
            grad_input = p - target
            grad_input /= variance
            grad_input *= scale
        if need_target:
            grad_target = -log_ratio * scale
        return grad_input, grad_target


class SigmoidBinaryCrossEntropyFunction(Function):
    """``binary_cross_entropy(sigmoid(logits), target)`` as one node: the same clamped value,
    with the gradient ``(s - t)`` times the reduction's scale.

    That is the chain rule's gradient wherever the clamp is inactive, in two array operations
    instead of the eight of the two separate backwards, and one graph node less. Where the
    clamp is active (s within eps of 0 or 1) the gradient goes straight through it, as BCE's
    own does: a confident wrong prediction keeps a push back of about 1 per element, where
    the two-node chain multiplies BCE's push back by the sigmoid's vanishing slope.

    ``binary_cross_entropy`` records this node by itself when its input is the fresh output
    of ``sigmoid``, passing that output as ``probabilities`` (a detached tensor: not
    differentiated, but its in-place changes are still caught), so the sigmoid is not computed
    twice. Without ``probabilities`` the forward computes them.
    """

    @staticmethod
    def forward(ctx, logits, target, probabilities=None, reduction="mean"):
        if logits.dtype.kind != "f":
            raise not_floating(ctx, logits)
        if probabilities is None:
            probabilities = _sigmoid(logits)
        elif ctx.needs_input_grad[2] or probabilities.shape != logits.shape:
            raise ValueError(
                "sigmoid_binary_cross_entropy: probabilities must be sigmoid(logits), detached "
                f"and of the logits' shape {logits.shape}; got shape {probabilities.shape}"
            )
        loss, _, log_ratio = _bce_forward(probabilities, target, reduction)
        ctx.save_for_backward(probabilities, target, log_ratio if ctx.needs_input_grad[1] else None)
        ctx.reduction = reduction
        return loss

    @staticmethod
    def backward(ctx, grad):
        s, target, log_ratio = ctx.saved_tensors
        scale = _grad_scale(grad, ctx.reduction, s.size)
        need = ctx.needs_input_grad
        grad_logits = grad_target = None
        if need[0]:  # dL/dp * ds/dx = (s - t) / (s (1 - s)) * s (1 - s)
            grad_logits = s - target
            grad_logits *= scale
        if need[1]:
            grad_target = -log_ratio * scale
        return grad_logits, grad_target, None  # none for the probabilities


def binary_cross_entropy(input, target, reduction="mean"):
    """Binary cross-entropy on probabilities ``input`` in [0, 1] (e.g. after ``sigmoid``).

    ``input`` is clamped to ``[eps, 1 - eps]`` with ``eps`` the machine epsilon of its dtype
    (1.19e-7 float32, 2.22e-16 float64; see ``BCE_EPS``), so each element's loss is at most
    about 15.9 (float32) / 36.0 (float64) and never infinite. Prefer
    ``binary_cross_entropy_with_logits``: it is exact where the probability saturates.

    On the fresh output of ``sigmoid`` (not changed in place since) it records one node from
    the logits, ``nn::sigmoid_binary_cross_entropy``: the same value, the gradient ``s - t``
    (see ``SigmoidBinaryCrossEntropyFunction``).
    """
    _check_reduction("binary_cross_entropy", reduction)
    target = _loss_operands("binary_cross_entropy", input, target, probabilities=True)
    producer = input._node if isinstance(input, Tensor) else None
    if type(producer) is SigmoidFunction and input._version == 0:
        # the fresh output of sigmoid: one node from the logits, gradient (s - t) * scale
        logits = producer.inputs[0]
        return SigmoidBinaryCrossEntropyFunction.apply(logits, target, input.detach(), reduction=reduction)
    return BinaryCrossEntropyFunction.apply(input, target, reduction=reduction)


class BinaryCrossEntropyWithLogitsFunction(Function):
    """``max(x, 0) - x t + log(1 + exp(-|x|))``: BCE of ``sigmoid(x)``, stable for any ``x``."""

    @staticmethod
    def forward(ctx, input, target, reduction="mean"):
        if input.dtype.kind != "f":
            raise not_floating(ctx, input)
        e = _exp_neg_abs(input)
        loss = np.maximum(input, 0)
        loss -= input * target
        loss += np.log1p(e)
        ctx.save_for_backward(input, target, e)
        ctx.reduction = reduction
        return _reduce(loss, reduction)

    @staticmethod
    def backward(ctx, grad):
        x, target, e = ctx.saved_tensors
        scale = _grad_scale(grad, ctx.reduction, x.size)
        need_input, need_target = ctx.needs_input_grad[:2]
        grad_input = grad_target = None
        if need_input:
            sig = np.where(x >= 0, 1.0, e) / (1.0 + e)
            sig -= target
            grad_input = sig * scale
        if need_target:
            grad_target = x * -scale
        return grad_input, grad_target


def binary_cross_entropy_with_logits(input, target, reduction="mean"):
    """Binary cross-entropy of ``sigmoid(input)`` against ``target`` in [0, 1], computed from
    the raw scores in the overflow-free form."""
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    target = _loss_operands("binary_cross_entropy_with_logits", input, target, probabilities=True)
    return BinaryCrossEntropyWithLogitsFunction.apply(input, target, reduction=reduction)


# ---- classification losses ---------------------------------------------------------------------
@functools.lru_cache(maxsize=16)
def _row_index(n: int) -> np.ndarray:
    """``arange(n)``, cached: every training step indexes the same batch size."""
    rows = np.arange(n)
    rows.setflags(write=False)
    return rows


@functools.lru_cache(maxsize=16)
def _row_starts(rows: int, width: int) -> np.ndarray:
    """Where each row of a C-contiguous (rows, width) array starts in its flat view, cached.
    One flat index array is about twice as fast to gather and scatter with as a (row, column) pair."""
    starts = np.arange(0, rows * width, width)
    starts.setflags(write=False)
    return starts


def _pick(a, target):
    """``a[n, target[n, ...], ...]``: the class-axis (axis 1) entry each target names."""
    if a.ndim == 2:
        return a[_row_index(a.shape[0]), target]
    return np.take_along_axis(a, np.expand_dims(target, 1), axis=1).squeeze(1)


def _subtract_at(a, target, values) -> None:
    """``a[n, target[n, ...], ...] -= values`` in place (each position is hit once)."""
    if a.ndim == 2:  # values is 0-d or has the target's shape: both broadcast
        a[_row_index(a.shape[0]), target] -= values
        return
    index = np.expand_dims(target, 1)
    current = np.take_along_axis(a, index, axis=1)
    current -= np.expand_dims(values, 1) if values.ndim else values
    np.put_along_axis(a, index, current, axis=1)


def _class_targets(op, input, target, ignore_index):
    """Validate integer class targets against ``input`` (N, C, d1, ...) or (C,).

    Returns ``(safe_target, valid)``: ``safe_target`` has ignored entries replaced by class 0,
    ``valid`` is the bool mask of counted entries, or None when every entry counts.
    """
    shape = _shape(input)
    t = _as_array(target)
    if t.dtype.kind not in "iu":
        if t.dtype.kind == "f":
            raise TypeError(
                f"{op}: target must hold integer class indices, got floating-point dtype {t.dtype}; "
                "convert it with .astype(np.int64) (class probabilities are not supported as targets)"
            )
        raise TypeError(f"{op}: target must hold integer class indices, got dtype {t.dtype}")
    if len(shape) == 0:
        raise ValueError(f"{op}: input must have a class axis, shape (C,) or (N, C, ...), got a scalar")
    if len(shape) == 1:
        expected, n_classes = (), shape[0]
    else:
        expected, n_classes = (shape[0],) + tuple(shape[2:]), shape[1]
    if t.shape != expected:
        layout = "(N, C)" if len(shape) == 2 else "(N, C, d1, ...)" if len(shape) > 2 else "(C,)"
        raise ValueError(
            f"{op}: target shape {t.shape} does not fit input shape {shape} {layout}; expected target "
            f"shape {expected}, one class index per {'sample' if len(shape) <= 2 else 'sample and position'}"
        )
    valid = None
    if ignore_index is not None:
        valid = t != ignore_index
        if valid.all():
            valid = None
        else:
            t = np.where(valid, t, 0)
    # one arg-max checks both bounds: seen as unsigned, a negative index is larger than any class
    unsigned = t.view(_UNSIGNED[t.dtype.itemsize])
    if t.size and unsigned.item(unsigned.argmax()) >= n_classes:
        lo, hi = extremes(t)
        if lo < 0 or hi >= n_classes:
            bad = lo if lo < 0 else hi
            note = "" if ignore_index is None else f" (ignore_index={ignore_index})"
            raise IndexError(
                f"{op}: target holds class index {int(bad)}, but the input has C={n_classes} classes "
                f"(valid indices 0..{n_classes - 1}){note}"
            )
    if t.dtype == np.uint64:  # with int64 row offsets uint64 would promote to float64
        t = t.astype(np.intp)  # safe: every index is below n_classes by now
    return t, valid


def _class_grad_scale(grad, reduction, count, valid):
    coef = _grad_scale(grad, reduction, count)
    if valid is not None:
        coef = coef * valid
    return coef


class CrossEntropyFunction(Function):
    """Softmax cross-entropy of logits (N, C, ...) against integer targets (N, ...), fused:
    forward ``logsumexp(x) - x[target]`` (max-subtracted), backward ``softmax - onehot``."""

    @staticmethod
    def forward(ctx, logits, target=None, valid=None, label_smoothing=0.0, reduction="mean"):
        if logits.dtype.kind != "f":
            raise not_floating(ctx, logits)
        unbatched = logits.ndim == 1
        x = logits[None] if unbatched else logits
        t = target.reshape(1) if unbatched else target
        v = None if valid is None else (valid.reshape(1) if unbatched else valid)
        n_classes = x.shape[1]
        z = x - np.maximum.reduce(x, axis=1, keepdims=True)
        if z.ndim == 2:  # z is a fresh C-contiguous array: gather through its flat view
            flat = _row_starts(*z.shape) + t
            picked = z.reshape(-1)[flat]
        else:
            flat = None
            picked = _pick(z, t)
        if label_smoothing:
            z_sum = z.sum(axis=1)
        np.exp(z, out=z)
        sums = row_sums(z) if z.ndim == 2 else np.add.reduce(z, axis=1)
        z /= sums[:, None]  # z now holds the softmax, saved for backward
        lse = np.log(sums, out=sums)
        loss = lse - picked
        if label_smoothing:
            # PyTorch's definition: (1 - eps) * nll + eps * mean over classes of -log p
            loss *= 1.0 - label_smoothing
            smooth = lse * n_classes
            smooth -= z_sum
            smooth *= label_smoothing / n_classes
            loss += smooth
        if v is not None:
            loss *= v
        count = t.size if v is None else int(np.count_nonzero(v))
        ctx.save_for_backward(z)
        ctx.target, ctx.flat_target, ctx.valid, ctx.count = t, flat, v, count
        ctx.label_smoothing, ctx.reduction, ctx.unbatched = label_smoothing, reduction, unbatched
        if reduction == "none":
            return loss[0] if unbatched else loss
        total = sum_all(loss)
        if reduction == "sum":
            return total
        return total / count if count else np.array(np.nan, dtype=loss.dtype)

    @staticmethod
    def backward(ctx, grad):
        (probs,) = ctx.saved_tensors
        t, smoothing = ctx.target, ctx.label_smoothing
        if ctx.reduction == "none":
            grad = grad.reshape(t.shape)
        if ctx.valid is None and not smoothing and probs.ndim == 2 and ctx.reduction == "mean" and ctx.count:
            # the common case, inline: softmax / n, minus 1 / n at the target
            coef = _grad_scale(grad, "mean", ctx.count)
            g = probs * coef
            g.reshape(-1)[ctx.flat_target] -= coef
            return g[0] if ctx.unbatched else g
        coef = _class_grad_scale(grad, ctx.reduction, ctx.count, ctx.valid)
        coef_c = np.expand_dims(coef, 1) if coef.ndim else coef
        g = probs * coef_c
        _subtract_at(g, t, coef * (1.0 - smoothing) if smoothing else coef)
        if smoothing:
            g -= coef_c * (smoothing / probs.shape[1])
        return g[0] if ctx.unbatched else g


def cross_entropy(logits, target, ignore_index=None, label_smoothing=0.0, reduction="mean"):
    """Cross-entropy of raw ``logits`` against integer class ``target``.

    ``logits`` (N, C) or (N, C, d1, ...) (or (C,) for one sample), ``target`` (N,) or (N, d1, ...)
    of integer classes in ``0..C-1``. Entries equal to ``ignore_index`` contribute nothing and are
    left out of the mean. ``label_smoothing`` eps mixes the one-hot target with the uniform
    distribution: ``(1 - eps) * nll + eps * mean_c(-log p_c)``, as PyTorch defines it.
    """
    op = "cross_entropy"
    _check_reduction(op, reduction)
    if type(label_smoothing) is not float and not isinstance(label_smoothing, numbers.Real) or not (
        0.0 <= label_smoothing <= 1.0
    ):  # the float test first: an ABC isinstance check costs more than the whole comparison
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing!r}")
    t, valid = _class_targets(op, logits, target, ignore_index)
    return CrossEntropyFunction.apply(
        logits, target=t, valid=valid, label_smoothing=float(label_smoothing), reduction=reduction
    )


class NLLLossFunction(Function):
    """Negative log-likelihood ``-input[n, target[n]]`` of log-probabilities (N, C, ...)."""

    @staticmethod
    def forward(ctx, input, target=None, valid=None, reduction="mean"):
        if input.dtype.kind != "f":
            raise not_floating(ctx, input)
        unbatched = input.ndim == 1
        x = input[None] if unbatched else input
        t = target.reshape(1) if unbatched else target
        v = None if valid is None else (valid.reshape(1) if unbatched else valid)
        loss = -_pick(x, t)
        if v is not None:
            loss *= v
        count = t.size if v is None else int(np.count_nonzero(v))
        ctx.target, ctx.valid, ctx.count = t, v, count
        ctx.reduction, ctx.unbatched, ctx.input_meta = reduction, unbatched, (x.shape, x.dtype)
        if reduction == "none":
            return loss[0] if unbatched else loss
        if reduction == "sum":
            return loss.sum()
        return loss.sum() / count if count else np.array(np.nan, dtype=loss.dtype)

    @staticmethod
    def backward(ctx, grad):
        t = ctx.target
        if ctx.reduction == "none":
            grad = grad.reshape(t.shape)
        coef = _class_grad_scale(grad, ctx.reduction, ctx.count, ctx.valid)
        shape, dtype = ctx.input_meta
        g = array_module(grad).zeros(shape, dtype=dtype)
        _subtract_at(g, t, coef)
        return g[0] if ctx.unbatched else g


def nll_loss(input, target, ignore_index=None, reduction="mean"):
    """Negative log-likelihood of log-probabilities ``input`` (e.g. from ``log_softmax``),
    with the same shapes, ``ignore_index`` and ``reduction`` as ``cross_entropy``."""
    op = "nll_loss"
    _check_reduction(op, reduction)
    t, valid = _class_targets(op, input, target, ignore_index)
    return NLLLossFunction.apply(input, target=t, valid=valid, reduction=reduction)
