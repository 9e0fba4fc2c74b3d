"""Every fast path against the plain path it replaces, so neither can drift.

Each fast path sits behind one predicate (``conv._can_fold_bias``, ...). For each, a case
where the predicate holds is run twice, once as is and once with the predicate forced to
False (the plain path), and the forward values and all gradients must agree; both paths are
also checked against central differences. Inputs come in NCHW and in channels-last memory
order (what the layers hand each other).
"""

import numpy as np
import pytest

from tinytorch_core import Tensor
from tinytorch_core.testing import gradcheck
from tinytorch_spatial import conv, pooling
from tinytorch_spatial import functional as F
from tinytorch_spatial.geometry import WindowGeometry, pair

CONV_CASES = [  # x shape, weight shape, stride, padding, dilation
    ((2, 1, 6, 5), (3, 1, 3, 3), 1, 1, 1),
    ((2, 1, 7, 6), (2, 1, 2, 3), (2, 1), (1, 0), (1, 2)),
    ((3, 4, 5, 5), (5, 4, 3, 3), 1, 1, 1),
    ((2, 3, 6, 4), (2, 3, 3, 2), 1, (2, 1), 1),
    ((2, 3, 7, 7), (4, 3, 3, 3), 2, 1, 2),
    ((1, 2, 5, 6), (3, 2, 1, 1), 1, 0, 1),
]
POOL_CASES = [  # x shape, kernel, stride
    ((2, 3, 4, 4), 2, None),
    ((2, 2, 6, 9), 3, None),
    ((1, 3, 4, 6), (2, 3), None),
    ((2, 2, 4, 6), (1, 2), (1, 2)),
]


def channels_last(x):
    """The same values as ``x`` (N, C, H, W), stored channels-last, as conv2d hands them out."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def forward_and_grads(fn, *arrays):
    """``fn``'s output and the gradients of ``sum(out * W)`` (fixed W) w.r.t. every array."""
    tensors = [Tensor(a, requires_grad=True, dtype=np.float64) for a in arrays]
    out = fn(*tensors)
    weights = np.random.default_rng(7).standard_normal(out.shape)
    (out * Tensor(weights)).sum().backward()
    return [out.data] + [t.grad.data for t in tensors]


def assert_paths_agree(monkeypatch, module, predicate, fn, *arrays):
    """Same values and gradients with the fast path as with the plain path; both by finite
    differences too (gradcheck on C-ordered copies: it perturbs its inputs through a flat view)."""
    fast = forward_and_grads(fn, *arrays)
    assert gradcheck(fn, *map(np.ascontiguousarray, arrays))
    with monkeypatch.context() as patch:
        patch.setattr(module, predicate, lambda *args: False)
        plain = forward_and_grads(fn, *arrays)
        assert gradcheck(fn, *map(np.ascontiguousarray, arrays))
    for a, b in zip(fast, plain):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def conv_inputs(x_shape, w_shape, seed=0, layout=np.asarray):
    rng = np.random.default_rng(seed)
    return layout(rng.standard_normal(x_shape)), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])


@pytest.mark.parametrize("layout", [np.asarray, channels_last])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation", CONV_CASES)
def test_folded_bias_agrees_with_the_bias_added_afterwards(monkeypatch, layout, x_shape, w_shape, stride,
                                                           padding, dilation):
    x, w, b = conv_inputs(x_shape, w_shape, layout=layout)
    assert conv._can_fold_bias(b)
    assert_paths_agree(monkeypatch, conv, "_can_fold_bias",
                       lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation), x, w, b)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation", [c for c in CONV_CASES if c[0][1] == 1])
def test_one_channel_columns_stored_transposed_agree_with_row_major_columns(monkeypatch, x_shape, w_shape,
                                                                            stride, padding, dilation):
    x, w, b = conv_inputs(x_shape, w_shape)
    geo = WindowGeometry.of(x.shape, w.shape[2:], *(pair(v, "", "", 0) for v in (stride, padding, dilation)))
    assert conv._can_store_columns_transposed(geo)
    assert_paths_agree(monkeypatch, conv, "_can_store_columns_transposed",
                       lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation), x, w, b)
    for bias in (None, b):  # without a bias, too (no ones column)
        assert_paths_agree(monkeypatch, conv, "_can_store_columns_transposed",
                           lambda x, w: F.conv2d(x, w, bias, stride, padding, dilation), x, w)


