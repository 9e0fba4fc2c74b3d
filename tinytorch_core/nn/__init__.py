"""Layers: ``Module``, ``Parameter``, ``ModuleList`` and ``ModuleDict`` live in core; every concrete layer
(``Linear``, ``Conv2d``, ...) is registered by its stage and resolved here on first use.
A layer whose stage is not installed raises ``MissingStageError`` with the install command.
"""

from ..host.namespace import namespace_resolver
from ..containers import ModuleDict, ModuleList
from ..module import Module, Parameter, StateDictError

from . import functional  # noqa: E402  (tt.nn.functional: the ops under PyTorch's module name)

__all__ = ["Module", "ModuleDict", "ModuleList", "Parameter", "StateDictError", "functional"]

__getattr__, _registered = namespace_resolver("nn")


def __dir__():
    return sorted(set(__all__) | set(_registered()))
