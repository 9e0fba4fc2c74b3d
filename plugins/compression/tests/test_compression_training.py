"""Fake quantization (straight-through estimator), observers, distillation, model size, registration."""

from __future__ import annotations

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Tensor
from tinytorch_core.testing import central_difference
from tinytorch_compression import (FakeQuantize, MinMaxObserver, MovingAverageMinMaxObserver, PercentileObserver,
                                   distillation_loss, fake_quantize, model_size, quantize)


def test_fake_quantize_lands_on_the_grid_and_passes_gradients_straight_through_inside_the_range():
    x = Tensor(np.array([-20.0, -0.26, 0.04, 0.51, 20.0]), requires_grad=True, dtype=np.float64)
    out = fake_quantize(x, 0.1, 2)
    np.testing.assert_allclose(out.data, [-13.0, -0.3, 0.0, 0.5, 12.5])  # clamped to (-128-2)*0.1, (127-2)*0.1
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 1.0, 1.0, 1.0, 0.0])


def test_the_straight_through_gradient_is_the_gradient_of_the_clamp_it_rounds():
    rng = np.random.default_rng(0)
    x = rng.uniform(-30, 30, size=20)
    clamp = lambda a: np.clip(a, (-128 - 3) * 0.2, (127 - 3) * 0.2)  # noqa: E731
    t = Tensor(x, requires_grad=True, dtype=np.float64)
    fake_quantize(t, 0.2, 3).sum().backward()
    numeric = [central_difference(lambda: float(clamp(x).sum()), x, (i,)) for i in range(len(x))]
    np.testing.assert_allclose(t.grad.data, numeric, atol=1e-6)


def test_fake_quantize_is_registered_and_gradient_checked(opcheck):
    assert opcheck("compression::fake_quantize").samples_checked == 3
    assert tt.ops.fake_quantize is fake_quantize and tt.compression.quantize is quantize


def test_observers():
    a, b = np.array([-1.0, 2.0], np.float32), np.array([-3.0, 1.0], np.float32)
    mm = MinMaxObserver()
    mm(a), mm(b)
    assert (mm.low, mm.high) == (-3.0, 2.0)
    ma = MovingAverageMinMaxObserver(averaging_constant=0.5)
    ma(a), ma(b)
    assert (ma.low, ma.high) == (-2.0, 1.5)
    data = np.concatenate([np.linspace(-1, 1, 999), [100.0]]).astype(np.float32)
    pct = PercentileObserver(percentile=99.0)
    pct(data)
    assert pct.high < 1.0  # the outlier is clipped
    per_channel = MinMaxObserver(symmetric=True, axis=0)
    per_channel(np.array([[1.0, -4.0], [0.5, 0.25]], np.float32))
    scale, zero_point = per_channel.calculate_qparams()
    np.testing.assert_allclose(scale, [4.0 / 127, 0.5 / 127], rtol=1e-6)
    with pytest.raises(RuntimeError, match="no values observed"):
        MinMaxObserver().calculate_qparams()


def test_qat_with_fake_quantize_learns():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    model = tt.nn.Sequential(FakeQuantize(), tt.nn.Linear(4, 8, generator=rng), tt.nn.ReLU(), FakeQuantize(),
                             tt.nn.Linear(8, 2, generator=rng))
    optimizer = tt.optim.Adam(model.parameters(), lr=0.05)
    first = None
    for _ in range(60):
        loss = tt.ops.cross_entropy(model(Tensor(x)), Tensor(y))
        first = first or loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.3 * first
    assert float((model.eval()(Tensor(x)).data.argmax(1) == y).mean()) >= 0.95


def reference_distillation(student, teacher, target, t, alpha):
    def log_softmax(z):
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    p = np.exp(log_softmax(teacher / t))
    kl = (p * (np.log(p) - log_softmax(student / t))).sum(axis=1).mean()
    hard = -log_softmax(student)[np.arange(len(target)), target].mean()
    return alpha * t * t * kl + (1 - alpha) * hard


def test_distillation_loss_matches_its_formula_and_its_gradient(gradcheck):
    rng = np.random.default_rng(1)
    student, teacher, target = rng.standard_normal((5, 4)), rng.standard_normal((5, 4)) * 3, np.array([0, 3, 1, 1, 2])
    value = distillation_loss(Tensor(student, dtype=np.float64), teacher, target, temperature=3.0, alpha=0.7)
    assert value.item() == pytest.approx(reference_distillation(student, teacher, target, 3.0, 0.7), rel=1e-10)
    assert gradcheck(lambda s: distillation_loss(s, teacher, target, temperature=3.0, alpha=0.7), student)
    with pytest.raises(ValueError, match="temperature"):
        distillation_loss(Tensor(student), teacher, target, temperature=0)
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        distillation_loss(Tensor(student), teacher[:, :3], target)


def test_model_size_counts_bytes_by_dtype():
    rng = np.random.default_rng(2)
    model = tt.nn.Sequential(tt.nn.Linear(10, 4, generator=rng))
    assert model_size(model).by_dtype == {"float32": 44 * 4} and model_size(model).total == 176
    q = quantize(model, [rng.standard_normal((4, 10)).astype(np.float32)])
    size = model_size(q)
    assert size.by_dtype["int8"] == 40 and size.by_dtype["int32"] == 4 * 4 + 3 * 4  # bias, three zero points
