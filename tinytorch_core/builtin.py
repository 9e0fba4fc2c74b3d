"""Core registers its own primitives through the same hooks as every plugin.

It declares no stage: its plugin name, ``core``, is the catalog's stage 0.
"""

from __future__ import annotations

from .host.hookspecs import hookimpl
from .primitives import core_op_table


@hookimpl
def tinytorch_register_ops(registry):
    for short_name, function, samples, call in core_op_table():
        registry.op(f"core::{short_name}", function, samples=samples, call=call)
