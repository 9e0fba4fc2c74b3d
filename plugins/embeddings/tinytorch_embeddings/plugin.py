"""pluggy hooks of the 'embeddings' stage."""

from tinytorch_core import hookimpl


@hookimpl
def tinytorch_declare_stage(declare):
    declare("embeddings")
