"""pluggy hooks of the 'spatial' stage."""

from tinytorch_core import hookimpl


@hookimpl
def tinytorch_declare_stage(declare):
    declare("spatial")
