"""Depthwise convolution: against spatial's conv2d (forward and gradients), gradients against
finite differences, float32, errors, and the layer."""

import math

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_swish import DepthwiseConv2d, depthwise_conv2d


def dense_weight(weight, channels):
    """The (C * m, C, kh, kw) block-diagonal weight for which a full conv2d equals the depthwise one."""
    out_channels, _, kh, kw = weight.shape
    dense = np.zeros((out_channels, channels, kh, kw))
    rows = np.arange(out_channels)
    dense[rows, rows // (out_channels // channels)] = weight[:, 0]
    return dense


GEOMETRIES = [
    dict(x=(2, 3, 6, 6), m=1, k=(3, 3)),
    dict(x=(1, 2, 7, 5), m=3, k=(2, 3), stride=2, padding=1),
    dict(x=(2, 2, 8, 7), m=2, k=(3, 2), stride=(1, 2), padding=(2, 0), dilation=(2, 1)),
    dict(x=(1, 4, 6, 6), m=1, k=(3, 3), stride=2),  # the last row and column fall in no window
]


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_matches_spatial_conv2d_with_a_block_diagonal_weight(geometry):
    geometry = dict(geometry)
    shape, m, kernel = geometry.pop("x"), geometry.pop("m"), geometry.pop("k")
    rng = np.random.default_rng(0)
    c = shape[1]
    x1 = tt.Tensor(rng.standard_normal(shape), requires_grad=True, dtype=np.float64)
    w1 = tt.Tensor(rng.standard_normal((c * m, 1) + kernel), requires_grad=True, dtype=np.float64)
    b1 = tt.Tensor(rng.standard_normal(c * m), requires_grad=True, dtype=np.float64)
    x2 = tt.Tensor(x1.data, requires_grad=True, dtype=np.float64)
    w2 = tt.Tensor(dense_weight(w1.data, c), requires_grad=True, dtype=np.float64)
    b2 = tt.Tensor(b1.data, requires_grad=True, dtype=np.float64)

    ours = depthwise_conv2d(x1, w1, b1, **geometry)
    theirs = tt.ops.conv2d(x2, w2, b2, **geometry)
    np.testing.assert_allclose(ours.data, theirs.data, rtol=1e-12, atol=1e-12)

    upstream = rng.standard_normal(ours.shape)
    ours.backward(upstream)
    theirs.backward(upstream)
    np.testing.assert_allclose(x1.grad.data, x2.grad.data, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b1.grad.data, b2.grad.data, rtol=1e-12, atol=1e-12)
    block_diagonal = dense_weight(np.ones_like(w1.data), c).astype(bool)
    np.testing.assert_allclose(w1.grad.data[:, 0], w2.grad.data[block_diagonal].reshape(w1.grad.data[:, 0].shape),
                               rtol=1e-12, atol=1e-12)


def test_gradients_match_finite_differences(gradcheck):
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((2, 2, 5, 6)), rng.standard_normal((4, 1, 2, 3)), rng.standard_normal(4)
    assert gradcheck(depthwise_conv2d, x, w, b, stride=(2, 1), padding=1, dilation=(1, 2))


def test_float32_stays_float32():
    rng = np.random.default_rng(5)
    x = tt.Tensor(rng.standard_normal((2, 3, 5, 5)).astype(np.float32), requires_grad=True)
    layer = DepthwiseConv2d(3, 3, padding=1, generator=0)
    out = layer(x)
    out.sum().backward()
    assert out.data.dtype == np.float32
    assert x.grad.data.dtype == layer.weight.grad.data.dtype == layer.bias.grad.data.dtype == np.float32


@pytest.mark.parametrize(
    "x_shape, w_shape, b_shape, options, error, message",
    [
        ((3, 5, 5), (3, 1, 3, 3), None, {}, ValueError, r"expected a 4-D input \(N, C, H, W\), got shape \(3, 5, 5\)"),
        ((1, 3, 5, 5), (4, 1, 3, 3), None, {}, ValueError, r"weight must have shape \(C \* multiplier, 1, kh, kw\)"),
        ((1, 3, 5, 5), (3, 2, 3, 3), None, {}, ValueError, r"with C = 3 input channels, got \(3, 2, 3, 3\)"),
        ((1, 3, 5, 5), (3, 1, 3, 3), (2,), {}, ValueError, r"bias must have shape \(3,\)"),
        ((1, 3, 5, 5), (3, 1, 7, 3), None, {}, ValueError, "spans more than the padded input 5x5"),
        ((1, 3, 5, 5), (3, 1, 3, 3), None, {"stride": 0}, ValueError, "stride must be positive"),
        ((1, 3, 5, 5), (3, 1, 3, 3), None, {"padding": -1}, ValueError, "padding must be non-negative"),
        ((1, 3, 5, 5), (3, 1, 3, 3), None, {"dilation": 1.5}, TypeError, "dilation must be an int or a pair"),
    ],
)
def test_bad_arguments_are_clear_errors(x_shape, w_shape, b_shape, options, error, message):
    x, w = np.zeros(x_shape), np.zeros(w_shape)
    b = None if b_shape is None else np.zeros(b_shape)
    with pytest.raises(error, match="^depthwise_conv2d: .*" + message):
        depthwise_conv2d(tt.Tensor(x), tt.Tensor(w), None if b is None else tt.Tensor(b), **options)


def test_layer_shapes_init_and_reproducibility():
    layer = DepthwiseConv2d(4, (3, 2), stride=2, padding=1, multiplier=2, generator=7)
    assert layer.weight.shape == (8, 1, 3, 2) and layer.bias.shape == (8,)
    bound = 1 / math.sqrt(6)
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.bias.data).max() <= bound
    assert np.abs(layer.weight.data).max() > 0.5 * bound  # really spread over the range
    again = DepthwiseConv2d(4, (3, 2), stride=2, padding=1, multiplier=2, generator=7)
    np.testing.assert_array_equal(layer.weight.data, again.weight.data)
    assert sorted(layer.state_dict()) == ["bias", "weight"]
    out = layer(tt.Tensor(np.zeros((2, 4, 9, 8), dtype=np.float32)))
    assert out.shape == (2, 8, 5, 5)
    assert repr(layer) == "DepthwiseConv2d(4, kernel_size=(3, 2), stride=(2, 2), padding=(1, 1), multiplier=2)"


def test_layer_errors_name_the_layer():
    with pytest.raises(ValueError, match="DepthwiseConv2d: channels must be a positive int"):
        DepthwiseConv2d(0, 3)
    layer = DepthwiseConv2d(3, 3, bias=False, generator=0)
    assert layer.bias is None and "bias=False" in repr(layer)
    with pytest.raises(ValueError, match=r"DepthwiseConv2d\(3, kernel_size=\(3, 3\).*: weight must have shape"):
        layer(tt.Tensor(np.zeros((1, 2, 5, 5), dtype=np.float32)))
