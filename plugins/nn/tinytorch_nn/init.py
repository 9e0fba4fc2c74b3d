"""Weight initialisers. Each fills a tensor in place (through ``copy_``/``fill_``, so the
version counter moves) and returns it; the random ones take ``generator=`` (a
``numpy.random.Generator`` or an int seed; None uses the default generator).

Fans follow PyTorch: a weight of shape (out, in, *kernel) has ``fan_in = in * prod(kernel)``
and ``fan_out = out * prod(kernel)``.
"""

from __future__ import annotations

import math

from tinytorch_core import Tensor, no_grad, resolve_generator

__all__ = [
    "calculate_gain", "fan_in_and_fan_out", "kaiming_normal_", "kaiming_uniform_", "ones_",
    "uniform_", "xavier_normal_", "xavier_uniform_", "zeros_",
]


def _require_tensor(name: str, tensor) -> None:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name}: expected a Tensor (or Parameter) to fill, got {type(tensor).__name__}")
    if tensor.data.dtype.kind != "f":
        raise TypeError(f"{name}: can only fill floating-point tensors, this one holds {tensor.data.dtype}")


def fan_in_and_fan_out(tensor) -> tuple[int, int]:
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError(
            f"fan in and fan out need a tensor with at least 2 dimensions (out, in, ...), got shape {shape}"
        )
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity: str = "leaky_relu", param=None) -> float:
    """The gain recommended for ``nonlinearity`` (as in PyTorch)."""
    if nonlinearity in ("linear", "identity", "sigmoid") or nonlinearity.startswith("conv"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + slope * slope))
    if nonlinearity == "selu":
        return 3.0 / 4.0
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}")


def _fill(tensor, values) -> Tensor:
    with no_grad():
        tensor.copy_(values.astype(tensor.data.dtype, copy=False))
    return tensor


def _fan(name, tensor, mode):
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    raise ValueError(f"{name}: mode must be 'fan_in' or 'fan_out', got {mode!r}")


def xavier_uniform_(tensor, gain: float = 1.0, generator=None) -> Tensor:
    """U(-a, a) with ``a = gain * sqrt(6 / (fan_in + fan_out))`` (Glorot & Bengio, 2010)."""
    _require_tensor("xavier_uniform_", tensor)
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / max(fan_in + fan_out, 1))
    return _fill(tensor, resolve_generator(generator).uniform(-bound, bound, tensor.shape))


def xavier_normal_(tensor, gain: float = 1.0, generator=None) -> Tensor:
    """N(0, std^2) with ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    _require_tensor("xavier_normal_", tensor)
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / max(fan_in + fan_out, 1))
    return _fill(tensor, resolve_generator(generator).normal(0.0, std, tensor.shape))


def kaiming_uniform_(tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator=None) -> Tensor:
    """U(-b, b) with ``b = gain * sqrt(3 / fan)`` (He et al., 2015); ``a`` is the leaky-ReLU slope."""
    _require_tensor("kaiming_uniform_", tensor)
    fan = _fan("kaiming_uniform_", tensor, mode)
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan) if fan else 0.0
    return _fill(tensor, resolve_generator(generator).uniform(-bound, bound, tensor.shape))


def kaiming_normal_(tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator=None) -> Tensor:
    """N(0, std^2) with ``std = gain / sqrt(fan)``."""
    _require_tensor("kaiming_normal_", tensor)
    fan = _fan("kaiming_normal_", tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan) if fan else 0.0
    return _fill(tensor, resolve_generator(generator).normal(0.0, std, tensor.shape))


def zeros_(tensor, generator=None) -> Tensor:
    """Fill with 0 (``generator`` is accepted, and unused, so every initialiser has the same signature)."""
    _require_tensor("zeros_", tensor)
    with no_grad():
        tensor.zero_()
    return tensor


def ones_(tensor, generator=None) -> Tensor:
    """Fill with 1 (``generator`` accepted and unused, like ``zeros_``)."""
    _require_tensor("ones_", tensor)
    with no_grad():
        tensor.fill_(1.0)
    return tensor


def uniform_(tensor, low: float = 0.0, high: float = 1.0, generator=None) -> Tensor:
    """U(low, high); what ``Linear`` uses for its bias."""
    _require_tensor("uniform_", tensor)
    return _fill(tensor, resolve_generator(generator).uniform(low, high, tensor.shape))

