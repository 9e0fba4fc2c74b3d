"""Optimizers (SGD, Adam, AdamW) and gradient clipping by norm or by value (RMSprop and Adagrad
are in ``optim_adaptive.py``, the schedulers in ``schedulers.py``).

Update rules follow the published algorithms in PyTorch's conventions:

* SGD: ``g = grad + wd * p``; with momentum ``buf = mu * buf + (1 - dampening) * g``
  (``buf = g`` on the first step), then ``g = g + mu * buf`` (nesterov) or ``g = buf``;
  ``p -= lr * g``.
* Adam (Kingma & Ba, 2015): ``g = grad + wd * p`` (L2 penalty), ``m = b1 m + (1 - b1) g``,
  ``v = b2 v + (1 - b2) g^2``, ``p -= lr * m_hat / (sqrt(v_hat) + eps)`` with
  ``m_hat = m / (1 - b1^t)``, ``v_hat = v / (1 - b2^t)``.
  With ``amsgrad`` (Reddi et al., 2018) the denominator uses the running maximum of ``v``
  instead: ``v_max = max(v_max, v)``, ``v_hat = v_max / (1 - b2^t)`` (PyTorch's placement of
  the bias correction: after the maximum).
* AdamW (Loshchilov & Hutter, 2019): decoupled decay ``p -= lr * wd * p`` first, then Adam
  without the L2 term.
* ``maximize=True`` (each of them) uses ``-grad``: the update climbs the objective.

Parameters are changed only through the tensors' in-place methods under ``no_grad()``, so
their version counters move and a graph that saved a stale value refuses to backpropagate.
``step``, ``zero_grad`` and ``clip_grad_norm_`` tell the thread's observer (if any) that they
run (``_report_update``): a compiled training step (acceleration stage) replays these calls.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from tinytorch_core import Tensor, enable_grad, no_grad
from tinytorch_core.checks import true_or_false
from tinytorch_core.errstate import IGNORE_FLOATING_POINT_ERRORS, reset_errstate, set_errstate
from tinytorch_core.grad_mode import current_modes

from .optim_state import StateSpec, restore_state

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "clip_grad_norm_", "clip_grad_value_"]


def _report_update(function, *args):
    """Tell the thread's observer that ``function(*args)`` changes tensors outside the graph;
    returns the observer, to be told ``update_finished()`` when the change is done (or None)."""
    observer = current_modes().observer
    if observer is not None:
        observer.update_called(function, args)
    return observer


def _number(owner: str, name: str, value, low=0.0, high=None, high_open=False, finite=True) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or math.isnan(value):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}")
    if finite and math.isinf(value):  # lr = inf: the first step makes every weight inf
        raise ValueError(f"{owner}: {name} must be finite, got {value!r}")
    too_high = high is not None and (value >= high if high_open else value > high)
    if value < low or too_high:
        upper = "" if high is None else (f", below {high}" if high_open else f", at most {high}")
        raise ValueError(f"{owner}: {name} must be at least {low}{upper}, got {value!r}")
    return float(value)


class Optimizer:
    """Base class: parameter groups, per-parameter state, ``zero_grad``, ``step``, state dicts.

    ``params`` is an iterable of Parameters, or of dicts ``{"params": [...], "lr": ..., ...}``
    (parameter groups), each with its own hyperparameters; missing ones come from the defaults.
    """

    #: what one parameter's state may hold, checked when a state is loaded (None: arrays only)
    _state_spec = None

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        self.state: dict = {}  # Parameter -> dict of its state (tensors hash by identity)
        if isinstance(params, Tensor):
            raise TypeError(
                f"{type(self).__name__}: params must be an iterable of tensors or of parameter-group "
                "dicts, got a single Tensor; pass [tensor] or model.parameters()"
            )
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict) -> None:
        name = type(self).__name__
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{name}: a parameter group must be a dict with a 'params' entry, got {group!r}")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: can only optimize Tensors/Parameters, got {type(p).__name__}")
            if p.data.dtype.kind != "f":
                raise TypeError(f"{name}: can only optimize floating-point tensors, got dtype {p.data.dtype}")
            if id(p) in seen:
                raise ValueError(f"{name}: a parameter appears in more than one group (or twice in one)")
            seen.add(id(p))
        unknown = set(group) - set(self.defaults) - {"params", "initial_lr"}
        if unknown:
            raise ValueError(f"{name}: unknown hyperparameter(s) {sorted(unknown)} in a parameter group")
        full = dict(self.defaults)
        full.update(group)
        full["params"] = params
        self._validate_group(full)
        self.param_groups.append(full)

    def _validate_group(self, group: dict) -> None:
        _number(type(self).__name__, "lr", group["lr"])

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients (set to None, or fill with zeros when ``set_to_none=False``)."""
        if type(set_to_none) is not bool:  # "False" would read as True; the name is built only then
            set_to_none = true_or_false(set_to_none, "set_to_none", f"{type(self).__name__}.zero_grad")
        observer = _report_update(self.zero_grad, set_to_none)
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()
        if observer is not None:
            observer.update_finished()

    def step(self, closure=None):
        """One update of every parameter that has a gradient. ``closure`` (optional) recomputes
        and returns the loss, with gradients, before the update."""
        observer = _report_update(self.step, closure)
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        # IEEE arithmetic without warnings, as in every op: an inf or NaN gradient gives inf or NaN
        # parameters silently (anomaly mode finds where it came from)
        self._check_gradients()
        errstate = set_errstate(IGNORE_FLOATING_POINT_ERRORS)
        try:
            with no_grad():
                self.update()
        finally:
            reset_errstate(errstate)
        if observer is not None:
            observer.update_finished()
        return loss

    def _check_gradients(self) -> None:
        """Each ``.grad`` is a float tensor of its parameter's shape, checked before any parameter
        moves: one set by hand (``p.grad = ...``) of another shape would broadcast into the update."""
        for group in self.param_groups:
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                g = grad.data if isinstance(grad, Tensor) else None
                if g is None or g.shape != p.data.shape or g.dtype.kind != "f":
                    self._refuse_gradient(p, grad)

    def _refuse_gradient(self, p, grad):
        where = next((g, k) for g, group in enumerate(self.param_groups) for k, q in enumerate(group["params"]) if q is p)
        got = f"a {grad.data.dtype} tensor of shape {grad.data.shape}" if isinstance(grad, Tensor) else f"a {type(grad).__name__}"
        raise TypeError(f"{type(self).__name__}.step: the .grad of parameter {where[1]} of group {where[0]} is {got}; "
                        f"expected a float Tensor of shape {p.data.shape}, like the parameter")

    def update(self) -> None:
        """The update of every parameter that has a gradient, as ``step`` makes it, without
        ``step``'s setup: the caller already runs under ``no_grad`` with NumPy's floating-point
        warnings off. A compiled step's replay calls this (the same arithmetic, 2-3 us less per step)."""
        for group in self.param_groups:
            self._update_group(group)

    def _update_group(self, group: dict) -> None:
        raise NotImplementedError

    @staticmethod
    def _gradient_with_l2(p, group: dict) -> np.ndarray:
        """``p``'s gradient as an update rule reads it: negated with ``maximize`` (ascend the
        objective), plus the L2 term ``weight_decay * p`` (SGD, RMSprop, Adagrad; AdamW decays apart)."""
        g = -p.grad.data if group["maximize"] else p.grad.data
        return g + group["weight_decay"] * p.data if group["weight_decay"] else g

    # ---- state dicts --------------------------------------------------------------------------
    @staticmethod
    def _state_in_dtype_of(p, state: dict) -> dict:
        """``p``'s state in ``p``'s dtype: after ``model.to(np.float64)`` the moments follow the
        parameters (float32 moments would round every float64 step)."""
        for key, value in state.items():
            if isinstance(value, np.ndarray) and value.dtype != p.data.dtype:
                state[key] = value.astype(p.data.dtype)
        return state

    def state_dict(self) -> dict:
        """``{"state": {index: {...}}, "param_groups": [...]}``, parameters numbered across groups."""
        index = {}
        groups = []
        for group in self.param_groups:
            entry = {k: v for k, v in group.items() if k != "params"}
            entry["params"] = []
            for p in group["params"]:
                index[id(p)] = len(index)
                entry["params"].append(index[id(p)])
            groups.append(entry)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state:
                    state[index[id(p)]] = {
                        k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in self.state[p].items()
                    }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        name = type(self).__name__
        try:
            saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        except (KeyError, TypeError):
            raise ValueError(f"{name}.load_state_dict: expected a dict with 'state' and 'param_groups'") from None
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{name}.load_state_dict: the state has {len(saved_groups)} parameter group(s), "
                f"this optimizer has {len(self.param_groups)}"
            )
        params = []
        for k, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if not isinstance(saved, dict) or "params" not in saved:
                raise ValueError(f"{name}.load_state_dict: group {k} must be a dict with 'params', got {saved!r:.80}")
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"{name}.load_state_dict: group {k} has {len(saved['params'])} parameter(s) in the "
                    f"state, {len(group['params'])} here"
                )
            params.extend(zip(saved["params"], group["params"]))
        loaded_groups = []
        for k, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            unknown = set(saved) - set(group) - {"initial_lr"}  # a scheduler's mark: kept, as in PyTorch
            if "initial_lr" in saved:
                _number(f"{name}.load_state_dict", "initial_lr", saved["initial_lr"])
            if unknown:  # another optimizer's state (Adam's betas into SGD, say)
                raise ValueError(f"{name}.load_state_dict: group {k} has hyperparameter(s) {sorted(unknown)} "
                                 f"that {name} does not have")
            loaded = {**group, **{key: value for key, value in saved.items() if key != "params"}}
            self._validate_group(loaded)  # the constructor's checks: lr >= 0, two betas, ...
            loaded_groups.append(loaded)
        new_state = restore_state(name, params, saved_state, self._state_spec)
        for loaded, group in zip(loaded_groups, self.param_groups):
            group.update((key, value) for key, value in loaded.items() if key != "params")
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for k, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {k}")
            lines.extend(f"    {key}: {value}" for key, value in sorted(group.items()) if key != "params")
        return "\n".join(lines) + "\n)"


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and weight decay."""

    _state_spec = StateSpec({"momentum_buffer": False})

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, *,
                 maximize=False):  # PyTorch's order
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize))

    def _validate_group(self, group):
        super()._validate_group(group)
        _number("SGD", "momentum", group["momentum"])
        _number("SGD", "dampening", group["dampening"])
        _number("SGD", "weight_decay", group["weight_decay"])
        true_or_false(group["nesterov"], "nesterov", "SGD")  # a weight decay of 0.01 would read as True
        true_or_false(group.setdefault("maximize", False), "maximize", "SGD")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: nesterov momentum needs momentum > 0 and dampening = 0")

    def _update_group(self, group):
        lr, mu = group["lr"], group["momentum"]
        for p in group["params"]:
            if p.grad is None:
                continue
            g = self._gradient_with_l2(p, group)
            if mu:
                g = self._with_momentum(p, g, mu, group["dampening"], group["nesterov"])
            p.add_(g, alpha=-lr)

    def _with_momentum(self, p, g, mu, dampening, nesterov):
        """``buf = mu * buf + (1 - dampening) * g`` (``buf = g`` on the first step); returns the
        step direction, ``g + mu * buf`` (Nesterov) or ``buf``."""
        state = self._state_in_dtype_of(p, self.state.setdefault(p, {}))
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = np.array(g, copy=True)
        else:
            buf *= mu
            buf += (1.0 - dampening) * g
        return g + mu * buf if nesterov else buf


class Adam(Optimizer):
    """Adam with bias correction; ``weight_decay`` adds the L2 term ``wd * p`` to the gradient;
    ``amsgrad=True`` divides by the running maximum of the second moment (never a larger step
    because the gradients got smaller)."""

    _decoupled = False
    _state_spec = StateSpec({"exp_avg": False, "exp_avg_sq": True, "max_exp_avg_sq": True}, counts=("step",),
                            required=("step", "exp_avg", "exp_avg_sq"))

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, *,
                 maximize=False):
        if not isinstance(betas, (tuple, list)):
            raise TypeError(f"{type(self).__name__}: betas must be a pair (beta1, beta2), got {betas!r}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize))

    def _validate_group(self, group):
        super()._validate_group(group)
        name = type(self).__name__
        betas = group["betas"]
        if len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        group["betas"] = tuple(_number(name, f"betas[{k}]", b, 0.0, 1.0, high_open=True) for k, b in enumerate(betas))
        _number(name, "eps", group["eps"])
        _number(name, "weight_decay", group["weight_decay"])
        true_or_false(group["amsgrad"], "amsgrad", name)
        true_or_false(group.setdefault("maximize", False), "maximize", name)

    def _update_group(self, group):
        lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        for p in group["params"]:
            if p.grad is None:
                continue
            g = -p.grad.data if group["maximize"] else p.grad.data  # maximize: ascend the objective
            if wd and self._decoupled:
                p.mul_(1.0 - lr * wd)
            elif wd:
                g = g + wd * p.data
            state = self._state_of(p)
            state["step"] += 1
            t = state["step"]
            m, v = state["exp_avg"], state["exp_avg_sq"]
            m *= beta1
            m += (1.0 - beta1) * g
            v *= beta2
            v += (1.0 - beta2) * g * g
            if group["amsgrad"]:
                v = self._running_max(state, v)
            m_hat = m / (1.0 - beta1**t)
            v_hat = v / (1.0 - beta2**t)
            p.add_(m_hat / (np.sqrt(v_hat) + eps), alpha=-lr)

    def _running_max(self, state: dict, v):
        """``v_max = max(v_max, v)``, kept in the state next to the moments (zeros at first)."""
        v_max = state.get("max_exp_avg_sq")
        if v_max is None:
            v_max = state["max_exp_avg_sq"] = np.zeros_like(v)
        np.maximum(v_max, v, out=v_max)
        return v_max

    def _state_of(self, p) -> dict:
        """The step count and the two moment estimates of ``p`` (zeros before its first step)."""
        if p not in self.state:
            self.state[p] = {"step": 0, "exp_avg": np.zeros_like(p.data), "exp_avg_sq": np.zeros_like(p.data)}
        return self._state_in_dtype_of(p, self.state[p])


class AdamW(Adam):
    """Adam with decoupled weight decay: ``p -= lr * weight_decay * p`` before the Adam step."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize)


