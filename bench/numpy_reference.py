"""Plain-NumPy reference models ("the NumPy floor") for the TinyTorch benchmarks.

Every benchmark workload (W1..W8) is written here directly in NumPy: forward pass,
loss, a hand-derived backward pass and a plain SGD update.  The framework's
benchmarks time the same training step and compare against these numbers, and
the framework's own tests can compare its losses/gradients against these
functions, so the conventions below are exactly the ones the framework uses.

Conventions
-----------
* Linear: weight (out, in), bias (out,), ``y = x @ W.T + b``.
* Conv2d: weight (out_ch, in_ch, kh, kw), bias (out_ch,), NCHW inputs, stride 1,
  zero padding, cross-correlation (as in PyTorch).  MaxPool2d(2): kernel 2,
  stride 2; the gradient goes to the first maximum of each window in row-major
  window order.  Flatten keeps the batch axis and flattens (C, H, W) in C order.
* BCE on probabilities: ``mean(-(y log p + (1-y) log(1-p)))`` with ``p`` clamped
  to ``[1e-7, 1 - 1e-7]`` (no gradient flows through a clamped value).
* Cross-entropy: mean over rows of ``-log_softmax(logits)[target]``.
* MSE: mean over all elements of ``(pred - target) ** 2``.
* Transformer: token embedding + learned positional embedding, pre-norm blocks
  ``x = x + MHA(LN1(x)); x = x + FFN(LN2(x))``, final LayerNorm, Linear head
  with bias, cross-entropy averaged over all B*T positions.  LayerNorm: last
  axis, eps 1e-5, biased variance.  MHA: separate q/k/v/out Linear(E, E) with
  bias, scores ``q k^T / sqrt(head_dim)``, optional causal mask (-inf on future
  keys), softmax over keys.  FFN: Linear(E, F) -> GELU (tanh approximation) ->
  Linear(F, E).  No dropout.

Implementation notes
--------------------
* Everything is vectorised over batch, channels, pixels, heads and tokens; the
  only Python loops are over layers/blocks, over the four 2x2 pooling-window
  positions, and, in the conv input gradient (col2im), over the kh*kw kernel
  taps (each tap is one whole-array add).
* Convolutions run internally in NHWC layout: im2col is a zero-copy
  ``as_strided`` window view gathered once into a (rows, kh*kw*C) matrix,
  followed by one matmul.  The rows are gathered in pooling-window order so
  that MaxPool2d works on four contiguous blocks (see the CNN section).  Only
  the public tensors (inputs, weights, gradients) use the NCHW / (O, C, kh, kw)
  conventions.
* Attention uses batched matmuls over (batch, heads); q, k and v come from one
  fused matmul against the concatenated projection weights, and the attention
  output is written straight into the merged-heads (B*T, E) layout.
* Large intermediates live in per-model work buffers that are reused between
  calls (fresh large allocations are page-faulted in on every step, which
  costs more than the arithmetic for some workloads).  ``step`` also reuses the
  gradient arrays; ``loss_and_grads`` always returns freshly allocated
  gradients.  Because of the shared buffers a model object is not thread-safe.
* Column sums (bias gradients) are computed as ``ones @ a``, which is far
  faster than ``a.sum(axis=0)`` for tall, narrow arrays.
* The dtype of the parameters decides the compute dtype: float32 for the
  benchmarks, float64 works too (used by the gradient checks).

Run ``python bench/numpy_reference.py`` to time every workload.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = [
    "WorkloadSpec",
    "WORKLOADS",
    "MLP",
    "CNN",
    "Transformer",
    "bce_with_probs",
    "cross_entropy",
    "mse",
    "maxpool_quarters_forward",
    "maxpool_quarters_backward",
    "maxpool2x2_nhwc_forward",
    "maxpool2x2_nhwc_backward",
    "benchmark",
]

BCE_EPS = 1e-7
LN_EPS = 1e-5
GELU_C = math.sqrt(2.0 / math.pi)
GELU_A = 0.044715


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #
class _Workspace:
    """Cache of scratch arrays keyed by name; reallocated when shape/dtype change."""

    __slots__ = ("_arrays",)

    def __init__(self) -> None:
        self._arrays: dict = {}

    def get(self, key, shape, dtype, zero: bool = False) -> np.ndarray:
        arr = self._arrays.get(key)
        if arr is None or arr.shape != shape or arr.dtype != dtype:
            arr = np.zeros(shape, dtype) if zero else np.empty(shape, dtype)
            self._arrays[key] = arr
        return arr


class _Fresh:
    """Workspace stand-in that always allocates (used for returned gradients)."""

    @staticmethod
    def get(key, shape, dtype, zero: bool = False) -> np.ndarray:
        return np.zeros(shape, dtype) if zero else np.empty(shape, dtype)


_FRESH = _Fresh()


_ONES: dict = {}


def _col_sum(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Sum over the rows of a 2-D array as a matrix-vector product (much faster than
    ``a.sum(axis=0)`` for tall, narrow arrays)."""
    key = (a.shape[0], a.dtype)
    ones = _ONES.get(key)
    if ones is None:
        ones = _ONES[key] = np.ones(a.shape[0], a.dtype)
    return np.matmul(ones, a, out=out)


