"""Optimizers with a per-entry step size: RMSprop and Adagrad (SGD, Adam and AdamW are in
``optim.py``, the ``Optimizer`` base with them).

Each divides the gradient by a running measure of its own size, entry by entry: an entry whose
gradients have been large takes small steps, one whose gradients have been small takes larger
ones. Update rules in PyTorch's conventions (``g`` is ``-grad`` with ``maximize=True``):

* RMSprop (Hinton, Coursera lecture 6e, 2012): ``g = grad + wd * p`` (L2 penalty),
  ``square_avg = alpha * square_avg + (1 - alpha) * g^2``, ``denom = sqrt(square_avg) + eps``.
  ``centered=True`` subtracts the square of the running mean of ``g`` first (an estimate of the
  variance): ``grad_avg = grad_avg + (1 - alpha) * (g - grad_avg)``,
  ``denom = sqrt(square_avg - grad_avg^2) + eps``. Then ``p -= lr * g / denom``, or with
  ``momentum``: ``buf = momentum * buf + g / denom``, ``p -= lr * buf``.
* Adagrad (Duchi, Hazan & Singer, 2011): ``g = grad + wd * p``, ``sum = sum + g^2`` (``sum``
  starts at ``initial_accumulator_value``), ``clr = lr / (1 + (t - 1) * lr_decay)`` at step ``t``,
  ``p -= clr * g / (sqrt(sum) + eps)``. The sum only grows: the steps only shrink.

As in ``optim.py``, parameters change only through ``p.add_`` (their version counters move), and
the state follows the parameter's dtype (``_state_in_dtype_of``).
"""

from __future__ import annotations

import numpy as np

from tinytorch_core.checks import true_or_false

from .optim import Optimizer, _number
from .optim_state import StateSpec

__all__ = ["Adagrad", "RMSprop"]


def _zeros_named(state: dict, key: str, like) -> np.ndarray:
    """``state[key]``, made as zeros shaped like ``like`` the first time it is needed (a momentum
    or a centering turned on in a group after the first steps starts from zero too)."""
    array = state.get(key)
    if array is None:
        array = state[key] = np.zeros_like(like)
    return array


class RMSprop(Optimizer):
    """RMSprop: each entry's step is the gradient divided by the root of a running mean of its
    squares; ``centered=True`` divides by a running standard deviation instead; ``momentum``
    keeps a velocity of those normalised steps."""

    _state_spec = StateSpec({"square_avg": True, "momentum_buffer": False, "grad_avg": False}, counts=("step",),
                            required=("step", "square_avg"))

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False, *,
                 maximize=False):  # PyTorch's order; maximize is keyword-only (PyTorch has other flags before it)
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=centered, maximize=maximize))

    def _validate_group(self, group):
        super()._validate_group(group)
        name = type(self).__name__
        _number(name, "alpha", group["alpha"], 0.0, 1.0)  # above 1, the mean of squares would turn negative
        _number(name, "eps", group["eps"])
        _number(name, "weight_decay", group["weight_decay"])
        _number(name, "momentum", group["momentum"])
        true_or_false(group["centered"], "centered", name)  # a momentum of 0.9 would read as True
        true_or_false(group["maximize"], "maximize", name)

    def _update_group(self, group):
        lr, alpha, eps, mu = group["lr"], group["alpha"], group["eps"], group["momentum"]
        for p in group["params"]:
            if p.grad is None:
                continue
            g = self._gradient_with_l2(p, group)
            state = self._state_of(p)
            state["step"] += 1
            denom = self._root_mean_square(state, g, alpha, group["centered"]) + eps
            if mu:
                buf = _zeros_named(state, "momentum_buffer", p.data)
                buf *= mu
                buf += g / denom
                p.add_(buf, alpha=-lr)
            else:
                p.add_(g / denom, alpha=-lr)

    @staticmethod
    def _root_mean_square(state: dict, g, alpha: float, centered: bool):
        """Update the running mean of ``g^2`` (and, centered, of ``g``); return its root (the
        root of the running variance when centered)."""
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1.0 - alpha) * g * g
        if not centered:
            return np.sqrt(square_avg)
        grad_avg = _zeros_named(state, "grad_avg", square_avg)
        grad_avg += (1.0 - alpha) * (g - grad_avg)  # a fraction 1 - alpha of the way to g
        return np.sqrt(square_avg - grad_avg * grad_avg)

    def _state_of(self, p) -> dict:
        """The step count and the running mean of squares of ``p`` (zeros before its first step)."""
        if p not in self.state:
            self.state[p] = {"step": 0, "square_avg": np.zeros_like(p.data)}
        return self._state_in_dtype_of(p, self.state[p])


class Adagrad(Optimizer):
    """Adagrad: each entry's step is the gradient divided by the root of the sum of all its squared
    gradients so far; ``lr_decay`` shrinks the rate as ``lr / (1 + (t - 1) * lr_decay)``.

    Two differences from PyTorch: a parameter group may set its own ``initial_accumulator_value``
    (PyTorch fills every group from the constructor's), and the state of a parameter is made at its
    first step (PyTorch makes it in the constructor), so ``state_dict()`` before any step is empty."""

    _state_spec = StateSpec({"sum": True}, counts=("step",), required=("step", "sum"))

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10, *,
                 maximize=False):  # PyTorch's order
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps, maximize=maximize))

    def _validate_group(self, group):
        super()._validate_group(group)
        name = type(self).__name__
        _number(name, "lr_decay", group["lr_decay"])
        _number(name, "weight_decay", group["weight_decay"])
        _number(name, "initial_accumulator_value", group["initial_accumulator_value"])
        _number(name, "eps", group["eps"])
        true_or_false(group["maximize"], "maximize", name)
        for p in group["params"]:  # 1e300 is inf in float32: an infinite sum would freeze the parameter
            with np.errstate(over="ignore"):
                start = np.asarray(group["initial_accumulator_value"], dtype=p.data.dtype)
            if not np.isfinite(start):
                raise ValueError(f"{name}: initial_accumulator_value {group['initial_accumulator_value']!r} does not "
                                 f"fit a {p.data.dtype} parameter (it would be inf, and the parameter would never move)")

    def _update_group(self, group):
        lr, lr_decay, eps = group["lr"], group["lr_decay"], group["eps"]
        for p in group["params"]:
            if p.grad is None:
                continue
            g = self._gradient_with_l2(p, group)
            state = self._state_of(p, group["initial_accumulator_value"])
            state["step"] += 1
            decayed_lr = lr / (1.0 + (state["step"] - 1) * lr_decay)
            sum_of_squares = state["sum"]
            sum_of_squares += g * g
            p.add_(g / (np.sqrt(sum_of_squares) + eps), alpha=-decayed_lr)

    def _state_of(self, p, initial_accumulator_value: float) -> dict:
        """The step count and the sum of squared gradients of ``p``; the sum starts at the group's
        ``initial_accumulator_value`` (PyTorch fills it from the constructor's, whatever the group says)."""
        if p not in self.state:
            self.state[p] = {"step": 0, "sum": np.full_like(p.data, initial_accumulator_value)}
        return self._state_in_dtype_of(p, self.state[p])
