"""Quantized convolutions (when the spatial stage is installed): im2col on codes, exact, and a
quantized CNN that agrees with its float model."""

from __future__ import annotations

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_compression import QuantizedConv2d, prune_channels, quantize
from tinytorch_compression.integer_layers import QuantizedActivation
from tinytorch_compression.quantize import per_channel_weights

try:  # like the stage itself, through the namespace: spatial may be absent (or switched off)
    Conv2d = tt.nn.Conv2d
except ImportError:
    pytest.skip("stage 'spatial' is not installed: no convolutions to quantize", allow_module_level=True)


def conv_reference(codes, weight, zx, stride, padding):
    """Pure integer convolution, one output pixel at a time (int64; a test reference)."""
    n, h, w, c = codes.shape
    o, _, kh, kw = weight.shape
    padded = np.pad(codes.astype(np.int64) - zx, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    ho, wo = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    out = np.zeros((n, ho, wo, o), np.int64)
    for y in range(ho):
        for x in range(wo):
            window = padded[:, y * stride : y * stride + kh, x * stride : x * stride + kw, :]  # (n, kh, kw, c)
            out[:, y, x, :] = np.einsum("nijc,ocij->no", window, weight.astype(np.int64))
    return out


@pytest.mark.parametrize("stride,padding", [(1, 1), (2, 0)])
def test_quantized_conv_accumulators_equal_the_integer_reference(stride, padding):
    rng = np.random.default_rng(0)
    conv = Conv2d(3, 4, 3, stride=stride, padding=padding, generator=rng)
    layer = QuantizedConv2d.from_float(conv, (0.1, 5), (0.3, -2), per_channel_weights)
    codes = rng.integers(-128, 128, size=(2, 7, 6, 3)).astype(np.int8)
    from tinytorch_compression.integer_layers import integer_im2col
    columns, (ho, wo) = integer_im2col(codes, (3, 3), (stride, stride), (padding, padding), (1, 1), 5)
    expected = conv_reference(codes, layer.weight.data, 5, stride, padding) + layer.bias.data
    np.testing.assert_array_equal(layer.accumulate(columns).reshape(2, ho, wo, 4), expected)
    out = layer(QuantizedActivation(codes, float(np.float32(0.1)), 5))
    assert out.codes.shape == (2, ho, wo, 4) and out.codes.dtype == np.int8


def small_cnn(rng):
    return tt.nn.Sequential(Conv2d(1, 8, 3, padding=1, generator=rng), tt.nn.ReLU(), tt.nn.MaxPool2d(2),
                            Conv2d(8, 8, 3, padding=1, generator=rng), tt.nn.ReLU(), tt.nn.AvgPool2d(2),
                            tt.nn.Flatten(), tt.nn.Linear(8 * 2 * 2, 3, generator=rng))


def test_quantized_cnn_agrees_with_the_float_cnn():
    rng = np.random.default_rng(1)
    model = small_cnn(rng)
    x = rng.standard_normal((32, 1, 8, 8)).astype(np.float32)
    q = quantize(model, [tt.Tensor(x)])
    names = [type(step).__name__ for step in q]
    assert names == ["Quantize", "QuantizedConv2d", "IntegerMaxPool2d", "QuantizedConv2d", "FloatStep",
                     "IntegerFlatten", "QuantizedLinear", "DeQuantize"]  # AvgPool2d stays float
    with tt.no_grad():
        expected = model.eval()(tt.Tensor(x)).data
    got = q(tt.Tensor(x)).data
    assert np.abs(got - expected).max() < 0.05 * np.abs(expected).max()


def test_channel_pruning_keeps_the_strongest_filters_and_the_function_of_what_is_left():
    rng = np.random.default_rng(2)
    model = small_cnn(rng)
    small = prune_channels(model, 0.5)
    assert [tuple(p.shape) for p in small.parameters()] == [(4, 1, 3, 3), (4,), (4, 4, 3, 3), (4,), (3, 16), (3,)]
    norms = np.sqrt((model[0].weight.data.reshape(8, -1) ** 2).sum(axis=1))
    kept = np.sort(np.argsort(-norms)[:4])
    np.testing.assert_array_equal(small[0].weight.data, model[0].weight.data[kept])
    # zeroing the removed channels' filters and biases in the dense model gives the same outputs
    x = tt.Tensor(rng.standard_normal((5, 1, 8, 8)).astype(np.float32))
    masked = prune_channels(model, 0.0)
    with tt.no_grad():
        for layer in (masked[0], masked[3]):
            drop = np.setdiff1d(np.arange(8), np.sort(np.argsort(-np.sqrt((layer.weight.data.reshape(8, -1) ** 2)
                                                                         .sum(axis=1)))[:4]))
            layer.weight.data[drop] = 0
            layer.bias.data[drop] = 0
        assert small(x).shape == (5, 3)


def test_padding_by_name_is_quantized_as_numbers_or_refused_by_name():
    """Conv2d(padding="same") was accepted, then the int8 model failed with "too many values to unpack"."""
    rng = np.random.default_rng(0)
    same = QuantizedConv2d.from_float(Conv2d(3, 4, 3, padding="same", generator=rng), (0.1, 5), (0.3, -2),
                                      per_channel_weights)
    valid = QuantizedConv2d.from_float(Conv2d(3, 4, 3, padding="valid", generator=rng), (0.1, 5), (0.3, -2),
                                       per_channel_weights)
    assert (same.padding, valid.padding) == ((1, 1), (0, 0))
    with pytest.raises(ValueError, match=r"quantize: Conv2d\(padding='same'\) with kernel \(2, 2\) pads one side"):
        QuantizedConv2d.from_float(Conv2d(3, 4, 2, padding="same", generator=rng), (0.1, 5), (0.3, -2),
                                   per_channel_weights)
