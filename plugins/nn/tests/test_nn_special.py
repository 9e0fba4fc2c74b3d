"""The vectorised erf / erfc against the standard library on dense grids."""

import math

import numpy as np
import pytest

from tinytorch_nn.special import erf, erfc


def test_erf_matches_math_erf_to_float64_precision():
    x = np.concatenate([np.linspace(-8, 8, 40001), np.linspace(-0.6, 0.6, 4001), [0.5, -0.5, 0.4999999999]])
    expected = np.array([math.erf(v) for v in x])
    assert np.max(np.abs(erf(x) - expected)) <= 5e-16


def test_erf_keeps_relative_precision_near_zero():
    x = np.geomspace(1e-300, 0.49, 2000)
    expected = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(erf(x), expected, rtol=5e-16, atol=0)
    np.testing.assert_allclose(erf(-x), -expected, rtol=5e-16, atol=0)


def test_erfc_relative_precision_in_the_tail():
    z = np.linspace(-6, 10, 40001)
    expected = np.array([math.erfc(v) for v in z])
    np.testing.assert_allclose(erfc(z), expected, rtol=2e-14, atol=0)
    far = np.linspace(10, 26, 2001)
    np.testing.assert_allclose(erfc(far), [math.erfc(v) for v in far], rtol=2e-13, atol=0)


def test_special_values_without_warnings():
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is the answer
        np.testing.assert_array_equal(erf(np.array([np.inf, -np.inf, 0.0])), [1.0, -1.0, 0.0])
        np.testing.assert_array_equal(erfc(np.array([np.inf, -np.inf, 40.0])), [0.0, 2.0, 0.0])
    assert np.isnan(erf(np.array([np.nan]))[0]) and np.isnan(erfc(np.array([np.nan]))[0])


@pytest.mark.parametrize("fn, reference", [(erf, math.erf), (erfc, math.erfc)])
def test_float32_stays_float32_and_accurate(fn, reference):
    x = np.linspace(-5, 5, 2001, dtype=np.float32)
    out = fn(x)
    assert out.dtype == np.float32
    expected = np.array([reference(float(v)) for v in x])
    assert np.max(np.abs(out - expected)) < 5e-7


def test_scalars_and_integer_input():
    assert abs(float(erf(1.0)) - math.erf(1.0)) < 1e-16
    assert erf(np.array([0, 1])).dtype == np.float64