# ---- gradient clipping -----------------------------------------------------------------------
def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None) -> float:
    """Scale the gradients in place so that their joint norm is at most ``max_norm``.

    Returns the total norm before clipping (a Python float). Parameters without a gradient
    are skipped. ``norm_type`` is 2 by default; ``float('inf')`` (or ``"inf"``) uses the largest
    magnitude. A NaN or infinite norm makes the gradients NaN (or 0 and NaN), as in PyTorch;
    ``error_if_nonfinite=True`` raises instead, before any gradient changes. ``foreach`` is
    accepted for PyTorch's signature: there is one way to loop here.
    """
    parameters = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for p in parameters:
        if not isinstance(p, Tensor):
            raise TypeError(f"clip_grad_norm_: expected tensors (model.parameters()), got {type(p).__name__}")
    norm_type = math.inf if isinstance(norm_type, str) and norm_type.lower() == "inf" else norm_type
    true_or_false(error_if_nonfinite, "error_if_nonfinite", "clip_grad_norm_")
    if foreach is not None:
        true_or_false(foreach, "foreach", "clip_grad_norm_")
    observer = _report_update(clip_grad_norm_, parameters, max_norm, norm_type, error_if_nonfinite)
    total = _clip(parameters, max_norm, norm_type, error_if_nonfinite)
    if observer is not None:
        observer.update_finished()
    return total


