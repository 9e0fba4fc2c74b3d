"""The contract of stage ``spatial`` (convolution and pooling), checked through the public API.

References are written here, independently of any provider: plain loops over output positions
(clarity over speed: the arrays are tiny), in float64.
"""

from __future__ import annotations

import numpy as np

import tinytorch_core as tt
from tinytorch_core import Tensor

from . import Check, ConformanceError, check_gradients, expect_close, expect_error, expect_learned, train
from .contract import Layer, Op


# ---- independent references -------------------------------------------------------------------------
def _pad(x, padding, value=0.0):
    p = padding
    return np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=value)


def conv2d_reference(x, weight, bias=None, stride=1, padding=0, dilation=1):
    xp = _pad(x, padding)
    n, _, h, w = xp.shape
    o, _, kh, kw = weight.shape
    span_h, span_w = dilation * (kh - 1) + 1, dilation * (kw - 1) + 1
    ho, wo = (h - span_h) // stride + 1, (w - span_w) // stride + 1
    out = np.zeros((n, o, ho, wo))
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, :, i * stride : i * stride + span_h : dilation, j * stride : j * stride + span_w : dilation]
            out[:, :, i, j] = np.tensordot(patch, weight, axes=([1, 2, 3], [1, 2, 3]))
    if bias is not None:
        out += bias[None, :, None, None]
    return out


