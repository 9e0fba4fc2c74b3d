"""Text generation with a KV cache and sampling, registered by stages (they arrive with generation).

Names resolve through the plugin registry; a name whose stage is not installed raises
MissingStageError with the install command.
"""

from .host.namespace import namespace_resolver

__getattr__, __dir__ = namespace_resolver("generation")
