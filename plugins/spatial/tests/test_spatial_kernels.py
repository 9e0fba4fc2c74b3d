"""The kernels' building blocks: im2col and col2im are adjoint, the window geometry counts the
output as PyTorch does, stride-one input gradients at every padding agree with finite
differences, and max-pool backward over windows that tile the input routes each window's
gradient to its first maximum."""

import numpy as np
import pytest

from tinytorch_core import Tensor
from tinytorch_core.testing import gradcheck
from tinytorch_spatial import functional as F

GEOMETRIES = [  # input shape, kernel, stride, padding, dilation
    ((2, 3, 5, 4), (3, 3), (1, 1), (1, 1), (1, 1)),
    ((1, 2, 7, 6), (2, 3), (2, 1), (1, 0), (1, 2)),
    ((2, 1, 6, 6), (3, 3), (3, 2), (2, 2), (2, 1)),
]


@pytest.mark.parametrize("shape, kernel, stride, padding, dilation", GEOMETRIES)
def test_col2im_is_the_adjoint_of_im2col(shape, kernel, stride, padding, dilation):
    # <im2col(x), y> == <x, col2im(y)> for all x, y: col2im is the transpose of im2col's linear map
    geo = F.WindowGeometry.of(shape, kernel, stride, padding, dilation)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    columns = F.im2col(x, geo)
    pixels, offsets, channels = shape[0] * geo.out_hw[0] * geo.out_hw[1], kernel[0] * kernel[1], shape[1]
    assert columns.shape == (pixels, offsets * channels)
    y = rng.standard_normal(columns.shape)
    per_offset = y.reshape(pixels, offsets, channels).transpose(1, 0, 2)  # col2im's grouping of y
    np.testing.assert_allclose(np.vdot(columns, y), np.vdot(x, F.col2im(per_offset, geo)), rtol=1e-12)


def test_window_geometry_counts_windows_and_offsets():
    geo = F.WindowGeometry.of((2, 3, 7, 6), (3, 2), (2, 1), (1, 0), (2, 1))
    assert geo.out_hw == (F.output_size(7, 3, 2, 1, 2), F.output_size(6, 2, 1, 0, 1)) == (3, 5)
    assert geo.padded_shape == (2, 3, 9, 6) and geo.output_shape == (2, 3, 3, 5)
    offsets = list(geo.offsets())
    assert [t for t, _, _ in offsets] == list(range(6))
    padded = np.zeros(geo.padded_shape)
    assert all(padded[:, :, rows, cols].shape == geo.output_shape for _, rows, cols in offsets)


@pytest.mark.parametrize("padding, kernel", [((1, 1), (3, 3)), ((0, 2), (3, 3)), ((2, 0), (3, 2)), ((0, 0), (1, 1))])
def test_stride_one_input_gradient_agrees_with_finite_differences(padding, kernel):
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 3, 5, 4)), rng.standard_normal((4, 3, *kernel)), rng.standard_normal(4)
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=padding), x, w, b)


def test_tiling_max_pool_backward_routes_to_the_first_maximum():
    x = np.array([[[[1.0, 3.0, 0.5, 0.5], [3.0, 2.0, 0.5, 0.5]]]])  # ties: 3 twice, 0.5 four times
    t = Tensor(x, requires_grad=True, dtype=np.float64)
    F.max_pool2d(t, 2).sum().backward()
    np.testing.assert_array_equal(t.grad.data, [[[[0, 1, 1, 0], [0, 0, 0, 0]]]])
    assert gradcheck(lambda a: F.max_pool2d(a, 2), np.random.default_rng(1).permutation(64).reshape(1, 4, 4, 4) * 0.1)
