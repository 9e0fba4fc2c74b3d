"""Bad input raises a clear error that names the op or layer and the shapes involved."""

import numpy as np
import pytest

from tinytorch_core import Tensor
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


def t(*shape):
    return Tensor(np.zeros(shape, np.float32))


# ---- wrong rank ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call, who",
    [
        (lambda x: conv2d(x, t(2, 3, 3, 3)), "conv2d"),
        (lambda x: max_pool2d(x, 2), "max_pool2d"),
        (lambda x: avg_pool2d(x, 2), "avg_pool2d"),
        (lambda x: batch_norm2d(x, training=True), "batch_norm2d"),
        (lambda x: Conv2d(3, 2, 3)(x), "Conv2d"),
        (lambda x: MaxPool2d(2)(x), "MaxPool2d"),
        (lambda x: AvgPool2d(2)(x), "AvgPool2d"),
        (lambda x: BatchNorm2d(3)(x), "BatchNorm2d"),
    ],
)
def test_wrong_rank_names_the_op_and_the_shape(call, who):
    """A 3-D (C, H, W) image is a batch of one (PyTorch's rule) for conv and pooling, not for batch norm."""
    with pytest.raises(ValueError, match=rf"{who}.*4-D input \(N, C, H, W\).*\(3, 8\)"):
        call(t(3, 8))


def test_conv2d_weight_must_be_4d():
    with pytest.raises(ValueError, match=r"conv2d: expected a 4-D weight.*\(2, 3, 3\)"):
        conv2d(t(1, 3, 8, 8), t(2, 3, 3))


# ---- channel mismatch ------------------------------------------------------------------------
def test_channel_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"conv2d: input has 3 channel.*\(1, 3, 8, 8\).*\(4, 2, 3, 3\).*2 input"):
        conv2d(t(1, 3, 8, 8), t(4, 2, 3, 3))


def test_conv2d_layer_channel_mismatch_names_the_layer():
    with pytest.raises(ValueError, match=r"Conv2d\(2, 4, kernel_size=\(3, 3\).*input has 3 channel"):
        Conv2d(2, 4, 3)(t(1, 3, 8, 8))


def test_bias_shape_is_checked():
    with pytest.raises(ValueError, match=r"conv2d: bias must have shape \(4,\).*got \(3,\)"):
        conv2d(t(1, 3, 8, 8), t(4, 3, 3, 3), t(3))


def test_batch_norm_channel_mismatch():
    expected = r"BatchNorm2d\(4\): input has 3 channel.*\(2, 3, 5, 5\).*running_mean has shape \(4,\)"
    with pytest.raises(ValueError, match=expected):
        BatchNorm2d(4)(t(2, 3, 5, 5))


# ---- kernel larger than the padded input ----------------------------------------------------
def test_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"conv2d: kernel 5x5 is larger than the padded input 4x6.*\(1, 1, 4, 6\)"):
        conv2d(t(1, 1, 4, 6), t(1, 1, 5, 5))
    # with one row of padding on each side the same kernel fits: 4 + 2 - 5 + 1 = 2 output rows
    assert conv2d(t(1, 1, 4, 6), t(1, 1, 5, 5), padding=1).shape == (1, 1, 2, 4)


def test_dilated_kernel_reach_is_checked():
    with pytest.raises(ValueError, match=r"conv2d: kernel 3x3 with dilation \(3, 3\) \(spans 7x7\)"):
        conv2d(t(1, 1, 6, 6), t(1, 1, 3, 3), dilation=3)


def test_pool_window_larger_than_input():
    with pytest.raises(ValueError, match=r"max_pool2d: kernel 4x4 is larger than the padded input 3x3"):
        max_pool2d(t(1, 1, 3, 3), 4)
    with pytest.raises(ValueError, match=r"AvgPool2d\(kernel_size=\(3, 3\).*larger than the padded input 2x5"):
        AvgPool2d(3)(t(1, 1, 2, 5))


# ---- stride / padding / dilation ---------------------------------------------------------------
@pytest.mark.parametrize("stride", [0, -1, (1, 0)])
def test_non_positive_stride(stride):
    with pytest.raises(ValueError, match=r"conv2d: stride must be positive"):
        conv2d(t(1, 1, 5, 5), t(1, 1, 3, 3), stride=stride)
    with pytest.raises(ValueError, match=r"max_pool2d: stride must be positive"):
        max_pool2d(t(1, 1, 5, 5), 2, stride=stride)
    with pytest.raises(ValueError, match=r"Conv2d: stride must be positive"):
        Conv2d(1, 1, 3, stride=stride)


