"""The vectorised kernels against straightforward loop-based references (which live only here).

Each reference loops over every output position and computes it, and its gradient, by the
textbook definition; the framework's forward values and the gradients its backward
produces must match them, in float64 and in float32.
"""

import numpy as np
import pytest

from tinytorch_core import Tensor
from tinytorch_core.testing import central_difference
from tinytorch_spatial import avg_pool2d, batch_norm2d, conv2d, max_pool2d


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# ---------------------------------------------------------------------------------------------
# loop references
# ---------------------------------------------------------------------------------------------
def conv2d_reference(x, w, b, stride, padding, dilation, grad_out=None):
    """Returns the output and, given ``grad_out``, the gradients (x, w, b) by explicit loops."""
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, o, ho, wo))
    gx = np.zeros_like(xp)
    gw = np.zeros_like(w, dtype=np.float64)
    for b_ in range(n):
        for oc in range(o):
            for i in range(ho):
                for j in range(wo):
                    acc = 0.0 if b is None else b[oc]
                    for ic in range(c):
                        for ki in range(kh):
                            for kj in range(kw):
                                r, s = i * sh + ki * dh, j * sw + kj * dw
                                acc += xp[b_, ic, r, s] * w[oc, ic, ki, kj]
                                if grad_out is not None:
                                    g = grad_out[b_, oc, i, j]
                                    gx[b_, ic, r, s] += g * w[oc, ic, ki, kj]
                                    gw[oc, ic, ki, kj] += g * xp[b_, ic, r, s]
                    out[b_, oc, i, j] = acc
    if grad_out is None:
        return out
    gb = grad_out.sum(axis=(0, 2, 3))
    return out, gx[:, :, ph : ph + h, pw : pw + wd], gw, gb


def pool_reference(x, kernel, stride, padding, mode, grad_out=None):
    """Max or average pooling by loops; max routes the gradient to the first maximum
    (row-major) of each window, average spreads it over the whole (zero-padded) window."""
    (kh, kw), (ph, pw) = pair(kernel), pair(padding)
    sh, sw = pair(stride if stride is not None else kernel)
    n, c, h, w = x.shape
    fill = -np.inf if mode == "max" else 0.0
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    ho = (h + 2 * ph - kh) // sh + 1
    wo = (w + 2 * pw - kw) // sw + 1
    out = np.zeros((n, c, ho, wo))
    gx = np.zeros_like(xp)
    for b in range(n):
        for ch in range(c):
            for i in range(ho):
                for j in range(wo):
                    window = xp[b, ch, i * sh : i * sh + kh, j * sw : j * sw + kw]
                    if mode == "max":
                        first = int(np.argmax(window))  # first maximum in row-major order
                        r, s = divmod(first, kw)
                        out[b, ch, i, j] = window[r, s]
                        if grad_out is not None:
                            gx[b, ch, i * sh + r, j * sw + s] += grad_out[b, ch, i, j]
                    else:
                        out[b, ch, i, j] = window.sum() / (kh * kw)
                        if grad_out is not None:
                            gx[b, ch, i * sh : i * sh + kh, j * sw : j * sw + kw] += grad_out[b, ch, i, j] / (kh * kw)
    if grad_out is None:
        return out
    return out, gx[:, :, ph : ph + h, pw : pw + w]


def batch_norm_reference(x, weight, bias, eps, mean=None, var=None):
    """Per channel, by a loop over channels; batch statistics unless ``mean``/``var`` are given."""
    out = np.empty_like(x, dtype=np.float64)
    for ch in range(x.shape[1]):
        values = x[:, ch]
        m = values.mean() if mean is None else mean[ch]
        v = values.var() if var is None else var[ch]
        y = (values - m) / np.sqrt(v + eps)
        if weight is not None:
            y = y * weight[ch] + bias[ch]
        out[:, ch] = y
    return out


def numeric_gradient(f, array, grad_out, eps=1e-6):
    """d sum(f() * grad_out) / d array by central differences (the reference's own gradient)."""
    result = np.zeros_like(array)
    flat, grad_flat = array.reshape(-1), result.reshape(-1)
    for k in range(flat.size):
        grad_flat[k] = central_difference(lambda: np.sum(f() * grad_out), flat, k, eps)
    return result


