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


@hookspec
def tinytorch_declare_stage(declare):
    """Say which stage this plugin provides: ``declare("spatial")`` for a curriculum stage
    (its order and prerequisites come from the catalog), or
    ``declare("swish", requires=("nn",), title="...")`` for a stage of your own."""


@hookspec
def tinytorch_register_ops(registry):
    """Register differentiable ops: ``registry.function("stage::name", FunctionClass, samples=...)``."""


@hookspec
def tinytorch_register_layers(registry):
    """Register layers (``registry.layer("Conv2d", Conv2d)``) and other public symbols
    (``registry.symbol("optim", "SGD", SGD)``)."""


@hookspec
def tinytorch_register_milestones(register):
    """Register milestones: ``register(Milestone(...))``."""


@hookspec
def tinytorch_cli_commands(commands):
    """Add ``tinytorch`` subcommands: ``commands.add(name, help=..., setup=..., run=...)``."""
