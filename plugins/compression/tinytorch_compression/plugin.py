"""pluggy hooks of the 'compression' stage: what it registers with the TinyTorch host.
The entry point's name, ``compression``, says which stage this plugin provides."""

from tinytorch_core import hookimpl

from . import api
from .fake_quant import FakeQuantizeFunction, fake_quantize, fake_quantize_samples


@hookimpl
def tinytorch_register_ops(registry):
    registry.op("compression::fake_quantize", FakeQuantizeFunction, samples=fake_quantize_samples,
                call=fake_quantize)


@hookimpl
def tinytorch_register_symbols(registry):
    registry.symbols_from(api)  # quantize, MinMaxObserver, prune_channels, ...: the catalog's names for the stage
