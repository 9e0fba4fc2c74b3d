"""The attention stage's kernels: scaled dot-product attention and layer norm."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tinytorch_core.testing import assert_registers_catalog

from tinytorch_core import Tensor
from tinytorch_core.testing import gradcheck
from tinytorch_attention import layer_norm, scaled_dot_product_attention


def test_opcheck_scaled_dot_product_attention(opcheck):
    # samples: 4-D and 3-D, padding mask, full mask + causal, a fully masked row, Tq != Tk, dropout,
    # heads split inside the op, a given scale
    assert opcheck("attention::scaled_dot_product_attention").samples_checked >= 10


def test_opcheck_layer_norm(opcheck):
    # samples: 2-D, 3-D, 4-D with weight only, and no affine part
    assert opcheck("attention::layer_norm").samples_checked >= 4


def test_stage_registers_exactly_its_catalog_names(tinytorch_runtime):
    assert_registers_catalog("attention", tinytorch_runtime)


# ---- attention --------------------------------------------------------------------------------
def naive_attention(q, k, v, allowed, scale=None):
    """One query row at a time, straight from the definition (the test's independent reference)."""
    out = np.zeros(q.shape[:-1] + (v.shape[-1],))
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    for index in np.ndindex(*q.shape[:-1]):
        batch = index[:-1]
        scores = np.array([q[index] @ k[batch + (j,)] for j in range(k.shape[-2])]) * scale
        keep = allowed[index]
        if not keep.any():
            continue
        weights = np.where(keep, np.exp(scores - scores[keep].max()), 0.0)
        out[index] = (weights / weights.sum()) @ v[batch]
    return out


@pytest.mark.parametrize("causal", [False, True])
def test_attention_matches_the_definition(causal):
    rng = np.random.default_rng(0)
    q, k, v = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 4, 2))
    mask = rng.random((2, 1, 4, 4)) > 0.3
    mask[..., 0] = True
    out = scaled_dot_product_attention(Tensor(q, dtype=np.float64), Tensor(k, dtype=np.float64),
                                       Tensor(v, dtype=np.float64), mask=mask, causal=causal)
    allowed = np.broadcast_to(mask, (2, 3, 4, 4))
    if causal:
        allowed = allowed & np.tril(np.ones((4, 4), dtype=bool))
    np.testing.assert_allclose(out.data, naive_attention(q, k, v, allowed), atol=1e-12)


@pytest.mark.parametrize("scale", [None, 0.3, 2.0, -1.0])
def test_attention_scale_matches_the_definition_and_gradients(scale):
    rng = np.random.default_rng(1)
    q, k, v = rng.standard_normal((2, 2, 3, 4)), rng.standard_normal((2, 2, 5, 4)), rng.standard_normal((2, 2, 5, 3))
    out = scaled_dot_product_attention(*(Tensor(a, dtype=np.float64) for a in (q, k, v)), causal=True, scale=scale)
    allowed = np.broadcast_to(np.tri(3, 5, dtype=bool), (2, 2, 3, 5))
    np.testing.assert_allclose(out.data, naive_attention(q, k, v, allowed, scale), atol=1e-12)
    assert gradcheck(scaled_dot_product_attention, q, k, v, causal=True, scale=scale)
    split = rng.standard_normal((2, 3, 6))  # heads split inside the op take the scale too
    assert gradcheck(scaled_dot_product_attention, split, split * 0.5, split + 1, num_heads=2, scale=scale)


def test_attention_scale_known_answer():
    # one query, two keys: scores (q.k1, q.k2) * scale = (0, ln 3) -> weights (1/4, 3/4)
    q, k = np.array([[[1.0, 0.0]]]), np.array([[[0.0, 5.0], [math.log(3) / 0.5, 0.0]]])
    v = np.array([[[4.0], [8.0]]])
    out = scaled_dot_product_attention(*(Tensor(a, dtype=np.float64) for a in (q, k, v)), scale=0.5)
    np.testing.assert_allclose(out.data, [[[1.0 + 6.0]]], rtol=1e-12)
    default = scaled_dot_product_attention(*(Tensor(a, dtype=np.float64) for a in (q, k, v)))
    explicit = scaled_dot_product_attention(*(Tensor(a, dtype=np.float64) for a in (q, k, v)), scale=1 / math.sqrt(2))
    np.testing.assert_array_equal(default.data, explicit.data)


