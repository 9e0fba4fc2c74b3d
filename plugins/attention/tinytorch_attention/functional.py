"""The attention stage's two kernels, each one ``Function`` with a hand-derived backward.

``layer_norm``: normalise over the last axis (biased variance), then scale and shift.
``scaled_dot_product_attention``: ``softmax(q k^T * scale + mask) v`` (``scale = 1 / sqrt(D)``
unless given) with batched matmuls over every leading (batch, head) axis and the fused softmax
backward.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from tinytorch_core import Function, Sample, Tensor, resolve_generator
from tinytorch_core import flops as count  # FLOP formulas
from tinytorch_core.checks import (array_of, axis_or_dim, broadcasts_to, keepdims_or_keepdim, not_floating, positive_int,
                                   computed_in_float32, require_one_float_dtype, shape_of,
                                   true_or_false)
from tinytorch_core.flops import OpCall


# ---- layer norm ---------------------------------------------------------------------------------
class LayerNormFunction(Function):
    """``(x - mean) / sqrt(var + eps) * weight + bias`` over the last ``normalized_ndim`` axes
    (the last one, by default).

    Backward, with ``xhat`` the normalised input, ``g = dy * weight`` and means over the
    normalised axes: ``dx = rstd * (g - mean(g) - xhat * mean(g * xhat))``,
    ``dweight = sum(dy * xhat)``, ``dbias = sum(dy)`` (sums over every leading axis).
    """

    flops = staticmethod(count.per_input_element_times(7))  # mean, subtract, square, sum, normalize, scale, shift

    @staticmethod
    def forward(ctx, x, weight, bias, eps=1e-5, normalized_ndim=1):
        require_one_float_dtype(ctx, x, weight, bias)
        axes = tuple(range(-normalized_ndim, 0))
        dtype, x = x.dtype, computed_in_float32(x)
        width = math.prod(x.shape[-normalized_ndim:])  # means as sum / width, not np.mean (its Python wrapper): -11 % of a compiled W6 step
        centered = x - x.sum(axis=axes, keepdims=True) / width
        var = (centered * centered).sum(axis=axes, keepdims=True) / width  # biased, as in PyTorch
        if np.isfinite(var).all():
            rstd = 1 / np.sqrt(var + eps)
            xhat = centered * rstd
        else:  # the squares overflowed (|x| near 1e19 in float32): rstd would be 0 and xhat all zeros
            xhat, rstd = _normalized_in_units_of_the_largest(centered, axes, width, eps)
        out = xhat if weight is None else xhat * weight
        if bias is not None:
            out = out + bias
        ctx.save_for_backward(xhat, rstd, weight)
        ctx.axes = axes
        return out.astype(dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        xhat, rstd, weight = ctx.saved_tensors
        axes = ctx.axes
        need_x, need_weight, need_bias = ctx.needs_input_grad[:3]
        leading_axes = tuple(range(grad.ndim - len(axes)))  # every axis but the normalised ones
        grad_x = grad_weight = grad_bias = None
        if need_weight:
            grad_weight = (grad * xhat).sum(axis=leading_axes)
        if need_bias:
            grad_bias = grad.sum(axis=leading_axes)
        if need_x:
            g = grad if weight is None else grad * weight
            width = math.prod(grad.shape[-len(axes):])
            mean_g = g.sum(axis=axes, keepdims=True) / width
            mean_gx = (g * xhat).sum(axis=axes, keepdims=True) / width
            grad_x = rstd * (g - mean_g - xhat * mean_gx)
        return grad_x, grad_weight, grad_bias, None, None  # None: eps, normalized_ndim


def _normalized_in_units_of_the_largest(centered, axes, width, eps):
    """``xhat`` and ``rstd`` computed on ``centered / scale`` (``scale`` each row's largest
    magnitude), so no square overflows: ``var = scale**2 * var_unit`` is never formed."""
    scale = np.abs(centered).max(axis=axes, keepdims=True)
    unit = centered / scale
    std_unit = np.sqrt((unit * unit).sum(axis=axes, keepdims=True) / width + eps / (scale * scale))
    return unit / std_unit, 1 / (scale * std_unit)


def layer_norm(x, weight=None, bias=None, eps: float = 1e-5, *, normalized_shape=None):
    """Normalise ``x`` over its last axes, then ``* weight + bias`` (optional).

    The axes normalised are the last ``len(normalized_shape)``; without ``normalized_shape``
    they are those of ``weight`` (or ``bias``), else the last axis alone. ``weight`` and ``bias``
    have the shape of those axes.
    """
    shape = shape_of(x)
    for name, param in (("weight", weight), ("bias", bias)):
        if isinstance(param, (tuple, list)):  # PyTorch's F.layer_norm(x, normalized_shape, ...): (E,) is no weight
            raise TypeError(f"layer_norm: {name} must be a tensor, got the {type(param).__name__} {param!r:.40}; "
                            "pass the shape of the normalised axes as normalized_shape=")
    normalized = _normalized_shape(normalized_shape, weight, bias, shape)
    for name, param in (("weight", weight), ("bias", bias)):
        if param is not None and shape_of(param) != normalized:
            raise ValueError(f"layer_norm: {name} must have shape {normalized}, the shape of the normalised axes of "
                             f"the input {shape}, got {shape_of(param)}")
    if not eps > 0:
        raise ValueError(f"layer_norm: eps must be positive, got {eps!r}")
    return LayerNormFunction.apply(x, weight, bias, float(eps), len(normalized))


def _normalized_shape(normalized_shape, weight, bias, shape: tuple) -> tuple:
    """The trailing axes ``layer_norm`` normalises, checked against the input's ``shape``."""
    if normalized_shape is None:  # as many axes as the parameters have (the last one without them)
        given = weight if weight is not None else bias
        count = 1 if given is None else max(len(shape_of(given)), 1)
        if len(shape) < count:
            raise ValueError(f"layer_norm: the input {shape} has fewer axes than the {count} to normalise")
        return shape[len(shape) - count:]
    normalized = checked_normalized_shape(normalized_shape, "layer_norm")
    if len(shape) < len(normalized) or shape[len(shape) - len(normalized):] != normalized:
        raise ValueError(f"layer_norm: expected an input whose last axes are {normalized}, got shape {shape}")
    return normalized