# ---------------------------------------------------------------------------------------------
# conv2d
# ---------------------------------------------------------------------------------------------
CONV_CASES = [
    # x shape, w shape, bias, stride, padding, dilation
    ((2, 3, 5, 6), (4, 3, 3, 2), True, 1, 0, 1),
    ((1, 2, 7, 5), (3, 2, 3, 3), True, 2, 1, 1),
    ((2, 2, 6, 7), (2, 2, 2, 3), False, (2, 1), (1, 0), (2, 1)),
    ((3, 1, 9, 8), (4, 1, 5, 5), True, 1, 2, 1),  # one input channel: the transposed im2col path
    ((2, 4, 5, 5), (3, 4, 1, 1), True, 1, 0, 1),  # 1x1 kernel
    ((1, 3, 6, 6), (2, 3, 3, 3), True, 3, 2, 2),
    ((2, 2, 4, 20), (2, 2, 3, 3), True, 1, 1, 1),  # wide rows: the transposed path with C > 1
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"x{c[0]}-w{c[1]}-s{c[3]}-p{c[4]}-d{c[5]}")
def test_conv2d_matches_loop_reference(case, dtype):
    xs, ws, with_bias, stride, padding, dilation = case
    rng = np.random.default_rng(1)
    x_np, w_np = rng.standard_normal(xs), rng.standard_normal(ws)
    b_np = rng.standard_normal(ws[0]) if with_bias else None
    x = Tensor(x_np, requires_grad=True, dtype=dtype)
    w = Tensor(w_np, requires_grad=True, dtype=dtype)
    b = Tensor(b_np, requires_grad=True, dtype=dtype) if with_bias else None

    y = conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation)
    assert y.dtype == dtype
    grad_out = rng.standard_normal(y.shape)
    expected, gx, gw, gb = conv2d_reference(
        x.data.astype(np.float64), w.data.astype(np.float64), None if b is None else b.data.astype(np.float64),
        stride, padding, dilation, grad_out,
    )
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y.data, expected, **tol)
    y.backward(grad_out.astype(dtype))
    np.testing.assert_allclose(x.grad.data, gx, **tol)
    np.testing.assert_allclose(w.grad.data, gw, **tol)
    if with_bias:
        np.testing.assert_allclose(b.grad.data, gb, **tol)
    assert x.grad.dtype == dtype and w.grad.dtype == dtype


def test_conv2d_loop_reference_gradient_agrees_with_its_own_finite_differences():
    # the reference's explicit-loop gradient is itself checked, so the comparison above is meaningful
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((1, 2, 5, 4)), rng.standard_normal((2, 2, 2, 3)), rng.standard_normal(2)
    args = dict(stride=(2, 1), padding=1, dilation=(1, 2))
    out = conv2d_reference(x, w, b, **args)
    grad_out = rng.standard_normal(out.shape)
    _, gx, gw, gb = conv2d_reference(x, w, b, grad_out=grad_out, **args)
    np.testing.assert_allclose(gx, numeric_gradient(lambda: conv2d_reference(x, w, b, **args), x, grad_out), atol=1e-6)
    np.testing.assert_allclose(gw, numeric_gradient(lambda: conv2d_reference(x, w, b, **args), w, grad_out), atol=1e-6)
    np.testing.assert_allclose(gb, numeric_gradient(lambda: conv2d_reference(x, w, b, **args), b, grad_out), atol=1e-6)


def test_conv2d_accepts_any_memory_layout():
    # channels-last and strided (non-contiguous) inputs give the same numbers as contiguous ones
    rng = np.random.default_rng(3)
    base = rng.standard_normal((2, 6, 11, 3))  # N, H, W, C in memory
    w = rng.standard_normal((4, 3, 3, 3))
    expected = conv2d_reference(np.ascontiguousarray(base.transpose(0, 3, 1, 2)), w, None, 1, 1, 1)
    channels_last = Tensor(base, dtype=np.float64).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(conv2d(channels_last, Tensor(w, dtype=np.float64), padding=1).data, expected, atol=1e-12)
    wide = rng.standard_normal((2, 3, 6, 22))
    strided = Tensor(wide, dtype=np.float64)[:, :, :, ::2]
    np.testing.assert_allclose(
        conv2d(strided, Tensor(w, dtype=np.float64), padding=1).data,
        conv2d_reference(wide[:, :, :, ::2], w, None, 1, 1, 1),
        atol=1e-12,
    )


