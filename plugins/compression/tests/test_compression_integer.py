"""Integer arithmetic: qparams, quantize/dequantize, the exact int8 GEMM, and the integer layers
against a pure-integer (int64) reference."""

from __future__ import annotations

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_compression import QuantizedLinear, dequantize_tensor, int8_matmul, quantize, quantize_tensor
from tinytorch_compression.integer import exact_integer_matmul, k_block, qparams_from_range


def int8(rng, *shape):
    return rng.integers(-128, 128, size=shape).astype(np.int8)


def test_a_naive_float32_product_is_not_exact_but_the_blocked_one_is():
    rng = np.random.default_rng(0)
    a, b = int8(rng, 16, 5000), int8(rng, 5000, 8)
    a[0], b[:, 0] = 127, 127
    a[0, 0] = 126  # a dot product of 80,644,873: odd and far past 2**24, so no float32 holds it
    reference = a.astype(np.int64) @ b.astype(np.int64)  # pure integer
    assert reference[0, 0] == 4999 * 127 * 127 + 126 * 127
    naive = exact_integer_matmul(a.astype(np.float32), b.astype(np.float32), block=5000)  # one float32 GEMM
    # whatever order the BLAS kernel sums in (wide SIMD lanes can keep every partial sum exact),
    # the float32 result is a multiple of 8 there: it cannot be the odd answer
    assert naive[0, 0] != reference[0, 0]
    exact = int8_matmul(a, b)
    assert exact.dtype == np.int32 and k_block(128, 128) == 1024
    np.testing.assert_array_equal(exact, reference)


def test_qparams_affine_and_symmetric():
    scale, zero_point = qparams_from_range(-1.0, 3.0, symmetric=False)
    assert scale == pytest.approx(4.0 / 255) and zero_point == -128 + round(1.0 / (4.0 / 255))
    scale, zero_point = qparams_from_range(np.array([-2.0, -0.5]), np.array([1.0, 0.25]), symmetric=True)
    np.testing.assert_allclose(scale, [2.0 / 127, 0.5 / 127], rtol=1e-6)
    assert zero_point.tolist() == [0, 0]
    scale, _ = qparams_from_range(0.0, 0.0, symmetric=False)  # nothing but zeros: no division by zero
    assert scale == 1.0


def test_quantize_round_trip_is_within_half_a_step_and_clamps():
    x = np.linspace(-1.0, 1.0, 101).astype(np.float32)
    q = quantize_tensor(x, 0.01, 3)
    assert q.dtype == np.int8
    back = dequantize_tensor(q, 0.01, 3).data
    inside = (x / 0.01 + 3 <= 127)
    assert np.abs(back - x)[inside].max() <= 0.005 + 1e-7
    assert quantize_tensor(np.array([1e6], np.float32), 0.01, 0).data[0] == 127
    per_channel = quantize_tensor(np.ones((2, 3), np.float32), np.array([0.5, 0.25]), np.array([0, 1]), axis=0)
    assert per_channel.data.tolist() == [[2, 2, 2], [5, 5, 5]]


def test_quantize_errors_say_what_was_expected():
    with pytest.raises(TypeError, match="floating-point"):
        quantize_tensor(np.ones(3, np.int32), 0.1)
    with pytest.raises(ValueError, match="positive"):
        quantize_tensor(np.ones(3, np.float32), 0.0)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        quantize_tensor(np.ones((2, 3), np.float32), np.ones(3), 0, axis=0)
    with pytest.raises(TypeError, match="int8"):
        dequantize_tensor(np.ones(3, np.float32), 0.1)
    with pytest.raises(TypeError, match="2-D int8"):
        int8_matmul(np.ones((2, 2)), np.ones((2, 2), np.int8))


def _integer_reference(layer, codes):
    """acc = sum (x - zx) w + bias_q in int64; out = clamp(round(acc * sx sw / sy) + zy)."""
    w = layer.weight_matrix().astype(np.int64)
    zx = int(layer.input_zero_point.data)
    acc = (codes.astype(np.int64) - zx) @ w.T + layer.bias.data.astype(np.int64)
    multiplier = (np.float32(layer.input_scale.data) * layer.weight_scale.data / np.float32(layer.output_scale.data))
    scaled = np.rint(acc.astype(np.float32) * multiplier.astype(np.float32) + int(layer.output_zero_point.data))
    return acc, np.clip(scaled, int(layer.output_zero_point.data) if layer.relu else -128, 127).astype(np.int8)


@pytest.mark.parametrize("in_features", [40, 3000])  # 3000: past one exact block, the int32 path
def test_quantized_linear_equals_the_pure_integer_reference(in_features):
    rng = np.random.default_rng(1)
    linear = tt.nn.Linear(in_features, 7, generator=rng)
    from tinytorch_compression.quantize import per_channel_weights
    layer = QuantizedLinear.from_float(linear, (0.05, -7), (0.2, 3), per_channel_weights, relu=True)
    codes = int8(rng, 33, in_features)
    acc, out = _integer_reference(layer, codes)
    np.testing.assert_array_equal(layer.accumulate(codes.astype(np.float32)), acc)
    from tinytorch_compression.integer_layers import QuantizedActivation
    result = layer(QuantizedActivation(codes, np.float32(0.05).item(), -7))
    assert result.codes.dtype == np.int8
    np.testing.assert_array_equal(result.codes, out)


