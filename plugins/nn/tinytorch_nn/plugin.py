"""pluggy hooks of the 'nn' stage."""

from tinytorch_core import hookimpl


@hookimpl
def tinytorch_declare_stage(declare):
    declare("nn")
