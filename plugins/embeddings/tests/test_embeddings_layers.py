"""Embedding, LearnedPositionalEmbedding and SinusoidalPositionalEncoding layers."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinytorch_core
from tinytorch_core import Tensor
from tinytorch_core.testing import gradcheck
from tinytorch_embeddings import (
    Embedding,
    LearnedPositionalEmbedding,
    SinusoidalPositionalEncoding,
    sinusoidal_table,
)


def test_layers_resolve_through_the_core_namespace(tinytorch_runtime):
    assert tinytorch_core.nn.Embedding is Embedding
    assert tinytorch_core.nn.LearnedPositionalEmbedding is LearnedPositionalEmbedding
    assert tinytorch_core.nn.SinusoidalPositionalEncoding is SinusoidalPositionalEncoding


def test_embedding_layer_weight_init_and_lookup():
    layer = Embedding(50, 8, generator=0)
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    assert layer.weight.shape == (50, 8) and layer.weight.dtype == np.float32
    # N(0, 1) initialisation: 400 draws have mean ~0 and std ~1
    assert abs(layer.weight.data.mean()) < 0.2 and abs(layer.weight.data.std() - 1.0) < 0.15
    np.testing.assert_array_equal(Embedding(50, 8, generator=0).weight.data, layer.weight.data)
    idx = np.array([[1, 2], [49, 1]])
    np.testing.assert_array_equal(layer(idx).data, layer.weight.data[idx])
    assert "50, 8" in repr(layer)


def test_embedding_layer_padding_row_starts_and_stays_zero():
    layer = Embedding(6, 3, padding_idx=2, generator=1)
    np.testing.assert_array_equal(layer.weight.data[2], 0.0)
    out = layer(np.array([[2, 1, 2]]))
    out.sum().backward()
    np.testing.assert_array_equal(layer.weight.grad.data[2], 0.0)
    np.testing.assert_array_equal(layer.weight.grad.data[1], 1.0)


def test_embedding_layer_refuses_bad_sizes():
    with pytest.raises(ValueError, match="num_embeddings"):
        Embedding(0, 4)
    with pytest.raises(ValueError, match="embedding_dim"):
        Embedding(4, 2.5)
    with pytest.raises(IndexError, match="padding_idx 4"):
        Embedding(4, 2, padding_idx=4)


def test_learned_positions_add_the_first_rows_and_train_them():
    layer = LearnedPositionalEmbedding(6, 4, generator=3)
    assert [name for name, p in layer.named_parameters()] == ["weight"]
    assert layer.weight.requires_grad
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3, 4)))
    out = layer(x)
    np.testing.assert_allclose(out.data, x.data + layer.weight.data[:3], rtol=1e-6)
    out.backward(np.ones(out.shape, dtype=np.float32))
    np.testing.assert_array_equal(layer.weight.grad.data[:3], 2.0)  # summed over the batch
    np.testing.assert_array_equal(layer.weight.grad.data[3:], 0.0)  # unused positions


def test_learned_positions_gradcheck():
    layer = LearnedPositionalEmbedding(5, 3, generator=4).to(np.float64)
    rng = np.random.default_rng(5)

    def add_positions(x, table):
        layer.weight = table
        return layer(x)

    table = tinytorch_core.Parameter(layer.weight.data, dtype=np.float64)
    assert gradcheck(add_positions, rng.standard_normal((2, 4, 3)), table)


def test_positional_layers_refuse_sequences_longer_than_max_len():
    x = Tensor(np.zeros((2, 9, 4)))
    for layer in (LearnedPositionalEmbedding(8, 4), SinusoidalPositionalEncoding(8, 4)):
        with pytest.raises(ValueError, match="sequence length 9 exceeds max_len 8"):
            layer(x)
        with pytest.raises(ValueError, match=r"\(\.\.\., seq_len, 4\)"):
            layer(Tensor(np.zeros((2, 3, 5))))


def test_sinusoidal_table_values():
    table = sinusoidal_table(10, 6)
    p, i = 7, 1
    assert table[p, 2 * i] == pytest.approx(math.sin(p / 10000 ** (2 * i / 6)))
    assert table[p, 2 * i + 1] == pytest.approx(math.cos(p / 10000 ** (2 * i / 6)))
    np.testing.assert_array_equal(table[0, 0::2], 0.0)
    np.testing.assert_array_equal(table[0, 1::2], 1.0)
    odd = sinusoidal_table(10, 5)
    assert odd.shape == (10, 5)
    # an odd size keeps the sine of the last frequency pair and drops its cosine
    assert odd[7, 4] == pytest.approx(math.sin(7 / 10000 ** (4 / 5)))


def test_sinusoidal_encoding_is_a_fixed_buffer_not_a_parameter():
    layer = SinusoidalPositionalEncoding(16, 4)
    assert list(layer.parameters()) == []
    assert [name for name, _ in layer.named_buffers()] == ["pe"]
    assert list(layer.state_dict()) == []  # recomputed from the sizes, not saved
    x = Tensor(np.ones((2, 5, 4)), requires_grad=True)
    out = layer(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, np.broadcast_to(1.0 + sinusoidal_table(16, 4)[:5], (2, 5, 4)), rtol=1e-6)
    assert gradcheck(layer, np.random.default_rng(0).standard_normal((3, 4)))
    assert layer.to(np.float64)(Tensor(np.zeros((1, 2, 4)), dtype=np.float64)).dtype == np.float64