def pool_reference(x, kernel, stride, padding, reduce):
    fill = -np.inf if reduce is np.max else 0.0
    xp = _pad(x, padding, fill)
    n, c, h, w = xp.shape
    ho, wo = (h - kernel) // stride + 1, (w - kernel) // stride + 1
    out = np.zeros((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            out[:, :, i, j] = reduce(xp[:, :, i * stride : i * stride + kernel, j * stride : j * stride + kernel],
                                     axis=(2, 3))
    return out


def batch_norm_reference(x, weight, bias, eps):
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    var = x.var(axis=(0, 2, 3), keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight[None, :, None, None] + bias[None, :, None, None]


def _data(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _distinct(shape, seed=0):
    """Values with no ties (max-pool's gradient is defined)."""
    rng = np.random.default_rng(seed)
    return (rng.permutation(int(np.prod(shape))).reshape(shape) / 10.0) - 1.0


def _f32(array):
    return Tensor(np.asarray(array, dtype=np.float32))


# ---- ops.conv2d -------------------------------------------------------------------------------------
def conv2d_forward():
    x, w, b = _data((2, 3, 7, 6)), _data((4, 3, 3, 2), 1), _data((4,), 2)
    for stride, padding, dilation in ((1, 0, 1), (2, 1, 1), (1, 1, 2)):
        out = tt.ops.conv2d(_f32(x), _f32(w), _f32(b), stride=stride, padding=padding, dilation=dilation)
        expect_close(f"conv2d(stride={stride}, padding={padding}, dilation={dilation})", out,
                     conv2d_reference(x, w, b, stride, padding, dilation), rtol=1e-4, atol=1e-4)
    expect_close("conv2d without bias", tt.ops.conv2d(_f32(x), _f32(w)), conv2d_reference(x, w), rtol=1e-4, atol=1e-4)


def conv2d_backward():
    """Every input's gradient, over the geometries a kernel can get wrong separately: stride and
    padding, dilation, and a non-square kernel with stride 1."""
    for options, x_shape, weight_shape in (
        (dict(stride=2, padding=1), (2, 2, 5, 5), (3, 2, 3, 3)),
        (dict(stride=1, padding=2, dilation=2), (1, 2, 6, 6), (2, 2, 3, 3)),
        (dict(stride=1, padding=0), (1, 1, 5, 6), (2, 1, 2, 3)),
    ):
        check_gradients(lambda x, weight, bias, options=options: tt.ops.conv2d(x, weight, bias, **options),
                        {"x": _data(x_shape), "weight": _data(weight_shape, 1), "bias": _data(weight_shape[:1], 2)})


def conv2d_contract():
    out = tt.ops.conv2d(_f32(_data((1, 2, 5, 5))), _f32(_data((3, 2, 3, 3))))
    if out.dtype != np.float32 or out.shape != (1, 3, 3, 3):
        raise ConformanceError(f"conv2d of float32 (1, 2, 5, 5) by (3, 2, 3, 3) gave {out.dtype} {out.shape}, "
                               "expected float32 (1, 3, 3, 3)")
    expect_error(ValueError, lambda: tt.ops.conv2d(_f32(_data((1, 1, 5, 5))), _f32(_data((3, 2, 3, 3)))),
                 "conv2d with 1 input channel for a weight expecting 2")
    expect_error(ValueError, lambda: tt.ops.conv2d(_f32(_data((5, 5))), _f32(_data((3, 2, 3, 3)))),
                 "conv2d of a 2-D input")


# ---- ops.max_pool2d / ops.avg_pool2d ------------------------------------------------------------------
def _pool_forward(op: str, reduce, x, cases):
    def check():
        for kernel, stride, padding in cases:
            out = getattr(tt.ops, op)(_f32(x), kernel, stride=stride, padding=padding)
            expect_close(f"{op}(kernel={kernel}, stride={stride}, padding={padding})", out,
                         pool_reference(x, kernel, stride, padding, reduce))
    return check


max_pool2d_forward = _pool_forward("max_pool2d", np.max, _distinct((2, 3, 6, 7)), ((2, 2, 0), (3, 2, 1), (3, 1, 0)))
avg_pool2d_forward = _pool_forward("avg_pool2d", np.mean, _data((2, 3, 6, 7)), ((2, 2, 0), (3, 2, 1)))


def max_pool2d_backward():
    check_gradients(lambda x: tt.ops.max_pool2d(x, 3, stride=2, padding=1), {"x": _distinct((2, 2, 6, 6))})


def avg_pool2d_backward():
    check_gradients(lambda x: tt.ops.avg_pool2d(x, 3, stride=2, padding=1), {"x": _data((2, 2, 6, 6))})


# ---- ops.batch_norm2d ----------------------------------------------------------------------------------
def batch_norm2d_forward():
    x, w, b = _data((4, 3, 5, 5)), _data((3,), 1), _data((3,), 2)
    running_mean, running_var = _f32(np.zeros(3)), _f32(np.ones(3))
    out = tt.ops.batch_norm2d(_f32(x), running_mean, running_var, _f32(w), _f32(b), training=True,
                              momentum=0.1, eps=1e-5)
    expect_close("batch_norm2d (training)", out, batch_norm_reference(x, w, b, 1e-5), rtol=1e-4, atol=1e-4)
    count = x.shape[0] * x.shape[2] * x.shape[3]
    expect_close("running_mean after one step", running_mean, 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-4, atol=1e-5)
    expect_close("running_var after one step", running_var,
                 0.9 + 0.1 * x.var(axis=(0, 2, 3)) * count / (count - 1), rtol=1e-4, atol=1e-5)
    evaluated = tt.ops.batch_norm2d(_f32(x), running_mean, running_var, _f32(w), _f32(b), training=False, eps=1e-5)
    mean, var = running_mean.data.astype(np.float64), running_var.data.astype(np.float64)
    expected = (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5)
    expect_close("batch_norm2d (evaluation, running statistics)", evaluated,
                 expected * w[None, :, None, None] + b[None, :, None, None], rtol=1e-4, atol=1e-4)


def batch_norm2d_backward():
    check_gradients(lambda x, weight, bias: tt.ops.batch_norm2d(x, None, None, weight, bias, training=True),
                    {"x": _data((4, 2, 3, 3)), "weight": _data((2,), 1), "bias": _data((2,), 2)})


# ---- the layers ---------------------------------------------------------------------------------------
def conv2d_layer():
    layer = tt.nn.Conv2d(3, 4, kernel_size=3, stride=2, padding=1)
    shapes = {name: tuple(p.shape) for name, p in layer.named_parameters()}
    if shapes != {"weight": (4, 3, 3, 3), "bias": (4,)}:
        raise ConformanceError(f"Conv2d(3, 4, kernel_size=3) has parameters {shapes}, "
                               "expected weight (4, 3, 3, 3) and bias (4,)")
    x = _data((2, 3, 8, 8))
    expected = conv2d_reference(x, layer.weight.data.astype(np.float64), layer.bias.data.astype(np.float64), 2, 1)
    expect_close("Conv2d forward", layer(_f32(x)), expected, rtol=1e-4, atol=1e-4)
    expect_error((ValueError, TypeError), lambda: layer(_f32(_data((2, 2, 8, 8)))), "Conv2d(3, ...) given 2 channels")


def pool_layers():
    x = _distinct((2, 3, 6, 6))
    expect_close("MaxPool2d(2) forward", tt.nn.MaxPool2d(2)(_f32(x)), pool_reference(x, 2, 2, 0, np.max))
    expect_close("AvgPool2d(2) forward", tt.nn.AvgPool2d(2)(_f32(x)), pool_reference(x, 2, 2, 0, np.mean))


def flatten_layer():
    x = Tensor(np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5), requires_grad=True)
    out = tt.nn.Flatten()(x)
    expect_close("Flatten forward", out, x.data.reshape(2, 60))
    out.sum().backward()
    expect_close("Flatten's gradient", x.grad, np.ones((2, 3, 4, 5)))


def batch_norm_layer():
    layer = tt.nn.BatchNorm2d(3)
    shapes = {name: tuple(p.shape) for name, p in layer.named_parameters()}
    if shapes != {"weight": (3,), "bias": (3,)}:
        raise ConformanceError(f"BatchNorm2d(3) has parameters {shapes}, expected weight (3,) and bias (3,)")
    x = _data((4, 3, 5, 5))
    expect_close("BatchNorm2d forward (training)", layer(_f32(x)),
                 batch_norm_reference(x, np.ones(3), np.zeros(3), 1e-5), rtol=1e-4, atol=1e-4)
    layer.eval()
    first = layer(_f32(x)).data.copy()
    second = layer(_f32(x)).data
    expect_close("BatchNorm2d in evaluation mode (running statistics, no update)", second, first)


# ---- training: a small CNN learns ------------------------------------------------------------------------
def cnn_learns():
    """Which half of an 8x8 image holds a bright 2x2 spot: a convolutional model must learn it."""
    rng = np.random.default_rng(0)
    n = 64
    images = rng.normal(0.0, 0.1, (n, 1, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 2, n)
    for k in range(n):
        row, col = rng.integers(0, 7), rng.integers(0, 3) + 4 * labels[k]
        images[k, 0, row : row + 2, col : col + 2] += 1.0
    model = tt.nn.Sequential(tt.nn.Conv2d(1, 4, 3, padding=1), tt.nn.ReLU(), tt.nn.MaxPool2d(2),
                             tt.nn.Flatten(), tt.nn.Linear(64, 2))
    optimizer = tt.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = tt.nn.CrossEntropyLoss()
    x, y = Tensor(images), Tensor(labels)
    first, last = train(lambda: loss_fn(model(x), y), optimizer, 60)
    accuracy = float((model(x).data.argmax(axis=1) == labels).mean())
    expect_learned("a small CNN", first, last, loss_ratio=0.5, accuracy=accuracy, min_accuracy=0.9)


CHECKS = [
    Check("ops.conv2d", "forward", conv2d_forward),
    Check("ops.conv2d", "backward", conv2d_backward),
    Check("ops.conv2d", "contract", conv2d_contract),
    Check("ops.max_pool2d", "forward", max_pool2d_forward),
    Check("ops.max_pool2d", "backward", max_pool2d_backward),
    Check("ops.avg_pool2d", "forward", avg_pool2d_forward),
    Check("ops.avg_pool2d", "backward", avg_pool2d_backward),
    Check("ops.batch_norm2d", "forward", batch_norm2d_forward),
    Check("ops.batch_norm2d", "backward", batch_norm2d_backward),
    Check("nn.Conv2d", "contract", conv2d_layer),
    Check("nn.MaxPool2d, nn.AvgPool2d", "forward", pool_layers),
    Check("nn.Flatten", "contract", flatten_layer),
    Check("nn.BatchNorm2d", "contract", batch_norm_layer),
    Check("spatial", "training", cnn_learns),
]


# ---- the contract a learner's skeleton starts from (``tinytorch implement spatial NAME``) --------------
CONTRACT = [
    Op("conv2d", "x, weight, bias=None, stride=1, padding=0, dilation=1", inputs=("x", "weight", "bias"),
       doc="""2-D cross-correlation (what deep learning calls convolution) of an NCHW batch.

    x (N, C, H, W) float; weight (O, C, kh, kw); bias (O,) or None; stride, padding (zeros on every
    side) and dilation are ints. Output (N, O, Ho, Wo) in x's dtype, with
    Ho = (H + 2 padding - dilation (kh - 1) - 1) // stride + 1 (Wo alike) and
    out[n, o, i, j] = bias[o] + sum over c, p, q of
                      x_padded[n, c, i stride + p dilation, j stride + q dilation] * weight[o, c, p, q].
    Errors: ValueError for an input that is neither 4-D nor one 3-D (C, H, W) image (the reference
    runs that as a batch of one, as PyTorch does), channels that do not match the weight, or a
    kernel larger than the padded input. Backward: the gradient of x, weight and bias.""",
       sample="Sample(randn(rng, 2, 2, 5, 5), randn(rng, 3, 2, 3, 3), randn(rng, 3), 1, 1)"),
    Op("max_pool2d", "x, kernel_size, stride=None, padding=0", inputs=("x",),
       doc="""Max pooling of an NCHW batch over kernel_size x kernel_size windows.

    stride defaults to kernel_size; padding counts as -inf (it never wins). Output
    (N, C, Ho, Wo), Ho = (H + 2 padding - kernel_size) // stride + 1. Backward: each window's
    gradient goes to the position of its maximum (the first one, in row-major order, on a tie).""",
       sample="Sample(rng.permutation(72).reshape(2, 1, 6, 6) / 10.0, 2)"),
    Op("avg_pool2d", "x, kernel_size, stride=None, padding=0", inputs=("x",),
       doc="""Average pooling of an NCHW batch over kernel_size x kernel_size windows.

    stride defaults to kernel_size; zero padding counts in every average (divide by
    kernel_size**2). Output (N, C, Ho, Wo) as for max_pool2d. Backward: each window spreads
    its gradient evenly over its kernel_size**2 positions.""",
       sample="Sample(randn(rng, 2, 1, 6, 6), 2)"),
    Op("batch_norm2d", "x, running_mean=None, running_var=None, weight=None, bias=None, training=False, "
                       "momentum=0.1, eps=1e-5", inputs=("x", "weight", "bias"),
       doc="""Batch normalisation of an NCHW batch per channel.

    Training: mean and biased variance over (N, H, W) per channel; out = (x - mean) /
    sqrt(var + eps) * weight + bias (weight and bias (C,), or None for 1 and 0); the running
    buffers, when given, are updated in place: running = (1 - momentum) running + momentum batch,
    with the unbiased variance for running_var. Evaluation (training=False, the default, as in
    PyTorch's F.batch_norm): normalise with the running buffers instead. Backward: the gradient of
    x, weight and bias.""",
       sample="Sample(randn(rng, 4, 2, 3, 3), None, None, randn(rng, 2), randn(rng, 2), training=True)"),
    Layer("Conv2d", "in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, bias=True, "
                    "generator=None",
          doc="""A 2-D convolution layer: parameters weight (out_channels, in_channels, k, k) and
    bias (out_channels,) (None with bias=False), initialised U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    with fan_in = in_channels k k; forward(x) = conv2d(x, weight, bias, stride, padding, dilation).
    An input whose channels do not match is a ValueError (or TypeError for the wrong dtype)."""),
    Layer("MaxPool2d", "kernel_size, stride=None, padding=0",
          doc="""forward(x) = max_pool2d(x, kernel_size, stride, padding); no parameters."""),
    Layer("AvgPool2d", "kernel_size, stride=None, padding=0",
          doc="""forward(x) = avg_pool2d(x, kernel_size, stride, padding); no parameters."""),
    Layer("Flatten", "start_axis=1",
          doc="""forward(x) reshapes x to keep the axes before start_axis and join the rest:
    (N, C, H, W) -> (N, C H W). The gradient passes through unchanged (reshaped back)."""),
    Layer("BatchNorm2d", "num_features, eps=1e-5, momentum=0.1, affine=True",
          doc="""Batch normalisation layer: parameters weight (ones) and bias (zeros) of shape
    (num_features,) when affine, buffers running_mean (zeros) and running_var (ones) registered
    with register_buffer; forward(x) = batch_norm2d(x, running_mean, running_var, weight, bias,
    self.training, momentum, eps): batch statistics while training, running ones after eval()."""),
]
