"""The new core ops at the edges of their dtypes: float16 sums of squares and roundings that would
overflow in float16 itself, integer fills that do not fit, and PyTorch's spellings of "every axis"."""

import numpy as np
import pytest

import tinytorch_core as tt


def test_norm_of_float16_adds_up_in_float32():
    x = tt.tensor(np.array([300.0, 400.0]), dtype=np.float16)  # 300**2 is inf in float16
    assert x.norm().item() == 500.0
    assert x.norm().dtype == np.float16
    threes = tt.tensor(np.full(5000, 3.0), dtype=np.float16)
    np.testing.assert_allclose(threes.norm(3).item(), 3 * 5000 ** (1 / 3), rtol=1e-3)


def test_round_of_float16_with_decimals_rounds_in_float32():
    x = tt.tensor(np.array([1000.5, 700.25]), dtype=np.float16)  # x * 100 is inf in float16
    np.testing.assert_array_equal(tt.round(x, decimals=2).data, np.array([1000.5, 700.25], np.float16))


@pytest.mark.parametrize("dtype, value", [(np.int8, 300), (np.int8, -1000), (np.uint8, -1), (np.int16, 1e9)])
def test_masked_fill_refuses_a_value_the_integer_dtype_cannot_hold(dtype, value):
    x = tt.tensor(np.zeros(3, dtype))
    with pytest.raises(OverflowError, match="core::masked_fill: the value .* does not fit"):
        x.masked_fill(np.array([True, False, True]), value)


def test_norm_over_no_dims_is_over_every_dim_as_in_pytorch():
    x = tt.tensor(np.array([[3.0, 0.0], [0.0, -4.0]]), dtype=np.float64)
    assert x.norm(dim=()).item() == 5.0


def test_flip_needs_its_dims_and_an_empty_tuple_flips_nothing():
    x = tt.arange(3)
    with pytest.raises(TypeError, match="dims is required"):
        x.flip()
    np.testing.assert_array_equal(x.flip(()).data, [0, 1, 2])