@pytest.mark.parametrize("bad", ["0.5", True, float("nan"), float("inf"), np.array([0.5])])
def test_attention_scale_must_be_a_finite_number(bad):
    x = Tensor(np.zeros((1, 2, 2)))
    with pytest.raises(TypeError, match="scaled_dot_product_attention: scale must be a finite number"):
        scaled_dot_product_attention(x, x, x, scale=bad)


def test_attention_accepts_3d_inputs_and_keeps_float32():
    rng = np.random.default_rng(1)
    q, k, v = (Tensor(rng.standard_normal((2, 5, 4)), requires_grad=True) for _ in range(3))
    out = scaled_dot_product_attention(q, k, v, causal=True)
    assert out.shape == (2, 5, 4) and out.dtype == np.float32
    out.sum().backward()
    assert q.grad.dtype == k.grad.dtype == v.grad.dtype == np.float32
    np.testing.assert_allclose(
        out.data, naive_attention(q.data, k.data, v.data, np.tril(np.ones((2, 5, 5), bool))), atol=1e-5
    )


def test_causal_output_ignores_future_keys_and_values():
    rng = np.random.default_rng(2)
    q, k, v = (rng.standard_normal((1, 2, 6, 3)) for _ in range(3))
    base = scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), causal=True).data
    k2, v2 = k.copy(), v.copy()
    k2[..., 4:, :] += 5.0
    v2[..., 4:, :] -= 3.0
    changed = scaled_dot_product_attention(Tensor(q), Tensor(k2), Tensor(v2), causal=True).data
    np.testing.assert_array_equal(changed[..., :4, :], base[..., :4, :])
    assert not np.allclose(changed[..., 4:, :], base[..., 4:, :])


def test_a_fully_masked_query_row_gives_zero_output_and_zero_gradient():
    rng = np.random.default_rng(3)
    q, k, v = (Tensor(rng.standard_normal((2, 2, 3, 4)), requires_grad=True, dtype=np.float64) for _ in range(3))
    mask = np.ones((2, 1, 3, 3), dtype=bool)
    mask[0, :, 2, :] = False  # batch 0, query 2: nothing to attend
    out = scaled_dot_product_attention(q, k, v, mask=mask)
    assert np.isfinite(out.data).all()
    np.testing.assert_array_equal(out.data[0, :, 2], 0.0)
    assert np.abs(out.data[1, :, 2]).sum() > 0
    out.backward(np.ones(out.shape))
    np.testing.assert_array_equal(q.grad.data[0, :, 2], 0.0)
    assert np.isfinite(k.grad.data).all() and np.isfinite(v.grad.data).all()
    assert gradcheck(scaled_dot_product_attention, q.data, k.data, v.data, mask=mask)


def test_attention_dropout_is_seeded_and_scales_the_kept_weights():
    rng = np.random.default_rng(4)
    q, k = Tensor(rng.standard_normal((2, 2, 4, 3))), Tensor(rng.standard_normal((2, 2, 4, 3)))
    v = Tensor(np.broadcast_to(np.eye(4), (2, 2, 4, 4)).copy())  # output = the attention weights
    plain = scaled_dot_product_attention(q, k, v).data
    first = scaled_dot_product_attention(q, k, v, dropout_p=0.5, generator=11).data
    again = scaled_dot_product_attention(q, k, v, dropout_p=0.5, generator=11).data
    other = scaled_dot_product_attention(q, k, v, dropout_p=0.5, generator=12).data
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    kept = first != 0
    assert 0 < kept.mean() < 1
    np.testing.assert_allclose(first[kept], 2.0 * plain[kept], rtol=1e-6)  # 1 / (1 - p)


def test_attention_refuses_bad_masks():
    q = Tensor(np.zeros((2, 2, 3, 4)))
    with pytest.raises(TypeError, match="mask must be a bool array.*float32"):
        scaled_dot_product_attention(q, q, q, mask=np.ones((3, 3), dtype=np.float32))
    with pytest.raises(TypeError, match="int64"):
        scaled_dot_product_attention(q, q, q, mask=Tensor(np.ones((3, 3), dtype=np.int64)))
    with pytest.raises(ValueError, match=r"mask of shape \(3, 2\) does not broadcast .*\(2, 2, 3, 3\)"):
        scaled_dot_product_attention(q, q, q, mask=np.ones((3, 2), dtype=bool))
    with pytest.raises(ValueError, match="does not broadcast"):
        scaled_dot_product_attention(q, q, q, mask=np.ones((5, 2, 3, 3), dtype=bool))


