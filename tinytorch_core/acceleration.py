"""Compiled training steps, registered by stages (``compile`` arrives with acceleration).

Names resolve through the plugin registry; a name whose stage is not installed raises
MissingStageError with the install command. ``tinytorch_core.compile`` is this namespace's
``compile``, at top level as in PyTorch (``torch.compile``).
"""

from .host.namespace import namespace_resolver

__getattr__, __dir__ = namespace_resolver("acceleration")
