"""Swish: values against the formula, float32, saturation, broadcast beta, gradients, errors, layer."""

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_swish import Swish, swish


def reference(x, beta):
    return x / (1.0 + np.exp(-beta * x))


@pytest.mark.parametrize("beta", [1.0, 0.5, -1.3, 0.0])
def test_values_match_the_formula(beta):
    x = np.linspace(-6.0, 6.0, 49)
    out = swish(tt.Tensor(x, dtype=np.float64), beta)
    np.testing.assert_allclose(out.data, reference(x, beta), rtol=1e-12, atol=1e-15)


def test_beta_zero_halves_the_input():
    x = np.array([-2.0, 0.5, 3.0])
    np.testing.assert_array_equal(swish(tt.Tensor(x, dtype=np.float64), 0.0).data, x / 2)


def test_float32_stays_float32_and_saturation_is_clean():
    x = tt.Tensor(np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype=np.float32), requires_grad=True)
    beta = tt.Parameter(np.array(1.5, dtype=np.float32))
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out = swish(x, beta)
        out.sum().backward()
    assert out.data.dtype == np.float32 and x.grad.data.dtype == np.float32 and beta.grad.data.dtype == np.float32
    np.testing.assert_allclose(out.data, [0.0, 0.0, 0.0, 50.0, 1000.0], atol=1e-6)
    np.testing.assert_allclose(x.grad.data, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-6)
    assert np.all(np.isfinite(beta.grad.data))


def test_gradients_match_finite_differences(gradcheck):
    rng = np.random.default_rng(1)
    assert gradcheck(swish, rng.standard_normal((3, 4)) * 2, 0.8)
    assert gradcheck(swish, rng.standard_normal((3, 4)), np.array(1.2))  # x and a scalar beta
    assert gradcheck(swish, rng.standard_normal((2, 3, 2, 2)), rng.uniform(0.5, 2, (3, 1, 1)))  # per channel


def test_per_channel_beta_gradient_is_summed_over_the_broadcast():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 3, 2, 2))
    beta = tt.Tensor(rng.uniform(0.5, 2.0, (3, 1, 1)), requires_grad=True, dtype=np.float64)
    swish(tt.Tensor(x, dtype=np.float64), beta).sum().backward()
    s = 1.0 / (1.0 + np.exp(-beta.data * x))
    expected = (x * x * s * (1 - s)).sum(axis=(0, 2, 3)).reshape(3, 1, 1)
    assert beta.grad.shape == (3, 1, 1)
    np.testing.assert_allclose(beta.grad.data, expected, rtol=1e-12)


def test_bad_arguments_are_clear_errors():
    x = tt.Tensor(np.ones((2, 3)))
    with pytest.raises(TypeError, match="swish: beta must be a number or a Tensor, got str"):
        swish(x, "1")
    with pytest.raises(ValueError, match="swish: beta must be finite"):
        swish(x, float("inf"))
    with pytest.raises(ValueError, match=r"swish: beta of shape \(2,\) does not broadcast to the input's shape"):
        swish(x, np.ones(2))
    with pytest.raises(TypeError, match="swish: input: expected a Tensor or an array, got list"):
        swish([1.0, 2.0])


def test_fixed_layer_has_no_parameters_and_matches_the_function():
    layer = Swish(beta=2.0)
    assert list(layer.parameters()) == [] and repr(layer) == "Swish(beta=2)"
    x = tt.Tensor(np.linspace(-3, 3, 7), dtype=np.float64)
    np.testing.assert_allclose(layer(x).data, reference(x.data, 2.0), rtol=1e-12)


def test_learnable_layer_trains_its_beta():
    layer = Swish(beta=1.0, learnable=True)
    assert [p.shape for p in layer.parameters()] == [(1,)] and "learnable=True" in repr(layer)
    rng = np.random.default_rng(3)
    x = tt.Tensor(rng.standard_normal(64).astype(np.float32))
    target = reference(x.data, 2.5)  # data made with beta = 2.5
    optimizer = tt.optim.Adam(layer.parameters(), lr=0.05)
    for _ in range(150):
        optimizer.zero_grad()
        loss = ((layer(x) - tt.Tensor(target)) ** 2).mean()
        loss.backward()
        optimizer.step()
    assert abs(float(layer.beta.data[0]) - 2.5) < 0.05


def test_layer_rejects_a_bad_beta():
    with pytest.raises(ValueError, match="Swish: beta must be a finite number"):
        Swish(beta=float("nan"))
