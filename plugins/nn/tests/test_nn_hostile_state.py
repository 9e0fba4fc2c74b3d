"""Gradient clipping of huge float32 gradients, a failed delattr, and optimizer states from
elsewhere: each used to give a silently wrong model."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Parameter, Tensor


@pytest.mark.parametrize("norm_type, expected_total", [(2.0, 5e20), (1.0, 7e20), (math.inf, 4e20)])
def test_clipping_huge_float32_gradients_scales_them_instead_of_zeroing_them(norm_type, expected_total):
    p = Parameter(np.zeros(2, np.float32))
    p.grad = Tensor(np.array([3e20, 4e20], np.float32))  # their float32 squares overflow
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        total = tt.optim.clip_grad_norm_([p], 1.0, norm_type=norm_type)
    assert total == pytest.approx(expected_total, rel=1e-6)
    np.testing.assert_allclose(p.grad.data, np.array([3.0, 4.0]) / (expected_total / 1e20), rtol=1e-5)


def test_clipping_an_infinite_gradient_warns_nothing_and_bad_norm_types_are_refused():
    p = Parameter(np.zeros(2, np.float32))
    p.grad = Tensor(np.array([np.inf, 4.0], np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tt.optim.clip_grad_norm_([p], 1.0) == math.inf
    for bad in (0, -1.0):
        with pytest.raises(ValueError, match="clip_grad_norm_: norm_type must be"):
            tt.optim.clip_grad_norm_([p], 1.0, norm_type=bad)
    for bad in ("fro", float("nan")):
        with pytest.raises(TypeError, match="clip_grad_norm_: norm_type must be a number"):
            tt.optim.clip_grad_norm_([p], 1.0, norm_type=bad)


def test_a_failed_delattr_leaves_the_module_as_it_was():
    model = tt.nn.Sequential(tt.nn.Linear(2, 2), tt.nn.ReLU(), tt.nn.Linear(2, 3))
    keys = list(model.state_dict())
    with pytest.raises(AttributeError):
        delattr(model, "2")  # a child of Sequential, not an instance attribute
    assert list(model.state_dict()) == keys and len(list(model.parameters())) == 4


def _stepped(optimizer_class, **options):
    p = Parameter(np.ones(3))
    optimizer = optimizer_class([p], **options)
    p.grad = Tensor(np.ones(3))
    optimizer.step()
    return p, optimizer


def test_an_optimizer_state_is_checked_as_the_constructor_checks_it():
    p, adam = _stepped(tt.optim.Adam)
    state = adam.state_dict()
    state["param_groups"][0]["lr"] = -5
    with pytest.raises(ValueError, match="lr must be at least 0"):
        tt.optim.Adam([p]).load_state_dict(state)
    state["param_groups"][0].update(lr=0.1, betas=[0.9])
    with pytest.raises(ValueError, match="betas must be a pair"):
        tt.optim.Adam([p]).load_state_dict(state)
    state["param_groups"][0]["betas"] = (0.9, 0.999)
    with pytest.raises(ValueError, match=r"SGD.load_state_dict: group 0 has hyperparameter\(s\) \['amsgrad', 'betas', 'eps'\]"):
        tt.optim.SGD([p], lr=0.1).load_state_dict(state)
    fresh = tt.optim.Adam([p])
    fresh.load_state_dict(state)  # a valid state still loads
    assert fresh.param_groups[0]["lr"] == 0.1


@pytest.mark.parametrize("call, error, message", [
    (lambda: tt.nn.LeakyReLU("a"), TypeError, "LeakyReLU: negative_slope must be a number"),
    (lambda: tt.nn.ModuleList([tt.nn.ReLU()])[5], IndexError, "ModuleList index 5 is out of range"),
    (lambda: tt.nn.ModuleList(5), TypeError, "ModuleList takes an iterable of Modules"),
    (lambda: tt.optim.Adam([Parameter(np.ones(2))], betas=0.9), TypeError, "Adam: betas must be a pair"),
    (lambda: tt.optim.clip_grad_norm_([None], 1.0), TypeError, "clip_grad_norm_: expected tensors"),
    (lambda: tt.nn.Linear(2, 2).load_state_dict(None), tt.StateDictError, "expected a dict of arrays"),
    (lambda: tt.optim.StepLR(tt.optim.SGD([Parameter(np.ones(2))], lr=0.1), 1).load_state_dict({}), ValueError,
     "StepLR.load_state_dict: expected a dict with 'base_lrs'"),
    (lambda: tt.optim.SGD([Parameter(np.ones(2))], lr=0.1).load_state_dict({"state": {}, "param_groups": [5]}),
     ValueError, "group 0 must be a dict with 'params'"),
    (lambda: tt.nn.CrossEntropyLoss(label_smoothing=2), ValueError, "CrossEntropyLoss: label_smoothing must be in"),
])
def test_bad_layer_and_optimizer_arguments_are_refused_where_they_are_given(call, error, message):
    """Each used to fail with a Python or NumPy internal error, or only at the first forward."""
    with pytest.raises(error, match=message):
        call()


def test_a_layer_replaced_by_name_is_the_one_that_runs_and_keeps_its_place():
    model = tt.nn.Sequential(tt.nn.Linear(2, 2, generator=0), tt.nn.ReLU(), tt.nn.Linear(2, 3, generator=1))
    replacement = tt.nn.Linear(2, 2, generator=5)
    setattr(model, "0", replacement)  # forward used to run the old layer while state_dict() listed the new
    x = Tensor(np.ones((1, 2), np.float32))
    assert model[0] is replacement and list(model.parameters())[0] is replacement.weight
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    expected = model[2](model[1](replacement(x)))
    np.testing.assert_array_equal(model(x).data, expected.data)


@pytest.mark.parametrize("call, error, message", [
    (lambda: Tensor(np.ones(3)).var(ddof=True), TypeError, "var: ddof must be an int >= 0"),
    (lambda: tt.nn.Dropout(True), ValueError, "Dropout: p must be a probability"),
    (lambda: tt.ops.dropout(Tensor(np.ones(3)), 0.5, training="no"), TypeError, "dropout: training must be True or False"),
    (lambda: tt.ops.cross_entropy(Tensor(np.ones((2, 3))), np.array([0, 1]), label_smoothing=True), ValueError,
     "label_smoothing must be in"),
])
def test_a_bool_is_not_taken_for_a_number_or_a_string_for_a_bool(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("make", [lambda ps: tt.optim.Adam(ps, lr=0.1), lambda ps: tt.optim.AdamW(ps, lr=0.1),
                                  lambda ps: tt.optim.Adam(ps, lr=0.1, amsgrad=True),
                                  lambda ps: tt.optim.SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: tt.optim.RMSprop(ps, lr=0.1, momentum=0.9, centered=True),
                                  lambda ps: tt.optim.Adagrad(ps, lr=0.1, initial_accumulator_value=0.1)])
def test_optimizer_state_follows_the_model_to_float64(make):
    """After ``model.to(np.float64)`` the moments stayed float32 and rounded every float64 step."""
    model = tt.nn.Linear(3, 2)
    optimizer = make(model.parameters())

    def step(dtype):
        optimizer.zero_grad()
        model(Tensor(np.ones((4, 3)), dtype=dtype)).sum().backward()
        optimizer.step()

    step(np.float32)
    model.to(np.float64)
    step(np.float64)
    for p in model.parameters():
        assert p.data.dtype == np.float64
        kept = {key: value.dtype for key, value in optimizer.state[p].items() if isinstance(value, np.ndarray)}
        assert kept and set(kept.values()) == {np.dtype(np.float64)}, kept


def _adam_state():
    import copy

    model = tt.nn.Linear(3, 2)
    optimizer = tt.optim.Adam(model.parameters(), lr=0.1)
    model(Tensor(np.ones((4, 3)))).sum().backward()
    optimizer.step()
    return model, copy.deepcopy(optimizer.state_dict())


@pytest.mark.parametrize("damage, message", [
    (lambda sd: sd["state"][0].__setitem__("step", float("nan")), "'step' must be an int >= 0"),
    (lambda sd: sd["state"][0].__setitem__("step", True), "'step' must be an int >= 0"),
    (lambda sd: sd["state"][0].__setitem__("step", -5), "'step' must be an int >= 0"),
    (lambda sd: sd["state"][0].__setitem__("exp_avg_sq", -np.ones((2, 3), np.float32)), "finite numbers and >= 0"),
    (lambda sd: sd["state"][0].__setitem__("exp_avg", np.full((2, 3), np.nan, np.float32)), "finite numbers"),
    (lambda sd: sd["state"][0].__setitem__("exp_avg", [[0.0] * 3] * 2), "must be an array of numbers"),
    (lambda sd: sd["state"][0].pop("exp_avg_sq"), r"lacks \['exp_avg_sq'\]"),
    (lambda sd: sd["state"][0].__setitem__("momentum_buffer", np.zeros((2, 3))), "does not keep"),
    (lambda sd: sd["state"].__setitem__("0", sd["state"].pop(0)), "that no group lists"),
    (lambda sd: sd["param_groups"][0].__setitem__("params", [0, 5]), "that no group lists"),
])
def test_a_loaded_optimizer_state_is_checked_per_parameter(damage, message):
    """Each was accepted, and the next step() wrote NaN weights, or the momentum was silently
    reset, or a bare KeyError came at the next step()."""
    model, state = _adam_state()
    damage(state)
    with pytest.raises(ValueError, match=f"Adam.load_state_dict: .*{message}"):
        tt.optim.Adam(model.parameters(), lr=0.1).load_state_dict(state)


def test_infinite_hyperparameters_and_scheduler_states_are_refused():
    model = tt.nn.Linear(3, 2)
    for make in (lambda: tt.optim.Adam(model.parameters(), lr=float("inf")),
                 lambda: tt.optim.Adam(model.parameters(), eps=float("inf")),
                 lambda: tt.optim.SGD(model.parameters(), lr=float("inf"))):
        with pytest.raises(ValueError, match="must be finite"):
            make()
    optimizer = tt.optim.SGD(model.parameters(), lr=0.1)
    scheduler = tt.optim.StepLR(optimizer, step_size=2)
    for state, error, message in [({"base_lrs": [float("nan")], "last_epoch": 0}, TypeError, "must be a number"),
                                  ({"base_lrs": [-5.0], "last_epoch": 0}, ValueError, "must be at least 0"),
                                  ({"base_lrs": [0.1], "last_epoch": -10**6}, ValueError, "last_epoch must be an int"),
                                  ({"base_lrs": None, "last_epoch": 0}, ValueError, "base_lrs must be a list"),
                                  ({"base_lrs": -1, "last_epoch": 0}, ValueError, "base_lrs must be a list"),
                                  ({"base_lrs": [0.1], "last_epoch": 1, "last_lr": 0.5}, ValueError,
                                   "last_lr must be a list of 1 rate")]:
        with pytest.raises(error, match=f"StepLR.load_state_dict: .*{message}"):
            scheduler.load_state_dict(state)
        assert (optimizer.param_groups[0]["lr"], scheduler.last_epoch) == (0.1, 0)  # left as it was
