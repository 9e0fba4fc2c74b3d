"""pluggy hooks of the swish plugin: its own stage, its two ops (with samples) and two layers.

The stage requires ``spatial``: ``DepthwiseConv2d`` is meant to sit next to spatial's
``Conv2d`` (a depthwise-separable block is a depthwise and a 1x1 convolution), so the plugin is
activated only where spatial is loaded.
"""

from tinytorch_core import hookimpl

from . import functional as F
from . import layers, samples


@hookimpl
def tinytorch_declare_stage(declare):
    declare("swish", requires=("spatial",), title="Swish activation and depthwise convolution (example plugin)")


@hookimpl
def tinytorch_register_ops(registry):
    registry.op("swish::swish", F.SwishFunction, samples=samples.swish_samples, call=F.swish)
    registry.op("swish::depthwise_conv2d", F.DepthwiseConv2dFunction,
                samples=samples.depthwise_conv2d_samples, call=F.depthwise_conv2d)


@hookimpl
def tinytorch_register_symbols(registry):
    registry.layer("Swish", layers.Swish)
    registry.layer("DepthwiseConv2d", layers.DepthwiseConv2d)