@pytest.mark.parametrize("layout", [np.asarray, channels_last])
@pytest.mark.parametrize("x_shape, w_shape, padding", [
    ((2, 1, 6, 5), (3, 1, 3, 3), 1),
    ((3, 4, 5, 5), (5, 4, 3, 3), 1),
    ((2, 3, 6, 4), (2, 3, 3, 2), (2, 1)),
    ((2, 3, 5, 4), (4, 3, 3, 3), 0),
    ((1, 2, 5, 6), (3, 2, 1, 1), 0),
])
def test_transposed_conv_input_gradient_agrees_with_col2im(monkeypatch, layout, x_shape, w_shape, padding):
    x, w, b = conv_inputs(x_shape, w_shape, layout=layout)
    geo = WindowGeometry.of(x.shape, w.shape[2:], (1, 1), pair(padding, "", "", 0))
    assert conv._can_use_transposed_conv(geo)
    assert_paths_agree(monkeypatch, conv, "_can_use_transposed_conv",
                       lambda x, w, b: F.conv2d(x, w, b, 1, padding), x, w, b)


def test_transposed_conv_applies_only_where_it_is_one_convolution():
    def applies(stride=(1, 1), padding=(1, 1), dilation=(1, 1), shape=(2, 3, 6, 6)):
        return conv._can_use_transposed_conv(WindowGeometry.of(shape, (3, 3), stride, padding, dilation))

    assert applies()
    assert not applies(stride=(2, 1)) and not applies(dilation=(1, 2)) and not applies(padding=(3, 0))
    assert not applies(shape=(64, 16, 64, 64))  # too large: its columns would cost more than col2im


@pytest.mark.parametrize("layout", [np.asarray, channels_last])
@pytest.mark.parametrize("x_shape, kernel, stride", POOL_CASES)
def test_tiling_max_pool_scatter_agrees_with_the_per_offset_scatter(monkeypatch, layout, x_shape, kernel, stride):
    x = layout(np.random.default_rng(3).permutation(np.prod(x_shape)).reshape(x_shape) * 0.1)  # no ties
    k = pair(kernel, "", "", 1)
    assert pooling._windows_tile_the_input(WindowGeometry.of(x.shape, k, k if stride is None else stride, (0, 0)))
    assert_paths_agree(monkeypatch, pooling, "_windows_tile_the_input",
                       lambda x: F.max_pool2d(x, kernel, stride), x)


def test_tiling_max_pool_scatter_routes_ties_like_the_plain_path(monkeypatch):
    x = np.round(np.random.default_rng(4).standard_normal((2, 3, 6, 6)))  # many ties
    fast = forward_and_grads(lambda x: F.max_pool2d(x, 2), x)
    monkeypatch.setattr(pooling, "_windows_tile_the_input", lambda *args: False)
    plain = forward_and_grads(lambda x: F.max_pool2d(x, 2), x)
    for a, b in zip(fast, plain):
        np.testing.assert_array_equal(a, b)


def test_tiling_needs_windows_side_by_side_covering_the_whole_input():
    def tiles(shape=(1, 1, 4, 6), kernel=(2, 3), stride=(2, 3), padding=(0, 0)):
        return pooling._windows_tile_the_input(WindowGeometry.of(shape, kernel, stride, padding))

    assert tiles()
    assert not tiles(shape=(1, 1, 5, 6)) and not tiles(stride=(1, 3)) and not tiles(padding=(1, 1))


def test_float32_keeps_its_dtype_on_every_fast_path():
    x, w, b = (a.astype(np.float32) for a in conv_inputs((2, 1, 6, 6), (4, 1, 3, 3)))
    xt, wt, bt = (Tensor(a, requires_grad=True) for a in (x, w, b))
    out = F.max_pool2d(F.conv2d(xt, wt, bt, padding=1), 2)
    out.sum().backward()
    assert out.dtype == np.float32
    assert all(t.grad.data.dtype == np.float32 for t in (xt, wt, bt))