def checked_normalized_shape(normalized_shape, where: str) -> tuple:
    """An int or a non-empty sequence of positive ints, as a tuple."""
    values = tuple(normalized_shape) if isinstance(normalized_shape, (tuple, list)) else (normalized_shape,)
    if not values:
        raise ValueError(f"{where}: normalized_shape must name at least one axis, got {normalized_shape!r}")
    return tuple(positive_int(value, "normalized_shape", where) for value in values)


def layer_norm_samples(rng):
    yield Sample(rng.standard_normal((4, 5)), rng.standard_normal(5), rng.standard_normal(5))  # 2-D
    yield Sample(rng.standard_normal((2, 3, 6)), rng.standard_normal(6), rng.standard_normal(6))  # 3-D
    yield Sample(3.0 + 0.5 * rng.standard_normal((2, 2, 2, 4)), rng.standard_normal(4), None, eps=1e-3)
    yield Sample(rng.standard_normal((3, 4)), None, None)  # no affine part
    yield Sample(rng.standard_normal((2, 3, 4)), rng.standard_normal((3, 4)), rng.standard_normal((3, 4)))  # two axes


# ---- scaled dot-product attention ----------------------------------------------------------------
def attention_flops(call: OpCall) -> int:
    """The two products: ``q k^T`` (2 * Tk FLOPs per element of q) and ``P v`` (2 * Tk per
    output element). The softmax's elementwise work is not counted (it is O(Tk) per score,
    not O(Tk * D)), as in PyTorch's FLOP counter."""
    keys = call.inputs[1][-2]
    return 2 * call.size(call.inputs[0]) * keys + 2 * call.output_size() * keys


def attention_backward_flops(call: OpCall) -> int:
    """Up to four products of the forward's sizes, each made only when a gradient needs it:
    ``dV = P^T dO`` (value), ``dP = dO v^T`` (query or key), each of the size of ``P v``;
    ``dq = dS k`` (query) and ``dk = dS^T q`` (key), each of the size of ``q k^T``."""
    keys = call.inputs[1][-2]
    scores, weighted = 2 * call.size(call.inputs[0]) * keys, 2 * call.output_size() * keys  # q k^T, P v
    need_q, need_k, need_v = call.needs_input_grad[:3]
    return weighted * (need_v + (need_q or need_k)) + scores * (need_q + need_k)