def _add_bias(z: np.ndarray, b: np.ndarray) -> None:
    """In-place ``z += b`` for a C-contiguous 2-D ``z``.  Narrow rows are grouped so
    the broadcast runs over long inner loops instead of many short ones."""
    rows, cols = z.shape
    group = math.gcd(rows, 64) if cols < 64 else 1
    if group > 1:
        wide = z.reshape(rows // group, group * cols)
        wide += np.tile(b, group)
    else:
        z += b


def _uniform(rng: np.random.Generator, shape, bound: float, dtype) -> np.ndarray:
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def _init_linear(rng, params: dict, name: str, fan_in: int, fan_out: int, dtype) -> None:
    """PyTorch-style default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for W and b."""
    bound = 1.0 / math.sqrt(fan_in)
    params[name + ".weight"] = _uniform(rng, (fan_out, fan_in), bound, dtype)
    params[name + ".bias"] = _uniform(rng, (fan_out,), bound, dtype)


def _sgd_update(params: dict, grads: dict, lr: float) -> None:
    """In-place ``p -= lr * g``.  Scales the gradient arrays in place (they are ours)."""
    for name, g in grads.items():
        g *= lr
        np.subtract(params[name], g, out=params[name])


# --------------------------------------------------------------------------- #
# losses: each returns (loss as Python float, gradient w.r.t. its first input)
# --------------------------------------------------------------------------- #
def bce_with_probs(z: np.ndarray, y: np.ndarray):
    """Sigmoid followed by clamped BCE on probabilities; returns (loss, dL/dz).

    ``p = clamp(sigmoid(z), 1e-7, 1-1e-7)``.  Through the chain rule
    ``dL/dz = [(p - y) / (p (1 - p))] * 1[p not clamped] * s (1 - s) / n``,
    which, because ``p == s`` wherever the clamp is inactive, is simply
    ``(s - y) * 1[p == s] / n``.
    """
    s = np.tanh(z * 0.5)  # sigmoid(z) = (1 + tanh(z/2)) / 2, overflow free
    s += 1.0
    s *= 0.5
    p = np.clip(s, BCE_EPS, 1.0 - BCE_EPS)
    n = z.size
    loss = -float(np.sum(y * np.log(p) + (1.0 - y) * np.log1p(-p))) / n
    dz = s - y
    dz *= p == s
    dz *= 1.0 / n
    return loss, dz


def cross_entropy(logits: np.ndarray, target: np.ndarray, inplace: bool = False):
    """Mean cross-entropy of (N, C) logits against (N,) integer targets; returns (loss, dL/dlogits).

    With ``inplace=True`` the logits array is overwritten by the returned gradient.
    """
    n = logits.shape[0]
    rows = np.arange(n)
    e = logits if inplace else logits.copy()
    e -= logits.max(axis=1, keepdims=True)
    picked = e[rows, target]
    np.exp(e, out=e)
    sum_e = e.sum(axis=1, keepdims=True)
    loss = float(np.sum(np.log(sum_e)) - np.sum(picked)) / n
    e *= 1.0 / (sum_e * n)  # softmax / n
    e[rows, target] -= 1.0 / n
    return loss, e


def mse(pred: np.ndarray, target: np.ndarray, out: np.ndarray | None = None):
    """Mean squared error over all elements; returns (loss, dL/dpred)."""
    diff = np.subtract(pred, target, out=out)
    n = diff.size
    flat = diff.reshape(-1)
    loss = float(np.dot(flat, flat)) / n
    diff *= 2.0 / n
    return loss, diff


# --------------------------------------------------------------------------- #
# MLP family (W1, W2, W3, W8)
# --------------------------------------------------------------------------- #
class MLP:
    """Stack of Linear layers with ReLU in between and a loss head.

    ``loss`` is one of ``"bce"`` (sigmoid + BCE, targets (N, 1) float),
    ``"ce"`` (cross-entropy, integer targets) or ``"mse"``.
    """

    def __init__(self, sizes, names, loss: str, batch_size: int, data: str = "gaussian"):
        assert len(sizes) == len(names) + 1
        assert loss in ("bce", "ce", "mse")
        self.sizes = tuple(sizes)
        self.names = tuple(names)
        self.loss = loss
        self.batch_size = batch_size
        self.data = data
        self._ws = _Workspace()

    # -- factories ---------------------------------------------------------- #
    def make_params(self, rng: np.random.Generator, dtype=np.float32) -> dict:
        params: dict = {}
        for name, fin, fout in zip(self.names, self.sizes[:-1], self.sizes[1:]):
            _init_linear(rng, params, name, fin, fout, dtype)
        return params

    def make_batch(self, rng: np.random.Generator, batch_size: int | None = None, dtype=np.float32):
        n = self.batch_size if batch_size is None else batch_size
        d_in, d_out = self.sizes[0], self.sizes[-1]
        if self.data == "xor":
            base = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=dtype)
            x = base if n == 4 else base[rng.integers(0, 4, size=n)]
            y = (x[:, :1] != x[:, 1:]).astype(dtype)
            return x.copy(), y
        x = rng.standard_normal((n, d_in)).astype(dtype)
        if self.loss == "bce":  # linearly separable-ish two-class problem
            y = (x.sum(axis=1, keepdims=True) > 0).astype(dtype)
        elif self.loss == "ce":
            y = rng.integers(0, d_out, size=n, dtype=np.int64)
        else:
            y = rng.standard_normal((n, d_out)).astype(dtype)
        return x, y

    # -- training ----------------------------------------------------------- #
    def _forward_backward(self, params: dict, x, y, ws, gws):
        dtype = params[self.names[0] + ".weight"].dtype
        last = len(self.names) - 1
        acts = [x]
        h = x
        for i, name in enumerate(self.names):
            w = params[name + ".weight"]
            z = np.matmul(h, w.T, out=ws.get(("z", i), (h.shape[0], w.shape[0]), dtype))
            z += params[name + ".bias"]
            if i < last:
                np.maximum(z, 0.0, out=z)  # ReLU in place: (out > 0) == (pre > 0)
            acts.append(z)
            h = z

        if self.loss == "bce":
            loss, dz = bce_with_probs(h, y)
        elif self.loss == "ce":
            loss, dz = cross_entropy(h, y, inplace=True)
        else:
            loss, dz = mse(h, y, out=ws.get("dout", h.shape, dtype))

        grads: dict = {}
        for i in range(last, -1, -1):
            name = self.names[i]
            w = params[name + ".weight"]
            h_in = acts[i]
            grads[name + ".weight"] = np.matmul(dz.T, h_in, out=gws.get(name + ".weight", w.shape, dtype))
            grads[name + ".bias"] = _col_sum(dz, out=gws.get(name + ".bias", (w.shape[0],), dtype))
            if i > 0:
                dh = np.matmul(dz, w, out=ws.get(("dh", i), h_in.shape, dtype))
                dh *= h_in > 0
                dz = dh
        return loss, {name: grads[name] for name in params}

    def loss_and_grads(self, params: dict, x, y):
        return self._forward_backward(params, x, y, self._ws, _FRESH)

    def step(self, params: dict, x, y, lr: float) -> float:
        loss, grads = self._forward_backward(params, x, y, self._ws, self._ws)
        _sgd_update(params, grads, lr)
        return loss