def clip_grad_value_(parameters, clip_value) -> None:
    """Clamp every gradient into ``[-clip_value, clip_value]``, in place (a NaN stays NaN)."""
    parameters = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for p in parameters:
        if not isinstance(p, Tensor):
            raise TypeError(f"clip_grad_value_: expected tensors (model.parameters()), got {type(p).__name__}")
    clip_value = _number("clip_grad_value_", "clip_value", clip_value, finite=False)
    observer = _report_update(clip_grad_value_, parameters, clip_value)
    for p in parameters:
        if p.grad is not None:
            p.grad.copy_(np.clip(p.grad.data, -clip_value, clip_value))
    if observer is not None:
        observer.update_finished()


def _clip(parameters, max_norm, norm_type, error_if_nonfinite=False) -> float:
    max_norm = _number("clip_grad_norm_", "max_norm", max_norm, finite=False)
    norm_type = _number("clip_grad_norm_", "norm_type", norm_type, finite=False)
    if norm_type == 0:
        raise ValueError("clip_grad_norm_: norm_type must be positive (2 by default, float('inf') for the largest)")
    grads = [p.grad for p in parameters if p.grad is not None]
    magnitudes = [np.abs(g.data, dtype=np.float64) for g in grads if g.data.size]
    if not magnitudes:
        return 0.0
    largest = float(np.max([m.max() for m in magnitudes]))  # NaN if any gradient holds one
    if norm_type == math.inf or not 0 < largest < math.inf:
        total = largest
    else:  # in units of the largest entry, in float64: squares of large float32 gradients never overflow
        total = largest * sum(float(np.sum((m / largest) ** norm_type)) for m in magnitudes) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is {total}, "
                           "so it cannot be clipped (error_if_nonfinite=True); a NaN or inf gradient came first")
    coef = max_norm / (total + 1e-6)
    if not coef >= 1.0:  # NaN too (a NaN gradient): every gradient becomes NaN, as in PyTorch, not left unclipped
        errstate = set_errstate(IGNORE_FLOATING_POINT_ERRORS)  # inf * 0 is NaN, as in every op, without a warning
        try:
            for g in grads:
                g.mul_(coef)
        finally:
            reset_errstate(errstate)
    return total
