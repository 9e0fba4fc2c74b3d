"""Learning-rate schedulers: each sets every parameter group's ``lr`` as ``step()`` is called.

PyTorch's schedulers, in its chainable form: a step changes the rate a group has *now*
(``next_lr``), so a rate set by hand, or by a second scheduler on the same optimizer, is carried
on; ``lr_at`` is the same schedule in closed form, from the initial rate.
"""

from __future__ import annotations

import bisect
import math
import numbers

import numpy as np

from tinytorch_core.checks import non_negative_int, positive_int

from .optim import Optimizer, _number, _report_update

__all__ = ["CosineAnnealingLR", "ExponentialLR", "LRScheduler", "LinearWarmup", "MultiStepLR", "StepLR"]


class LRScheduler:
    """Sets every group's ``lr`` as the number of ``step()`` calls grows.

    The schedule is applied at construction (step 0, from the rate the group has then) and after
    each ``step()``; call ``scheduler.step()`` once per epoch (or per iteration), after
    ``optimizer.step()``. Each step changes the rate the group has now (``next_lr``), as
    PyTorch's schedulers do: a rate set by hand, or by a second scheduler, is carried on.
    ``lr_at`` is the same schedule in closed form, from the initial rate (used when a state
    without its last rates is loaded).
    """

    def __init__(self, optimizer: Optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = 0
        # step 0 starts from the rate each group has now, as PyTorch's: a scheduler made after
        # another (a warm-up, then a cosine) or later in training carries that rate on
        self._set([self.first_lr(group["lr"]) for group in optimizer.param_groups])

    def first_lr(self, lr: float) -> float:
        """The rate at step 0 from the group's rate ``lr`` when the scheduler is made."""
        return lr

    def joining_lr(self, lr: float, epoch: int) -> float:
        """The rate a group added to the optimizer after ``epoch`` steps starts from: the rate it
        was given (PyTorch's: the next step schedules it from there)."""
        return lr

    def lr_at(self, base_lr: float, epoch: int) -> float:
        raise NotImplementedError

    def next_lr(self, lr: float, base_lr: float, epoch: int) -> float:
        """The rate at ``epoch`` from the rate ``lr`` the group had at ``epoch - 1``."""
        raise NotImplementedError

    def _apply(self) -> None:
        self._set([self.lr_at(base, self.last_epoch) for base in self.base_lrs])

    def _set(self, rates: list) -> None:
        for rate in rates:  # gamma=1e300 would reach inf, then every weight -inf, then NaN
            if not math.isfinite(rate):
                raise ValueError(f"{type(self).__name__}: the schedule reached the learning rate {rate}; a rate must "
                                 f"be finite (check gamma, eta_min and the optimizer's lr)")
        self._last_lr = rates
        for group, lr in zip(self.optimizer.param_groups, rates):
            group["lr"] = lr

    #: the constructor's settings a state dict carries (``step_size``, ``gamma``...), with their checks
    _settings: dict = {}

    def step(self) -> None:
        observer = _report_update(self.step)  # a compiled training step replays this call, as an optimizer's step
        self.last_epoch += 1
        groups = self.optimizer.param_groups
        for group in groups[len(self.base_lrs):]:  # added since (add_param_group): scheduled from its rate now
            self.base_lrs.append(group.setdefault("initial_lr", group["lr"]))
            group["lr"] = self.joining_lr(group["lr"], self.last_epoch - 1)
        self._set([self.next_lr(group["lr"], base, self.last_epoch) for group, base in zip(groups, self.base_lrs)])
        if observer is not None:
            observer.update_finished()

    def get_last_lr(self) -> list[float]:
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """The step count, the rates and the settings (PyTorch's keys): a scheduler made with other
        settings takes the saved ones on loading."""
        settings = {name: getattr(self, name) for name in self._settings}
        return {"last_epoch": self.last_epoch, "base_lrs": list(self.base_lrs), "last_lr": list(self._last_lr),
                **settings}

    def load_state_dict(self, state: dict) -> None:
        if not isinstance(state, dict) or not {"base_lrs", "last_epoch"} <= set(state):
            raise ValueError(f"{type(self).__name__}.load_state_dict: expected a dict with 'base_lrs' and "
                             f"'last_epoch' (a scheduler's state_dict()), got {state!r:.80}")
        name = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state["base_lrs"], (list, tuple)):
            raise ValueError(f"{name}: base_lrs must be a list of rates, got {state['base_lrs']!r:.80}")
        base_lrs = list(state["base_lrs"])
        if len(base_lrs) != len(self.optimizer.param_groups):
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: the state has {len(base_lrs)} base rate(s), "
                f"the optimizer has {len(self.optimizer.param_groups)} parameter group(s)"
            )
        base_lrs = [_number(name, f"base_lrs[{k}]", lr) for k, lr in enumerate(base_lrs)]  # before any is set
        epoch = state["last_epoch"]
        if not isinstance(epoch, numbers.Integral) or isinstance(epoch, (bool, np.bool_)) or not 0 <= epoch < 2**53:
            raise ValueError(f"{name}: last_epoch must be an int >= 0, got {epoch!r}")
        last_lr = state.get("last_lr")  # the chained rates; a state without them gets the closed form
        if last_lr is not None:
            if not isinstance(last_lr, (list, tuple)) or len(last_lr) != len(base_lrs):
                raise ValueError(f"{name}: last_lr must be a list of {len(base_lrs)} rate(s), got {last_lr!r:.80}")
            last_lr = [_number(name, f"last_lr[{k}]", lr) for k, lr in enumerate(last_lr)]
        settings = {key: check(state[key]) for key, check in self._settings.items() if key in state}
        self.last_epoch, self.base_lrs = int(epoch), base_lrs
        for key, value in settings.items():
            setattr(self, key, value)
        if last_lr is None:
            self._apply()
        else:
            self._set(last_lr)


