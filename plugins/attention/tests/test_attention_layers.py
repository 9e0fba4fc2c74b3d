"""LayerNorm, MultiHeadAttention, FeedForward and TransformerBlock layers."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinytorch_core
from tinytorch_core import Tensor
from tinytorch_core.testing import gradcheck
from tinytorch_attention import FeedForward, LayerNorm, MultiHeadAttention, TransformerBlock, GPT


def f64(array):
    return Tensor(array, dtype=np.float64)


def test_layers_resolve_through_the_core_namespace(tinytorch_runtime):
    assert tinytorch_core.nn.MultiHeadAttention is MultiHeadAttention
    assert tinytorch_core.nn.LayerNorm is LayerNorm
    assert tinytorch_core.nn.FeedForward is FeedForward
    assert tinytorch_core.nn.TransformerBlock is TransformerBlock
    assert tinytorch_core.nn.GPT is GPT


# ---- LayerNorm --------------------------------------------------------------------------------------
def test_layer_norm_layer_parameters_and_forward():
    ln = LayerNorm(6)
    assert [n for n, _ in ln.named_parameters()] == ["weight", "bias"]
    np.testing.assert_array_equal(ln.weight.data, 1.0)
    np.testing.assert_array_equal(ln.bias.data, 0.0)
    x = np.random.default_rng(0).standard_normal((2, 3, 6))
    out = ln.to(np.float64)(f64(x)).data
    np.testing.assert_allclose(out, (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5))
    assert LayerNorm((6,)).normalized_shape == LayerNorm(6).normalized_shape == (6,)  # PyTorch's tuple


def test_layer_norm_layer_errors():
    with pytest.raises(ValueError, match=r"expected input of shape \(\.\.\., 6\), got \(2, 5\)"):
        LayerNorm(6)(Tensor(np.zeros((2, 5))))
    with pytest.raises(ValueError, match=r"expected input of shape \(\.\.\., 2, 3\), got \(3, 2\)"):
        LayerNorm((2, 3))(Tensor(np.zeros((3, 2), np.float32)))
    with pytest.raises(ValueError, match="normalized_shape must name at least one axis"):
        LayerNorm(())
    with pytest.raises(ValueError, match="eps"):
        LayerNorm(4, eps=-1.0)


# ---- MultiHeadAttention -----------------------------------------------------------------------------
def naive_mha(mha, query, key, allowed):
    """Per head and per query row, straight from the definition (independent of the kernels)."""
    def proj(layer, x):
        return x @ layer.weight.data.T + layer.bias.data

    q, k, v = proj(mha.q_proj, query), proj(mha.k_proj, key), proj(mha.v_proj, key)
    batch, tq, e = q.shape
    d = e // mha.num_heads
    merged = np.zeros((batch, tq, e))
    for b in range(batch):
        for h in range(mha.num_heads):
            cols = slice(h * d, (h + 1) * d)
            for i in range(tq):
                scores = k[b, :, cols] @ q[b, i, cols] / math.sqrt(d)
                keep = allowed[b, h, i]
                if keep.any():
                    w = np.where(keep, np.exp(scores - scores[keep].max()), 0.0)
                    merged[b, i, cols] = (w / w.sum()) @ v[b, :, cols]
    return proj(mha.out_proj, merged)


def test_self_attention_matches_the_definition_with_causal_and_padding_masks():
    rng = np.random.default_rng(1)
    mha = MultiHeadAttention(8, 2, generator=0).to(np.float64)
    x = rng.standard_normal((2, 5, 8))
    padding = np.array([[False] * 5, [False, False, False, True, True]])
    out = mha(f64(x), causal=True, key_padding_mask=padding)
    allowed = np.broadcast_to(np.tril(np.ones((5, 5), bool)), (2, 2, 5, 5)) & ~padding[:, None, None, :]
    np.testing.assert_allclose(out.data, naive_mha(mha, x, x, allowed), atol=1e-12)


def test_cross_attention_uses_key_for_value_and_other_lengths():
    rng = np.random.default_rng(2)
    mha = MultiHeadAttention(6, 3, generator=1).to(np.float64)
    query, memory = rng.standard_normal((2, 3, 6)), rng.standard_normal((2, 7, 6))
    out = mha(f64(query), f64(memory))
    assert out.shape == (2, 3, 6)
    np.testing.assert_allclose(out.data, naive_mha(mha, query, memory, np.ones((2, 3, 3, 7), bool)), atol=1e-12)
    np.testing.assert_allclose(mha(f64(query), f64(memory), f64(memory)).data, out.data)


def test_mask_shapes_2d_3d_and_4d_agree():
    rng = np.random.default_rng(3)
    mha = MultiHeadAttention(4, 2, generator=2)
    x = Tensor(rng.standard_normal((2, 4, 4)))
    mask3 = rng.random((2, 4, 4)) > 0.4
    mask3[..., 0] = True
    np.testing.assert_array_equal(mha(x, mask=mask3).data, mha(x, mask=mask3[:, None]).data)
    mask2 = mask3[0]
    np.testing.assert_array_equal(mha(x, mask=mask2).data, mha(x, mask=np.broadcast_to(mask2, (2, 2, 4, 4))).data)


def test_padded_keys_do_not_influence_the_output():
    rng = np.random.default_rng(4)
    mha = MultiHeadAttention(4, 2, generator=3)
    x = rng.standard_normal((1, 5, 4)).astype(np.float32)
    padding = np.array([[False, False, False, True, True]])
    changed = x.copy()
    changed[:, 3:] = 100.0
    base = mha(Tensor(x), key_padding_mask=padding).data
    # only the padded positions' own queries may change: their keys/values are ignored by everyone
    np.testing.assert_allclose(mha(Tensor(changed), key_padding_mask=padding).data[:, :3], base[:, :3], rtol=1e-6)


def test_a_query_with_every_key_masked_outputs_the_output_bias():
    mha = MultiHeadAttention(4, 2, generator=4)
    x = Tensor(np.random.default_rng(5).standard_normal((2, 3, 4)))
    out = mha(x, key_padding_mask=np.array([[True, True, True], [False, False, False]]))
    assert np.isfinite(out.data).all()
    np.testing.assert_allclose(out.data[0], np.broadcast_to(mha.out_proj.bias.data, (3, 4)))


def test_multi_head_attention_gradcheck_through_the_input():
    mha = MultiHeadAttention(4, 2, generator=5).to(np.float64)
    x = np.random.default_rng(6).standard_normal((2, 3, 4))
    assert gradcheck(lambda t: mha(t, causal=True), x)
    memory = np.random.default_rng(7).standard_normal((2, 5, 4))
    assert gradcheck(lambda q, m: mha(q, m, key_padding_mask=np.array([[0, 0, 0, 1, 1], [0] * 5], bool)), x, memory)


def test_attention_dropout_only_in_training_mode_and_seeded():
    x = Tensor(np.random.default_rng(8).standard_normal((2, 4, 8)))
    plain = MultiHeadAttention(8, 2, generator=9)(x).data
    mha = MultiHeadAttention(8, 2, dropout=0.5, generator=9)
    first = mha(x).data
    assert not np.allclose(first, plain)
    assert not np.allclose(mha(x).data, first)  # a fresh mask on each call
    np.testing.assert_array_equal(MultiHeadAttention(8, 2, dropout=0.5, generator=9)(x).data, first)
    np.testing.assert_allclose(mha.eval()(x).data, plain, rtol=1e-6)


def test_multi_head_attention_errors():
    with pytest.raises(ValueError, match=r"embed_dim 10 is not divisible by num_heads 3.*\[1, 2, 5, 10\]"):
        MultiHeadAttention(10, 3)
    mha = MultiHeadAttention(4, 2)
    x = Tensor(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"query must have shape \(batch, seq_len, 4\), got \(2, 3, 5\)"):
        mha(Tensor(np.zeros((2, 3, 5))))
    with pytest.raises(TypeError, match="key_padding_mask must be a bool array"):
        mha(x, key_padding_mask=np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape .*\(2, 3\), got \(2, 4\)"):
        mha(x, key_padding_mask=np.zeros((2, 4), bool))
    with pytest.raises(TypeError, match="mask must be a bool array"):
        mha(x, mask=np.ones((3, 3), np.float32))
    with pytest.raises(ValueError, match="does not broadcast"):
        mha(x, mask=np.ones((3, 4), bool))
    with pytest.raises(ValueError, match="value was given without key"):
        mha(x, value=x)
    with pytest.raises(ValueError, match="share the batch size"):
        mha(x, Tensor(np.zeros((3, 3, 4))))
    with pytest.raises(ValueError, match="dropout"):
        MultiHeadAttention(4, 2, dropout=1.5)


# ---- FeedForward and TransformerBlock -----------------------------------------------------------------
def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def test_feed_forward_is_fc2_gelu_fc1():
    ff = FeedForward(4, 10, generator=0).to(np.float64)
    assert [n for n, _ in ff.named_parameters()] == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    x = np.random.default_rng(9).standard_normal((2, 3, 4))
    hidden = gelu_tanh(x @ ff.fc1.weight.data.T + ff.fc1.bias.data)
    np.testing.assert_allclose(ff(f64(x)).data, hidden @ ff.fc2.weight.data.T + ff.fc2.bias.data, atol=1e-12)
    relu = FeedForward(4, 10, activation="relu", generator=0).to(np.float64)
    hidden = np.maximum(x @ relu.fc1.weight.data.T + relu.fc1.bias.data, 0.0)
    np.testing.assert_allclose(relu(f64(x)).data, hidden @ relu.fc2.weight.data.T + relu.fc2.bias.data, atol=1e-12)
    with pytest.raises(ValueError, match="activation must be one of"):
        FeedForward(4, 8, activation="swish")


def test_transformer_block_is_pre_norm_with_residuals():
    block = TransformerBlock(8, 2, 16, generator=0).to(np.float64)
    x = f64(np.random.default_rng(10).standard_normal((2, 5, 8)))
    h = x.data + block.attn(block.ln1(x)).data
    expected = h + block.ff(block.ln2(f64(h))).data
    np.testing.assert_allclose(block(x).data, expected, atol=1e-12)
    names = [n for n, _ in block.named_parameters()]
    assert names[:2] == ["ln1.weight", "ln1.bias"] and "attn.q_proj.weight" in names and names[-1] == "ff.fc2.bias"


def test_causal_block_output_ignores_future_positions():
    block = TransformerBlock(8, 2, 16, causal=True, generator=1)
    x = np.random.default_rng(11).standard_normal((1, 6, 8)).astype(np.float32)
    changed = x.copy()
    changed[:, 4:] += 3.0
    np.testing.assert_array_equal(block(Tensor(changed)).data[:, :4], block(Tensor(x)).data[:, :4])


def test_every_transformer_block_parameter_gets_a_gradient_except_the_key_bias():
    block = TransformerBlock(8, 2, 16, generator=2).to(np.float64)
    x = f64(np.random.default_rng(12).standard_normal((3, 5, 8)))
    weights = np.random.default_rng(13).standard_normal((3, 5, 8))
    (block(x) * weights).sum().backward()
    for name, param in block.named_parameters():
        grad = param.grad.data
        if name == "attn.k_proj.bias":
            # Mathematically zero: k_proj.bias adds q_i . b_k / sqrt(d) to every score of query
            # row i, the same constant for every key j, and softmax over keys is invariant to
            # adding a constant to a whole row. So the loss cannot depend on it (only round-off).
            assert np.abs(grad).max() < 1e-12, name
        else:
            assert np.abs(grad).max() > 1e-6, f"{name} received a zero gradient"


def test_block_modules_refuse_bad_sizes():
    with pytest.raises(ValueError, match="not divisible"):
        TransformerBlock(6, 4, 12)
    with pytest.raises(ValueError, match="hidden_dim"):
        FeedForward(4, 0)


def test_block_dropout_follows_manual_seed_and_is_off_in_eval_mode():
    x = Tensor(np.random.default_rng(14).standard_normal((2, 4, 8)))
    tinytorch_core.manual_seed(0)
    block = TransformerBlock(8, 2, 16, dropout=0.3)
    tinytorch_core.manual_seed(21)
    first = block(x).data
    tinytorch_core.manual_seed(21)
    np.testing.assert_array_equal(block(x).data, first)  # no generator given: the default one decides
    assert not np.array_equal(block(x).data, first)
    block.eval()
    np.testing.assert_array_equal(block(x).data, block(x).data)
    assert not np.allclose(block(x).data, first)


@pytest.mark.parametrize("eps", [None, "a", True, 0.0])
def test_layer_norm_eps_must_be_a_positive_number(eps):
    """None and text used to fail inside a comparison with no layer named."""
    with pytest.raises(ValueError, match="LayerNorm: eps must be a positive number"):
        LayerNorm(3, eps=eps)


def test_pytorchs_per_head_3d_mask_layout_is_refused_saying_how_to_pass_it():
    """PyTorch's (B * heads, Tq, Tk) mask gave an error quoting a shape the caller never passed."""
    mha = MultiHeadAttention(8, 2, generator=0)
    x = Tensor(np.random.default_rng(0).standard_normal((1, 3, 8)).astype(np.float32))
    with pytest.raises(ValueError, match=r"a 3-D mask is read as \(batch, query_len, key_len\) = \(1, 3, 3\), "
                                         r"got \(2, 3, 3\); for one mask per head pass 4-D"):
        mha(x, mask=np.ones((2, 3, 3), bool))
