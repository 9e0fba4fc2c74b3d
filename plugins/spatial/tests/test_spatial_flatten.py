"""Flatten(start_axis, end_axis), with PyTorch's names start_dim and end_dim."""

import numpy as np
import pytest

from tinytorch_core import Tensor
from tinytorch_core.testing import gradcheck
from tinytorch_spatial import Flatten


@pytest.fixture
def x():
    return Tensor(np.arange(120.0).reshape(2, 3, 4, 5))


@pytest.mark.parametrize("layer, shape", [
    (Flatten(), (2, 60)),
    (Flatten(1, -1), (2, 60)),
    (Flatten(1, 2), (2, 12, 5)),
    (Flatten(0, 1), (6, 4, 5)),
    (Flatten(2), (2, 3, 20)),
    (Flatten(1, -2), (2, 12, 5)),
    (Flatten(3, 3), (2, 3, 4, 5)),  # one axis joined with itself: nothing changes
    (Flatten(start_dim=0, end_dim=2), (24, 5)),
    (Flatten(end_dim=-3), (2, 3, 4, 5)),
])
def test_flatten_known_shapes_and_values(x, layer, shape):
    out = layer(x)
    assert out.shape == shape
    np.testing.assert_array_equal(out.data, np.arange(120.0).reshape(shape))  # row-major order kept


def test_pytorch_names_mean_the_same_as_ours(x):
    np.testing.assert_array_equal(Flatten(start_dim=1, end_dim=2)(x).data, Flatten(1, 2)(x).data)
    layer = Flatten(start_dim=2, end_dim=-2)
    assert (layer.start_axis, layer.end_axis) == (2, -2)
    assert repr(layer) == "Flatten(start_axis=2, end_axis=-2)" and repr(Flatten()) == "Flatten(start_axis=1)"


def test_flatten_of_a_channels_last_input(x):
    data = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    channels_last = np.ascontiguousarray(data.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(Flatten(1, 2)(Tensor(channels_last, dtype=np.float64)).data, data.reshape(2, 12, 5))


def test_flatten_gradients():
    data = np.random.default_rng(1).standard_normal((2, 3, 4))
    assert gradcheck(lambda a: Flatten(0, 1)(a) * Tensor(np.arange(24.0).reshape(6, 4)), data)
    t = Tensor(data, requires_grad=True, dtype=np.float64)
    (Flatten(1, 2)(t) * Tensor(np.arange(24.0).reshape(2, 12))).sum().backward()
    np.testing.assert_array_equal(t.grad.data, np.arange(24.0).reshape(2, 3, 4))


def test_end_axis_must_lie_between_the_start_and_the_last_axis(x):
    with pytest.raises(ValueError, match=r"Flatten\(start_axis=1, end_axis=5\): the end axis must lie between "
                                         r"the start axis 1 and the last axis .* shape \(2, 3, 4, 5\) end_axis=5"):
        Flatten(1, 5)(x)
    with pytest.raises(ValueError, match=r"Flatten\(start_axis=2, end_axis=-4\): .* end_axis=-4 is axis 0"):
        Flatten(2, -4)(x)
    with pytest.raises(ValueError, match=r"Flatten: start_axis=3 comes after end_axis=1"):
        Flatten(3, 1)
    with pytest.raises(ValueError, match=r"Flatten: start_dim=2 comes after end_dim=1"):
        Flatten(start_dim=2, end_dim=1)


def test_start_may_count_from_the_end_as_in_pytorch():
    """``Flatten(start_dim=-2)`` was refused; PyTorch joins the last two axes."""
    x = Tensor(np.zeros((2, 3, 4, 5)))
    assert Flatten(start_dim=-2)(x).shape == (2, 3, 20) and Flatten(-3, -2)(x).shape == (2, 12, 5)
    with pytest.raises(ValueError, match=r"Flatten: start_axis=-1 comes after end_axis=-2"):
        Flatten(-1, -2)
    with pytest.raises(ValueError, match=r"start_axis=-5 is not one of them"):
        Flatten(-5)(x)


def test_one_name_per_argument_and_ints_only():
    with pytest.raises(TypeError, match=r"Flatten: pass start_axis or start_dim \(its PyTorch name\), not both"):
        Flatten(2, start_dim=3)
    with pytest.raises(TypeError, match=r"Flatten: pass end_axis or end_dim"):
        Flatten(1, 2, end_dim=3)
    with pytest.raises(TypeError, match=r"Flatten: end_axis must be an int, got 1.5"):
        Flatten(1, 1.5)
    with pytest.raises(TypeError, match=r"Flatten: start_axis must be an int, got 'a'"):
        Flatten("a")
