"""RMSprop and Adagrad against their update rules written out in plain NumPy (every option),
by hand for the first steps, through state dicts and parameter groups; and the ExponentialLR and
MultiStepLR schedules against hand-computed rates, chained with other schedulers."""

import itertools
import math
import re

import numpy as np
import pytest

from tinytorch_core import Parameter, Tensor
from tinytorch_nn import (
    SGD,
    Adagrad,
    Adam,
    CosineAnnealingLR,
    ExponentialLR,
    LinearWarmup,
    MultiStepLR,
    RMSprop,
    StepLR,
)

STEPS = 6


def _grads(seed=0, shape=(2, 3), steps=STEPS):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for _ in range(steps)]


def _start(seed=1, shape=(2, 3)):
    return np.random.default_rng(seed).standard_normal(shape)


def _run(optimizer, p, grads):
    """One step per gradient; the parameter's values after each step."""
    history = []
    for g in grads:
        p.grad = Tensor(np.array(g, dtype=np.float64), dtype=np.float64)
        optimizer.step()
        history.append(p.data.copy())
    return history


# ---- the update rules, written out -------------------------------------------------------------------
def _rmsprop_by_numpy(p, grads, lr, alpha, eps, weight_decay, momentum, centered, maximize):
    """PyTorch's documented RMSprop loop: the square average, the centred variance, the momentum
    of the normalised steps."""
    square_avg, grad_avg, buf, history = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p), []
    for g in grads:
        g = -g if maximize else g
        g = g + weight_decay * p
        square_avg = alpha * square_avg + (1 - alpha) * g**2
        if centered:
            grad_avg = alpha * grad_avg + (1 - alpha) * g
            denom = np.sqrt(square_avg - grad_avg**2) + eps
        else:
            denom = np.sqrt(square_avg) + eps
        if momentum > 0:
            buf = momentum * buf + g / denom
            p = p - lr * buf
        else:
            p = p - lr * g / denom
        history.append(p)
    return history


def _adagrad_by_numpy(p, grads, lr, lr_decay, weight_decay, initial_accumulator_value, eps, maximize):
    """PyTorch's documented Adagrad loop: a sum of squares that only grows, a decaying rate."""
    total, history = np.full_like(p, initial_accumulator_value), []
    for t, g in enumerate(grads, start=1):
        g = -g if maximize else g
        g = g + weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)
        total = total + g**2
        p = p - clr * g / (np.sqrt(total) + eps)
        history.append(p)
    return history


RMSPROP_OPTIONS = [dict(momentum=m, centered=c, weight_decay=wd, maximize=mx)
                   for m, c, wd, mx in itertools.product([0.0, 0.9], [False, True], [0.0, 0.1], [False, True])]
ADAGRAD_OPTIONS = [dict(lr_decay=d, weight_decay=wd, initial_accumulator_value=v, maximize=mx)
                   for d, wd, v, mx in itertools.product([0.0, 0.1], [0.0, 0.1], [0.0, 0.5], [False, True])]


def _name(options):
    return "-".join(f"{k}={v}" for k, v in options.items())


