"""Core registers its own primitives through the same hooks as every plugin."""

from __future__ import annotations

from .host.hookspecs import hookimpl
from .primitives import core_op_table


@hookimpl
def tinytorch_declare_stage(declare):
    declare("core")


@hookimpl
def tinytorch_register_ops(registry):
    for short_name, function, samples, call in core_op_table():
        registry.function(f"core::{short_name}", function, samples=samples, call=call)