# --------------------------------------------------------------------------- #
# CNN pieces (NHWC internally)
# --------------------------------------------------------------------------- #
# A conv layer that feeds MaxPool2d(2) is evaluated in "quarter" row order: the
# im2col rows are gathered as (r, c, n, i, j) for the output pixel (2i+r, 2j+c),
# so the matmul result splits into four contiguous (N*Hq*Wq, O) blocks, one per
# position in the 2x2 window.  Pooling and its backward are then plain
# contiguous element-wise ops.  Conv outputs that a floor-mode pool would drop
# (odd trailing row/column) are never computed: they cannot affect the loss.
# ReLU is applied after the max (max and ReLU commute); a window whose max is
# <= 0 passes no gradient either way, so the arg-max is only relevant where the
# maximum is positive, where both orders pick the same element.


def maxpool_quarters_forward(zq: np.ndarray, out: np.ndarray | None = None, idx: np.ndarray | None = None):
    """Max over the leading axis (length 4, window positions in row-major order).

    Returns ``(out, idx)``; ``idx`` (int8) is the first position holding the max,
    i.e. ties go to the earliest window position (row-major), as in PyTorch.
    """
    z0, z1, z2, z3 = zq
    out = np.maximum(z0, z1, out=out)
    tmp = np.maximum(z2, z3)
    np.maximum(out, tmp, out=out)
    if idx is None:
        idx = np.empty(out.shape, np.int8)
    # first max wins: idx = 0 if z0 == out else 1 if z1 == out else 2 if z2 == out else 3,
    # built from the back with integer arithmetic (much faster than np.where chains)
    hit = np.equal(z2, out)
    np.subtract(3, hit, out=idx, dtype=np.int8)  # 2 or 3
    np.equal(z1, out, out=hit)
    shift = np.subtract(idx, 1)
    shift *= hit
    idx -= shift  # 1 where z1 == out
    np.not_equal(z0, out, out=hit)
    idx *= hit  # 0 where z0 == out
    return out, idx


