"""pluggy hooks of the 'spatial' stage: its ops (with gradient-check samples) and layers.
The entry point's name, ``spatial``, says which stage this plugin provides."""

from tinytorch_core import hookimpl

from . import functional as F
from . import layers
from . import samples


@hookimpl
def tinytorch_register_ops(registry):
    registry.op("spatial::conv2d", F.Conv2dFunction, samples=samples.conv2d_samples, call=F.conv2d)
    registry.op("spatial::max_pool2d", F.MaxPool2dFunction, samples=samples.max_pool2d_samples, call=F.max_pool2d)
    registry.op("spatial::avg_pool2d", F.AvgPool2dFunction, samples=samples.avg_pool2d_samples, call=F.avg_pool2d)
    registry.op("spatial::batch_norm2d", F.BatchNorm2dFunction, samples=samples.batch_norm2d_samples,
                call=F.batch_norm2d)


@hookimpl
def tinytorch_register_symbols(registry):
    registry.symbols_from(layers)  # Conv2d, MaxPool2d, ...: the catalog's names for the stage
