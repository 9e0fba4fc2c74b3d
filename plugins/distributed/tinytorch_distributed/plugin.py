"""pluggy hooks of the 'distributed' stage: what it registers with the TinyTorch host.
The entry point's name, ``distributed``, says which stage this plugin provides."""

from tinytorch_core import hookimpl

import tinytorch_distributed

from . import launch


@hookimpl
def tinytorch_register_symbols(registry):
    registry.symbols_from(tinytorch_distributed)  # init, DistributedDataParallel, ...: the catalog's names


@hookimpl
def tinytorch_cli_commands(commands):
    commands.add("launch", help="run a script (or tinytorch command) as N MPI ranks: launch -n N SCRIPT [ARGS]",
                 setup=launch.setup, run=launch.run)
