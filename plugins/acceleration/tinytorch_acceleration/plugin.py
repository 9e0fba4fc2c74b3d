"""pluggy hooks of the 'acceleration' stage: what it registers with the TinyTorch host.
The entry point's name, ``acceleration``, says which stage this plugin provides."""

from tinytorch_core import hookimpl

import tinytorch_acceleration


@hookimpl
def tinytorch_register_symbols(registry):
    registry.symbols_from(tinytorch_acceleration)  # compile, CompiledStep, CompileError: the catalog's names
