"""PyTorch arguments and methods that were missing or meant something else: ``x.where(c, y)``,
``x.mT``, matmul of two dtypes, ``padding="same"``/``"valid"``, ``count_include_pad``, and
LayerNorm over several axes or without its affine part. Values are checked against plain NumPy
written here, gradients against finite differences."""

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Tensor
from tinytorch_core.testing import gradcheck


def f64(array, requires_grad=False):
    return Tensor(np.asarray(array, dtype=np.float64), requires_grad=requires_grad, dtype=np.float64)


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ---- tensor methods -----------------------------------------------------------------------------
def test_where_method_keeps_the_tensor_as_the_values():
    """``x.where(c, y)`` is PyTorch's ``where(c, x, y)``; it bound x as the condition, silently
    for a bool x."""
    x = f64([1.0, 2.0, 3.0])
    assert x.where(x > 1.5, 0.0).tolist() == [0.0, 2.0, 3.0]
    flags = Tensor(np.array([True, False, True]))
    chosen = flags.where(Tensor(np.array([False, False, True])), Tensor(np.array([False, True, False])))
    assert chosen.tolist() == [False, True, True]
    keep = np.array([True, False, True, False])
    assert gradcheck(lambda a, b: a.where(Tensor(keep), b), randn(4), randn(4))


def test_mT_swaps_the_last_two_axes():
    batch = randn(2, 3, 4)
    np.testing.assert_array_equal(f64(batch).mT.data, batch.swapaxes(-1, -2))
    assert gradcheck(lambda a: a.mT * 1.0, randn(2, 3, 4))
    with pytest.raises(ValueError, match="mT: expected a matrix or a batch of matrices, got a 1-d tensor"):
        f64(randn(3)).mT


def test_matmul_of_two_dtypes_is_refused_as_in_pytorch():
    """float32 @ float64 silently gave float64, and the next float32 layer failed far away."""
    with pytest.raises(TypeError, match="matmul: both tensors must have the same dtype, got float32 and float64"):
        Tensor(np.ones((2, 3), np.float32)) @ f64(np.ones((3, 2)))
    with pytest.raises(TypeError, match="got int64 and float32"):
        tt.ops.matmul(Tensor(np.ones((2, 3), np.int64)), Tensor(np.ones((3, 2), np.float32)))
    assert (f64(np.ones((2, 3))) @ f64(np.ones((3, 2)))).dtype == np.float64


def test_functional_linear_conv_and_layer_norm_refuse_two_dtypes_as_in_pytorch():
    """F.linear of a float32 input and a float64 weight gave float64; F.conv2d of int64 arrays
    gave int64. PyTorch refuses both (the layers already did)."""
    F = tt.nn.functional
    x32, w64 = Tensor(np.ones((2, 3), np.float32)), f64(np.ones((4, 3)))
    with pytest.raises(TypeError, match="linear: the operands must share one dtype, got input float32, weight float64"):
        F.linear(x32, w64)
    with pytest.raises(TypeError, match="got input float64, weight float64, bias float32"):
        F.linear(f64(np.ones((2, 3))), w64, Tensor(np.ones(4, np.float32)))
    assert F.linear(x32, Tensor(np.ones((4, 3), np.float32))).dtype == np.float32
    with pytest.raises(TypeError, match="layer_norm: the operands must share one dtype"):
        F.layer_norm(x32, f64(np.ones(3)))
    pytest.importorskip("tinytorch_spatial")
    with pytest.raises(TypeError, match="conv2d: expected a floating-point input, got int64"):
        F.conv2d(Tensor(np.ones((1, 1, 4, 4), np.int64)), Tensor(np.ones((1, 1, 3, 3), np.int64)))
    with pytest.raises(TypeError, match="conv2d: the operands must share one dtype"):
        F.conv2d(Tensor(np.ones((1, 1, 4, 4), np.float32)), f64(np.ones((1, 1, 3, 3))))


