"""Structured pruning: remove whole output channels (neurons), giving a smaller dense model.

``prune_channels(model, amount)`` walks a ``Sequential``. Every Linear / Conv2d but the last
keeps the ``1 - amount`` fraction of its output channels whose filters (weight rows) have the
largest L2 norm; the next Linear / Conv2d then loses the matching input channels (through a
``Flatten``: each channel's block of H*W input features). The layers in between must act on
each channel separately (activations, pooling, dropout), so that dropping a channel before them
is dropping it after them. The result is built from new, smaller ``Linear`` / ``Conv2d`` layers:
fewer parameters, smaller GEMMs, nothing masked.
"""

from __future__ import annotations

import copy
import math
import numbers

import numpy as np

import tinytorch_core as tt
from tinytorch_core import Parameter

from .layer_types import is_layer
from .pruning import Pruned, tied_weights
from .quantize import sequential_named_layers

__all__ = ["prune_channels"]

#: layers that act on each channel on its own: a channel dropped before them is dropped after them
_CHANNELWISE = ("ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "Dropout", "Identity", "MaxPool2d", "AvgPool2d")


def prune_channels(model, amount):
    """A smaller dense copy of the ``Sequential`` ``model``: each Linear / Conv2d but the last keeps
    ``ceil((1 - amount) * channels)`` of its output channels (at least one), those of largest L2 norm."""
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real):
        raise TypeError(f"prune_channels: amount must be a number, a fraction in [0, 1) of the channels, got {amount!r}")
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"prune_channels: amount must be a fraction in [0, 1) of the channels to remove, got {amount!r}")
    named = sequential_named_layers(model, "prune_channels")
    _refuse_shared_layers(named)
    layers = [_dense_copy(layer) for _, layer in named]
    weighted = [i for i, layer in enumerate(layers) if is_layer(layer, "Linear", "Conv2d")]
    for this, following in zip(weighted, weighted[1:]):
        flattens = _check_between(layers[this + 1 : following], layers[this], layers[following])
        _check_channel_axes(layers[this], layers[following], flattens)
        kept = _strongest_outputs(layers[this].weight.data, amount)
        spatial = _spatial_size(layers[this], layers[following]) if flattens else 1
        layers[this] = _resized(layers[this], outputs=kept)
        layers[following] = _resized(layers[following], inputs=_input_columns(kept, spatial))
    return tt.nn.Sequential(*layers)


def _refuse_shared_layers(named) -> None:
    """A layer used twice, or two layers tied to one weight, cannot lose channels: its output
    channels are cut where it is used first, its input channels where it is used next, so the
    copies would differ (and the tie would be gone)."""
    weighted = [(name, m) for name, m in named if is_layer(m, "Linear", "Conv2d") or isinstance(m, Pruned)]
    first_use = {}
    for name, layer in weighted:
        first = first_use.setdefault(id(layer), name)
        if first != name:
            raise ValueError(f"prune_channels: layers '{first}' and '{name}' share one layer ({layer!r} is used "
                             "twice); removing its output channels at one use would change its inputs at the other. "
                             "Give each use a layer of its own (copy.deepcopy) to prune them apart")
    tied = tied_weights(list({id(layer): (name, layer) for name, layer in weighted}.values()))
    if tied is not None:
        raise ValueError(f"prune_channels: layers '{tied[0]}' and '{tied[1]}' share one weight Parameter (tied "
                         "weights); each would be cut to other channels and the tie lost. Untie them to prune them")


def _dense_copy(layer):
    """A copy of ``layer``; a ``Pruned`` one as its plain layer, the mask baked in."""
    if isinstance(layer, Pruned):
        return layer.unwrapped()
    if is_layer(layer, "Linear", "Conv2d") and not np.isfinite(layer.weight.data).all():
        raise ValueError(f"prune_channels: the weight of {layer!r} holds NaN or inf; channels are ranked by finite norms")
    return copy.deepcopy(layer)