def test_conv2d_keeps_float32_and_float64():
    rng = np.random.default_rng(4)
    for dtype in (np.float32, np.float64):
        x = Tensor(rng.standard_normal((2, 3, 6, 6)), dtype=dtype, requires_grad=True)
        w = Tensor(rng.standard_normal((4, 3, 3, 3)), dtype=dtype, requires_grad=True)
        b = Tensor(rng.standard_normal(4), dtype=dtype, requires_grad=True)
        y = conv2d(x, w, b, padding=1)
        y.sum().backward()
        assert y.dtype == dtype
        assert {x.grad.dtype, w.grad.dtype, b.grad.dtype} == {np.dtype(dtype)}


# ---------------------------------------------------------------------------------------------
# pooling
# ---------------------------------------------------------------------------------------------
POOL_CASES = [
    # x shape, kernel, stride, padding
    ((2, 3, 6, 6), 2, None, 0),
    ((2, 3, 5, 7), 2, None, 0),  # odd sizes: the last row/column is dropped
    ((1, 2, 7, 6), 3, 2, 1),  # overlapping windows with padding
    ((2, 1, 6, 5), (2, 3), (1, 2), (1, 0)),
    ((1, 2, 9, 9), 3, 3, 0),
    ((2, 2, 8, 8), (1, 2), (2, 1), 0),  # stride larger than the kernel along H: gaps
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: f"x{c[0]}-k{c[1]}-s{c[2]}-p{c[3]}")
def test_pooling_matches_loop_reference(case, mode, dtype):
    xs, kernel, stride, padding = case
    rng = np.random.default_rng(5)
    x = Tensor(rng.standard_normal(xs), requires_grad=True, dtype=dtype)
    op = max_pool2d if mode == "max" else avg_pool2d
    y = op(x, kernel, stride=stride, padding=padding)
    grad_out = rng.standard_normal(y.shape)
    expected, gx = pool_reference(x.data, kernel, stride, padding, mode, grad_out)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-5)
    assert y.dtype == dtype
    np.testing.assert_allclose(y.data, expected, **tol)
    y.backward(grad_out.astype(dtype))
    np.testing.assert_allclose(x.grad.data, gx, **tol)
    assert x.grad.dtype == dtype


def test_pool_reference_gradients_agree_with_their_own_finite_differences():
    rng = np.random.default_rng(6)
    x = (rng.permutation(2 * 7 * 6) * 0.1).reshape(1, 2, 7, 6).astype(np.float64)  # no ties
    for mode in ("max", "avg"):
        out = pool_reference(x, 3, 2, 1, mode)
        grad_out = rng.standard_normal(out.shape)
        _, gx = pool_reference(x, 3, 2, 1, mode, grad_out)
        numeric = numeric_gradient(lambda: pool_reference(x, 3, 2, 1, mode), x, grad_out)
        np.testing.assert_allclose(gx, numeric, atol=1e-6)


@pytest.mark.parametrize("kernel,stride", [(2, 2), (3, 1), (2, 1)])
def test_max_pool_ties_route_to_the_first_maximum_in_row_major_order(kernel, stride):
    rng = np.random.default_rng(7)
    # few distinct values: most windows hold several equal maxima
    x_np = rng.integers(0, 3, size=(2, 3, 6, 7)).astype(np.float64)
    x = Tensor(x_np, requires_grad=True, dtype=np.float64)
    y = max_pool2d(x, kernel, stride=stride)
    grad_out = rng.standard_normal(y.shape)
    y.backward(grad_out)
    _, expected = pool_reference(x_np, kernel, stride, 0, "max", grad_out)
    # (only the summation order of overlapping windows may differ: a wrong route is off by O(1))
    np.testing.assert_allclose(x.grad.data, expected, rtol=0, atol=1e-12)
    # deterministic: the same routing every time
    first = x.grad.data.copy()
    x.grad = None
    max_pool2d(x, kernel, stride=stride).backward(grad_out)
    np.testing.assert_array_equal(x.grad.data, first)


