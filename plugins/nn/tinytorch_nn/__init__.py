"""TinyTorch stage 1, ``nn``: layers, activations, losses, optimizers, initialisers, data, saving.

Installing this plugin makes its symbols reachable through the core namespaces
(``tinytorch_core.nn.Linear``, ``tinytorch_core.optim.SGD``, ``tinytorch_core.ops.cross_entropy``);
importing ``tinytorch_nn`` directly gives the same objects.
"""

from tinytorch_core import catalog

from . import data, functional, init, io, optim, optim_adaptive, schedulers
from . import functional as F
from .data import DataLoader, Dataset, TensorDataset
from .init import (
    kaiming_normal_,
    kaiming_uniform_,
    ones_,
    xavier_normal_,
    xavier_uniform_,
    zeros_,
)
from .io import load, save
from .layers import (
    GELU,
    Dropout,
    Identity,
    LeakyReLU,
    Linear,
    LogSoftmax,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
)
from .losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss
from .optim import SGD, Adam, AdamW, clip_grad_norm_, clip_grad_value_
from .optim_adaptive import Adagrad, RMSprop
from .schedulers import CosineAnnealingLR, ExponentialLR, LinearWarmup, MultiStepLR, StepLR

__version__ = "0.1.0"

#: the submodules, and every name the catalog lists for stage nn (the catalog is the one list)
__all__ = ["F", "data", "functional", "init", "io", "optim", "optim_adaptive", "schedulers",
           *(name for _, name in catalog.stage("nn").symbol_names())]
