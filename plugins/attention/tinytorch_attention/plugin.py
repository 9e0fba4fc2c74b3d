"""pluggy hooks of the 'attention' stage."""

from tinytorch_core import hookimpl


@hookimpl
def tinytorch_declare_stage(declare):
    declare("attention")
