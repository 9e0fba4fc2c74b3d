"""TinyTorch core: Tensor, Function, the autograd engine, Module, and the plugin host.

Later stages are separate distributions that register their layers and ops through
pluggy hooks; reach them as ``tinytorch_core.nn.Linear`` or ``tinytorch_core.ops.conv2d``.
"""

from .anomaly import AnomalyError, detect_anomaly
from . import acceleration, autograd, catalog, compression, data, distributed, generation, init, io, nn, ops, optim, profiler, text
from .factories import (allclose, arange, as_tensor, empty, empty_like, eye, from_numpy, full, full_like, linspace, ones, ones_like,
                        rand, rand_like, randint, randn, randn_like, tensor, zeros, zeros_like)
from .function import Function, GraphError
from .observers import Observer, observing
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .host import (
    BlockedStageError,
    BrokenStageError,
    InactiveStageError,
    Milestone,
    MissingStageError,
    PluginLoadError,
    PluginWarning,
    RegistrationError,
    Runtime,
    Sample,
    StageUnavailableError,
    default_runtime,
    hookimpl,
    use_runtime,
)
from .containers import ModuleDict, ModuleList
from .module import Module, Parameter, StateDictError
from .primitives import (
    abs,
    broadcast_to,
    clip,
    concatenate,
    exp,
    log,
    matmul,
    maximum,
    mean,
    minimum,
    reshape,
    sqrt,
    squeeze,
    stack,
    swapaxes,
    transpose,
    unsqueeze,
    var,
    where,
)
from .primitives import (  # PyTorch's names: tt.flip(x, (0,)) is x.flip(0)
    ceil,
    chunk,
    cos,
    cumsum,
    expm1,
    flip,
    floor,
    gather,
    index_select,
    isfinite,
    isinf,
    isnan,
    log1p,
    logsumexp,
    masked_fill,
    narrow,
    norm,
    prod,
    reciprocal,
    roll,
    round,
    rsqrt,
    sign,
    sin,
    split,
    square,
    tril,
    triu,
    trunc,
    unbind,
)
from .random import default_generator, manual_seed, resolve_generator
from .tensor import Tensor

from .primitives.shape import cat
from .dtypes import (  # PyTorch's dtype names; the values are NumPy dtypes (tensors hold NumPy arrays)
    bool_ as bool,
    double,
    float16,
    float32,
    float32 as float,
    float64,
    half,
    int8,
    int16,
    int32,
    int32 as int,
    int64,
    long,
    uint8,
)


def compile(train_step=None, **options):  # noqa: A001 (PyTorch's name: torch.compile)
    """``tinytorch_core.acceleration.compile``: record a training step once, replay it fast.
    Needs the acceleration stage (MissingStageError with the install command otherwise)."""
    return acceleration.compile(train_step, **options)


__version__ = "0.1.0"

__all__ = [
    "AnomalyError", "detect_anomaly",
    "BlockedStageError", "BrokenStageError", "Function", "GraphError", "InactiveStageError", "Milestone",
    "MissingStageError", "Module", "ModuleDict", "ModuleList", "Observer", "Parameter", "PluginLoadError", "PluginWarning",
    "RegistrationError", "Runtime", "Sample", "StageUnavailableError", "StateDictError", "Tensor",
    "abs", "allclose", "arange", "bool", "cat", "double", "float", "float16", "float32", "float64", "half", "int", "int8",
    "int16", "int32", "int64", "long", "uint8", "as_tensor", "autograd", "broadcast_to", "catalog", "data", "init", "io", "nn", "ops", "optim", "text",
    "profiler", "compression", "generation", "acceleration", "compile", "distributed", "clip", "concatenate", "default_generator",
    "default_runtime", "empty", "empty_like", "enable_grad", "exp", "eye", "from_numpy", "full", "full_like", "hookimpl", "is_grad_enabled", "log", "manual_seed",
    "linspace", "matmul", "maximum", "mean", "minimum", "no_grad", "observing", "ones", "ones_like", "rand", "rand_like",
    "randint", "randn", "randn_like", "reshape",
    "resolve_generator", "set_grad_enabled", "sqrt", "squeeze", "stack", "swapaxes", "tensor", "transpose", "unsqueeze",
    "use_runtime", "var", "where", "zeros", "zeros_like",
    "ceil", "chunk", "cos", "cumsum", "expm1", "flip", "floor", "gather", "index_select", "isfinite", "isinf", "isnan",
    "log1p", "logsumexp", "masked_fill", "narrow", "norm", "prod", "reciprocal", "roll", "round", "rsqrt", "sign",
    "sin", "split", "square", "tril", "triu", "trunc", "unbind",
]
