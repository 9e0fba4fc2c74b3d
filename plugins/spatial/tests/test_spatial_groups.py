"""Grouped and depthwise convolution: ``conv2d(..., groups=g)`` and ``Conv2d(..., groups=g)``.

Known answers worked by hand, an independent NumPy formula (sliding windows and one einsum per
call), finite-difference gradients, the fast paths against the plain path, the layer's
PyTorch init, and the errors for channel counts that do not split into the groups.
"""

import math

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from tinytorch_core import Tensor
from tinytorch_core.testing import gradcheck
from tinytorch_spatial import Conv2d, conv, conv2d


def f64(a):
    return Tensor(a, dtype=np.float64)


def grouped_reference(x, w, b, stride, padding, dilation, groups):
    """out[n, g*Og + o, y, x] = sum over c < C/G, i, j of
    padded[n, g*C/G + c, y*s + i*d, x*s + j*d] * w[g*Og + o, c, i, j] (+ b), in float64."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    n, c, _, _ = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    reach = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    windows = sliding_window_view(xp, reach, axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]  # N C Ho Wo kh kw
    windows = windows.reshape(n, groups, cg, *windows.shape[2:])
    filters = w.astype(np.float64).reshape(groups, o // groups, cg, kh, kw)
    out = np.einsum("ngcyxij,gocij->ngoyx", windows, filters).reshape(n, o, *windows.shape[3:5])
    return out if b is None else out + b[None, :, None, None]


# ---- known answers ----------------------------------------------------------------------------
def test_depthwise_known_answer():
    # channel 0 is 0..8, channel 1 all ones; each channel meets only its own 2x2 filter
    x = np.stack([np.arange(9.0).reshape(3, 3), np.ones((3, 3))])[None]
    w = np.array([[[[1.0, 0.0], [0.0, 1.0]]], [[[2.0, 2.0], [2.0, 2.0]]]])  # (2, 1, 2, 2)
    out = conv2d(f64(x), f64(w), f64(np.array([1.0, -1.0])), groups=2)
    # channel 0: x[i, j] + x[i+1, j+1] + 1; channel 1: 4 * 2 - 1
    np.testing.assert_array_equal(out.data, [[[[5.0, 7.0], [11.0, 13.0]], [[7.0, 7.0], [7.0, 7.0]]]])


def test_two_groups_known_answer():
    # four constant channels 1, 2, 3, 4; group 0 sees channels 0-1, group 1 channels 2-3
    x = np.arange(1.0, 5.0)[None, :, None, None] * np.ones((1, 4, 2, 2))
    w = np.array([[1.0, 10.0], [100.0, 1000.0]])[:, :, None, None]  # (2 out, 2 per group, 1, 1)
    out = conv2d(f64(x), f64(w), groups=2)
    np.testing.assert_array_equal(out.data[0, :, 0, 0], [1 + 10 * 2, 100 * 3 + 1000 * 4])
    # the gradient of the sum: each input channel gets its own group's filter weight
    xt, wt = Tensor(x, requires_grad=True, dtype=np.float64), Tensor(w, requires_grad=True, dtype=np.float64)
    conv2d(xt, wt, groups=2).sum().backward()
    np.testing.assert_array_equal(xt.grad.data[0, :, 0, 0], [1.0, 10.0, 100.0, 1000.0])
    np.testing.assert_array_equal(wt.grad.data[:, :, 0, 0], [[4.0, 8.0], [12.0, 16.0]])  # 4 pixels each


# ---- against the NumPy formula, and by finite differences -------------------------------------
CASES = [  # x shape, weight shape, bias, stride, padding, dilation, groups
    ((2, 4, 6, 5), (6, 2, 3, 3), True, (1, 1), (1, 1), (1, 1), 2),
    ((2, 3, 6, 5), (6, 1, 3, 2), True, (2, 1), (1, 0), (1, 1), 3),  # depthwise, 2 filters per channel
    ((1, 4, 5, 5), (4, 1, 3, 3), False, (1, 1), (1, 1), (1, 1), 4),  # depthwise, no bias
    ((2, 6, 7, 7), (3, 2, 3, 3), True, (2, 2), (0, 0), (2, 1), 3),
    ((2, 4, 5, 4), (8, 1, 1, 1), True, (1, 1), (0, 0), (1, 1), 4),  # 1x1 depthwise
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("x_shape, w_shape, bias, stride, padding, dilation, groups", CASES)
def test_grouped_conv_matches_the_numpy_formula(dtype, x_shape, w_shape, bias, stride, padding, dilation, groups):
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    b = b if bias else None
    out = conv2d(Tensor(x, dtype=dtype), Tensor(w, dtype=dtype), None if b is None else Tensor(b, dtype=dtype),
                 stride, padding, dilation, groups=groups)
    assert out.dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(out.data, grouped_reference(x, w, b, stride, padding, dilation, groups),
                               rtol=tol, atol=tol)


@pytest.mark.parametrize("x_shape, w_shape, bias, stride, padding, dilation, groups", CASES)
def test_grouped_conv_gradients_agree_with_finite_differences(x_shape, w_shape, bias, stride, padding, dilation,
                                                              groups):
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    if bias:
        assert gradcheck(lambda x, w, b: conv2d(x, w, b, stride, padding, dilation, groups), x, w, b)
    else:
        assert gradcheck(lambda x, w: conv2d(x, w, None, stride, padding, dilation, groups), x, w)


def test_grouped_conv_is_the_per_group_convolutions_side_by_side():
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((2, 6, 5, 5)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    out = conv2d(f64(x), f64(w), f64(b), padding=1, groups=2).data
    for g in range(2):
        part = conv2d(f64(x[:, 3 * g : 3 * g + 3]), f64(w[2 * g : 2 * g + 2]), f64(b[2 * g : 2 * g + 2]), padding=1)
        np.testing.assert_allclose(out[:, 2 * g : 2 * g + 2], part.data, rtol=1e-12, atol=1e-12)


def test_groups_one_is_the_plain_convolution():
    rng = np.random.default_rng(3)
    x, w, b = (Tensor(rng.standard_normal(s)) for s in ((2, 3, 6, 6), (4, 3, 3, 3), (4,)))
    np.testing.assert_array_equal(conv2d(x, w, b, 1, 1, groups=1).data, conv2d(x, w, b, 1, 1).data)


# ---- fast paths with groups ---------------------------------------------------------------------
def forward_and_grads(fn, *arrays):
    tensors = [Tensor(a, requires_grad=True, dtype=np.float64) for a in arrays]
    out = fn(*tensors)
    (out * Tensor(np.random.default_rng(7).standard_normal(out.shape))).sum().backward()
    return [out.data] + [t.grad.data for t in tensors]


@pytest.mark.parametrize("predicate", ["_can_fold_bias", "_can_use_transposed_conv"])
@pytest.mark.parametrize("x_shape, w_shape, groups", [((2, 4, 5, 5), (6, 2, 3, 3), 2), ((2, 3, 6, 5), (3, 1, 3, 3), 3)])
def test_fast_paths_agree_with_the_plain_path_for_groups(monkeypatch, predicate, x_shape, w_shape, groups):
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # channels-last, as layers pass it

    def fn(x, w, b):
        return conv2d(x, w, b, padding=1, groups=groups)

    geo = conv.WindowGeometry.of(x.shape, w.shape[2:], (1, 1), (1, 1))
    assert conv._can_fold_bias(b) and conv._can_use_transposed_conv(geo)
    assert not conv._can_store_columns_transposed(geo)  # more than one channel: never with groups > 1
    fast = forward_and_grads(fn, x, w, b)
    with monkeypatch.context() as patch:
        patch.setattr(conv, predicate, lambda *args: False)
        plain = forward_and_grads(fn, x, w, b)
        assert gradcheck(fn, np.ascontiguousarray(x), w, b)
    for a, c in zip(fast, plain):
        np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-12)


# ---- the layer ----------------------------------------------------------------------------------
def test_conv2d_layer_with_groups_has_pytorch_shapes_and_init():
    layer = Conv2d(6, 9, (3, 2), groups=3, generator=0)
    assert layer.weight.shape == (9, 2, 3, 2) and layer.bias.shape == (9,) and layer.groups == 3
    bound = 1 / math.sqrt(6 // 3 * 3 * 2)  # fan_in = in_channels / groups * kh * kw
    for p in (layer.weight, layer.bias):
        assert np.all(np.abs(p.data) <= bound)
    assert np.abs(layer.weight.data).max() > 0.8 * bound
    assert "groups=3" in repr(layer) and "groups" not in repr(Conv2d(2, 2, 3))


def test_depthwise_conv2d_layer_forward_and_gradients():
    layer = Conv2d(4, 4, 3, padding=1, groups=4, generator=1).to(np.float64)
    x = np.random.default_rng(5).standard_normal((2, 4, 5, 5))
    expected = grouped_reference(x, layer.weight.data, layer.bias.data, (1, 1), (1, 1), (1, 1), 4)
    np.testing.assert_allclose(layer(f64(x)).data, expected, rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda x, w, b: conv2d(x, w, b, 1, 1, 1, 4), x, layer.weight.data, layer.bias.data)
    y = layer(Tensor(x, requires_grad=True, dtype=np.float64))
    y.sum().backward()
    assert layer.weight.grad.shape == (4, 1, 3, 3)


def test_groups_one_layer_draws_the_same_weights_as_before():
    a, b = Conv2d(3, 4, 3, generator=9), Conv2d(3, 4, 3, groups=1, generator=9)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)


# ---- errors -------------------------------------------------------------------------------------
def t(*shape):
    return Tensor(np.zeros(shape, np.float32))


def test_groups_must_divide_both_channel_counts():
    with pytest.raises(ValueError, match=r"conv2d: input has 3 channel.*; groups=2 does not divide 3 channels"):
        conv2d(t(1, 3, 5, 5), t(4, 1, 3, 3), groups=2)
    with pytest.raises(ValueError, match=r"conv2d: groups=2 must divide the 3 output channel\(s\)"):
        conv2d(t(1, 4, 5, 5), t(3, 2, 3, 3), groups=2)
    with pytest.raises(ValueError, match=r"Conv2d: in_channels=3 must be divisible by groups=2"):
        Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match=r"Conv2d: out_channels=6 must be divisible by groups=4"):
        Conv2d(4, 6, 3, groups=4)


def test_grouped_weight_must_see_in_channels_over_groups():
    with pytest.raises(ValueError, match=r"conv2d: input has 4 channel\(s\).*groups=2 expects 4 per group, 8 in all"):
        conv2d(t(1, 4, 5, 5), t(4, 4, 3, 3), groups=2)  # a groups=1 weight given groups=2
    with pytest.raises(ValueError, match=r"Conv2d\(4, 4, .*groups=4\): input has 2 channel\(s\)"):
        Conv2d(4, 4, 3, groups=4)(t(1, 2, 5, 5))


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, None])
def test_groups_must_be_a_positive_int(bad):
    with pytest.raises(ValueError, match=r"conv2d: groups must be a positive int"):
        conv2d(t(1, 2, 5, 5), t(2, 1, 3, 3), groups=bad)
    with pytest.raises(ValueError, match=r"Conv2d: groups must be a positive int"):
        Conv2d(2, 2, 3, groups=bad)
