"""pluggy hooks of the 'acceleration' stage: what it registers with the TinyTorch host.
The entry point's name, ``acceleration``, says which stage this plugin provides."""

from tinytorch_core import hookimpl

import tinytorch_acceleration

from .fused import LinearReLUFunction, linear_relu, linear_relu_samples


@hookimpl
def tinytorch_register_ops(registry):
    # a fused kernel: an op like any other (gradient-checked through its samples), used by compile's replays
    registry.op("acceleration::linear_relu", LinearReLUFunction, samples=linear_relu_samples, call=linear_relu)


@hookimpl
def tinytorch_register_symbols(registry):
    registry.symbols_from(tinytorch_acceleration)  # compile, CompiledStep, CompileError: the catalog's names