def test_max_pool_padding_never_wins_even_for_negative_inputs():
    x = Tensor(-np.arange(1.0, 17.0).reshape(1, 1, 4, 4), requires_grad=True, dtype=np.float64)
    y = max_pool2d(x, 3, stride=2, padding=1)
    # each window's largest real value (top-left of its real part), not the -inf padding
    np.testing.assert_array_equal(y.data, [[[[-1.0, -2.0], [-5.0, -6.0]]]])
    y.sum().backward()
    expected = np.zeros((1, 1, 4, 4))
    expected[0, 0, :2, :2] = 1.0
    np.testing.assert_array_equal(x.grad.data, expected)


@pytest.mark.parametrize("padding", [0, 1])
def test_max_pool_sends_a_nan_windows_gradient_to_its_nan_as_pytorch_does(padding):
    """NaN == NaN is False: no entry 'won' a NaN window and its gradient was lost."""
    x = Tensor(np.array([[[[1.0, np.nan, 0.0, 0.0], [3.0, 2.0, 0.0, 5.0]]]]), requires_grad=True, dtype=np.float64)
    y = max_pool2d(x, 2, stride=2, padding=padding)
    y.sum().backward()
    assert x.grad.data[0, 0, 0, 1] == 1.0  # the NaN's window sends its gradient there
    assert x.grad.data.sum() == y.data.size  # and no window's gradient is lost


def test_pooling_accepts_channels_last_and_strided_inputs():
    rng = np.random.default_rng(8)
    base = rng.standard_normal((2, 8, 9, 4))
    x_nchw = np.ascontiguousarray(base.transpose(0, 3, 1, 2))
    for mode, op in (("max", max_pool2d), ("avg", avg_pool2d)):
        x = Tensor(base, requires_grad=True, dtype=np.float64)
        y = op(x.transpose(0, 3, 1, 2), 2)
        grad_out = rng.standard_normal(y.shape)
        out, gx = pool_reference(x_nchw, 2, None, 0, mode, grad_out)
        np.testing.assert_allclose(y.data, out, atol=1e-12)
        y.backward(grad_out)
        np.testing.assert_allclose(x.grad.data, gx.transpose(0, 2, 3, 1), atol=1e-12)


# ---------------------------------------------------------------------------------------------
# batch_norm2d
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm2d_matches_loop_reference(training, affine):
    rng = np.random.default_rng(9)
    x_np = rng.standard_normal((4, 3, 3, 5)) * 2 + 1
    w_np, b_np = (rng.standard_normal(3), rng.standard_normal(3)) if affine else (None, None)
    running_mean, running_var = rng.standard_normal(3) * 0.1, rng.uniform(0.5, 2.0, 3)
    eps = 1e-5
    x = Tensor(x_np, requires_grad=True, dtype=np.float64)
    w = Tensor(w_np, requires_grad=True, dtype=np.float64) if affine else None
    b = Tensor(b_np, requires_grad=True, dtype=np.float64) if affine else None
    rm, rv = running_mean.copy(), running_var.copy()
    y = batch_norm2d(x, rm, rv, w, b, training=training, momentum=0.1, eps=eps)
    stats = {} if training else dict(mean=running_mean, var=running_var)

    def reference():
        return batch_norm_reference(x_np, w_np, b_np, eps, **stats)

    np.testing.assert_allclose(y.data, reference(), rtol=1e-10, atol=1e-10)
    grad_out = rng.standard_normal(y.shape)
    y.backward(grad_out)
    np.testing.assert_allclose(x.grad.data, numeric_gradient(reference, x_np, grad_out), atol=1e-5)
    if affine:
        np.testing.assert_allclose(w.grad.data, numeric_gradient(reference, w_np, grad_out), atol=1e-5)
        np.testing.assert_allclose(b.grad.data, numeric_gradient(reference, b_np, grad_out), atol=1e-5)


def test_one_unbatched_image_runs_as_a_batch_of_one_as_in_pytorch():
    rng = np.random.default_rng(3)
    image = rng.standard_normal((2, 6, 6))
    weight = rng.standard_normal((3, 2, 3, 3))
    for op, args in ((conv2d, (weight,)), (max_pool2d, (2,)), (avg_pool2d, (2,))):
        x = Tensor(image, requires_grad=True, dtype=np.float64)
        batched = Tensor(image[None], requires_grad=True, dtype=np.float64)
        one, many = op(x, *args), op(batched, *args)
        np.testing.assert_array_equal(one.data, many.data[0])
        one.sum().backward()
        many.sum().backward()
        np.testing.assert_array_equal(x.grad.data, batched.grad.data[0])
