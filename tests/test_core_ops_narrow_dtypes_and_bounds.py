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


@pytest.mark.parametrize("make", [
    lambda: tt.full((2,), 1e10, dtype=np.float16),
    lambda: tt.full((2,), 300, dtype=np.uint8),
    lambda: tt.zeros(2, dtype=np.float16).new_full((2,), 1e10),
    lambda: tt.zeros(3).masked_fill(np.array([True, False, True]), 1e300),
])
def test_a_fill_value_the_dtype_cannot_hold_is_refused_not_made_inf(make):
    with pytest.raises(OverflowError, match="does not fit the dtype"):
        make()


@pytest.mark.parametrize("value", [None, "1.5"])
def test_masked_fill_takes_numbers_only(value):
    with pytest.raises(TypeError, match="value must be a number"):
        tt.zeros(3).masked_fill(np.array([True, False, True]), value)


def test_norm_over_no_dims_is_over_every_dim_as_in_pytorch():
    x = tt.tensor(np.array([[3.0, 0.0], [0.0, -4.0]]), dtype=np.float64)
    assert x.norm(dim=()).item() == 5.0


def test_flip_needs_its_dims_and_an_empty_tuple_flips_nothing():
    x = tt.arange(3)
    with pytest.raises(TypeError, match="dims is required"):
        x.flip()
    np.testing.assert_array_equal(x.flip(()).data, [0, 1, 2])


def test_float16_gradients_of_cumsum_and_prod_add_and_multiply_in_float32():
    ones = tt.tensor(np.ones(3000), dtype=np.float16, requires_grad=True)
    ones.cumsum(0).sum().backward()
    assert ones.grad.data[0] == 3000  # float16 running sums stop at 2048
    x = tt.tensor(np.array([300.0, 300.0, 1e-3, 1e-3]), dtype=np.float16, requires_grad=True)
    x.prod().backward()
    assert np.isfinite(x.grad.data).all()  # 300 * 300 is inf in float16
    np.testing.assert_allclose(x.grad.data[2:].astype(float), 90.0, rtol=1e-2)


def test_norm_neither_underflows_nor_overflows():
    tiny = tt.tensor(np.array([1e-30, 1e-30]), dtype=np.float32, requires_grad=True)
    n = tiny.norm()
    n.backward()
    np.testing.assert_allclose(n.item(), np.sqrt(2) * 1e-30, rtol=1e-6)
    np.testing.assert_allclose(tiny.grad.data, [np.sqrt(0.5)] * 2, rtol=1e-6)
    assert tt.tensor(np.array([10.0, 20.0]), dtype=np.float32).norm(50).item() == pytest.approx(20.0, rel=1e-6)


def test_repeat_to_an_empty_result_allocates_nothing_and_a_huge_one_is_refused():
    assert tt.zeros(2, 3).repeat(10**8, 0).shape == (2 * 10**8, 0)
    with pytest.raises(MemoryError, match="core::repeat: the result of shape"):
        tt.zeros(2, 3).repeat(10**12, 10**12)


@pytest.mark.parametrize("data", [[1, None], ["1.5"], [1 + 2j]])
def test_a_cast_never_turns_none_text_or_complex_into_numbers(data):
    with pytest.raises(TypeError, match="unsupported data type"):
        tt.tensor(data, dtype=np.float32)
    with pytest.raises(TypeError, match="unsupported data type"):
        tt.ones(2).new_tensor(data)


def test_pytorch_keywords_and_argument_checks_of_the_tensor_methods():
    x = tt.arange(6.0)
    assert [p.shape for p in x.split(split_size=4)] == [(4,), (2,)]
    assert tt.ones(3).expand(size=(2, 3)).shape == (2, 3)
    assert tt.ones(1).new_zeros(size=(2, 2)).shape == (2, 2)
    with pytest.raises(TypeError, match="type_as expects a tensor"):
        x.type_as("float16")
    with pytest.raises(TypeError, match="expand_as expects a tensor"):
        x.expand_as(5)
    with pytest.raises(TypeError, match="norm|dim"):
        x.norm(dim="0")
    assert tt.norm(tt.tensor(np.array([[3.0, 0.0], [0.0, 4.0]])), 2, []).item() == 5.0
    np.testing.assert_array_equal(tt.norm(tt.tensor(np.array([[3.0, 0.0], [0.0, 4.0]])), 2, np.int64(1)).data, [3.0, 4.0])


@pytest.mark.parametrize("p", [2, 3])
def test_norm_of_an_infinite_entry_is_inf_and_of_nan_is_nan(p):
    assert tt.tensor(np.array([np.inf, 1.0]), dtype=np.float64).norm(p).item() == np.inf
    assert np.isnan(tt.tensor(np.array([np.nan, 1.0]), dtype=np.float64).norm(p).item())


def test_big_ints_and_fractions_are_numbers_to_a_cast():
    from fractions import Fraction

    assert tt.tensor([2**70], dtype=np.float64).item() == float(2**70)
    assert tt.tensor([Fraction(1, 2)], dtype=np.float64).item() == 0.5
    assert tt.tensor([2**70], dtype=np.bool_).item() is True


@pytest.mark.parametrize("make", [
    lambda: tt.full((2,), 2**64, dtype=np.float16),
    lambda: tt.full((2,), 2**2000, dtype=np.float64),
    lambda: tt.zeros(2, dtype=np.float16).masked_fill(np.array([True, False]), 2**64),
])
def test_python_ints_of_any_size_are_checked_exactly(make):
    with pytest.raises(OverflowError, match="does not fit the dtype"):
        make()


def test_a_big_int_that_fits_fills():
    filled = tt.zeros(2, dtype=np.float64).masked_fill(np.array([True, False]), 2**64)
    np.testing.assert_array_equal(filled.data, [2.0**64, 0.0])