@pytest.mark.parametrize("options", RMSPROP_OPTIONS, ids=_name)
def test_rmsprop_matches_the_numpy_loop(options):
    settings = dict(lr=0.01, alpha=0.9, eps=1e-6, **options)
    p = Parameter(_start(), dtype=np.float64)
    history = _run(RMSprop([p], **settings), p, _grads())
    np.testing.assert_allclose(history, _rmsprop_by_numpy(_start(), _grads(), **settings), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("options", ADAGRAD_OPTIONS, ids=_name)
def test_adagrad_matches_the_numpy_loop(options):
    settings = dict(lr=0.1, eps=1e-10, **options)
    p = Parameter(_start(), dtype=np.float64)
    history = _run(Adagrad([p], **settings), p, _grads())
    np.testing.assert_allclose(history, _adagrad_by_numpy(_start(), _grads(), **settings), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("make, option", [
    *[(lambda ps, o=o: RMSprop(ps, lr=0.01, **o), o) for o in RMSPROP_OPTIONS[1:]],
    *[(lambda ps, o=o: Adagrad(ps, lr=0.1, **o), o) for o in ADAGRAD_OPTIONS[1:]],
], ids=lambda value: _name(value) if isinstance(value, dict) else None)
def test_every_option_changes_the_steps(make, option):
    """The comparisons above are not vacuous: each option moves the parameters elsewhere than
    the plain update (the first entry of each list, every option off) does."""
    plain_make = RMSprop if "centered" in option else Adagrad
    p, q = Parameter(_start(), dtype=np.float64), Parameter(_start(), dtype=np.float64)
    plain = _run(plain_make([p], lr=0.01 if plain_make is RMSprop else 0.1), p, _grads())
    changed = _run(make([q]), q, _grads())
    assert np.abs(plain[-1] - changed[-1]).max() > 1e-4


def test_rmsprop_first_steps_by_hand():
    # step 1: sq = 0.01 * 0.25 = 0.0025, denom = 0.05 + eps -> p = 1 - 0.01 * 0.5 / 0.05 = 0.9
    # step 2: sq = 0.99 * 0.0025 + 0.01 * 0.0625 = 0.003100, denom = sqrt(0.0031) + eps
    p = Parameter(np.array([1.0]), dtype=np.float64)
    history = _run(RMSprop([p]), p, [[0.5], [-0.25]])
    p1 = 1.0 - 0.01 * 0.5 / (0.05 + 1e-8)
    p2 = p1 + 0.01 * 0.25 / (math.sqrt(0.99 * 0.0025 + 0.01 * 0.0625) + 1e-8)
    np.testing.assert_allclose(np.ravel(history), [p1, p2], rtol=1e-15)
    assert abs(p1 - 0.9) < 1e-6  # the first step is lr / sqrt(1 - alpha) = 10 lr, whatever the gradient's size


def test_centered_rmsprop_first_step_by_hand():
    # sq = 0.5 * 4 = 2, mean g = 0.5 * 2 = 1, variance = 2 - 1 = 1 -> p = 1 - 0.1 * 2 / (1 + eps);
    # momentum: buf = 2 / (1 + eps), the same first step
    p = Parameter(np.array([1.0]), dtype=np.float64)
    _run(RMSprop([p], lr=0.1, alpha=0.5, centered=True, momentum=0.9), p, [[2.0]])
    np.testing.assert_allclose(p.data, [1.0 - 0.1 * 2.0 / (1.0 + 1e-8)], rtol=1e-15)


def test_adagrad_first_steps_by_hand():
    # step 1: sum = 0.1 + 0.25 = 0.35, rate 0.1 -> p = 1 - 0.1 * 0.5 / sqrt(0.35)
    # step 2: sum = 0.35 + 0.0625 = 0.4125, rate 0.1 / (1 + 0.5) -> p += (0.1 / 1.5) * 0.25 / sqrt(0.4125)
    p = Parameter(np.array([1.0]), dtype=np.float64)
    history = _run(Adagrad([p], lr=0.1, lr_decay=0.5, initial_accumulator_value=0.1, eps=0.0), p, [[0.5], [-0.25]])
    p1 = 1.0 - 0.1 * 0.5 / math.sqrt(0.35)
    p2 = p1 + (0.1 / 1.5) * 0.25 / math.sqrt(0.4125)
    np.testing.assert_allclose(np.ravel(history), [p1, p2], rtol=1e-15)


def test_defaults_and_argument_order_are_pytorchs():
    p = Parameter(np.ones(2))
    assert RMSprop([p]).defaults == {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0,
                                     "centered": False, "maximize": False}
    assert Adagrad([p]).defaults == {"lr": 1e-2, "lr_decay": 0.0, "weight_decay": 0.0,
                                     "initial_accumulator_value": 0.0, "eps": 1e-10, "maximize": False}
    group = RMSprop([p], 0.1, 0.9, 1e-6, 0.01, 0.5, True).param_groups[0]
    assert (group["lr"], group["alpha"], group["eps"], group["weight_decay"], group["momentum"], group["centered"]) == (
        0.1, 0.9, 1e-6, 0.01, 0.5, True)
    group = Adagrad([p], 0.1, 0.01, 0.02, 0.3, 1e-6).param_groups[0]
    assert (group["lr"], group["lr_decay"], group["weight_decay"], group["initial_accumulator_value"],
            group["eps"]) == (0.1, 0.01, 0.02, 0.3, 1e-6)
    for cls, args in ((RMSprop, (0.1, 0.9, 1e-6, 0.0, 0.0, False, True)), (Adagrad, (0.1, 0.0, 0.0, 0.0, 1e-6, True))):
        with pytest.raises(TypeError):  # maximize is keyword-only, as in PyTorch
            cls([p], *args)


# ---- state, groups, dtypes ------------------------------------------------------------------------------------
ROUND_TRIP = {
    "rmsprop": lambda ps, lr: RMSprop(ps, lr=lr, momentum=0.9, centered=True, weight_decay=0.01),
    "rmsprop-plain": lambda ps, lr: RMSprop(ps, lr=lr),
    "adagrad": lambda ps, lr: Adagrad(ps, lr=lr, lr_decay=0.1, initial_accumulator_value=0.2, weight_decay=0.01),
}


@pytest.mark.parametrize("recipe", sorted(ROUND_TRIP))
def test_a_saved_state_resumes_identically(recipe):
    make, grads = ROUND_TRIP[recipe], _grads(steps=6)
    p, q = Parameter(_start(), dtype=np.float64), Parameter(_start(), dtype=np.float64)
    straight = _run(make([p], 0.05), p, grads)
    first = make([q], 0.05)
    _run(first, q, grads[:3])
    state = first.state_dict()
    expected_keys = {"rmsprop": {"step", "square_avg", "grad_avg", "momentum_buffer"},
                     "rmsprop-plain": {"step", "square_avg"}, "adagrad": {"step", "sum"}}[recipe]
    assert set(state["state"][0]) == expected_keys and state["state"][0]["step"] == 3
    resumed = make([q], 0.5)  # another rate: the saved one applies
    resumed.load_state_dict(state)
    assert resumed.param_groups[0]["lr"] == 0.05
    np.testing.assert_array_equal(_run(resumed, q, grads[3:]), straight[3:])
    for key in expected_keys - {"step"}:  # the state dict holds copies
        state["state"][0][key][...] = 99.0
        assert not np.any(first.state[q][key] == 99.0)


def test_each_group_keeps_its_own_hyperparameters_and_state():
    a, b = Parameter(np.ones(2), dtype=np.float64), Parameter(np.ones(2), dtype=np.float64)
    optimizer = Adagrad([{"params": [a]}, {"params": [b], "lr": 0.5, "initial_accumulator_value": 3.0}], lr=0.1)
    _run(optimizer, a, [[1.0, 2.0]])
    b.grad = Tensor(np.array([1.0, 2.0]), dtype=np.float64)
    a.grad = None
    optimizer.step()
    g = np.array([1.0, 2.0])
    np.testing.assert_allclose(a.data, 1.0 - 0.1 * g / (g + 1e-10), rtol=1e-15)  # sum = g^2: steps of size lr
    np.testing.assert_allclose(optimizer.state[b]["sum"], [4.0, 7.0])  # the group's own starting value
    np.testing.assert_allclose(b.data, 1.0 - 0.5 * g / (np.sqrt([4.0, 7.0]) + 1e-10), rtol=1e-15)
    assert optimizer.state[a]["step"] == 1  # a had no gradient in the second step: no update, same state


def test_a_parameter_without_gradient_keeps_its_value_and_gets_no_state():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(2))
    for optimizer in (RMSprop([a, b], momentum=0.9, centered=True), Adagrad([a, b])):
        version = a._version
        a.grad, b.grad = Tensor(np.array([0.5, 0.25])), None
        optimizer.step()
        assert b not in optimizer.state and b.data.tolist() == [1.0, 1.0]
        assert a._version > version and a.grad.data.tolist() == [0.5, 0.25]  # moved in place; gradient unchanged


@pytest.mark.parametrize("make", [lambda ps: RMSprop(ps, momentum=0.9, centered=True), lambda ps: Adagrad(ps)])
def test_float32_stays_float32_and_a_zero_dimensional_parameter_moves(make):
    p = Parameter(np.ones(3, dtype=np.float32))
    optimizer = make([p])
    for _ in range(2):
        p.grad = Tensor(np.full(3, 0.5, dtype=np.float32))
        optimizer.step()
    assert p.data.dtype == np.float32
    assert {v.dtype for v in optimizer.state[p].values() if isinstance(v, np.ndarray)} == {np.dtype(np.float32)}
    scalar = Parameter(np.array(1.0))
    optimizer = make([scalar])
    (scalar * scalar).backward()
    optimizer.step()
    assert scalar.shape == () and scalar.item() < 1.0


def _stepped(make):
    p = Parameter(np.ones((2, 3)))
    optimizer = make([p])
    p.grad = Tensor(np.ones((2, 3)))
    optimizer.step()
    return p, optimizer.state_dict()


@pytest.mark.parametrize("make, key, damage, message", [
    (lambda ps: RMSprop(ps), "square_avg", -np.ones((2, 3)), "finite numbers and >= 0"),
    (lambda ps: RMSprop(ps, centered=True), "grad_avg", np.full((2, 3), np.nan), "finite numbers"),
    (lambda ps: RMSprop(ps, momentum=0.9), "momentum_buffer", np.zeros(3), r"has shape \(3,\)"),
    (lambda ps: RMSprop(ps), "step", 1.5, "'step' must be an int >= 0"),
    (lambda ps: RMSprop(ps), "exp_avg", np.zeros((2, 3)), "does not keep"),
    (lambda ps: RMSprop(ps), "square_avg", None, r"lacks \['square_avg'\]"),
    (lambda ps: Adagrad(ps), "sum", -np.ones((2, 3)), "finite numbers and >= 0"),
    (lambda ps: Adagrad(ps), "sum", np.full((2, 3), np.inf), "finite numbers"),
    (lambda ps: Adagrad(ps), "step", -1, "'step' must be an int >= 0"),
    (lambda ps: Adagrad(ps), "sum", None, r"lacks \['sum'\]"),
])
def test_a_tampered_state_is_refused(make, key, damage, message):
    """As Adam's: a negative sum of squares or a NaN mean would give NaN weights at the next step."""
    p, state = _stepped(make)
    if damage is None:
        del state["state"][0][key]
    else:
        state["state"][0][key] = damage
    optimizer = make([p])
    name = type(optimizer).__name__
    with pytest.raises(ValueError, match=f"{name}.load_state_dict: state of parameter 0.*{message}"):
        optimizer.load_state_dict(state)
    assert optimizer.state == {}  # nothing was loaded


@pytest.mark.parametrize("source, target, names", [
    (lambda ps: Adagrad(ps), lambda ps: RMSprop(ps), "['initial_accumulator_value', 'lr_decay']"),
    (lambda ps: RMSprop(ps), lambda ps: Adagrad(ps), "['alpha', 'centered', 'momentum']"),
    (lambda ps: Adam(ps), lambda ps: Adagrad(ps), "['amsgrad', 'betas']"),
])
def test_another_optimizers_state_is_refused(source, target, names):
    p, state = _stepped(source)
    optimizer = target([p])
    with pytest.raises(ValueError, match=rf"group 0 has hyperparameter\(s\) {re.escape(names)} that "
                                         f"{type(optimizer).__name__} does not have"):
        optimizer.load_state_dict(state)


# ---- bad hyperparameters -----------------------------------------------------------------------------------
@pytest.mark.parametrize("call, error, message", [
    (lambda p: RMSprop(p, lr=-0.1), ValueError, "RMSprop: lr must be at least 0"),
    (lambda p: RMSprop(p, alpha=1.5), ValueError, "RMSprop: alpha must be at least 0.0, at most 1.0, got 1.5"),
    (lambda p: RMSprop(p, alpha=-0.1), ValueError, "RMSprop: alpha must be at least 0.0"),
    (lambda p: RMSprop(p, eps=-1e-8), ValueError, "RMSprop: eps must be at least 0"),
    (lambda p: RMSprop(p, weight_decay=-0.1), ValueError, "RMSprop: weight_decay must be at least 0"),
    (lambda p: RMSprop(p, momentum=-0.9), ValueError, "RMSprop: momentum must be at least 0"),
    (lambda p: RMSprop(p, momentum=math.inf), ValueError, "RMSprop: momentum must be finite"),
    (lambda p: RMSprop(p, alpha="0.9"), TypeError, "RMSprop: alpha must be a number, got '0.9'"),
    (lambda p: RMSprop(p, lr=math.nan), TypeError, "RMSprop: lr must be a number"),
    (lambda p: RMSprop(p, centered=1), TypeError, "RMSprop: centered must be True or False, got 1"),
    (lambda p: RMSprop(p, 0.01, 0.99, 1e-8, 0, 0, 0.9), TypeError, "RMSprop: centered must be True or False"),
    (lambda p: RMSprop(p, maximize="yes"), TypeError, "RMSprop: maximize must be True or False"),
    (lambda p: RMSprop([{"params": p, "alpha": 2.0}]), ValueError, "RMSprop: alpha must be at least 0.0, at most 1.0"),
    (lambda p: RMSprop([{"params": p, "betas": (0.9, 0.99)}]), ValueError,
     r"RMSprop: unknown hyperparameter\(s\) \['betas'\]"),
    (lambda p: Adagrad(p, lr=-0.1), ValueError, "Adagrad: lr must be at least 0"),
    (lambda p: Adagrad(p, lr_decay=-0.1), ValueError, "Adagrad: lr_decay must be at least 0"),
    (lambda p: Adagrad(p, weight_decay=-0.1), ValueError, "Adagrad: weight_decay must be at least 0"),
    (lambda p: Adagrad(p, initial_accumulator_value=-1.0), ValueError,
     "Adagrad: initial_accumulator_value must be at least 0"),
    (lambda p: Adagrad(p, eps=-1e-10), ValueError, "Adagrad: eps must be at least 0"),
    (lambda p: Adagrad(p, eps=math.inf), ValueError, "Adagrad: eps must be finite"),
    (lambda p: Adagrad(p, lr_decay=True), TypeError, "Adagrad: lr_decay must be a number, got True"),
    (lambda p: Adagrad(p, maximize=0), TypeError, "Adagrad: maximize must be True or False, got 0"),
    (lambda p: Adagrad([{"params": p, "momentum": 0.9}]), ValueError,
     r"Adagrad: unknown hyperparameter\(s\) \['momentum'\]"),
    (lambda p: Adagrad(p[0]), TypeError, "Adagrad: params must be an iterable"),
    (lambda p: RMSprop([]), ValueError, "RMSprop got an empty parameter list"),
])
def test_bad_hyperparameters_are_refused_naming_the_optimizer(call, error, message):
    with pytest.raises(error, match=message):
        call([Parameter(np.ones(2))])


def test_a_loaded_group_is_checked_as_the_constructor_checks_it():
    p, state = _stepped(lambda ps: RMSprop(ps))
    state["param_groups"][0]["alpha"] = 7.0
    with pytest.raises(ValueError, match="RMSprop: alpha must be at least 0.0, at most 1.0, got 7.0"):
        RMSprop([p]).load_state_dict(state)
    p, state = _stepped(lambda ps: Adagrad(ps))
    state["param_groups"][0]["lr_decay"] = -1
    with pytest.raises(ValueError, match="Adagrad: lr_decay must be at least 0"):
        Adagrad([p]).load_state_dict(state)


# ---- schedulers ------------------------------------------------------------------------------------------
def _optimizer(lr=1.0, groups=1):
    return SGD([{"params": [Parameter(np.zeros(1))]} for _ in range(groups)], lr=lr)


def _rates(scheduler, steps, group=0):
    """The rate before each of ``steps`` epochs and after the last."""
    rates = [scheduler.optimizer.param_groups[group]["lr"]]
    for _ in range(steps):
        scheduler.optimizer.step()
        scheduler.step()
        rates.append(scheduler.optimizer.param_groups[group]["lr"])
    return rates


def test_exponential_lr_halves_each_epoch():
    scheduler = ExponentialLR(_optimizer(1.0), gamma=0.5)
    assert _rates(scheduler, 5) == [1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125]  # exact: powers of two
    assert scheduler.get_last_lr() == [0.03125]
    np.testing.assert_allclose(_rates(ExponentialLR(_optimizer(0.1), gamma=0.9), 3), [0.1, 0.09, 0.081, 0.0729])


def test_multistep_lr_drops_at_each_milestone():
    scheduler = MultiStepLR(_optimizer(1.0), milestones=[2, 5], gamma=0.5)
    assert _rates(scheduler, 7) == [1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25]
    # unsorted, and a milestone listed twice drops twice (PyTorch counts them)
    assert _rates(MultiStepLR(_optimizer(1.0), [3, 1, 3], gamma=0.5), 4) == [1.0, 0.5, 0.5, 0.125, 0.125]
    assert MultiStepLR(_optimizer(1.0), [5, 1]).milestones == (1, 5)
    # a milestone at 0 drops the rate at once (PyTorch's)
    assert _rates(MultiStepLR(_optimizer(1.0), [0, 2], gamma=0.5), 2) == [0.5, 0.5, 0.25]
    assert _rates(MultiStepLR(_optimizer(1.0), [], gamma=0.5), 3) == [1.0] * 4  # no milestone: a constant rate


@pytest.mark.parametrize("make, formula", [
    (lambda o: ExponentialLR(o, 0.8), lambda base, e: base * 0.8**e),
    (lambda o: MultiStepLR(o, [1, 4, 4], 0.3), lambda base, e: base * 0.3 ** ((e >= 1) + 2 * (e >= 4))),
])
def test_the_closed_form_is_the_chained_schedule_per_group(make, formula):
    optimizer = SGD([{"params": [Parameter(np.zeros(1))]}, {"params": [Parameter(np.zeros(1))], "lr": 0.4}], lr=1.0)
    scheduler = make(optimizer)
    for epoch in range(1, 7):
        scheduler.step()
        for group, base in zip(optimizer.param_groups, (1.0, 0.4)):
            assert group["lr"] == pytest.approx(formula(base, epoch), rel=1e-12)
            assert scheduler.lr_at(base, epoch) == pytest.approx(formula(base, epoch), rel=1e-12)


@pytest.mark.parametrize("make, expected", [
    (lambda o: ExponentialLR(o, 0.5), [0.1, 0.05, 0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625]),
    (lambda o: MultiStepLR(o, [3, 5], 0.5), [0.1, 0.1, 1.0, 0.5, 0.5, 0.25, 0.25, 0.25]),
])
def test_a_rate_set_by_hand_is_carried_on_as_in_pytorch(make, expected):
    """PyTorch 2.x gives these rates for the same calls (1.0 set by hand after epoch 1's rate)."""
    optimizer = _optimizer(0.1)
    scheduler = make(optimizer)
    rates = []
    for epoch in range(8):
        rates.append(optimizer.param_groups[0]["lr"])
        if epoch == 1:
            optimizer.param_groups[0]["lr"] = 1.0
        scheduler.step()
    np.testing.assert_allclose(rates, expected, rtol=1e-15)


def test_schedulers_chain_on_one_optimizer():
    """Each step multiplies the rate the group has now: the factors compose (PyTorch's chaining)."""
    optimizer = _optimizer(1.0)
    chain = [LinearWarmup(optimizer, 3), ExponentialLR(optimizer, 0.9), MultiStepLR(optimizer, [4, 6], 0.5),
             StepLR(optimizer, 5, 0.1)]
    rates = []
    for _ in range(8):
        rates.append(optimizer.param_groups[0]["lr"])
        for scheduler in chain:
            scheduler.step()
    expected = [min(1.0, (e + 1) / 3) * 0.9**e * 0.5 ** ((e >= 4) + (e >= 6)) * 0.1 ** (e // 5) for e in range(8)]
    np.testing.assert_allclose(rates, expected, rtol=1e-13)
    optimizer = _optimizer(1.0)
    cosine, exponential = CosineAnnealingLR(optimizer, T_max=6), ExponentialLR(optimizer, 0.5)
    rates = []
    for _ in range(6):
        rates.append(optimizer.param_groups[0]["lr"])
        cosine.step()
        exponential.step()
    expected = [(1 + math.cos(math.pi * e / 6)) / 2 * 0.5**e for e in range(6)]
    np.testing.assert_allclose(rates, expected, rtol=1e-12)


@pytest.mark.parametrize("make, other, settings", [
    (lambda o: ExponentialLR(o, gamma=0.5), lambda o: ExponentialLR(o, gamma=0.9), {"gamma": 0.5}),
    (lambda o: MultiStepLR(o, milestones=[4, 2], gamma=0.5), lambda o: MultiStepLR(o, [1]),
     {"milestones": (2, 4), "gamma": 0.5}),
])
def test_a_scheduler_state_round_trips(make, other, settings):
    """Loaded into a scheduler made with other settings, the saved settings and rates apply."""
    saved = make(_optimizer(0.1, groups=2))
    for _ in range(3):
        saved.step()
    state = saved.state_dict()
    assert {key: state[key] for key in settings} == settings and state["last_epoch"] == 3
    resumed = other(_optimizer(0.7, groups=2))
    resumed.load_state_dict(state)
    assert resumed.get_last_lr() == saved.get_last_lr() and resumed.last_epoch == 3
    for _ in range(5):
        saved.step()
        resumed.step()
        assert resumed.get_last_lr() == saved.get_last_lr()
    closed = other(_optimizer(0.7, groups=2))  # a state without its last rates: the closed form
    closed.load_state_dict({key: value for key, value in state.items() if key != "last_lr"})
    np.testing.assert_allclose(closed.get_last_lr(), [closed.lr_at(0.1, 3)] * 2)
    with pytest.raises(ValueError, match="must be"):
        resumed.load_state_dict({**state, next(iter(settings)): -1})


@pytest.mark.parametrize("call, error, message", [
    (lambda o: MultiStepLR(o, 5), ValueError, "MultiStepLR: milestones must be a list of epochs"),
    (lambda o: MultiStepLR(o, "30"), ValueError, "MultiStepLR: milestones must be a list of epochs"),
    (lambda o: MultiStepLR(o, [3, -1]), ValueError, r"MultiStepLR: milestones\[1\] must be a non-negative int, got -1"),
    (lambda o: MultiStepLR(o, [2.5]), ValueError, r"MultiStepLR: milestones\[0\] must be a non-negative int"),
    (lambda o: MultiStepLR(o, [True]), ValueError, r"MultiStepLR: milestones\[0\] must be a non-negative int"),
    (lambda o: MultiStepLR(o, [3], gamma=-0.5), ValueError, "MultiStepLR: gamma must be at least 0"),
    (lambda o: ExponentialLR(o, gamma=-0.5), ValueError, "ExponentialLR: gamma must be at least 0"),
    (lambda o: ExponentialLR(o, gamma="0.9"), TypeError, "ExponentialLR: gamma must be a number"),
    (lambda o: ExponentialLR(o, gamma=math.inf), ValueError, "ExponentialLR: gamma must be finite"),
    (lambda o: ExponentialLR(None, 0.9), TypeError, "ExponentialLR: expected an Optimizer"),
])
def test_bad_scheduler_arguments_are_refused(call, error, message):
    optimizer = _optimizer(0.1)
    with pytest.raises(error, match=message):
        call(optimizer)
    assert optimizer.param_groups[0]["lr"] == 0.1


def test_an_exponential_schedule_that_reaches_an_infinite_rate_is_refused():
    scheduler = ExponentialLR(_optimizer(0.1), gamma=1e200)
    scheduler.step()
    with pytest.raises(ValueError, match="ExponentialLR: the schedule reached the learning rate inf"):
        scheduler.step()


def test_adagrad_refuses_an_initial_accumulator_its_parameters_cannot_hold():
    """1e300 is inf in float32: the parameter would never move."""
    weight = Parameter(np.ones((2, 2), np.float32))
    with pytest.raises(ValueError, match="initial_accumulator_value 1e\\+300 does not fit a float32 parameter"):
        Adagrad([weight], initial_accumulator_value=1e300)


def test_a_step_count_no_float_can_hold_is_refused_when_loaded():
    """10**400 loaded, and the next step raised 'int too large to convert to float'."""
    weight = Parameter(np.ones(2, np.float32))
    optimizer = Adagrad([weight])
    weight.grad = Tensor(np.ones(2, np.float32))
    optimizer.step()
    state = optimizer.state_dict()
    state["state"][0]["step"] = 10**400
    with pytest.raises(ValueError, match="'step' must be an int >= 0 \\(below 2\\*\\*53"):
        Adagrad([weight]).load_state_dict(state)