def _check_channel_axes(before, after, flattens: bool) -> None:
    """The channels ``before`` produces must be the inputs ``after`` reads: Linear features feed a
    Linear (a Flatten of 2-D features changes nothing), Conv2d channels feed a Conv2d, or a Linear
    through a Flatten."""
    if is_layer(before, "Linear") and is_layer(after, "Linear") and flattens:
        if after.weight.shape[1] != before.weight.shape[0]:
            raise ValueError(f"prune_channels: a Flatten between {before!r} and {after!r} mixes the Linear's "
                             "features with other axes; its outputs are not whole input blocks of the next layer")
        return
    linear_to_linear = is_layer(before, "Linear") and is_layer(after, "Linear")
    conv_to_conv = is_layer(before, "Conv2d") and is_layer(after, "Conv2d") and not flattens
    conv_to_linear = is_layer(before, "Conv2d") and is_layer(after, "Linear") and flattens
    if not (linear_to_linear or conv_to_conv or conv_to_linear):
        raise ValueError(f"prune_channels: the output channels of {before!r} are not the inputs of {after!r} "
                         "(a Conv2d's channels reach a Linear only through a Flatten; a Linear's features are "
                         "never a Conv2d's channels)")


def _strongest_outputs(weight, amount: float):
    """Indices, in order, of the output channels (weight rows) with the largest L2 norms."""
    norms = np.sqrt((weight.reshape(len(weight), -1).astype(np.float64) ** 2).sum(axis=1))
    keep = max(1, math.ceil((1.0 - amount) * len(weight) - 1e-9))
    return np.sort(np.argsort(-norms, kind="stable")[:keep])


def _input_columns(kept_channels, spatial: int):
    """The input features of the next layer that belong to the kept channels: the channels
    themselves, or, after a Flatten of C x (H*W) features, each kept channel's block of H*W."""
    return (kept_channels[:, None] * spatial + np.arange(spatial)).ravel()


def _spatial_size(conv, linear) -> int:
    """H*W of the conv's output as the Linear after the Flatten sees it."""
    channels = conv.weight.shape[0]
    if not is_layer(linear, "Linear") or linear.weight.shape[1] % channels:
        raise ValueError(f"prune_channels: after a Flatten, expected a Linear whose inputs are {channels} "
                         f"channels' blocks of features, got {linear!r}")
    return linear.weight.shape[1] // channels


def _check_between(between, before, after) -> bool:
    """Only channel-wise layers and one Flatten(1, -1) may separate two pruned layers; returns
    whether a Flatten is among them."""
    flattens = 0
    for layer in between:
        if is_layer(layer, "Flatten") and (layer.start_axis, layer.end_axis) == (1, -1):
            flattens += 1
        elif not is_layer(layer, *_CHANNELWISE):
            raise ValueError(f"prune_channels: cannot remove channels across {type(layer).__name__} (between "
                             f"{before!r} and {after!r}): only element-wise activations, pooling, dropout and "
                             "one Flatten are understood")
    if flattens > 1:
        raise ValueError(f"prune_channels: more than one Flatten between {before!r} and {after!r}")
    return flattens == 1


def _resized(layer, outputs=None, inputs=None):
    """A new layer of ``layer``'s kind keeping the given output rows / input columns of its weight."""
    weight = layer.weight.data
    bias = None if layer.bias is None else layer.bias.data
    if outputs is not None:
        weight, bias = weight[outputs], None if bias is None else bias[outputs]
    if inputs is not None:
        weight = weight[:, inputs]
    if is_layer(layer, "Linear"):
        new = tt.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, generator=0)
    else:
        if layer.groups != 1:
            raise ValueError(f"prune_channels: grouped convolutions are not supported, got {layer!r}")
        new = tt.nn.Conv2d(weight.shape[1], weight.shape[0], layer.kernel_size, stride=layer.stride,
                           padding=layer.padding, dilation=layer.dilation, bias=bias is not None, generator=0)
    new.weight = Parameter(np.ascontiguousarray(weight))
    if bias is not None:
        new.bias = Parameter(bias.copy())
    new.train(layer.training)
    return new
