"""pluggy hooks of the 'generation' stage: what it registers with the TinyTorch host.
The entry point's name, ``generation``, says which stage this plugin provides. The stage adds no
op: generation runs existing layers under no_grad, so there is no new gradient to check."""

from tinytorch_core import hookimpl

import tinytorch_generation


@hookimpl
def tinytorch_register_symbols(registry):
    registry.symbols_from(tinytorch_generation)  # generate, KVCache and the sampling helpers, as the catalog lists them
