"""The ``embedding`` op: gradient checks, repeated indices, padding, both scatter-add paths, errors."""

from __future__ import annotations

import numpy as np
import pytest

from tinytorch_core.testing import assert_registers_catalog

from tinytorch_core import Tensor
from tinytorch_core.testing import gradcheck
from tinytorch_embeddings import embedding
from tinytorch_embeddings.functional import ONE_HOT_MAX_ROWS, scatter_add_rows


def test_opcheck_embedding(opcheck):
    report = opcheck("embeddings::embedding")
    assert report.samples_checked >= 5


def test_stage_registers_exactly_its_catalog_names(tinytorch_runtime):
    assert_registers_catalog("embeddings", tinytorch_runtime)


def test_forward_gathers_rows_in_the_index_shape():
    rng = np.random.default_rng(0)
    weight = Tensor(rng.standard_normal((7, 4)), dtype=np.float64)
    idx = np.array([[3, 0, 6], [3, 3, 1]])
    out = embedding(idx, weight)
    assert out.shape == (2, 3, 4) and out.dtype == np.float64
    np.testing.assert_array_equal(out.data, weight.data[idx])


def test_float32_weight_gives_float32_output_and_gradient():
    weight = Tensor(np.ones((5, 3)), requires_grad=True)
    out = embedding(np.array([1, 2, 1]), weight)
    assert out.dtype == np.float32
    out.sum().backward()
    assert weight.grad.dtype == np.float32


def test_repeated_indices_sum_their_gradients():
    weight = Tensor(np.zeros((4, 2)), requires_grad=True, dtype=np.float64)
    idx = np.array([2, 0, 2, 2])
    upstream = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]])
    embedding(idx, weight).backward(upstream)
    expected = np.zeros((4, 2))
    expected[2] = upstream[0] + upstream[2] + upstream[3]
    expected[0] = upstream[1]
    np.testing.assert_allclose(weight.grad.data, expected)


def test_padding_positions_are_zero_and_the_padding_row_gets_no_gradient():
    rng = np.random.default_rng(1)
    weight = Tensor(rng.standard_normal((5, 3)), requires_grad=True, dtype=np.float64)
    idx = np.array([[0, 4, 0], [2, 0, 4]])
    out = embedding(idx, weight, padding_idx=0)
    np.testing.assert_array_equal(out.data[idx == 0], 0.0)
    np.testing.assert_array_equal(out.data[idx == 4], np.broadcast_to(weight.data[4], (2, 3)))
    out.backward(np.ones(out.shape))
    np.testing.assert_array_equal(weight.grad.data[0], 0.0)
    np.testing.assert_array_equal(weight.grad.data[4], 2.0)
    np.testing.assert_array_equal(weight.grad.data[[1, 3]], 0.0)
    np.testing.assert_array_equal(weight.grad.data[2], 1.0)
    assert gradcheck(embedding, idx, weight.data, padding_idx=0)


@pytest.mark.parametrize("rows", [6, ONE_HOT_MAX_ROWS, ONE_HOT_MAX_ROWS + 1, 1000])
def test_scatter_add_rows_matches_add_at_on_both_paths(rows):
    rng = np.random.default_rng(rows)
    index = rng.integers(0, rows, size=300)
    index[:50] = index[0]  # many repeats of one row
    values = rng.standard_normal((300, 5))
    expected = np.zeros((rows, 5))
    np.add.at(expected, index, values)
    np.testing.assert_allclose(scatter_add_rows(index, values, rows), expected, atol=1e-12)


def test_scatter_add_rows_of_no_index_is_all_zero():
    out = scatter_add_rows(np.zeros(0, dtype=np.int64), np.zeros((0, 3)), 4)
    np.testing.assert_array_equal(out, np.zeros((4, 3)))


def test_indices_may_be_an_integer_tensor_or_a_list():
    weight = Tensor(np.arange(12.0).reshape(4, 3), dtype=np.float64)
    np.testing.assert_array_equal(embedding(Tensor(np.array([3, 1])), weight).data, weight.data[[3, 1]])
    np.testing.assert_array_equal(embedding([0, 0], weight).data, weight.data[[0, 0]])


def test_float_indices_are_refused_naming_the_value():
    weight = Tensor(np.zeros((10, 2)))
    with pytest.raises(TypeError, match=r"table of size 10 must be integers, got a float32 tensor.*2\.5"):
        embedding(Tensor(np.array([2.5, 1.0])), weight)
    with pytest.raises(TypeError, match="float64"):
        embedding(np.array([1.0, 2.0]), weight)
    with pytest.raises(TypeError, match="bool"):
        embedding(np.array([True, False]), weight)


def test_out_of_range_indices_are_refused_naming_value_and_size():
    weight = Tensor(np.zeros((10, 2)))
    with pytest.raises(IndexError, match=r"index 10 at position \(1, 0\).*size 10.*0\.\.9"):
        embedding(np.array([[3, 4], [10, 2]]), weight)
    with pytest.raises(IndexError, match=r"index -1 .*size 10"):
        embedding(np.array([0, -1]), weight)


def test_bad_weight_and_padding_idx_are_refused():
    with pytest.raises(ValueError, match="2-D"):
        embedding(np.array([0]), Tensor(np.zeros(5)))
    with pytest.raises(IndexError, match="padding_idx 7"):
        embedding(np.array([0]), Tensor(np.zeros((5, 2))), padding_idx=7)
    with pytest.raises(TypeError, match="padding_idx"):
        embedding(np.array([0]), Tensor(np.zeros((5, 2))), padding_idx=1.0)
