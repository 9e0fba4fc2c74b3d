"""float16 inputs: kernels that add many values work in float32 and store float16, as PyTorch
does on the CPU. Each case gave inf, NaN or zeros where the answer is an ordinary float16 number."""

import numpy as np
import pytest

import tinytorch_core as tt

F = tt.nn.functional


def half(array):
    return tt.tensor(np.asarray(array, np.float16))


def test_variance_and_sum_of_float16_add_up_in_float32():
    x = (300 + np.arange(1000) % 2).astype(np.float16)
    out = tt.tensor(x).var()
    assert out.dtype == np.float16 and out.item() == pytest.approx(np.var(x.astype(np.float64), ddof=1), rel=1e-3)
    total = half([60000.0, 60000.0, -60000.0]).sum()
    assert total.dtype == np.float16 and total.item() == 60000.0  # 60000 + 60000 overflowed float16 first


def test_softmax_and_cross_entropy_over_many_float16_classes():
    zeros = half(np.zeros((1, 70000)))
    probs = F.softmax(zeros, dim=-1)
    assert probs.dtype == np.float16
    np.testing.assert_allclose(probs.data[0, :3].astype(np.float64), 1 / 70000, rtol=1e-2)
    loss = F.cross_entropy(zeros, tt.tensor(np.array([0])))
    assert loss.dtype == np.float16 and loss.item() == pytest.approx(np.log(70000), rel=1e-3)
    assert np.isfinite(F.log_softmax(zeros, dim=-1).data).all()


def test_normalisations_and_pooling_of_float16_near_large_values():
    rng = np.random.default_rng(0)
    rows = (200 + rng.standard_normal((2, 512))).astype(np.float16)
    out = F.layer_norm(tt.tensor(rows), normalized_shape=(512,))
    wide = rows.astype(np.float64)
    expected = (wide - wide.mean(axis=1, keepdims=True)) / wide.std(axis=1, keepdims=True)
    assert out.dtype == np.float16
    np.testing.assert_allclose(out.data.astype(np.float64), expected, atol=2e-2)
    assert F.mse_loss(half(np.full(70000, 2.0)), half(np.zeros(70000))).item() == 4.0
    pytest.importorskip("tinytorch_spatial")
    pooled = F.avg_pool2d(half(np.full((1, 1, 2, 2), 40000.0)), 2)
    assert pooled.dtype == np.float16 and pooled.item() == 40000.0
    images = (200 + rng.standard_normal((8, 1, 16, 16))).astype(np.float16)
    normed = tt.nn.BatchNorm2d(1).to(np.float16)(tt.tensor(images))
    wide = images.astype(np.float64)
    np.testing.assert_allclose(normed.data.astype(np.float64), (wide - wide.mean()) / wide.std(), atol=2e-2)


def test_float16_gradients_come_back_in_float16():
    x = tt.tensor(np.linspace(-1, 1, 8).astype(np.float16), requires_grad=True)
    F.softmax(x.reshape(2, 4), dim=-1).var().backward()
    assert x.grad.dtype == np.float16 and np.isfinite(x.grad.data).all()