class ScaledDotProductAttention(Function):
    """``P = softmax(q k^T * scale)`` over keys (``-inf`` where ``mask`` is False), out = ``P v``;
    ``scale`` is ``1 / sqrt(D)`` unless given.

    Inputs are ``(..., Tq, D)``, ``(..., Tk, D)``, ``(..., Tk, Dv)`` with equal leading axes; every
    product is one batched matmul over those axes. A query row whose keys are all masked has
    ``P = 0`` there: its output is zero and it passes no gradient (instead of NaN).
    Backward: ``dV = P^T dO``, ``dP = dO V^T``, ``dS = P * (dP - sum(dP * P, keys))``,
    ``dq = dS k * scale``, ``dk = dS^T q * scale``. With dropout, the dropped and rescaled
    ``P`` multiplies ``v`` and the same keep-mask scales ``dP``.
    """

    flops = staticmethod(attention_flops)
    backward_flops = staticmethod(attention_backward_flops)

    @staticmethod
    def forward(ctx, q, k, v, mask=None, dropout_p=0.0, generator=None, num_heads=None, scale=None):
        require_one_float_dtype(ctx, q, k, v, roles=("query", "key", "value"))  # float32 with float64: float64, silently
        ctx.num_heads = num_heads
        if num_heads:  # (B, T, E) -> (B, H, T, E/H) views: splitting heads costs no graph nodes
            ctx.input_shapes = (q.shape, k.shape, v.shape)
            q, k, v = (_split_heads(t, num_heads) for t in (q, k, v))
        if scale is None:  # no features: every score is the empty sum 0, whatever the scale
            scale = 1.0 / math.sqrt(q.shape[-1]) if q.shape[-1] else 1.0
        probs = _masked_softmax((q @ k.swapaxes(-1, -2)) * scale, mask)
        attn, keep = probs, None
        if dropout_p > 0.0:
            keep = generator.random(probs.shape) >= dropout_p
            attn = probs * keep * (1.0 / (1.0 - dropout_p))
        ctx.scale, ctx.dropout_p = scale, dropout_p
        ctx.save_for_backward(q, k, v, probs, attn, keep)
        out = attn @ v
        return _merge_heads(out) if num_heads else out

    @staticmethod
    def backward(ctx, grad):
        q, k, v, probs, attn, keep = ctx.saved_tensors
        need_q, need_k, need_v = ctx.needs_input_grad[:3]
        grad_q = grad_k = grad_v = None
        if ctx.num_heads:
            grad = _split_heads(grad, ctx.num_heads)
        if need_v:
            grad_v = attn.swapaxes(-1, -2) @ grad
        if need_q or need_k:
            d_probs = grad @ v.swapaxes(-1, -2)
            if keep is not None:
                d_probs = d_probs * keep * (1.0 / (1.0 - ctx.dropout_p))
            row_dot = (d_probs * probs).sum(axis=-1, keepdims=True)
            d_scores = probs * (d_probs - row_dot) * ctx.scale
            if need_q:
                grad_q = d_scores @ k
            if need_k:
                grad_k = d_scores.swapaxes(-1, -2) @ q
        if ctx.num_heads:
            grad_q, grad_k, grad_v = (
                None if g is None else _merge_heads(g).reshape(shape)
                for g, shape in zip((grad_q, grad_k, grad_v), ctx.input_shapes)
            )
        return grad_q, grad_k, grad_v, None, None, None, None, None  # None: the options


def _masked_softmax(scores, mask):
    """Softmax over the last axis (the keys), with probability 0 where ``mask`` is False.

    A query row whose keys are all masked gets all zeros (it attends to nothing) instead of
    the NaN of ``exp(-inf) / 0``; so does every row when there are no keys at all.
    """
    if scores.shape[-1] == 0:  # no keys: nothing to attend to (and no maximum to take)
        return np.zeros_like(scores)
    if mask is None:
        row_max = scores.max(axis=-1, keepdims=True)
        e = np.exp(scores - row_max)  # max-subtraction: exp never overflows
        return e / e.sum(axis=-1, keepdims=True)
    scores = np.where(mask, scores, -np.inf)
    limits = np.finfo(scores.dtype)
    # a fully masked row's max is -inf: lifted to the lowest finite float, its exp(-inf - max) is 0,
    # never the NaN of -inf - -inf (any other row's max is finite and stays as it is)
    row_max = np.maximum(scores.max(axis=-1, keepdims=True), limits.min)
    e = np.exp(scores - row_max)
    # any other row sums to at least 1 (exp(0) at its max); a fully masked one gets 0 / tiny = 0
    return e / np.maximum(e.sum(axis=-1, keepdims=True), limits.tiny)