def maxpool_quarters_backward(dout: np.ndarray, idx: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Gradient of :func:`maxpool_quarters_forward`: ``out[k] = dout * (idx == k)``."""
    if out is None:
        out = np.empty((4,) + dout.shape, dout.dtype)
    hit = np.empty(idx.shape, bool)
    for k in range(4):
        np.equal(idx, k, out=hit)
        np.multiply(dout, hit, out=out[k])
    return out


def maxpool2x2_nhwc_forward(y: np.ndarray):
    """MaxPool2d(2) of an (N, H, W, C) array; returns ``(out, idx)`` (see quarters version)."""
    ho, wo = y.shape[1] // 2, y.shape[2] // 2
    zq = np.stack([y[:, r : 2 * ho : 2, c : 2 * wo : 2] for r in (0, 1) for c in (0, 1)])
    return maxpool_quarters_forward(zq)


def maxpool2x2_nhwc_backward(dout: np.ndarray, idx: np.ndarray, in_shape) -> np.ndarray:
    """Gradient of :func:`maxpool2x2_nhwc_forward` w.r.t. its (N, H, W, C) input."""
    dq = maxpool_quarters_backward(dout, idx)
    dy = np.zeros(in_shape, dout.dtype)
    ho, wo = idx.shape[1], idx.shape[2]
    for k, (r, c) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        dy[:, r : 2 * ho : 2, c : 2 * wo : 2] = dq[k]
    return dy


class CNN:
    """Conv(k, pad)-ReLU-MaxPool2d(2) stages followed by Flatten and one Linear.

    ``convs`` is a sequence of ``(name, out_channels, kernel, padding)``.
    Inputs are NCHW float arrays, targets integer class labels.
    """

    def __init__(self, in_shape, convs, fc_name: str, n_classes: int, batch_size: int):
        self.in_shape = tuple(in_shape)  # (C, H, W)
        self.convs = tuple(convs)
        self.fc_name = fc_name
        self.n_classes = n_classes
        self.batch_size = batch_size
        c, h, w = self.in_shape
        for _, oc, k, p in self.convs:
            h, w = (h + 2 * p - k + 1) // 2, (w + 2 * p - k + 1) // 2
            c = oc
        self.flat_features = c * h * w
        self._ws = _Workspace()

    def make_params(self, rng: np.random.Generator, dtype=np.float32) -> dict:
        params: dict = {}
        in_ch = self.in_shape[0]
        for name, oc, k, _ in self.convs:
            bound = 1.0 / math.sqrt(in_ch * k * k)
            params[name + ".weight"] = _uniform(rng, (oc, in_ch, k, k), bound, dtype)
            params[name + ".bias"] = _uniform(rng, (oc,), bound, dtype)
            in_ch = oc
        _init_linear(rng, params, self.fc_name, self.flat_features, self.n_classes, dtype)
        return params

    def make_batch(self, rng: np.random.Generator, batch_size: int | None = None, dtype=np.float32):
        n = self.batch_size if batch_size is None else batch_size
        x = rng.random((n,) + self.in_shape).astype(dtype)
        y = rng.integers(0, self.n_classes, size=n, dtype=np.int64)
        return x, y

    def _forward_backward(self, params: dict, x, y, ws, gws):
        dtype = params[self.fc_name + ".weight"].dtype
        n = x.shape[0]
        a = x.transpose(0, 2, 3, 1)  # NHWC view of the input
        caches = []
        for li, (name, oc, k, p) in enumerate(self.convs):
            _, h, w, c = a.shape
            if p:
                # the border of this buffer is never written, so it stays zero
                ap = ws.get(("pad", li), (n, h + 2 * p, w + 2 * p, c), dtype, zero=True)
                ap[:, p : p + h, p : p + w, :] = a
            else:
                ap = a
            hq, wq = (h + 2 * p - k + 1) // 2, (w + 2 * p - k + 1) // 2
            m = n * hq * wq
            s_n, s_h, s_w, s_c = ap.strides
            win = as_strided(
                ap, (2, 2, n, hq, wq, k, k, c), (s_h, s_w, s_n, 2 * s_h, 2 * s_w, s_h, s_w, s_c), writeable=False
            )
            cols8 = ws.get(("cols", li), win.shape, dtype)
            np.copyto(cols8, win)
            cols = cols8.reshape(4 * m, k * k * c)
            wmat = params[name + ".weight"].transpose(0, 2, 3, 1).reshape(oc, k * k * c)  # (O, kh*kw*C)
            z = np.matmul(cols, wmat.T, out=ws.get(("z", li), (4 * m, oc), dtype))
            _add_bias(z, params[name + ".bias"])
            pooled, idx = maxpool_quarters_forward(
                z.reshape(4, m, oc),
                out=ws.get(("pool", li), (m, oc), dtype),
                idx=ws.get(("idx", li), (m, oc), np.int8),
            )
            np.maximum(pooled, 0.0, out=pooled)  # ReLU
            caches.append((name, oc, k, p, (h, w, c), hq, wq, cols, pooled, idx))
            a = pooled.reshape(n, hq, wq, oc)

        flat = a.transpose(0, 3, 1, 2).reshape(n, -1)  # NCHW flatten order
        wfc = params[self.fc_name + ".weight"]
        logits = flat @ wfc.T
        logits += params[self.fc_name + ".bias"]
        loss, dlogits = cross_entropy(logits, y, inplace=True)

        grads: dict = {}
        fc = self.fc_name
        grads[fc + ".weight"] = np.matmul(dlogits.T, flat, out=gws.get(fc + ".weight", wfc.shape, dtype))
        grads[fc + ".bias"] = _col_sum(dlogits, out=gws.get(fc + ".bias", (self.n_classes,), dtype))
        dflat = dlogits @ wfc
        da = dflat.reshape(n, a.shape[3], a.shape[1], a.shape[2]).transpose(0, 2, 3, 1)  # NHWC view

        for li in range(len(caches) - 1, -1, -1):
            name, oc, k, p, (h, w, c), hq, wq, cols, pooled, idx = caches[li]
            m = n * hq * wq
            # ReLU backward at pooled resolution: the routed element is the window max
            dpool = np.multiply(da, pooled.reshape(n, hq, wq, oc) > 0, out=ws.get(("dpool", li), (n, hq, wq, oc), dtype))
            dzq = maxpool_quarters_backward(dpool.reshape(m, oc), idx, out=ws.get(("dz", li), (4, m, oc), dtype))
            dz = dzq.reshape(4 * m, oc)
            gw = np.matmul(dz.T, cols, out=ws.get(("gwmat", li), (oc, k * k * c), dtype))
            gout = gws.get(name + ".weight", (oc, c, k, k), dtype)
            np.copyto(gout, gw.reshape(oc, k, k, c).transpose(0, 3, 1, 2))
            grads[name + ".weight"] = gout
            grads[name + ".bias"] = _col_sum(dz, out=gws.get(name + ".bias", (oc,), dtype))
            if li == 0:
                break  # no gradient is needed for the input images
            # input gradient: back to natural (n, y, x) row order (cheap: O columns),
            # one batched matmul giving a contiguous (M, C) block per kernel tap, then
            # one shifted whole-array add per tap (col2im).
            ho, wo = 2 * hq, 2 * wq
            dz_nat = ws.get(("dznat", li), (n, ho, wo, oc), dtype)
            np.copyto(
                dz_nat.reshape(n, hq, 2, wq, 2, oc),
                dzq.reshape(2, 2, n, hq, wq, oc).transpose(2, 3, 0, 4, 1, 5),
            )
            w_taps = params[name + ".weight"].transpose(2, 3, 0, 1).reshape(k * k, oc, c)
            taps = np.matmul(dz_nat.reshape(n * ho * wo, oc), w_taps, out=ws.get(("taps", li), (k * k, n * ho * wo, c), dtype))
            taps = taps.reshape(k, k, n, ho, wo, c)
            dap = ws.get(("dpad", li), (n, h + 2 * p, w + 2 * p, c), dtype)
            dap.fill(0.0)
            for i in range(k):
                for j in range(k):
                    dap[:, i : i + ho, j : j + wo, :] += taps[i, j]
            da = dap[:, p : p + h, p : p + w, :]
        return loss, {name: grads[name] for name in params}

    def loss_and_grads(self, params: dict, x, y):
        return self._forward_backward(params, x, y, self._ws, _FRESH)

    def step(self, params: dict, x, y, lr: float) -> float:
        loss, grads = self._forward_backward(params, x, y, self._ws, self._ws)
        _sgd_update(params, grads, lr)
        return loss


# --------------------------------------------------------------------------- #
# Transformer family (W6, W7)
# --------------------------------------------------------------------------- #
def _layernorm_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, out: np.ndarray, xhat: np.ndarray):
    """LayerNorm over the last axis of a 2-D array into ``out``; returns (out, (xhat, rstd))."""
    mu = x.mean(axis=1, keepdims=True)
    np.subtract(x, mu, out=xhat)
    var = np.einsum("ij,ij->i", xhat, xhat)[:, None]
    var *= 1.0 / x.shape[1]
    var += LN_EPS
    rstd = np.sqrt(var)
    np.reciprocal(rstd, out=rstd)
    xhat *= rstd
    np.multiply(xhat, w, out=out)
    out += b
    return out, (xhat, rstd)


def _layernorm_backward(dy: np.ndarray, cache, w: np.ndarray, out: np.ndarray, tmp: np.ndarray):
    """Gradient of :func:`_layernorm_forward`; returns (dx, dw, db).  ``out`` may alias ``dy``.

    With ``g = dy * w``: ``dx = rstd * (g - mean(g) - xhat * mean(g * xhat))``.
    """
    xhat, rstd = cache
    dw = np.einsum("ij,ij->j", dy, xhat)
    db = _col_sum(dy)
    g = np.multiply(dy, w, out=out)
    m1 = g.mean(axis=1, keepdims=True)
    m2 = np.einsum("ij,ij->i", g, xhat)[:, None]
    m2 *= 1.0 / g.shape[1]
    g -= m1
    g -= np.multiply(xhat, m2, out=tmp)
    g *= rstd
    return g, dw, db


class Transformer:
    """Pre-norm transformer language model (see module docstring for the exact layout)."""

    def __init__(
        self,
        vocab: int,
        seq_len: int,
        embed: int,
        heads: int,
        n_blocks: int,
        ffn: int,
        causal: bool,
        batch_size: int,
        task: str,
    ):
        assert embed % heads == 0
        self.vocab, self.seq_len, self.embed = vocab, seq_len, embed
        self.heads, self.n_blocks, self.ffn = heads, n_blocks, ffn
        self.causal = causal
        self.batch_size = batch_size
        self.task = task  # "reverse" or "next_token"
        self._ws = _Workspace()
        self._masks: dict = {}

    def make_params(self, rng: np.random.Generator, dtype=np.float32) -> dict:
        e, f, v = self.embed, self.ffn, self.vocab
        params: dict = {
            "tok_emb.weight": (rng.standard_normal((v, e)) * 0.02).astype(dtype),
            "pos_emb.weight": (rng.standard_normal((self.seq_len, e)) * 0.02).astype(dtype),
        }
        for i in range(self.n_blocks):
            pre = f"blocks.{i}."
            params[pre + "ln1.weight"] = np.ones(e, dtype)
            params[pre + "ln1.bias"] = np.zeros(e, dtype)
            for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
                _init_linear(rng, params, pre + "attn." + proj, e, e, dtype)
            params[pre + "ln2.weight"] = np.ones(e, dtype)
            params[pre + "ln2.bias"] = np.zeros(e, dtype)
            _init_linear(rng, params, pre + "ff.fc1", e, f, dtype)
            _init_linear(rng, params, pre + "ff.fc2", f, e, dtype)
        params["ln_f.weight"] = np.ones(e, dtype)
        params["ln_f.bias"] = np.zeros(e, dtype)
        _init_linear(rng, params, "head", e, v, dtype)
        return params

    def make_batch(self, rng: np.random.Generator, batch_size: int | None = None, dtype=None):
        """Token batch (B, T) int64 and targets (B, T) int64.  ``dtype`` is accepted and ignored."""
        n = self.batch_size if batch_size is None else batch_size
        if self.task == "reverse":
            x = rng.integers(0, self.vocab, size=(n, self.seq_len), dtype=np.int64)
            y = np.ascontiguousarray(x[:, ::-1])
        else:  # next-token prediction on random sequences
            seq = rng.integers(0, self.vocab, size=(n, self.seq_len + 1), dtype=np.int64)
            x = np.ascontiguousarray(seq[:, :-1])
            y = np.ascontiguousarray(seq[:, 1:])
        return x, y

    def _causal_mask(self, t: int, dtype) -> np.ndarray:
        key = (t, np.dtype(dtype))
        m = self._masks.get(key)
        if m is None:
            m = np.triu(np.full((t, t), -np.inf, dtype=dtype), k=1)
            self._masks[key] = m
        return m

    def _forward_backward(self, params: dict, tokens, targets, ws, gws):
        tok_w = params["tok_emb.weight"]
        dtype = tok_w.dtype
        bsz, t = tokens.shape
        e, nh, f = self.embed, self.heads, self.ffn
        hd = e // nh
        bt = bsz * t
        scale = 1.0 / math.sqrt(hd)
        tok_flat = tokens.reshape(-1)

        def buf(key, shape):
            return ws.get(key, shape, dtype)

        def split_heads(a2d, parts):  # (BT, parts*E) -> (parts, B, H, T, D) view
            return a2d.reshape(bsz, t, parts, nh, hd).transpose(2, 0, 3, 1, 4)

        # ---- forward ------------------------------------------------------ #
        h = buf("h", (bt, e))  # residual stream, updated in place
        np.take(tok_w, tok_flat, axis=0, out=h)
        h.reshape(bsz, t, e)[...] += params["pos_emb.weight"][:t]
        caches = []
        for bi in range(self.n_blocks):
            pre = f"blocks.{bi}."
            at = pre + "attn."
            a1, ln1c = _layernorm_forward(
                h, params[pre + "ln1.weight"], params[pre + "ln1.bias"], buf(("a1", bi), (bt, e)), buf(("x1", bi), (bt, e))
            )
            w_qkv = np.concatenate(
                (params[at + "q_proj.weight"], params[at + "k_proj.weight"], params[at + "v_proj.weight"]),
                out=buf(("wqkv", bi), (3 * e, e)),
            )
            b_qkv = np.concatenate((params[at + "q_proj.bias"], params[at + "k_proj.bias"], params[at + "v_proj.bias"]))
            qkv = np.matmul(a1, w_qkv.T, out=buf(("qkv", bi), (bt, 3 * e)))
            qkv += b_qkv
            q, k, v = split_heads(qkv, 3)  # each (B, H, T, D)
            p_att = np.matmul(q, k.transpose(0, 1, 3, 2), out=buf(("p", bi), (bsz, nh, t, t)))
            p_att *= scale
            if self.causal:
                p_att += self._causal_mask(t, dtype)
            p_att -= p_att.max(axis=-1, keepdims=True)
            np.exp(p_att, out=p_att)
            p_att *= 1.0 / p_att.sum(axis=-1, keepdims=True)
            o2 = buf(("o2", bi), (bt, e))
            np.matmul(p_att, v, out=o2.reshape(bsz, t, nh, hd).transpose(0, 2, 1, 3))  # heads merged
            att = np.matmul(o2, params[at + "out_proj.weight"].T, out=buf("tmp_e", (bt, e)))
            att += params[at + "out_proj.bias"]
            h += att

            a2, ln2c = _layernorm_forward(
                h, params[pre + "ln2.weight"], params[pre + "ln2.bias"], buf(("a2", bi), (bt, e)), buf(("x2", bi), (bt, e))
            )
            f1 = np.matmul(a2, params[pre + "ff.fc1.weight"].T, out=buf(("f1", bi), (bt, f)))
            f1 += params[pre + "ff.fc1.bias"]
            # GELU (tanh approximation): g = 0.5 x (1 + tanh(c (x + a x^3)))
            th = np.multiply(f1, f1, out=buf(("th", bi), (bt, f)))
            th *= GELU_A
            th += 1.0
            th *= f1
            th *= GELU_C
            np.tanh(th, out=th)
            g = np.add(th, 1.0, out=buf(("g", bi), (bt, f)))
            g *= f1
            g *= 0.5
            f2 = np.matmul(g, params[pre + "ff.fc2.weight"].T, out=buf("tmp_e", (bt, e)))
            f2 += params[pre + "ff.fc2.bias"]
            h += f2
            caches.append((a1, ln1c, w_qkv, q, k, v, p_att, o2, a2, ln2c, f1, th, g))

        zf, lnfc = _layernorm_forward(h, params["ln_f.weight"], params["ln_f.bias"], buf("zf", (bt, e)), buf("xf", (bt, e)))
        wh = params["head.weight"]
        logits = np.matmul(zf, wh.T, out=buf("logits", (bt, self.vocab)))
        logits += params["head.bias"]
        loss, dlogits = cross_entropy(logits, targets.reshape(-1), inplace=True)

        # ---- backward ----------------------------------------------------- #
        grads: dict = {}

        def gbuf(name, shape):
            return gws.get(name, shape, dtype)

        def linear_grads(name, dy, x_in):
            w = params[name + ".weight"]
            grads[name + ".weight"] = np.matmul(dy.T, x_in, out=gbuf(name + ".weight", w.shape))
            grads[name + ".bias"] = _col_sum(dy, out=gbuf(name + ".bias", (w.shape[0],)))

        linear_grads("head", dlogits, zf)
        dzf = np.matmul(dlogits, wh, out=buf("tmp_e", (bt, e)))
        dh = buf("dh", (bt, e))
        _, grads["ln_f.weight"], grads["ln_f.bias"] = _layernorm_backward(
            dzf, lnfc, params["ln_f.weight"], dh, buf("tmp_e2", (bt, e))
        )

        for bi in range(self.n_blocks - 1, -1, -1):
            pre = f"blocks.{bi}."
            at = pre + "attn."
            a1, ln1c, w_qkv, q, k, v, p_att, o2, a2, ln2c, f1, th, g = caches[bi]

            # FFN branch: h = h + fc2(gelu(fc1(ln2(h))))
            linear_grads(pre + "ff.fc2", dh, g)
            dg = np.matmul(dh, params[pre + "ff.fc2.weight"], out=buf("tmp_f", (bt, f)))
            # gelu'(x) = 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2),  t = tanh(c (x + a x^3))
            deriv = np.multiply(f1, f1, out=buf("tmp_f2", (bt, f)))
            deriv *= 3.0 * GELU_A
            deriv += 1.0
            deriv *= 0.5 * GELU_C
            deriv *= f1
            one_minus_t2 = np.multiply(th, th, out=g)  # g is no longer needed
            np.subtract(1.0, one_minus_t2, out=one_minus_t2)
            deriv *= one_minus_t2
            th += 1.0
            th *= 0.5
            deriv += th
            dg *= deriv
            linear_grads(pre + "ff.fc1", dg, a2)
            da2 = np.matmul(dg, params[pre + "ff.fc1.weight"], out=buf("tmp_e", (bt, e)))
            dx, grads[pre + "ln2.weight"], grads[pre + "ln2.bias"] = _layernorm_backward(
                da2, ln2c, params[pre + "ln2.weight"], da2, buf("tmp_e2", (bt, e))
            )
            dh += dx

            # attention branch: h = h + out_proj(attention(ln1(h)))
            linear_grads(at + "out_proj", dh, o2)
            do2 = np.matmul(dh, params[at + "out_proj.weight"], out=buf("tmp_e", (bt, e)))
            do = do2.reshape(bsz, t, nh, hd).transpose(0, 2, 1, 3)  # (B, H, T, D)
            dqkv = buf("dqkv", (bt, 3 * e))
            dq, dk, dv = split_heads(dqkv, 3)
            np.matmul(p_att.transpose(0, 1, 3, 2), do, out=dv)
            ds = np.matmul(do, v.transpose(0, 1, 3, 2), out=buf("ds", (bsz, nh, t, t)))  # dL/dP
            # softmax backward: dS = P * (dP - sum_j dP * P)
            ds -= np.einsum("bhij,bhij->bhi", ds, p_att)[..., None]
            ds *= p_att
            ds *= scale
            np.matmul(ds, k, out=dq)
            np.matmul(ds.transpose(0, 1, 3, 2), q, out=dk)
            gw_qkv = np.matmul(dqkv.T, a1, out=gbuf(("qkv.weight", bi), (3 * e, e)))
            gb_qkv = _col_sum(dqkv, out=gbuf(("qkv.bias", bi), (3 * e,)))
            for j, proj in enumerate(("q_proj", "k_proj", "v_proj")):
                grads[at + proj + ".weight"] = gw_qkv[j * e : (j + 1) * e]
                grads[at + proj + ".bias"] = gb_qkv[j * e : (j + 1) * e]
            da1 = np.matmul(dqkv, w_qkv, out=buf("tmp_e", (bt, e)))
            dx, grads[pre + "ln1.weight"], grads[pre + "ln1.bias"] = _layernorm_backward(
                da1, ln1c, params[pre + "ln1.weight"], da1, buf("tmp_e2", (bt, e))
            )
            dh += dx

        # embeddings
        gpos = gbuf("pos_emb.weight", params["pos_emb.weight"].shape)
        np.sum(dh.reshape(bsz, t, e), axis=0, out=gpos[:t])
        gpos[t:] = 0.0
        grads["pos_emb.weight"] = gpos
        onehot = buf("onehot", (bt, self.vocab))
        np.equal(tok_flat[:, None], np.arange(self.vocab), out=onehot)
        grads["tok_emb.weight"] = np.matmul(onehot.T, dh, out=gbuf("tok_emb.weight", tok_w.shape))

        return loss, {name: grads[name] for name in params}

    def loss_and_grads(self, params: dict, x, y):
        return self._forward_backward(params, x, y, self._ws, _FRESH)

    def step(self, params: dict, x, y, lr: float) -> float:
        loss, grads = self._forward_backward(params, x, y, self._ws, self._ws)
        _sgd_update(params, grads, lr)
        return loss


# --------------------------------------------------------------------------- #
# workload registry
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class WorkloadSpec:
    """One benchmark workload: a model plus its data factory and default learning rate."""

    id: str
    description: str
    batch_size: int
    model: object
    lr: float

    @property
    def make_params(self) -> Callable:
        return self.model.make_params

    @property
    def make_batch(self) -> Callable:
        return self.model.make_batch

    @property
    def loss_and_grads(self) -> Callable:
        return self.model.loss_and_grads

    @property
    def step(self) -> Callable:
        return self.model.step


def _build_workloads() -> dict:
    specs = [
        WorkloadSpec(
            "W1",
            "Linear(2,1)+Sigmoid, BCE, batch 100",
            100,
            MLP((2, 1), ("fc",), "bce", 100),
            0.5,
        ),
        WorkloadSpec(
            "W2",
            "XOR MLP Linear(2,4)-ReLU-Linear(4,1)-Sigmoid, BCE, batch 4",
            4,
            MLP((2, 4, 1), ("fc1", "fc2"), "bce", 4, data="xor"),
            0.5,
        ),
        WorkloadSpec(
            "W3",
            "MLP Linear(64,32)-ReLU-Linear(32,10), cross-entropy, batch 32",
            32,
            MLP((64, 32, 10), ("fc1", "fc2"), "ce", 32),
            0.1,
        ),
        WorkloadSpec(
            "W4",
            "digits CNN (32,1,8,8): Conv(1,8,3,p1)-ReLU-Pool2-Conv(8,16,3,p1)-ReLU-Pool2-Linear(64,10), CE",
            32,
            CNN((1, 8, 8), (("conv1", 8, 3, 1), ("conv2", 16, 3, 1)), "fc", 10, 32),
            0.1,
        ),
        WorkloadSpec(
            "W5",
            "MNIST CNN (64,1,28,28): Conv(1,16,5)-ReLU-Pool2-Conv(16,32,5)-ReLU-Pool2-Linear(512,10), CE",
            64,
            CNN((1, 28, 28), (("conv1", 16, 5, 0), ("conv2", 32, 5, 0)), "fc", 10, 64),
            0.05,
        ),
        WorkloadSpec(
            "W6",
            "tiny transformer V20 T8 E32 H4 1 block, non-causal, FFN 64, batch 16",
            16,
            Transformer(20, 8, 32, 4, 1, 64, causal=False, batch_size=16, task="reverse"),
            0.1,
        ),
        WorkloadSpec(
            "W7",
            "small GPT V64 T64 E128 H4 2 blocks, causal, FFN 256, batch 32",
            32,
            Transformer(64, 64, 128, 4, 2, 256, causal=True, batch_size=32, task="next_token"),
            0.1,
        ),
        WorkloadSpec(
            "W8",
            "Linear(1024,1024)-ReLU-Linear(1024,1024), MSE, batch 256",
            256,
            MLP((1024, 1024, 1024), ("fc1", "fc2"), "mse", 256),
            0.01,
        ),
    ]
    return {s.id: s for s in specs}


WORKLOADS: dict[str, WorkloadSpec] = _build_workloads()


# --------------------------------------------------------------------------- #
# timing
# --------------------------------------------------------------------------- #
def benchmark(workload_id: str, steps: int = 50, warmup: int = 5, seed: int = 0) -> dict:
    """Time ``step`` on a fixed float32 batch; returns median/min/mean ms per step."""
    spec = WORKLOADS[workload_id]
    rng = np.random.default_rng(seed)
    params = spec.make_params(rng)
    x, y = spec.make_batch(rng)
    for _ in range(warmup):
        spec.step(params, x, y, spec.lr)
    times = []
    loss = float("nan")
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = spec.step(params, x, y, spec.lr)
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1e3
    return {
        "id": workload_id,
        "median_ms": float(np.median(ms)),
        "min_ms": float(ms.min()),
        "mean_ms": float(ms.mean()),
        "final_loss": loss,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ids", nargs="*", default=list(WORKLOADS), help="workload ids (default: all)")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"{'id':<4} {'median ms':>10} {'min ms':>9} {'mean ms':>9} {'loss':>9}  description")
    for wid in args.ids:
        r = benchmark(wid, steps=args.steps, warmup=args.warmup)
        print(
            f"{wid:<4} {r['median_ms']:>10.3f} {r['min_ms']:>9.3f} {r['mean_ms']:>9.3f} "
            f"{r['final_loss']:>9.4f}  {WORKLOADS[wid].description}"
        )


if __name__ == "__main__":
    main()
