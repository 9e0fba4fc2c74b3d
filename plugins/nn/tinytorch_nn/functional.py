"""The functional API of stage ``nn`` (``F``): every op as a function, and the ``Function``
classes the plugin registers as ``nn::<name>`` ops.

Every op is a single ``Function`` with a hand-written backward, so a layer costs one graph
node instead of a chain of primitives (``linear`` is one matrix product with its bias,
``cross_entropy`` is log-softmax, pick and mean in one step with the ``softmax - onehot``
backward). The lower-case functions validate their arguments with a clear error and call
``<Class>.apply``. The ops live by topic:

- ``linear.py``: ``linear``
- ``activations.py``: ``relu``, ``leaky_relu``, ``sigmoid``, ``tanh``, ``gelu``, ``softmax``,
  ``log_softmax``
- ``dropout.py``: ``dropout``
- ``elementwise_losses.py``: ``mse_loss``, ``binary_cross_entropy``,
  ``binary_cross_entropy_with_logits``, ``sigmoid_binary_cross_entropy``
- ``classification_losses.py``: ``cross_entropy``, ``nll_loss``
- ``reduction.py``: the ``reduction`` argument (mean/sum/none) every loss shares
"""

from __future__ import annotations

from .activations import (
    GELUFunction,
    LeakyReLUFunction,
    LogSoftmaxFunction,
    ReLUFunction,
    SigmoidFunction,
    SoftmaxFunction,
    TanhFunction,
    gelu,
    leaky_relu,
    log_softmax,
    relu,
    sigmoid,
    softmax,
    tanh,
)
from .classification_losses import CrossEntropyFunction, NLLLossFunction, cross_entropy, nll_loss
from .dropout import DropoutFunction, dropout
from .elementwise_losses import (
    BCE_LOG_FLOOR,
    BinaryCrossEntropyFunction,
    BinaryCrossEntropyWithLogitsFunction,
    MSELossFunction,
    SigmoidBinaryCrossEntropyFunction,
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    mse_loss,
    sigmoid_binary_cross_entropy,
)
from .linear import LinearFunction, linear

__all__ = [
    "BCE_LOG_FLOOR",
    "BinaryCrossEntropyFunction", "BinaryCrossEntropyWithLogitsFunction", "CrossEntropyFunction",
    "DropoutFunction", "GELUFunction", "LeakyReLUFunction", "LinearFunction", "LogSoftmaxFunction",
    "MSELossFunction", "NLLLossFunction", "ReLUFunction", "SigmoidBinaryCrossEntropyFunction",
    "SigmoidFunction", "SoftmaxFunction", "TanhFunction",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "dropout", "gelu",
    "leaky_relu", "linear", "log_softmax", "mse_loss", "nll_loss", "relu", "sigmoid",
    "sigmoid_binary_cross_entropy", "softmax", "tanh",
]
