"""Layers: Conv2d (init, parameters, forward), pooling layers, Flatten and BatchNorm2d."""

import math

import numpy as np
import pytest

from tinytorch_core import Module, Parameter, Tensor, manual_seed, no_grad
from tinytorch_core.testing import gradcheck
from tinytorch_spatial import (
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Flatten,
    MaxPool2d,
    avg_pool2d,
    batch_norm2d,
    conv2d,
    max_pool2d,
)


@pytest.fixture
def rng():
    return np.random.default_rng(11)


# ---- Conv2d ----------------------------------------------------------------------------------
def test_conv2d_parameters_and_pytorch_default_init():
    layer = Conv2d(3, 8, (3, 5), generator=0)
    assert isinstance(layer, Module)
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    assert isinstance(layer.weight, Parameter) and layer.weight.requires_grad
    assert layer.weight.shape == (8, 3, 3, 5) and layer.bias.shape == (8,)
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
    bound = 1 / math.sqrt(3 * 3 * 5)
    for p in (layer.weight, layer.bias):
        assert np.all(np.abs(p.data) <= bound)
    # the draws really span the range (not, say, a fraction of it)
    assert np.abs(layer.weight.data).max() > 0.9 * bound
    assert abs(layer.weight.data.mean()) < 0.1 * bound


def test_conv2d_init_is_reproducible_from_a_seed():
    a = Conv2d(2, 4, 3, generator=5)
    b = Conv2d(2, 4, 3, generator=np.random.default_rng(5))
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)
    manual_seed(3)
    c = Conv2d(2, 4, 3)
    manual_seed(3)
    d = Conv2d(2, 4, 3)
    np.testing.assert_array_equal(c.weight.data, d.weight.data)
    assert not np.array_equal(a.weight.data, Conv2d(2, 4, 3, generator=6).weight.data)


def test_conv2d_without_bias_and_geometry_attributes():
    layer = Conv2d(2, 3, 3, stride=(2, 1), padding=1, dilation=2, bias=False, generator=0)
    assert layer.bias is None
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    assert (layer.stride, layer.padding, layer.dilation) == ((2, 1), (1, 1), (2, 2))
    assert "bias=False" in repr(layer) and "dilation=(2, 2)" in repr(layer)
    assert set(layer.state_dict()) == {"weight"}


def test_conv2d_forward_and_backward_match_the_function(rng):
    layer = Conv2d(3, 4, 3, stride=2, padding=1, generator=1)
    x = Tensor(rng.standard_normal((2, 3, 9, 8)), requires_grad=True)
    y = layer(x)
    assert y.shape == (2, 4, 5, 4)
    expected = conv2d(x, layer.weight, layer.bias, stride=2, padding=1)
    np.testing.assert_array_equal(y.data, expected.data)
    y.sum().backward()
    assert layer.weight.grad.shape == layer.weight.shape
    # the bias gradient of a sum is the number of output pixels per channel
    np.testing.assert_allclose(layer.bias.grad.data, np.full(4, 2 * 5 * 4), rtol=1e-6)


def test_conv2d_layer_gradcheck_in_float64(rng):
    layer = Conv2d(2, 3, (2, 3), stride=(1, 2), padding=(1, 0), generator=2).to(np.float64)
    x = rng.standard_normal((2, 2, 5, 6))
    assert gradcheck(layer, x)
    assert gradcheck(lambda w, b: conv2d(Tensor(x, dtype=np.float64), w, b, stride=(1, 2), padding=(1, 0)),
                     layer.weight.data, layer.bias.data)


# ---- pooling layers ----------------------------------------------------------------------------
def test_pooling_layers_default_stride_is_the_kernel(rng):
    x = Tensor(rng.standard_normal((2, 3, 7, 9)))
    for layer_type, fn in ((MaxPool2d, max_pool2d), (AvgPool2d, avg_pool2d)):
        layer = layer_type(3)
        assert layer.stride == (3, 3) and layer.padding == (0, 0)
        y = layer(x)
        assert y.shape == (2, 3, 2, 3)
        np.testing.assert_array_equal(y.data, fn(x, 3).data)
        assert list(layer.parameters()) == []
    layer = MaxPool2d((2, 3), stride=1, padding=(1, 1))
    assert layer(x).shape == (2, 3, 8, 9)
    assert "kernel_size=(2, 3)" in repr(layer)


def test_avg_pool_counts_padding_in_the_average():
    x = Tensor(np.ones((1, 1, 2, 2)))
    y = avg_pool2d(x, 2, stride=2, padding=1)
    # every window holds one real 1 and three padded zeros
    np.testing.assert_allclose(y.data, np.full((1, 1, 2, 2), 0.25))


# ---- Flatten -------------------------------------------------------------------------------------
def test_flatten_keeps_the_batch_axis_and_passes_gradients(rng):
    data = rng.standard_normal((4, 3, 2, 5))
    x = Tensor(data, requires_grad=True)
    y = Flatten()(x)
    assert y.shape == (4, 30)
    np.testing.assert_array_equal(y.data, data.reshape(4, 30).astype(np.float32))
    weights = rng.standard_normal((4, 30))
    (y * Tensor(weights)).sum().backward()
    np.testing.assert_allclose(x.grad.data, weights.reshape(4, 3, 2, 5), rtol=1e-6)
    assert Flatten(2)(x).shape == (4, 3, 10)
    assert Flatten(0)(x).shape == (120,)


