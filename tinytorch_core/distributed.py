"""Data-parallel training, registered by stages (init, DistributedDataParallel, DistributedSampler
arrive with distributed).

Names resolve through the plugin registry; a name whose stage is not installed raises
MissingStageError with the install command.
"""

from .host.namespace import namespace_resolver

__getattr__, __dir__ = namespace_resolver("distributed")
