"""The kernels' fast paths are exercised and agree with finite differences: the input gradient
of small stride-1 convolutions as a transposed convolution, and max-pool backward over windows
that tile the input."""

import numpy as np
import pytest

from tinytorch_core.testing import gradcheck
from tinytorch_spatial import functional as F


@pytest.mark.parametrize("padding, kernel", [((1, 1), (3, 3)), ((0, 2), (3, 3)), ((2, 0), (3, 2)), ((0, 0), (1, 1))])
def test_stride_one_input_gradient_takes_the_transposed_convolution(monkeypatch, padding, kernel):
    calls = []
    original = F._input_grad_by_transposed_conv

    def spy(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(F, "_input_grad_by_transposed_conv", spy)
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 3, 5, 4)), rng.standard_normal((4, 3, *kernel)), rng.standard_normal(4)
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=padding), x, w, b)
    assert calls, "the fast path did not run"


def test_tiling_max_pool_backward_routes_to_the_first_maximum():
    x = np.array([[[[1.0, 3.0, 0.5, 0.5], [3.0, 2.0, 0.5, 0.5]]]])  # ties: 3 twice, 0.5 four times
    from tinytorch_core import Tensor

    t = Tensor(x, requires_grad=True, dtype=np.float64)
    F.max_pool2d(t, 2).sum().backward()
    np.testing.assert_array_equal(t.grad.data, [[[[0, 1, 1, 0], [0, 0, 0, 0]]]])
    assert gradcheck(lambda a: F.max_pool2d(a, 2), np.random.default_rng(1).permutation(64).reshape(1, 4, 4, 4) * 0.1)