# ---- convolution: padding by name ---------------------------------------------------------------
@pytest.mark.parametrize("kernel, dilation", [((3, 3), (1, 1)), ((2, 4), (1, 1)), ((3, 2), (2, 3)), ((4, 4), (2, 1))])
def test_padding_same_keeps_the_size_and_pads_the_odd_row_after(kernel, dilation):
    """PyTorch's rule: ``dilation * (k - 1)`` zeros per axis, half before, the rest after."""
    x, w = randn(2, 3, 7, 8), randn(4, 3, *kernel, seed=1)
    same = tt.ops.conv2d(f64(x), f64(w), None, padding="same", dilation=dilation)
    totals = [d * (k - 1) for d, k in zip(dilation, kernel)]
    padded = np.pad(x, ((0, 0), (0, 0), (totals[0] // 2, totals[0] - totals[0] // 2),
                        (totals[1] // 2, totals[1] - totals[1] // 2)))
    by_hand = tt.ops.conv2d(f64(padded), f64(w), None, dilation=dilation)
    assert same.shape == (2, 4, 7, 8)
    np.testing.assert_allclose(same.data, by_hand.data, rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda a, b: tt.ops.conv2d(a, b, None, padding="same", dilation=dilation),
                     randn(1, 3, 5, 6), randn(2, 3, *kernel, seed=1))


def test_padding_valid_and_the_layer():
    x, w = randn(1, 2, 6, 6), randn(3, 2, 3, 3)
    valid = tt.ops.conv2d(f64(x), f64(w), None, padding="valid")
    np.testing.assert_array_equal(valid.data, tt.ops.conv2d(f64(x), f64(w), None).data)
    layer = tt.nn.Conv2d(2, 3, 4, padding="same").to(np.float64)
    assert layer(f64(x)).shape == (1, 3, 6, 6) and layer(f64(x[0])).shape == (3, 6, 6)
    assert "padding='same'" in repr(layer)


def test_padding_by_name_errors():
    with pytest.raises(ValueError, match=r"Conv2d: padding='same' needs stride 1, got stride=2"):
        tt.nn.Conv2d(1, 1, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="conv2d: padding must be an int, a pair of ints, 'valid' or 'same', got 'full'"):
        tt.ops.conv2d(f64(randn(1, 1, 4, 4)), f64(randn(1, 1, 3, 3)), None, padding="full")


# ---- average pooling without the padding in the count -------------------------------------------
def average_by_hand(x, kernel, stride, padding, count_include_pad):
    """Each window's mean over its input pixels, or over the padded window (no ceil mode)."""
    n, c, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    real = np.pad(np.ones((h, w)), padding)
    out_h, out_w = (h + 2 * padding - kernel) // stride + 1, (w + 2 * padding - kernel) // stride + 1
    out = np.empty((n, c, out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            rows, cols = slice(i * stride, i * stride + kernel), slice(j * stride, j * stride + kernel)
            count = kernel * kernel if count_include_pad else real[rows, cols].sum()
            out[:, :, i, j] = padded[:, :, rows, cols].sum(axis=(2, 3)) / count
    return out


@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool_count_include_pad(count_include_pad):
    x = randn(2, 3, 7, 6)
    pooled = tt.nn.AvgPool2d(3, 2, 1, count_include_pad=count_include_pad).to(np.float64)(f64(x))
    np.testing.assert_allclose(pooled.data, average_by_hand(x, 3, 2, 1, count_include_pad), rtol=1e-12)
    assert gradcheck(lambda a: tt.ops.avg_pool2d(a, 3, 2, 1, ceil_mode=True, count_include_pad=count_include_pad),
                     randn(1, 2, 6, 7))


def test_avg_pool_count_include_pad_must_be_a_flag():
    with pytest.raises(TypeError, match="AvgPool2d: count_include_pad must be True or False, got 0"):
        tt.nn.AvgPool2d(2, count_include_pad=0)
    assert "count_include_pad=False" in repr(tt.nn.AvgPool2d(2, count_include_pad=False))


# ---- LayerNorm over several axes, with and without parameters -----------------------------------
def normalised_by_hand(x, axes):
    mean = x.mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(((x - mean) ** 2).mean(axis=axes, keepdims=True) + 1e-5)


def test_layer_norm_over_the_last_two_axes():
    x = randn(2, 3, 4, 5)
    layer = tt.nn.LayerNorm((4, 5)).to(np.float64)
    assert layer.normalized_shape == (4, 5) and layer.weight.shape == layer.bias.shape == (4, 5)
    np.testing.assert_allclose(layer(f64(x)).data, normalised_by_hand(x, (2, 3)), rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda a, w, b: tt.ops.layer_norm(a, w, b, normalized_shape=(4, 5)),
                     randn(2, 4, 5), randn(4, 5, seed=1), randn(4, 5, seed=2))
    with pytest.raises(ValueError, match=r"LayerNorm\(4, 5\): expected input of shape \(\.\.\., 4, 5\), got \(2, 5, 4\)"):
        layer(f64(randn(2, 5, 4)))


def test_layer_norm_without_affine_part_or_bias():
    plain = tt.nn.LayerNorm(5, elementwise_affine=False)
    assert list(plain.state_dict()) == [] and plain.weight is None and plain.bias is None
    x = randn(3, 5)
    np.testing.assert_allclose(plain(f64(x)).data, normalised_by_hand(x, -1), rtol=1e-10, atol=1e-12)  # any float dtype
    no_bias = tt.nn.LayerNorm(5, bias=False)
    assert list(no_bias.state_dict()) == ["weight"] and "bias=False" in repr(no_bias)
    with pytest.raises(TypeError, match="LayerNorm: elementwise_affine must be True or False"):
        tt.nn.LayerNorm(5, elementwise_affine="no")


# ---- modules: names, order and conversions as in PyTorch ----------------------------------------
def test_a_slice_of_sequential_keeps_its_modules_names():
    """``seq[1:]`` renumbered its keys from 0, so its state dict no longer matched the whole one's."""
    seq = tt.nn.Sequential(tt.nn.Linear(2, 3), tt.nn.ReLU(), tt.nn.Linear(3, 1))
    tail = seq[1:]
    assert list(tail.state_dict()) == ["2.weight", "2.bias"] and len(tail) == 2 and tail[1] is seq[2]
    tail.append(tt.nn.Linear(1, 1))  # the next free number, never a name the slice already holds
    assert list(tail.state_dict()) == ["2.weight", "2.bias", "3.weight", "3.bias"]


def test_sequential_from_a_dict_names_its_modules():
    from collections import OrderedDict

    seq = tt.nn.Sequential(OrderedDict([("fc", tt.nn.Linear(2, 3)), ("act", tt.nn.ReLU())]))
    assert list(seq.state_dict()) == ["fc.weight", "fc.bias"] and seq(tt.ones((1, 2))).shape == (1, 3)
    seq.act = tt.nn.Sigmoid()  # replaced in place: forward runs the new one
    assert (seq(tt.ones((1, 2))).data > 0).all()
    with pytest.raises(ValueError, match="a module's name must be a non-empty string without dots"):
        tt.nn.Sequential({"a.b": tt.nn.ReLU()})


def test_state_dict_lists_each_modules_parameters_then_its_buffers_as_pytorch():
    model = tt.nn.Sequential(tt.nn.Conv2d(1, 2, 3), tt.nn.BatchNorm2d(2), tt.nn.Flatten(), tt.nn.Linear(8, 1))
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                                        "1.running_var", "1.num_batches_tracked", "3.weight", "3.bias"]


def test_module_float_double_and_module_list_insert():
    layer = tt.nn.Linear(2, 2).double()
    assert layer.weight.dtype == np.float64 and layer.float().weight.dtype == np.float32
    items = tt.nn.ModuleList([tt.nn.ReLU(), tt.nn.Linear(2, 2)])
    inserted = tt.nn.Linear(2, 3)
    items.insert(1, inserted)
    assert items[1] is inserted and list(items.state_dict()) == ["1.weight", "1.bias", "2.weight", "2.bias"]


def test_layer_norm_of_values_whose_squares_overflow_is_not_zero():
    """|x| near 1e19 in float32: the variance overflowed to inf, so every output (and gradient)
    came out 0. The rows are normalised in units of their largest entry instead."""
    small = np.array([[1.0, 2.0, 4.0]], np.float32)
    layer = tt.nn.LayerNorm(3)
    huge = Tensor(small * np.float32(1e19), requires_grad=True)
    reference = Tensor(small, requires_grad=True)
    weights = Tensor(np.array([[1.0, 2.0, 3.0]], np.float32))
    (layer(huge) * weights).sum().backward()
    (layer(reference) * weights).sum().backward()
    np.testing.assert_allclose(layer(huge).data, layer(reference).data, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(huge.grad.data * np.float32(1e19), reference.grad.data, rtol=1e-3, atol=1e-6)


# ---- BatchNorm2d: PyTorch's batch counter, cumulative average and untracked statistics ------------
def _batches(count, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((4, 2, 3, 3)).astype(np.float32) for _ in range(count)]


def _unbiased_channel_var(x):
    return x.transpose(1, 0, 2, 3).reshape(2, -1).var(axis=1, ddof=1)


def test_batch_norm_counts_batches_and_momentum_none_averages_every_batch():
    pytest.importorskip("tinytorch_spatial")
    layer = tt.nn.BatchNorm2d(2, momentum=None)
    batches = _batches(3)
    for x in batches:
        layer(Tensor(x))
    assert layer.num_batches_tracked.data.dtype == np.int64 and int(layer.num_batches_tracked.data) == 3
    means = [x.mean(axis=(0, 2, 3)) for x in batches]
    np.testing.assert_allclose(layer.running_mean.data, np.mean(means, axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.running_var.data, np.mean([_unbiased_channel_var(x) for x in batches], axis=0),
                               rtol=1e-5)
    layer.eval()
    layer(Tensor(batches[0]))
    assert int(layer.num_batches_tracked.data) == 3  # evaluation counts nothing
    assert list(layer.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]


def test_batch_norm_refused_input_is_not_counted():
    pytest.importorskip("tinytorch_spatial")
    layer = tt.nn.BatchNorm2d(2)
    with pytest.raises(ValueError, match="more than one value per channel"):
        layer(Tensor(np.ones((1, 2, 1, 1), np.float32)))
    assert int(layer.num_batches_tracked.data) == 0


def test_batch_norm_without_running_statistics_uses_the_batch_in_both_modes():
    pytest.importorskip("tinytorch_spatial")
    layer = tt.nn.BatchNorm2d(2, track_running_stats=False).eval()
    (x,) = _batches(1, seed=1)
    mean, var = x.mean(axis=(0, 2, 3), keepdims=True), x.var(axis=(0, 2, 3), keepdims=True)
    np.testing.assert_allclose(layer(Tensor(x)).data, (x - mean) / np.sqrt(var + 1e-5), rtol=1e-5, atol=1e-5)
    assert layer.running_mean is None and layer.num_batches_tracked is None
    assert list(layer.state_dict()) == ["weight", "bias"]


def test_batch_norm_loads_a_state_dict_without_the_counter():
    pytest.importorskip("tinytorch_spatial")
    layer = tt.nn.BatchNorm2d(2)
    state = {k: v for k, v in tt.nn.BatchNorm2d(2).state_dict().items() if k != "num_batches_tracked"}
    state["running_mean"] = np.array([1.0, 2.0], np.float32)
    result = layer.load_state_dict(state)  # strict
    assert result["missing_keys"] == []
    np.testing.assert_array_equal(layer.running_mean.data, [1.0, 2.0])
    with pytest.raises(tt.StateDictError, match="missing keys"):
        layer.load_state_dict({"weight": state["weight"]})


# ---- loss weights are buffers, as in PyTorch ------------------------------------------------------
def test_loss_weights_are_buffers_in_the_state_dict_and_follow_model_to():
    """They were plain attributes: a PyTorch state dict holding them had unexpected keys, and
    model.double() left them float32."""
    model = tt.nn.Sequential(tt.nn.Linear(3, 3), tt.nn.CrossEntropyLoss(weight=np.array([1.0, 2.0, 0.5], np.float32)))
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.weight"]
    model.double()
    assert model[1].weight.dtype == np.float64
    logits = tt.nn.BCEWithLogitsLoss(weight=[1, 2], pos_weight=Tensor(np.array([3.0, 1.0], np.float32)))
    assert list(logits.state_dict()) == ["weight", "pos_weight"] and logits.weight.dtype == np.float32
    assert list(tt.nn.BCELoss().state_dict()) == [] and tt.nn.NLLLoss(weight=[1.0, 1.0]).weight.shape == (2,)
    logits.load_state_dict({"weight": np.array([0.5, 0.5], np.float32), "pos_weight": np.array([1, 1], np.float32)})
    x, y = Tensor(np.array([[0.3, -0.2]], np.float32)), Tensor(np.array([[1.0, 0.0]], np.float32))
    expected = 0.5 * np.mean([np.log1p(np.exp(-0.3)), np.log1p(np.exp(-0.2))])
    np.testing.assert_allclose(logits(x, y).item(), expected, rtol=1e-6)
    with pytest.raises(TypeError, match="BCELoss: weight must be a Tensor or an array of numbers, got str"):
        tt.nn.BCELoss(weight="heavy")