def test_quantized_model_holds_int8_weights_and_matches_the_float_model():
    rng = np.random.default_rng(2)
    model = tt.nn.Sequential(tt.nn.Linear(20, 32, generator=rng), tt.nn.ReLU(), tt.nn.Dropout(0.5),
                             tt.nn.Linear(32, 5, generator=rng))
    x = rng.standard_normal((64, 20)).astype(np.float32)
    q = quantize(model, [tt.Tensor(x)])
    assert model[0].weight.dtype == np.float32  # the float model is untouched
    kinds = {name: array.dtype for name, array in q.state_dict().items()}
    assert [k for k, d in kinds.items() if d == np.int8] == ["1.weight", "2.weight"]
    with tt.no_grad():
        expected = model.eval()(tt.Tensor(x)).data
    got = q(tt.Tensor(x)).data
    assert np.abs(got - expected).max() < 0.05 * np.abs(expected).max()


def test_int8_checkpoint_saves_int8(tmp_path):
    rng = np.random.default_rng(3)
    model = tt.nn.Sequential(tt.nn.Linear(64, 32, generator=rng))
    q = quantize(model, [rng.standard_normal((8, 64)).astype(np.float32)])
    tt.io.save(q.state_dict(), tmp_path / "q.safetensors")
    loaded = tt.io.load(tmp_path / "q.safetensors")
    assert loaded["1.weight"].dtype == np.int8 and loaded["1.bias"].dtype == np.int32
    np.testing.assert_array_equal(loaded["1.weight"], q[1].weight.data)
    assert (tmp_path / "q.safetensors").stat().st_size < 64 * 32 * 4 / 2  # float32 weights alone: 8192 bytes


def test_quantize_refuses_what_it_cannot_convert():
    with pytest.raises(TypeError, match="Sequential"):
        quantize(tt.nn.Linear(2, 2), [np.zeros((1, 2), np.float32)])
    with pytest.raises(ValueError, match="no batch"):
        quantize(tt.nn.Sequential(tt.nn.Linear(2, 2)), [])


def test_float32_accumulators_equal_the_int32_ones_where_they_are_taken():
    """The fast path keeps accumulators in float32 only where every partial sum provably stays an
    integer below 2**24; at the edge of that bound, with every product at its largest, it gives
    exactly the int32 path's values."""
    from tinytorch_compression.integer_layers import _K_BLOCK, _accumulate_in_float32, _fits_float32
    from tinytorch_compression.quantize import per_channel_weights
    k = 1000  # 1000 * 128 * 127 = 16,256,000, just inside 2**24 = 16,777,216
    linear = tt.nn.Linear(k, 3, bias=False)
    with tt.no_grad():
        linear.weight.fill_(1.0)  # every weight code 127
    layer = QuantizedLinear.from_float(linear, (0.05, 0), (0.2, 3), per_channel_weights)
    columns = np.full((4, k), -128, np.float32)  # every input code -128: each product -16,256
    weight = layer.weight_matrix()
    offsets = layer.offsets(weight)
    assert _fits_float32(k, offsets) and not _fits_float32(1100, offsets)
    fast = _accumulate_in_float32(columns, weight, offsets)
    exact = exact_integer_matmul(columns, weight.T.astype(np.float32), _K_BLOCK) + offsets.astype(np.int32)
    assert fast.dtype == np.float32
    np.testing.assert_array_equal(fast, exact)
    np.testing.assert_array_equal(fast, np.full((4, 3), -16_256_000))


def tiny_weight_row_model():
    """Linear(4, 2) whose row 0 is all but zero and whose bias is 2.0: the weight scale of channel 0
    is floored at float32's eps, so the bias is about 4.3e9 at the accumulator's scale."""
    linear = tt.nn.Linear(4, 2, generator=0)
    linear.weight.data[...] = [[1e-6, 0, 0, 0], [0.5, -0.3, 0.2, 0.1]]
    linear.bias.data[...] = [2.0, 0.1]
    x = tt.Tensor(np.random.default_rng(0).random((64, 4)).astype(np.float32))
    return tt.nn.Sequential(tt.nn.ReLU(), linear), x


def test_a_bias_beyond_the_int32_accumulator_is_refused_at_quantize_naming_layer_and_channel():
    """The bias code was clipped to 2**31 - 1 and the offsets cast to int32 wrapped: the int8 model
    answered -0.03 where the float model answers 2.0, without a word."""
    model, x = tiny_weight_row_model()
    with pytest.raises(ValueError, match=r"layer '1' \(Linear.*output channel 0: the bias 2 is beyond int32 at the "
                                         r"accumulator's scale: 4.29e\+09 units"):
        quantize(model, [x])


def test_an_accumulator_that_could_leave_int32_is_refused_never_wrapped():
    """A bias code inside int32 whose sum with the products is not: at quantize time, and when a
    loaded state dict sets it; a large bias that fits gives the float model's answer."""
    model, x = tiny_weight_row_model()
    linear = model[1]
    linear.weight.data[0] = [0.5, 0.4, 0.3, 0.2]
    q = quantize(model, [x])
    accumulator_scale = float(q[2].input_scale.data) * q[2].weight_scale.data.astype(np.float64)
    linear.bias.data[0] = (2**31 - 300) * accumulator_scale[0]  # the products add up to 128 * 127 * 4 at most
    with pytest.raises(ValueError, match="output channel 0's accumulator could reach"):
        quantize(model, [x])
    linear.bias.data[0] = 2**29 * accumulator_scale[0]  # fits with room to spare: exact, and right
    big = quantize(model, [x])
    with tt.no_grad():
        expected = model(x).data
    np.testing.assert_allclose(big(x).data, expected, atol=float(big[2].output_scale.data))  # within a code
    state = q.state_dict()
    state["2.bias"][0] = 2**31 - 300  # loaded: fits int32, but bias + products need not
    q.load_state_dict(state)
    with pytest.raises(ValueError, match="QuantizedLinear: output channel 0's accumulator could reach"):
        q(x)