def test_flatten_of_a_channels_last_conv_output_is_in_nchw_order(rng):
    # conv outputs are NCHW views of channels-last memory; Flatten must still flatten (C, H, W)
    layer = Conv2d(2, 3, 1, bias=False, generator=0)
    x = Tensor(rng.standard_normal((2, 2, 3, 4)))
    y = layer(x)
    np.testing.assert_array_equal(Flatten()(y).data, np.ascontiguousarray(y.data).reshape(2, -1))


# ---- BatchNorm2d -----------------------------------------------------------------------------------
def test_batch_norm_parameters_and_buffers():
    bn = BatchNorm2d(3)
    assert [name for name, _ in bn.named_parameters()] == ["weight", "bias"]
    np.testing.assert_array_equal(bn.weight.data, np.ones(3))
    np.testing.assert_array_equal(bn.bias.data, np.zeros(3))
    assert [name for name, _ in bn.named_buffers()] == ["running_mean", "running_var", "num_batches_tracked"]
    assert set(bn.state_dict()) == {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
    plain = BatchNorm2d(3, affine=False)
    assert list(plain.parameters()) == [] and plain.weight is None
    assert set(plain.state_dict()) == {"running_mean", "running_var", "num_batches_tracked"}


def test_batch_norm_training_normalises_with_batch_statistics(rng):
    bn = BatchNorm2d(3)
    data = rng.standard_normal((8, 3, 4, 5)) * np.array([1.0, 3.0, 0.5])[None, :, None, None] + 2.0
    y = bn(Tensor(data)).data.astype(np.float64)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1.0, rtol=1e-3)  # biased variance, eps aside


def test_batch_norm_running_statistics_update_matches_hand_computation(rng):
    bn = BatchNorm2d(2, momentum=0.3).to(np.float64)
    batches = [rng.standard_normal((4, 2, 3, 3)) * 2 + 1 for _ in range(3)]
    mean, var = np.zeros(2), np.ones(2)
    for batch in batches:
        version = bn.running_mean._version
        bn(Tensor(batch, dtype=np.float64))
        assert bn.running_mean._version > version  # updated through the in-place tensor API
        count = 4 * 3 * 3
        batch_mean = batch.mean(axis=(0, 2, 3))
        unbiased = batch.var(axis=(0, 2, 3)) * count / (count - 1)
        mean = 0.7 * mean + 0.3 * batch_mean
        var = 0.7 * var + 0.3 * unbiased
        np.testing.assert_allclose(bn.running_mean.data, mean, rtol=1e-12)
        np.testing.assert_allclose(bn.running_var.data, var, rtol=1e-12)


def test_batch_norm_eval_uses_running_statistics_and_leaves_them_alone(rng):
    bn = BatchNorm2d(2)
    with no_grad():
        bn.running_mean.copy_(np.array([1.0, -2.0]))
        bn.running_var.copy_(np.array([4.0, 0.25]))
        bn.weight.copy_(np.array([2.0, 1.0]))
        bn.bias.copy_(np.array([0.5, 0.0]))
    bn.eval()
    data = rng.standard_normal((3, 2, 2, 2))
    y = bn(Tensor(data)).data
    expected = (data - np.array([1.0, -2.0])[None, :, None, None]) / np.sqrt(
        np.array([4.0, 0.25])[None, :, None, None] + 1e-5
    ) * np.array([2.0, 1.0])[None, :, None, None] + np.array([0.5, 0.0])[None, :, None, None]
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(bn.running_mean.data, [1.0, -2.0])
    np.testing.assert_array_equal(bn.running_var.data, [4.0, 0.25])
    # train mode differs: batch statistics, and the buffers move
    bn.train()
    y_train = bn(Tensor(data)).data
    assert not np.allclose(y_train, y)
    assert not np.allclose(bn.running_mean.data, [1.0, -2.0])


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck_of_input_weight_and_bias(training, rng):
    bn = BatchNorm2d(3).to(np.float64)
    with no_grad():
        bn.weight.copy_(rng.standard_normal(3))
        bn.bias.copy_(rng.standard_normal(3))
        bn.running_var.copy_(rng.uniform(0.5, 1.5, 3))
    bn.train(training)
    x = rng.standard_normal((3, 3, 2, 3))
    assert gradcheck(bn, x)

    def as_function(x, weight, bias):
        return batch_norm2d(x, bn.running_mean, bn.running_var, weight, bias, training=training)

    assert gradcheck(as_function, x, bn.weight.data.copy(), bn.bias.data.copy())


def test_batch_norm_keeps_float32(rng):
    bn = BatchNorm2d(2)
    x = Tensor(rng.standard_normal((4, 2, 3, 3)), requires_grad=True)
    y = bn(x)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32 and bn.weight.grad.dtype == np.float32
    assert bn.running_mean.dtype == np.float32


def test_the_functional_batch_norm_evaluates_by_default_as_pytorchs():
    """Like F.batch_norm: without training=True it uses the running statistics and leaves them alone."""
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((4, 3, 2, 2)).astype(np.float32))
    mean, var = Tensor(np.full(3, 0.5, np.float32)), Tensor(np.full(3, 4.0, np.float32))
    out = batch_norm2d(x, mean, var)
    np.testing.assert_allclose(out.data, (x.data - 0.5) / np.sqrt(4.0 + 1e-5), rtol=1e-6)
    np.testing.assert_array_equal(mean.data, 0.5)
    np.testing.assert_array_equal(var.data, 4.0)
