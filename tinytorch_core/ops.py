"""Every registered op, by short name: ``tinytorch_core.ops.conv2d(x, w)``.

``tinytorch_core.ops.get("spatial::conv2d")`` gives the full registry entry. A name whose
stage is not installed raises ``MissingStageError`` with the install command.
"""

from .host.namespace import namespace_resolver

__getattr__, __dir__ = namespace_resolver("ops")


def get(name: str):
    """The ``OpEntry`` for a qualified or short op name."""
    from .host.runtime import default_runtime

    return default_runtime().op(name)
