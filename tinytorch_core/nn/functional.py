"""``tinytorch_core.nn.functional``: the registered ops under PyTorch's module name.

``import tinytorch_core.nn.functional as F`` then ``F.relu(x)``, ``F.cross_entropy(logits, y)``,
``F.conv2d(x, w)``: each name is the op of that name in ``tinytorch_core.ops`` (the same
function, resolved through the registry), so a stage that is not installed raises
``MissingStageError`` with the install command.
"""

from ..host.namespace import namespace_resolver

__getattr__, __dir__ = namespace_resolver("ops")
