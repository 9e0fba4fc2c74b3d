"""Pooling with ``ceil_mode=True``, as PyTorch.

PyTorch's rule (docs of MaxPool2d/AvgPool2d): the output size along an axis is
``ceil((size + 2*padding - kernel) / stride) + 1``, less one when that last window would start
in the right padding; a last window may run past the input and its padding. An average counts
the zero padding (count_include_pad=True) but not what lies past the padded input.
"""

import numpy as np
import pytest

from tinytorch_core import Tensor
from tinytorch_core.testing import gradcheck
from tinytorch_spatial import AvgPool2d, MaxPool2d, avg_pool2d, max_pool2d
from tinytorch_spatial.functional import output_size


def f64(a, grad=False):
    return Tensor(a, requires_grad=grad, dtype=np.float64)


def pytorch_size(size, kernel, stride, padding):
    """PyTorch's pooling_output_shape with ceil_mode, written out on its own."""
    out = -(-(size + 2 * padding - kernel) // stride) + 1
    return out - 1 if (out - 1) * stride >= size + padding else out


def pool_reference(x, kernel, stride, padding, mode):
    """By loops, as PyTorch's kernels: window (y, x) spans padded rows [y*s, y*s + k) cut at the
    end of the padded input; max over its input entries, or sum / the cut window's size."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, c, h, w = x.shape
    ho, wo = pytorch_size(h, kh, sh, ph), pytorch_size(w, kw, sw, pw)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf if mode == "max" else 0.0)
    out = np.empty((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            window = xp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]  # slicing cuts the overhang
            if mode == "max":
                out[:, :, i, j] = window.max(axis=(2, 3))
            else:
                out[:, :, i, j] = window.sum(axis=(2, 3)) / (window.shape[2] * window.shape[3])
    return out


# ---- output size -------------------------------------------------------------------------------
@pytest.mark.parametrize("size, kernel, stride, padding, floor, ceil", [
    (5, 2, 2, 0, 2, 3),  # one pixel left over: ceil keeps a half-outside window
    (5, 2, 2, 1, 3, 3),  # the fourth window would start in the right padding: dropped
    (6, 3, 2, 1, 3, 4),  # the last window starts on the input and runs past the padding
    (7, 3, 2, 0, 3, 3),  # windows fit exactly: no difference
    (7, 3, 3, 1, 3, 3),
    (1, 1, 2, 0, 1, 1),
])
def test_output_size_follows_pytorch(size, kernel, stride, padding, floor, ceil):
    assert output_size(size, kernel, stride, padding) == floor
    assert output_size(size, kernel, stride, padding, ceil_mode=True) == ceil == pytorch_size(size, kernel, stride,
                                                                                               padding)


# ---- known answers -----------------------------------------------------------------------------
def test_pytorch_documented_example():
    # AvgPool1d(3, stride=2) of [1..7] is [2, 4, 6] in PyTorch's docs; ceil_mode changes nothing here
    x = f64(np.arange(1.0, 8.0).reshape(1, 1, 1, 7))
    np.testing.assert_array_equal(avg_pool2d(x, (1, 3), (1, 2), ceil_mode=True).data, [[[[2.0, 4.0, 6.0]]]])


def test_window_past_the_padding_known_answer():
    # padded row [0 | 1 2 3 4 5 6 | 0], kernel 3, stride 2: windows start at 0, 2, 4 and (ceil) 6
    x = f64(np.arange(1.0, 7.0).reshape(1, 1, 1, 6))
    avg = avg_pool2d(x, (1, 3), (1, 2), (0, 1), ceil_mode=True)
    # the last window [6, pad, past] averages over the 2 entries inside the padded input
    np.testing.assert_array_equal(avg.data, [[[[(0 + 1 + 2) / 3, (2 + 3 + 4) / 3, (4 + 5 + 6) / 3, (6 + 0) / 2]]]])
    biggest = max_pool2d(x, (1, 3), (1, 2), (0, 1), ceil_mode=True)
    np.testing.assert_array_equal(biggest.data, [[[[2.0, 4.0, 6.0, 6.0]]]])
    assert avg_pool2d(x, (1, 3), (1, 2), (0, 1)).shape == (1, 1, 1, 3)  # floor mode drops it


def test_two_by_two_over_five_by_five_known_answer():
    x = f64(np.arange(25.0).reshape(1, 1, 5, 5), grad=True)
    np.testing.assert_array_equal(max_pool2d(x, 2, ceil_mode=True).data,
                                  [[[[6, 8, 9], [16, 18, 19], [21, 23, 24]]]])
    avg = avg_pool2d(x, 2, ceil_mode=True)
    np.testing.assert_array_equal(avg.data, [[[[3, 5, 6.5], [13, 15, 16.5], [20.5, 22.5, 24]]]])
    avg.sum().backward()
    # every pixel gets 1 / (the size of its window): 4 inside, 2 on the last row or column, 1 in the corner
    expected = np.full((5, 5), 0.25)
    expected[4, :], expected[:, 4], expected[4, 4] = 0.5, 0.5, 1.0
    np.testing.assert_array_equal(x.grad.data[0, 0], expected)


def test_max_pool_gradient_reaches_the_last_partial_window():
    x = f64(np.arange(25.0).reshape(1, 1, 5, 5), grad=True)
    max_pool2d(x, 2, ceil_mode=True).sum().backward()
    winners = np.zeros((5, 5))
    winners[[1, 1, 1, 3, 3, 3, 4, 4, 4], [1, 3, 4, 1, 3, 4, 1, 3, 4]] = 1
    np.testing.assert_array_equal(x.grad.data[0, 0], winners)


# ---- against the loop reference, and by finite differences -------------------------------------
CASES = [  # x shape, kernel, stride, padding
    ((2, 3, 5, 7), (2, 2), (2, 2), (0, 0)),
    ((1, 2, 6, 7), (3, 3), (2, 2), (1, 1)),
    ((2, 2, 7, 6), (3, 2), (3, 2), (1, 1)),
    ((1, 2, 5, 5), (2, 3), (2, 2), (1, 0)),
]


@pytest.mark.parametrize("mode, fn", [("max", max_pool2d), ("avg", avg_pool2d)])
@pytest.mark.parametrize("shape, kernel, stride, padding", CASES)
def test_ceil_mode_matches_the_loop_reference_and_finite_differences(mode, fn, shape, kernel, stride, padding):
    x = np.random.default_rng(0).permutation(int(np.prod(shape))).reshape(shape) * 0.1  # no ties
    out = fn(f64(x), kernel, stride, padding, ceil_mode=True)
    np.testing.assert_allclose(out.data, pool_reference(x, kernel, stride, padding, mode), rtol=1e-12)
    channels_last = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(fn(f64(channels_last), kernel, stride, padding, ceil_mode=True).data, out.data)
    assert gradcheck(lambda a: fn(a, kernel, stride, padding, ceil_mode=True), x)


@pytest.mark.parametrize("fn", [max_pool2d, avg_pool2d])
def test_ceil_mode_keeps_float32(fn):
    x = Tensor(np.random.default_rng(1).standard_normal((2, 3, 5, 5)).astype(np.float32), requires_grad=True)
    out = fn(x, 2, ceil_mode=True)
    out.sum().backward()
    assert out.dtype == np.float32 and x.grad.dtype == np.float32 and out.shape == (2, 3, 3, 3)


@pytest.mark.parametrize("fn", [max_pool2d, avg_pool2d])
def test_ceil_mode_false_is_the_default(fn):
    x = Tensor(np.random.default_rng(2).standard_normal((2, 3, 7, 6)))
    np.testing.assert_array_equal(fn(x, 3, 2, 1, ceil_mode=False).data, fn(x, 3, 2, 1).data)


# ---- layers and errors -------------------------------------------------------------------------
@pytest.mark.parametrize("layer, fn", [(MaxPool2d, max_pool2d), (AvgPool2d, avg_pool2d)])
def test_layers_take_ceil_mode(layer, fn):
    x = Tensor(np.random.default_rng(3).standard_normal((2, 2, 7, 7)))
    pool = layer(2, ceil_mode=True)
    assert pool.ceil_mode and "ceil_mode=True" in repr(pool) and "ceil_mode" not in repr(layer(2))
    np.testing.assert_array_equal(pool(x).data, fn(x, 2, ceil_mode=True).data)
    assert pool(x).shape == (2, 2, 4, 4) and layer(2)(x).shape == (2, 2, 3, 3)


def test_ceil_mode_is_keyword_only_and_a_bool():
    # PyTorch puts dilation (MaxPool2d) or ceil_mode (AvgPool2d) fourth: keyword-only avoids a mix-up
    with pytest.raises(TypeError):
        MaxPool2d(2, 2, 0, True)
    with pytest.raises(TypeError):
        avg_pool2d(Tensor(np.zeros((1, 1, 4, 4))), 2, 2, 0, True)
    with pytest.raises(TypeError, match=r"AvgPool2d: ceil_mode must be True or False, got 'yes'"):
        AvgPool2d(2, ceil_mode="yes")
    with pytest.raises(TypeError, match=r"max_pool2d: ceil_mode must be True or False, got 1"):
        max_pool2d(Tensor(np.zeros((1, 1, 4, 4))), 2, ceil_mode=1)