class StepLR(LRScheduler):
    """``lr = base_lr * gamma ** (epoch // step_size)``."""

    _settings = {"step_size": lambda value: positive_int(value, "step_size", "StepLR"),
                 "gamma": lambda value: _number("StepLR", "gamma", value)}

    def __init__(self, optimizer, step_size, gamma=0.1):
        self.step_size, self.gamma = self._settings["step_size"](step_size), self._settings["gamma"](gamma)
        super().__init__(optimizer)

    def lr_at(self, base_lr, epoch):
        return base_lr * self.gamma ** (epoch // self.step_size)

    def next_lr(self, lr, base_lr, epoch):
        return lr * self.gamma if epoch % self.step_size == 0 else lr


def _milestones(value) -> tuple:
    """The epochs of ``MultiStepLR``'s drops as a sorted tuple of ints >= 0 (an epoch listed twice
    stays twice: it drops the rate twice, as in PyTorch). A tuple: the state dict can hand it out."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(f"MultiStepLR: milestones must be a list of epochs (ints >= 0), got {value!r:.80}")
    epochs = [non_negative_int(epoch, f"milestones[{k}]", "MultiStepLR") for k, epoch in enumerate(value)]
    return tuple(sorted(epochs))


class MultiStepLR(LRScheduler):
    """``lr = base_lr * gamma ** (number of milestones <= epoch)``: the rate drops by the factor
    ``gamma`` at each milestone epoch (``MultiStepLR(opt, [30, 80])``: at epochs 30 and 80)."""

    _settings = {"milestones": _milestones, "gamma": lambda value: _number("MultiStepLR", "gamma", value)}

    def __init__(self, optimizer, milestones, gamma=0.1):
        self.milestones, self.gamma = self._settings["milestones"](milestones), self._settings["gamma"](gamma)
        super().__init__(optimizer)

    def lr_at(self, base_lr, epoch):
        return base_lr * self.gamma ** bisect.bisect_right(self.milestones, epoch)

    def first_lr(self, lr):
        """A milestone at epoch 0 drops the rate at once (PyTorch's)."""
        return self.next_lr(lr, lr, 0)

    def next_lr(self, lr, base_lr, epoch):
        drops = self.milestones.count(epoch)  # a milestone listed twice drops the rate twice
        return lr * self.gamma**drops if drops else lr


class ExponentialLR(LRScheduler):
    """``lr = base_lr * gamma ** epoch``: the rate is multiplied by ``gamma`` at every step."""

    _settings = {"gamma": lambda value: _number("ExponentialLR", "gamma", value)}

    def __init__(self, optimizer, gamma):
        self.gamma = self._settings["gamma"](gamma)
        super().__init__(optimizer)

    def lr_at(self, base_lr, epoch):
        return base_lr * self.gamma**epoch

    def next_lr(self, lr, base_lr, epoch):
        return lr * self.gamma


class CosineAnnealingLR(LRScheduler):
    """``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2`` (SGDR without restarts)."""

    _settings = {"T_max": lambda value: positive_int(value, "T_max", "CosineAnnealingLR"),
                 "eta_min": lambda value: _number("CosineAnnealingLR", "eta_min", value)}

    def __init__(self, optimizer, T_max, eta_min=0.0):  # noqa: N803 - the name used in the literature
        self.T_max, self.eta_min = self._settings["T_max"](T_max), self._settings["eta_min"](eta_min)
        super().__init__(optimizer)

    def lr_at(self, base_lr, epoch):
        return self.eta_min + (base_lr - self.eta_min) * (1.0 + math.cos(math.pi * epoch / self.T_max)) / 2.0

    def next_lr(self, lr, base_lr, epoch):
        """The distance to ``eta_min`` scaled by the ratio of two cosine steps; from the bottom of
        a period (where that ratio is 0/0), one step back up (PyTorch's recurrence)."""
        eta_min, period = self.eta_min, self.T_max
        if (epoch - 1 - period) % (2 * period) == 0:
            return lr + (base_lr - eta_min) * (1.0 - math.cos(math.pi / period)) / 2.0
        ratio = (1.0 + math.cos(math.pi * epoch / period)) / (1.0 + math.cos(math.pi * (epoch - 1) / period))
        return eta_min + (lr - eta_min) * ratio


class LinearWarmup(LRScheduler):
    """``lr = base_lr * min(1, (epoch + 1) / warmup_steps)``: base/warmup_steps for the first
    step, growing linearly to the full rate after ``warmup_steps - 1`` scheduler steps."""

    _settings = {"warmup_steps": lambda value: positive_int(value, "warmup_steps", "LinearWarmup")}

    def __init__(self, optimizer, warmup_steps):
        self.warmup_steps = self._settings["warmup_steps"](warmup_steps)
        super().__init__(optimizer)

    def lr_at(self, base_lr, epoch):
        return base_lr * min(1.0, (epoch + 1) / self.warmup_steps)

    def first_lr(self, lr):
        return lr / self.warmup_steps

    def joining_lr(self, lr, epoch):
        """Its place in the warm-up, so that it reaches its rate with the others (PyTorch's LinearLR
        carries its factor on and ends such a group above the rate it was given)."""
        return self.lr_at(lr, epoch)

    def next_lr(self, lr, base_lr, epoch):
        return lr * (epoch + 1) / epoch if epoch < self.warmup_steps else lr