def test_attention_refuses_mismatched_shapes():
    a = Tensor(np.zeros((2, 2, 3, 4)))
    with pytest.raises(ValueError, match="all be 4-D .* or all 3-D"):
        scaled_dot_product_attention(a, a, Tensor(np.zeros((2, 3, 4))))
    with pytest.raises(ValueError, match="same feature size"):
        scaled_dot_product_attention(a, Tensor(np.zeros((2, 2, 3, 5))), a)
    with pytest.raises(ValueError, match="same length"):
        scaled_dot_product_attention(a, a, Tensor(np.zeros((2, 2, 4, 4))))
    with pytest.raises(ValueError, match="leading axes"):
        scaled_dot_product_attention(a, Tensor(np.zeros((2, 1, 3, 4))), Tensor(np.zeros((2, 1, 3, 4))))
    with pytest.raises(ValueError, match="dropout_p"):
        scaled_dot_product_attention(a, a, a, dropout_p=1.0)


# ---- layer norm -----------------------------------------------------------------------------------
def test_layer_norm_normalises_the_last_axis_with_biased_variance():
    rng = np.random.default_rng(5)
    x = 4.0 + 3.0 * rng.standard_normal((2, 3, 8))
    out = layer_norm(Tensor(x, dtype=np.float64), eps=1e-5).data
    expected = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(out, expected, atol=1e-12)
    w, b = rng.standard_normal(8), rng.standard_normal(8)
    affine = layer_norm(Tensor(x, dtype=np.float64), Tensor(w, dtype=np.float64), Tensor(b, dtype=np.float64))
    np.testing.assert_allclose(affine.data, expected * w + b, atol=1e-12)


@pytest.mark.parametrize("shape", [(4, 6), (2, 3, 6)])
def test_layer_norm_gradcheck_2d_and_3d(shape):
    rng = np.random.default_rng(6)
    assert gradcheck(layer_norm, rng.standard_normal(shape), rng.standard_normal(6), rng.standard_normal(6))


def test_layer_norm_keeps_float32():
    x = Tensor(np.random.default_rng(7).standard_normal((3, 4)), requires_grad=True)
    w, b = Tensor(np.ones(4), requires_grad=True), Tensor(np.zeros(4), requires_grad=True)
    out = layer_norm(x, w, b)
    assert out.dtype == np.float32
    out.backward(np.ones((3, 4), dtype=np.float32))
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == np.float32
    # sum of a normalised row does not depend on the input: its input gradient vanishes
    np.testing.assert_allclose(x.grad.data, 0.0, atol=1e-5)
    np.testing.assert_allclose(b.grad.data, 3.0)


def test_layer_norm_refuses_mismatched_parameters():
    x = Tensor(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"weight must have shape \(5,\)"):
        layer_norm(x, Tensor(np.ones(4)))
    with pytest.raises(ValueError, match="bias"):
        layer_norm(x, None, Tensor(np.ones((1, 5))))
    with pytest.raises(ValueError, match="eps"):
        layer_norm(x, eps=0.0)


def test_pytorch_names_attn_mask_and_is_causal():
    """PyTorch's keyword names raised TypeError (a bool attn_mask means the same as ``mask``)."""
    rng = np.random.default_rng(0)
    q, k, v = (Tensor(rng.standard_normal((1, 2, 3, 4))) for _ in range(3))
    lower = np.tril(np.ones((3, 3), bool))
    sdpa = scaled_dot_product_attention
    np.testing.assert_array_equal(sdpa(q, k, v, attn_mask=lower).data, sdpa(q, k, v, mask=lower).data)
    np.testing.assert_array_equal(sdpa(q, k, v, is_causal=True).data, sdpa(q, k, v, causal=True).data)
    with pytest.raises(TypeError, match="pass mask or attn_mask"):
        sdpa(q, k, v, mask=lower, attn_mask=lower)


def test_attention_refuses_query_key_and_value_of_two_dtypes():
    """A float32 query with float64 keys came out float64, silently (PyTorch refuses it)."""
    q = Tensor(np.ones((1, 2, 3, 4), np.float32))
    k = Tensor(np.ones((1, 2, 3, 4)), dtype=np.float64)
    with pytest.raises(TypeError, match="must share one dtype, got query float32, key float64, value float64"):
        scaled_dot_product_attention(q, k, k)
