"""Layers of the spatial stage: Conv2d, MaxPool2d, AvgPool2d, Flatten, BatchNorm2d."""

from __future__ import annotations

import math
import numbers

import numpy as np

from tinytorch_core import Module, Parameter, Tensor, resolve_generator
from tinytorch_core.checks import dtype_mismatch, positive_int, true_or_false

from .batchnorm import check_momentum_and_eps, checked_batch_norm2d
from .conv import check_padding_name, checked_conv2d
from .geometry import pair
from .pooling import AvgPool2dFunction, MaxPool2dFunction, checked_pool2d

__all__ = ["Conv2d", "MaxPool2d", "AvgPool2d", "Flatten", "BatchNorm2d"]


class Conv2d(Module):
    """2-D convolution over NCHW input: ``weight`` (out, in/groups, kh, kw) and optional ``bias`` (out,).

    ``groups`` splits the in and out channels into that many groups, each convolved only with its
    own (``groups == in_channels``: a depthwise convolution). Default init as PyTorch: weight and
    bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with ``fan_in = in_channels / groups * kh * kw``,
    drawn from ``generator`` (a numpy Generator or a seed).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, *, generator=None):
        super().__init__()
        who = "Conv2d"
        self.in_channels = positive_int(in_channels, "in_channels", who)
        self.out_channels = positive_int(out_channels, "out_channels", who)
        self.kernel_size = pair(kernel_size, "kernel_size", who, 1)
        self.stride = pair(stride, "stride", who, 1)
        if isinstance(padding, str):  # PyTorch's "valid" or "same", resolved per input
            check_padding_name(padding, stride, who)
            self.padding = padding
        else:
            self.padding = pair(padding, "padding", who, 0)
        self.dilation = pair(dilation, "dilation", who, 1)
        self.groups = _check_groups(groups, self.in_channels, self.out_channels, who)
        rng = resolve_generator(generator)
        fan_in = self.in_channels // self.groups * self.kernel_size[0] * self.kernel_size[1]
        bound = 1.0 / math.sqrt(fan_in)
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self.weight = Parameter(rng.uniform(-bound, bound, size=shape).astype(np.float32))
        if true_or_false(bias, "bias", who):
            self.bias = Parameter(rng.uniform(-bound, bound, size=self.out_channels).astype(np.float32))
        else:
            self.bias = None

    def forward(self, x):
        if getattr(x, "dtype", None) != self.weight.dtype:
            raise dtype_mismatch(self, x, self.weight.dtype)
        return checked_conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                              f"Conv2d({self.extra_repr()})", self.groups)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding!r}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text


def _check_groups(groups, in_channels, out_channels, who) -> int:
    """``groups`` as a positive int that divides both channel counts."""
    groups = positive_int(groups, "groups", who)
    for what, count in (("in_channels", in_channels), ("out_channels", out_channels)):
        if count % groups:
            raise ValueError(f"{who}: {what}={count} must be divisible by groups={groups}")
    return groups


class _Pool2d(Module):
    """What the pooling layers share: the window geometry, checked once; ``pooling`` does the work."""

    pooling = None  # the Function of the subclass

    def __init__(self, kernel_size, stride=None, padding=0, *, ceil_mode=False):
        super().__init__()
        who = type(self).__name__
        self.kernel_size = pair(kernel_size, "kernel_size", who, 1)
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", who, 1)
        self.padding = pair(padding, "padding", who, 0)
        if not isinstance(ceil_mode, (bool, np.bool_)):
            raise TypeError(f"{who}: ceil_mode must be True or False, got {ceil_mode!r}")
        self.ceil_mode = bool(ceil_mode)

    def forward(self, x):
        return checked_pool2d(self.pooling, x, self.kernel_size, self.stride, self.padding,
                              f"{type(self).__name__}({self.extra_repr()})", self.ceil_mode)

    def extra_repr(self) -> str:
        text = f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        return text + (", ceil_mode=True" if self.ceil_mode else "")


class MaxPool2d(_Pool2d):
    """Max pooling; ``stride`` defaults to ``kernel_size``; the gradient goes to each window's arg-max.
    ``ceil_mode=True`` keeps a last window that runs past the input (PyTorch's output size rule)."""

    pooling = MaxPool2dFunction


class AvgPool2d(_Pool2d):
    """Average pooling; ``stride`` defaults to ``kernel_size``; zero padding counts in the average
    unless ``count_include_pad=False``. ``ceil_mode=True`` keeps a last window that runs past the
    input, averaged over what it covers of the padded input."""

    pooling = AvgPool2dFunction

    def __init__(self, kernel_size, stride=None, padding=0, *, ceil_mode=False, count_include_pad=True):
        super().__init__(kernel_size, stride, padding, ceil_mode=ceil_mode)
        self.count_include_pad = true_or_false(count_include_pad, "count_include_pad", "AvgPool2d")

    def forward(self, x):
        return checked_pool2d(self.pooling, x, self.kernel_size, self.stride, self.padding,
                              f"AvgPool2d({self.extra_repr()})", self.ceil_mode, count_include_pad=self.count_include_pad)

    def extra_repr(self) -> str:
        return super().extra_repr() + ("" if self.count_include_pad else ", count_include_pad=False")


class Flatten(Module):
    """Joins the axes ``start_axis`` to ``end_axis`` (both included) into one; the default keeps
    the batch axis and joins all the others. ``start_dim`` and ``end_dim`` are PyTorch's names.

    Either may count from the end (-1, the default end, is the last axis), as in PyTorch.
    """

    def __init__(self, start_axis: int = 1, end_axis: int = -1, *, start_dim=None, end_dim=None):
        super().__init__()
        start, start_name = _alias(start_axis, 1, start_dim, "start_axis", "start_dim")
        end, end_name = _alias(end_axis, -1, end_dim, "end_axis", "end_dim")
        for name, value in ((start_name, start), (end_name, end)):
            if not isinstance(value, numbers.Integral) or isinstance(value, bool):
                raise TypeError(f"Flatten: {name} must be an int, got {value!r}")
        self.start_axis, self.end_axis = int(start), int(end)
        if (self.start_axis < 0) == (self.end_axis < 0) and self.end_axis < self.start_axis:  # known without the input
            raise ValueError(f"Flatten: {start_name}={self.start_axis} comes after {end_name}={self.end_axis}")

    def forward(self, x):
        if not isinstance(x, Tensor):
            x = Tensor(x)
        start, end = (axis + x.ndim if axis < 0 else axis for axis in (self.start_axis, self.end_axis))
        if not 0 <= start < x.ndim:
            raise ValueError(
                f"Flatten({self.extra_repr()}): input of shape {x.shape} has only {x.ndim} "
                f"axis/axes; start_axis={self.start_axis} is not one of them"
            )
        if not start <= end < x.ndim:
            raise ValueError(
                f"Flatten({self.extra_repr()}): the end axis must lie between the start axis "
                f"{start} and the last axis of the input, but for an input of shape {x.shape} "
                f"end_axis={self.end_axis} is axis {end}"
            )
        return x.flatten(start, end)

    def extra_repr(self) -> str:
        text = f"start_axis={self.start_axis}"
        return text if self.end_axis == -1 else text + f", end_axis={self.end_axis}"


def _alias(value, default, torch_value, name: str, torch_name: str):
    """An argument given by its TinyTorch name or by PyTorch's (one of the two), and the name used."""
    if torch_value is None:
        return value, name
    if value != default:
        raise TypeError(f"Flatten: pass {name} or {torch_name} (its PyTorch name), not both")
    return torch_value, torch_name


class BatchNorm2d(Module):
    """Batch normalisation of NCHW input per channel, with PyTorch's options.

    Training mode normalises with the batch statistics (biased variance) and updates the
    buffers ``running_mean`` / ``running_var`` (unbiased variance) with ``momentum``, counting
    the batches in ``num_batches_tracked``; ``momentum=None`` makes the running statistics the
    plain average over every batch seen (``1 / num_batches_tracked`` as the factor). Eval mode
    normalises with the buffers. ``affine=True`` adds parameters ``weight`` (ones) and ``bias``
    (zeros). ``track_running_stats=False`` keeps no buffers: batch statistics in both modes.
    """

    #: a state dict without this key (one saved before it existed, or by hand) still loads
    optional_state_keys = ("num_batches_tracked",)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True):
        super().__init__()
        who = "BatchNorm2d"
        self.num_features = positive_int(num_features, "num_features", who)
        check_momentum_and_eps(0.0 if momentum is None else momentum, eps, who)
        self.eps = float(eps)
        self.momentum = None if momentum is None else float(momentum)
        self.affine = true_or_false(affine, "affine", who)
        self.track_running_stats = true_or_false(track_running_stats, "track_running_stats", who)
        c = self.num_features
        if self.affine:
            self.weight = Parameter(np.ones(c, np.float32))
            self.bias = Parameter(np.zeros(c, np.float32))
        else:
            self.weight = None
            self.bias = None
        if self.track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(c, np.float32)))
            self.register_buffer("running_var", Tensor(np.ones(c, np.float32)))
            self.register_buffer("num_batches_tracked", Tensor(np.array(0, np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def forward(self, x):
        reference = self.running_mean if self.running_mean is not None else self.weight
        if reference is not None and getattr(x, "dtype", None) != reference.dtype:
            raise dtype_mismatch(self, x, reference.dtype)
        where = f"BatchNorm2d({self.num_features})"
        batch_statistics = self.training or self.running_mean is None  # no running statistics: the batch's
        counter = self.num_batches_tracked
        if not (self.training and counter is not None):
            return checked_batch_norm2d(x, self.running_mean, self.running_var, self.weight, self.bias,
                                        batch_statistics, self.momentum or 0.0, self.eps, where)
        batches = int(counter.data) + 1
        factor = 1.0 / batches if self.momentum is None else self.momentum  # None: the average of every batch
        y = checked_batch_norm2d(x, self.running_mean, self.running_var, self.weight, self.bias,
                                 True, factor, self.eps, where)
        counter.data[...] = batches  # after the op: an input it refuses is not counted (PyTorch's add_(1))
        counter._bump()
        return y

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")