@pytest.mark.parametrize("padding", [-1, (0, -2)])
def test_negative_padding(padding):
    with pytest.raises(ValueError, match=r"conv2d: padding must be non-negative"):
        conv2d(t(1, 1, 5, 5), t(1, 1, 3, 3), padding=padding)
    with pytest.raises(ValueError, match=r"avg_pool2d: padding must be non-negative"):
        avg_pool2d(t(1, 1, 5, 5), 3, padding=padding)


def test_pool_padding_at_most_half_the_kernel():
    with pytest.raises(ValueError, match=r"max_pool2d: padding \(2, 2\) must be at most half the kernel size \(3, 3\)"):
        max_pool2d(t(1, 1, 8, 8), 3, padding=2)


@pytest.mark.parametrize("bad", [1.5, "2", (1, 2, 3), (1.0, 2), True, None])
def test_malformed_geometry_arguments(bad):
    if isinstance(bad, str):  # a padding given by name must be one of PyTorch's two
        with pytest.raises(ValueError, match=r"conv2d: padding must be an int, a pair of ints, 'valid' or 'same', got '2'"):
            conv2d(t(1, 1, 5, 5), t(1, 1, 3, 3), padding=bad)
    else:
        with pytest.raises(TypeError, match=r"conv2d: padding must be an int or a pair of ints"):
            conv2d(t(1, 1, 5, 5), t(1, 1, 3, 3), padding=bad)
    with pytest.raises(TypeError, match=r"MaxPool2d: kernel_size must be an int or a pair of ints"):
        MaxPool2d(bad)


def test_zero_dilation():
    with pytest.raises(ValueError, match=r"conv2d: dilation must be positive"):
        conv2d(t(1, 1, 5, 5), t(1, 1, 3, 3), dilation=0)


# ---- layers -----------------------------------------------------------------------------------
def test_layer_constructor_errors():
    with pytest.raises(ValueError, match=r"Conv2d: in_channels must be a positive int, got 0"):
        Conv2d(0, 4, 3)
    with pytest.raises(ValueError, match=r"Conv2d: out_channels must be a positive int"):
        Conv2d(1, -4, 3)
    with pytest.raises(ValueError, match=r"BatchNorm2d: num_features must be a positive int"):
        BatchNorm2d(0)
    with pytest.raises(ValueError, match=r"BatchNorm2d: momentum must be a number in \[0, 1\]"):
        BatchNorm2d(3, momentum=1.5)
    with pytest.raises(ValueError, match=r"BatchNorm2d: eps must be positive"):
        BatchNorm2d(3, eps=0)
    with pytest.raises(TypeError, match=r"Flatten: start_axis must be an int"):
        Flatten(1.0)


def test_flatten_needs_enough_axes():
    with pytest.raises(ValueError, match=r"Flatten\(start_axis=2\): input of shape \(4, 5\)"):
        Flatten(2)(t(4, 5))


def test_batch_norm_needs_more_than_one_value_per_channel_in_training():
    with pytest.raises(ValueError, match=r"batch_norm2d: training needs more than one value.*\(1, 3, 1, 1\)"):
        batch_norm2d(t(1, 3, 1, 1), training=True)
    # evaluation with running statistics is fine for a single value
    batch_norm2d(t(1, 3, 1, 1), t(3), Tensor(np.ones(3, np.float32)), training=False)


def test_batch_norm_eval_needs_running_statistics():
    with pytest.raises(ValueError, match=r"batch_norm2d: evaluation mode needs running_mean and running_var"):
        batch_norm2d(t(2, 3, 4, 4), None, None, training=False)


@pytest.mark.parametrize("key, value", [("running_var", -1.0), ("running_var", np.nan), ("running_mean", np.inf)])
def test_batch_norm_refuses_running_statistics_it_cannot_normalise_with(key, value):
    """A loaded running_var of -1 or NaN, or a running_mean of inf, gave NaN or -inf outputs."""
    layer = BatchNorm2d(3)
    state = layer.state_dict()
    state[key] = np.full(3, value, np.float32)
    layer.load_state_dict(state)
    layer.eval()
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\): running_mean must be finite and running_var finite"):
        layer(t(2, 3, 4, 4))
