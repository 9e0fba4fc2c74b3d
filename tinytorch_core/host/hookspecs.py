"""The hooks a tinytorch plugin implements (pluggy project name ``tinytorch``).

Callback style: the host passes an object and the plugin *calls* it, so the host
always knows which plugin registered what.
"""

from __future__ import annotations

import pluggy

PROJECT = "tinytorch"
ENTRY_POINT_GROUP = "tinytorch.stages"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

#: hooks that were renamed, and their names now (a plugin still using an old name is told)
RENAMED = {"tinytorch_register_layers": "tinytorch_register_symbols"}


@hookspec
def tinytorch_declare_stage(declare):
    """Say which stage this plugin provides: ``declare("swish", requires=("nn",), title="...")``.

    Optional for a curriculum stage's reference plugin: an entry point named after a catalog stage
    (``spatial = "tinytorch_spatial.plugin"``) provides that stage, with the catalog's order and
    prerequisites. Another provider of a curriculum stage (a learner's own) says ``declare("spatial")``.
    """


@hookspec
def tinytorch_register_ops(registry):
    """Register differentiable ops: ``registry.op("stage::name", FunctionClass, samples=...)``."""


@hookspec
def tinytorch_register_symbols(registry):
    """Register the public objects reached through ``tinytorch_core.<namespace>``: layers
    (``registry.layer("Conv2d", Conv2d)``), optimizers, data, init, io and text symbols
    (``registry.symbol("optim", "SGD", SGD)``), or every catalog name of a curriculum stage at
    once (``registry.symbols_from(package)``)."""


@hookspec
def tinytorch_register_milestones(register):
    """Register milestones: ``register(Milestone(...))``."""


@hookspec
def tinytorch_cli_commands(commands):
    """Add ``tinytorch`` subcommands: ``commands.add(name, help=..., setup=..., run=...)``."""
