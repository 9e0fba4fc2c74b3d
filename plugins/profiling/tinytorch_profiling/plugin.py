"""pluggy hooks of the 'profiling' stage: what it registers with the TinyTorch host.
The entry point's name, ``profiling``, says which stage this plugin provides."""

from tinytorch_core import hookimpl

import tinytorch_profiling


@hookimpl
def tinytorch_register_symbols(registry):
    registry.symbols_from(tinytorch_profiling)  # profile, record, summary, benchmark, compare: the catalog's names