def _split_heads(x, num_heads: int):
    """(B, T, E) -> (B, H, T, E / H), a view."""
    batch, length, width = x.shape
    return x.reshape(batch, length, num_heads, width // num_heads).transpose(0, 2, 1, 3)


def _merge_heads(x):
    """(B, H, T, D) -> (B, T, H * D)."""
    batch, heads, length, width = x.shape
    return x.transpose(0, 2, 1, 3).reshape(batch, length, heads * width)


def causal_mask(query_len: int, key_len: int) -> np.ndarray:
    """``(Tq, Tk)`` bool, True where query ``i`` may attend key ``j``: ``j <= i`` (top-left aligned)."""
    return np.tri(query_len, key_len, dtype=bool)


def check_mask(mask, target_shape: tuple, where: str) -> np.ndarray:
    """A bool array broadcastable to ``target_shape``, or a clear error."""
    arr = array_of(mask)
    if arr.dtype != np.bool_:
        raise TypeError(
            f"{where}: mask must be a bool array (True = may attend, False = masked out), got dtype "
            f"{arr.dtype}; build it with a comparison, e.g. lengths[:, None] > positions"
        )
    if not broadcasts_to(arr.shape, target_shape):
        raise ValueError(
            f"{where}: mask of shape {arr.shape} does not broadcast to the attention scores' shape "
            f"{tuple(target_shape)} (batch..., query_len, key_len)"
        )
    return arr


def _check_shapes(q, k, v, num_heads, where: str) -> tuple:
    """The shapes of ``q``, ``k``, ``v`` as the kernel sees them (split into heads with
    ``num_heads``), after checking that they fit together."""
    sq, sk, sv = (tuple(shape_of(t)) for t in (q, k, v))
    if num_heads is not None:
        if len(sq) != 3 or len(sk) != 3 or len(sv) != 3:
            raise ValueError(f"{where}: with num_heads, q, k and v must be 3-D (batch, seq, embed), "
                             f"got shapes {sq}, {sk}, {sv}")
        for name, shape in (("q", sq), ("k", sk), ("v", sv)):
            if shape[-1] % num_heads:
                raise ValueError(f"{where}: {name}'s feature size {shape[-1]} is not divisible by "
                                 f"num_heads={num_heads}")
        sq, sk, sv = ((s[0], num_heads, s[1], s[2] // num_heads) for s in (sq, sk, sv))
    if len(sq) not in (3, 4) or len(sk) != len(sq) or len(sv) != len(sq):
        raise ValueError(
            f"{where}: q, k and v must all be 4-D (batch, heads, seq, dim) or all 3-D (batch, seq, dim), "
            f"got shapes {sq}, {sk}, {sv}"
        )
    if sq[:-2] != sk[:-2] or sk[:-2] != sv[:-2]:
        raise ValueError(f"{where}: q, k and v must share their leading axes, got shapes {sq}, {sk}, {sv}")
    if sq[-1] != sk[-1]:
        raise ValueError(f"{where}: q and k must have the same feature size, got {sq[-1]} and {sk[-1]}")
    if sk[-2] != sv[-2]:
        raise ValueError(f"{where}: k and v must have the same length, got {sk[-2]} and {sv[-2]}")
    return sq, sk, sv


def _check_scale(scale, where: str):
    """None (the default ``1 / sqrt(D)``) or a finite number, as a float."""
    if scale is None:
        return None
    if not isinstance(scale, numbers.Real) or isinstance(scale, bool) or not math.isfinite(scale):
        raise TypeError(f"{where}: scale must be a finite number (or None for 1 / sqrt(D)), got {scale!r}")
    return float(scale)


def scaled_dot_product_attention(q, k, v, mask=None, dropout_p: float = 0.0, causal: bool = False, scale=None, *,
                                 generator=None, num_heads: int | None = None, attn_mask=None, is_causal=None):
    """Attention of queries ``q`` over keys ``k`` and values ``v``.

    Shapes: ``q`` (B, H, Tq, D), ``k`` (B, H, Tk, D), ``v`` (B, H, Tk, Dv), or the same without
    the head axis, (B, T, D). ``mask``: bool, broadcastable to (B, H, Tq, Tk) (or (B, Tq, Tk)),
    **True where a query may attend a key**. ``causal=True`` also masks every key after the
    query's own position (``j > i``). A query with no key left attends to nothing: its output
    row is zero and passes no gradient. ``dropout_p`` drops attention weights (train time) using
    ``generator``. ``scale`` multiplies the scores ``q k^T`` before the softmax: ``1 / sqrt(D)``
    when None, as in PyTorch. Returns (B, H, Tq, Dv). The positional order is PyTorch's (mask,
    dropout_p, causal, scale), and its names ``attn_mask`` (a bool mask: True takes part, as here)
    and ``is_causal`` work too.

    With ``num_heads=H``, ``q``, ``k`` and ``v`` are (B, T, E) with E divisible by H: the op
    splits them into H heads of E / H features itself (no reshape/transpose nodes in the graph),
    the mask broadcasts to (B, H, Tq, Tk), and the result is (B, Tq, H * Dv / H) = (B, Tq, Ev).
    """
    where = "scaled_dot_product_attention"
    mask = axis_or_dim(mask, attn_mask, where, ("mask", "attn_mask"))
    if is_causal is not None:
        causal = keepdims_or_keepdim(causal, is_causal, where, ("causal", "is_causal"))
    causal = true_or_false(causal, "causal", where)
    if num_heads is not None:
        num_heads = positive_int(num_heads, "num_heads", where)
    sq, sk, _ = _check_shapes(q, k, v, num_heads, where)
    target = sq[:-1] + (sk[-2],)
    allowed = None if mask is None else check_mask(mask, target, where)
    if causal:
        future = causal_mask(sq[-2], sk[-2])
        if isinstance(mask, Tensor):  # a mask computed by ops (a padding mask): combined by an op too
            allowed = mask & future
        else:
            allowed = future if allowed is None else allowed & future
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"{where}: dropout_p must be in [0, 1), got {dropout_p!r}")
    rng = resolve_generator(generator) if dropout_p > 0.0 else None
    scale = _check_scale(scale, where)
    return ScaledDotProductAttention.apply(q, k, v, allowed, float(dropout_p), rng, num_heads, scale)


def attention_samples(rng):
    def r(*shape):
        return rng.standard_normal(shape)

    yield Sample(r(2, 2, 3, 4), r(2, 2, 3, 4), r(2, 2, 3, 4))  # 4-D, no mask
    yield Sample(r(2, 4, 3), r(2, 5, 3), r(2, 5, 2))  # 3-D cross-attention, Dv != D
    yield Sample(r(1, 2, 4, 3), r(1, 2, 4, 3), r(1, 2, 4, 3), causal=True)
    padding = np.array([[True, True, True, False, False], [True, True, True, True, True]])
    yield Sample(r(2, 2, 3, 2), r(2, 2, 5, 2), r(2, 2, 5, 2), mask=padding[:, None, None, :])
    full = rng.random((2, 2, 4, 4)) > 0.3
    full[..., 0] = True  # every row keeps at least one key
    yield Sample(r(2, 2, 4, 3), r(2, 2, 4, 3), r(2, 2, 4, 3), mask=full, causal=True)
    empty_row = np.ones((3, 4), dtype=bool)
    empty_row[1] = False  # query 1 sees no key: zero output, zero gradient
    yield Sample(r(2, 3, 2), r(2, 4, 2), r(2, 4, 2), mask=empty_row)
    yield Sample(r(1, 2, 3, 5), r(1, 2, 6, 5), r(1, 2, 6, 2), causal=True)  # Tq < Tk
    yield Sample(r(2, 2, 3, 2), r(2, 2, 3, 2), r(2, 2, 3, 2), dropout_p=0.3, generator=7)  # fixed seed
    yield Sample(r(2, 3, 6), r(2, 4, 6), r(2, 4, 4), num_heads=2)  # heads split inside the op
    yield Sample(r(1, 4, 6), r(1, 4, 6), r(1, 4, 6), num_heads=3, causal=True, mask=padding[1:, None, None, :4])
    yield Sample(r(2, 2, 3, 4), r(2, 2, 5, 4), r(2, 2, 5, 3), scale=0.8, causal=True)  # a given scale
    yield Sample(r(2, 3, 6), r(2, 3, 6), r(2, 3, 6), num_heads=2, scale=-1.5, mask=empty_row[:, :3])
