"""Saving and loading state dicts, registered by stages (save/load arrive with nn).

Names resolve through the plugin registry; a name whose stage is not installed raises
MissingStageError with the install command.
"""

from .host.namespace import namespace_resolver

__getattr__, __dir__ = namespace_resolver("io")
