"""Optimizer updates against hand-computed numbers, parameter groups, state dicts,
schedulers and gradient clipping."""

import math

import numpy as np
import pytest

from tinytorch_core import Parameter, Tensor
from tinytorch_nn import (
    SGD,
    Adagrad,
    Adam,
    AdamW,
    CosineAnnealingLR,
    LinearWarmup,
    RMSprop,
    StepLR,
    clip_grad_norm_,
    clip_grad_value_,
)


def _param(*values):
    return Parameter(np.array(values, dtype=np.float64), dtype=np.float64)


def _run(optimizer, p, grads):
    """Apply one step per gradient value; returns the parameter values after each step."""
    history = []
    for g in grads:
        p.grad = Tensor(np.array(g, dtype=np.float64), dtype=np.float64)
        optimizer.step()
        history.append(p.data.copy())
    return history


# ---- SGD ---------------------------------------------------------------------------------------
def test_sgd_plain_step():
    p = _param(1.0, -2.0)
    _run(SGD([p], lr=0.1), p, [[0.5, 0.25]])
    np.testing.assert_allclose(p.data, [0.95, -2.025], rtol=1e-15)


def test_sgd_momentum_by_hand():
    # step 1: buf = g1 = 0.5          -> p = 1 - 0.1 * 0.5 = 0.95
    # step 2: buf = 0.9 * 0.5 - 0.25 = 0.2 -> p = 0.95 - 0.1 * 0.2 = 0.93
    p = _param(1.0)
    history = _run(SGD([p], lr=0.1, momentum=0.9), p, [[0.5], [-0.25]])
    np.testing.assert_allclose(np.ravel(history), [0.95, 0.93], rtol=1e-15)


def test_sgd_nesterov_by_hand():
    # step 1: buf = 0.5, g = 0.5 + 0.9 * 0.5 = 0.95    -> p = 1 - 0.095 = 0.905
    # step 2: buf = 0.45 - 0.25 = 0.2, g = -0.25 + 0.18 = -0.07 -> p = 0.905 + 0.007 = 0.912
    p = _param(1.0)
    history = _run(SGD([p], lr=0.1, momentum=0.9, nesterov=True), p, [[0.5], [-0.25]])
    np.testing.assert_allclose(np.ravel(history), [0.905, 0.912], rtol=1e-15)


def test_sgd_weight_decay_is_added_to_the_gradient():
    # g = 0.5 + 0.1 * 2.0 = 0.7 -> p = 2 - 0.1 * 0.7 = 1.93; momentum buffer starts from that g
    p = _param(2.0)
    opt = SGD([p], lr=0.1, momentum=0.5, weight_decay=0.1)
    _run(opt, p, [[0.5]])
    np.testing.assert_allclose(p.data, [1.93], rtol=1e-15)
    np.testing.assert_allclose(opt.state[p]["momentum_buffer"], [0.7], rtol=1e-15)


def test_sgd_does_not_change_the_gradient_and_bumps_the_version():
    p = _param(1.0)
    p.grad = Tensor(np.array([0.5]), dtype=np.float64)
    before = p._version
    SGD([p], lr=0.1, momentum=0.9, weight_decay=0.1).step()
    assert p._version > before
    np.testing.assert_array_equal(p.grad.data, [0.5])


# ---- Adam / AdamW -----------------------------------------------------------------------------
def test_adam_two_steps_by_hand():
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    p = _param(1.0)
    history = _run(Adam([p], lr=lr, betas=(b1, b2), eps=eps), p, [[0.5], [-0.25]])
    # step 1: m = 0.05, v = 0.00025; m_hat = 0.5, v_hat = 0.25
    p1 = 1.0 - lr * 0.5 / (math.sqrt(0.25) + eps)
    # step 2: m = 0.9 * 0.05 + 0.1 * -0.25 = 0.02; v = 0.999 * 0.00025 + 0.001 * 0.0625 = 0.00031225
    m_hat, v_hat = 0.02 / (1 - 0.9**2), 0.00031225 / (1 - 0.999**2)
    p2 = p1 - lr * m_hat / (math.sqrt(v_hat) + eps)
    np.testing.assert_allclose(np.ravel(history), [p1, p2], rtol=1e-14)
    assert abs(p1 - 0.9) < 1e-7  # the first Adam step has size lr
    assert Adam([p]).defaults == {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0,
                                  "amsgrad": False, "maximize": False}


def test_adam_weight_decay_is_l2_in_the_gradient():
    # g = 0.5 + 0.1 * 1.0 = 0.6 -> m_hat = 0.6, v_hat = 0.36 -> p = 1 - 0.1 * 0.6 / (0.6 + eps)
    p = _param(1.0)
    _run(Adam([p], lr=0.1, weight_decay=0.1), p, [[0.5]])
    np.testing.assert_allclose(p.data, [1.0 - 0.1 * 0.6 / (0.6 + 1e-8)], rtol=1e-15)


def test_adamw_decay_is_decoupled():
    # p = 1 * (1 - 0.1 * 0.1) = 0.99, then the plain Adam step of size 0.1 * 0.5 / (0.5 + eps)
    p = _param(1.0)
    _run(AdamW([p], lr=0.1, weight_decay=0.1), p, [[0.5]])
    np.testing.assert_allclose(p.data, [0.99 - 0.1 * 0.5 / (0.5 + 1e-8)], rtol=1e-15)
    assert AdamW([p]).defaults["weight_decay"] == 1e-2


def _amsgrad_by_numpy(p, grads, lr, betas, eps, weight_decay, decoupled):
    """PyTorch's documented AMSGrad loop, written out: the maximum is taken over the raw second
    moment, and the bias correction divides that maximum."""
    (b1, b2), m, v, v_max, history = betas, np.zeros_like(p), np.zeros_like(p), np.zeros_like(p), []
    for t, g in enumerate(grads, start=1):
        g = np.array(g, dtype=np.float64)
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        v_max = np.maximum(v_max, v)
        p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v_max / (1 - b2**t)) + eps)
        history.append(p)
    return history


@pytest.mark.parametrize("optimizer_class", [Adam, AdamW])
def test_amsgrad_matches_the_numpy_loop(optimizer_class):
    # large gradients, then small ones: v falls below its maximum, which then sets the step
    grads = [[2.0, -1.0], [1.5, 0.5], [0.1, -0.05], [0.02, 0.3], [-0.01, 0.01]]
    options = dict(lr=0.05, betas=(0.8, 0.9), eps=1e-8, weight_decay=0.1)
    p = _param(1.0, -0.5)
    history = _run(optimizer_class([p], amsgrad=True, **options), p, grads)
    expected = _amsgrad_by_numpy(np.array([1.0, -0.5]), grads, decoupled=optimizer_class is AdamW, **options)
    np.testing.assert_allclose(history, expected, rtol=1e-13)
    q = _param(1.0, -0.5)
    plain = _run(optimizer_class([q], amsgrad=False, **options), q, grads)
    assert np.abs(np.array(plain[-1]) - history[-1]).max() > 1e-3  # the maximum changed the steps


def test_amsgrad_second_step_by_hand():
    # step 1: g = 1, v = 0.001 = v_max -> p = 1 - 0.1 * 1 / (1 + eps)
    # step 2: g = 0, m = 0.09, v = 0.000999 < v_max = 0.001: v_hat = 0.001 / (1 - 0.999^2)
    p = _param(1.0)
    history = _run(Adam([p], lr=0.1, amsgrad=True), p, [[1.0], [0.0]])
    p1 = 1.0 - 0.1 * 1.0 / (1.0 + 1e-8)
    p2 = p1 - 0.1 * (0.09 / (1 - 0.9**2)) / (math.sqrt(0.001 / (1 - 0.999**2)) + 1e-8)
    np.testing.assert_allclose(np.ravel(history), [p1, p2], rtol=1e-14)


def test_amsgrad_state_saves_and_resumes():
    grads = [[2.0], [0.1], [0.05], [0.3]]
    p, q = _param(1.0), _param(1.0)
    straight = _run(Adam([p], lr=0.1, amsgrad=True), p, grads)
    first = Adam([q], lr=0.1, amsgrad=True)
    _run(first, q, grads[:2])
    resumed = Adam([q], lr=0.1, amsgrad=True)
    resumed.load_state_dict(first.state_dict())
    np.testing.assert_array_equal(_run(resumed, q, grads[2:]), straight[2:])
    with pytest.raises(TypeError, match="amsgrad must be True or False"):
        Adam([p], amsgrad="yes")


def test_float32_parameters_stay_float32():
    p = Parameter(np.ones(3, dtype=np.float32))
    for opt in (SGD([p], lr=0.1, momentum=0.9), Adam([p]), AdamW([p]), Adam([p], amsgrad=True)):
        p.grad = Tensor(np.full(3, 0.5, dtype=np.float32))
        opt.step()
        assert p.data.dtype == np.float32


# ---- groups, zero_grad, state dicts ---------------------------------------------------------------
def test_parameter_groups_use_their_own_lr():
    a, b = _param(1.0), _param(1.0)
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.0)
    a.grad = Tensor([1.0], dtype=np.float64)
    b.grad = Tensor([1.0], dtype=np.float64)
    opt.step()
    np.testing.assert_allclose([a.data[0], b.data[0]], [0.9, 0.5])
    assert opt.param_groups[1]["momentum"] == 0.0


def test_zero_grad_and_parameters_without_gradients():
    a, b = _param(1.0), _param(2.0)
    opt = Adam([a, b], lr=0.1)
    a.grad = Tensor([1.0], dtype=np.float64)
    opt.step()
    np.testing.assert_array_equal(b.data, [2.0])  # no gradient, no update, no state
    assert b not in opt.state
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(a.grad.data, [0.0])
    opt.zero_grad()
    assert a.grad is None


def test_optimizer_state_dict_round_trip():
    grads = [[0.5, -1.0], [0.25, 0.5], [-0.75, 0.1]]
    p, q = _param(1.0, 2.0), _param(1.0, 2.0)
    first = Adam([p], lr=0.05)
    _run(first, p, grads[:2])
    state = first.state_dict()
    assert state["state"][0]["step"] == 2 and state["param_groups"][0]["params"] == [0]
    q.data[...] = p.data
    second = Adam([q], lr=0.5)
    second.load_state_dict(state)
    assert second.param_groups[0]["lr"] == 0.05
    _run(first, p, grads[2:])
    _run(second, q, grads[2:])
    np.testing.assert_array_equal(p.data, q.data)
    state["state"][0]["exp_avg"][:] = 99  # the state dict holds copies
    assert not np.any(first.state[p]["exp_avg"] == 99)
    with pytest.raises(ValueError, match="parameter group"):
        Adam([{"params": [q]}, {"params": [_param(0.0)]}]).load_state_dict(state)


def test_optimizer_argument_errors():
    p = _param(1.0)
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match="single Tensor"):
        SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        SGD([p], lr=-1.0)
    with pytest.raises(ValueError, match="nesterov"):
        SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"betas\[1\]"):
        Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="more than one group"):
        SGD([{"params": [p]}, {"params": [p]}], lr=0.1)


# ---- schedulers -----------------------------------------------------------------------------------
def _lrs(scheduler, steps):
    lrs = [scheduler.get_last_lr()[0]]
    for _ in range(steps):
        scheduler.optimizer.step()
        scheduler.step()
        lrs.append(scheduler.get_last_lr()[0])
    return lrs


def test_step_lr():
    opt = SGD([_param(1.0)], lr=1.0)
    np.testing.assert_allclose(_lrs(StepLR(opt, step_size=2, gamma=0.5), 5), [1, 1, 0.5, 0.5, 0.25, 0.25])
    assert opt.param_groups[0]["lr"] == 0.25


def test_cosine_annealing():
    opt = SGD([_param(1.0)], lr=1.0)
    expected = [0.1 + 0.9 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(5)]
    np.testing.assert_allclose(_lrs(CosineAnnealingLR(opt, T_max=4, eta_min=0.1), 4), expected)
    assert abs(expected[-1] - 0.1) < 1e-15


def test_linear_warmup_per_group():
    opt = SGD([{"params": [_param(1.0)]}, {"params": [_param(1.0)], "lr": 0.4}], lr=1.0)
    sched = LinearWarmup(opt, warmup_steps=4)
    np.testing.assert_allclose(_lrs(sched, 5), [0.25, 0.5, 0.75, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(sched.get_last_lr(), [1.0, 0.4])
    fresh = LinearWarmup(SGD([{"params": [_param(1.0)]}, {"params": [_param(1.0)]}], lr=3.0), warmup_steps=4)
    fresh.load_state_dict(sched.state_dict())
    assert fresh.get_last_lr() == sched.get_last_lr() and fresh.last_epoch == 5  # the chained rates, as saved
    with pytest.raises(ValueError, match="parameter group"):
        LinearWarmup(SGD([_param(1.0)], lr=1.0), warmup_steps=4).load_state_dict(sched.state_dict())


@pytest.mark.parametrize("make", [lambda o: StepLR(o, 2, 0.5), lambda o: CosineAnnealingLR(o, 4, 0.01)])
def test_schedulers_chain_from_the_rate_the_group_has_now_as_pytorchs_do(make):
    """A rate set by hand was overwritten by the closed form from the initial rate. PyTorch 2.x
    gives these rates for the same calls (StepLR: 0.1, 0.1, then 1.0 set by hand at step 1)."""
    opt = SGD([_param(1.0)], lr=0.1)
    sched = make(opt)
    rates = []
    for epoch in range(8):
        rates.append(opt.param_groups[0]["lr"])
        if epoch == 1:
            opt.param_groups[0]["lr"] = 1.0
        sched.step()
    expected = {StepLR: [0.1, 0.1, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125],
                CosineAnnealingLR: [0.1, 0.08682, 0.58993, 0.17986, 0.01, 0.02318, 0.055, 0.08682]}[type(sched)]
    np.testing.assert_allclose(rates, expected, atol=1e-5)


@pytest.mark.parametrize("make, expected", [
    (lambda p: SGD([p], 0.1, 0.9, maximize=True), [0.062, 0.124]),
    (lambda p: Adam([p], 0.1, maximize=True, weight_decay=0.1), [0.70158627, 1.70062339]),
    (lambda p: AdamW([p], 0.1, maximize=True), [0.69891118, 1.69494451]),
    (lambda p: RMSprop([p], 0.1, maximize=True, momentum=0.5, centered=True), [-0.29819071, -0.45447509]),
    (lambda p: Adagrad([p], 0.1, maximize=True, lr_decay=0.1, initial_accumulator_value=0.5), [0.80344137, 1.79343676]),
])
def test_maximize_climbs_the_objective_as_pytorchs_does(make, expected):
    """Three steps on -(p * p).sum(); the numbers are torch 2.x's for the same calls."""
    p = _param(1.0, 2.0)
    optimizer = make(p)
    for _ in range(3):
        optimizer.zero_grad()
        (-(p * p).sum()).backward()
        optimizer.step()
    np.testing.assert_allclose(p.data, expected, rtol=1e-7)
    with pytest.raises(TypeError, match="maximize must be True or False"):
        make(p).__class__([p], 0.1, maximize="yes")


# ---- gradient clipping ----------------------------------------------------------------------------
def test_clip_grad_norm():
    a, b, c = _param(0.0, 0.0), _param(0.0), _param(1.0)
    a.grad = Tensor([3.0, 0.0], dtype=np.float64)
    b.grad = Tensor([4.0], dtype=np.float64)
    total = clip_grad_norm_([a, b, c], max_norm=1.0)
    assert total == pytest.approx(5.0)
    np.testing.assert_allclose(np.concatenate([a.grad.data, b.grad.data]), [0.6, 0.0, 0.8], rtol=1e-6)
    assert clip_grad_norm_([a, b], max_norm=10.0) == pytest.approx(1.0, rel=1e-6)
    np.testing.assert_allclose(b.grad.data, [0.8], rtol=1e-6)  # below the limit: unchanged
    b.grad = Tensor([-4.0], dtype=np.float64)
    assert clip_grad_norm_(b, 2.0, norm_type=float("inf")) == 4.0
    np.testing.assert_allclose(b.grad.data, [-2.0], rtol=1e-6)



@pytest.mark.parametrize("optimizer_class", [Adam, AdamW])
def test_adam_updates_a_zero_dimensional_parameter(optimizer_class):
    p = Parameter(np.array(1.0))
    opt = optimizer_class([p], lr=0.1)
    (p * p).backward()
    opt.step()
    assert p.shape == ()
    assert p.item() < 1.0


def test_clip_grad_value_clamps_each_gradient_in_place_as_pytorchs_does():
    a, b = _param(0.0, 0.0, 0.0), _param(0.0)
    a.grad, b.grad = Tensor([3.0, -0.5, np.nan], dtype=np.float64), Tensor([-7.0], dtype=np.float64)
    same = a.grad
    clip_grad_value_([a, b, _param(1.0)], clip_value=1.0)  # a parameter without a gradient is skipped
    np.testing.assert_array_equal(a.grad.data, [1.0, -0.5, np.nan])  # NaN stays NaN (torch.clamp_)
    assert b.grad.data.tolist() == [-1.0] and a.grad is same
    with pytest.raises(TypeError, match="clip_grad_value_: expected tensors"):
        clip_grad_value_([1.0], 1.0)


@pytest.mark.parametrize("make, name", [
    (lambda opt, n: StepLR(opt, n), "StepLR: step_size"),
    (lambda opt, n: CosineAnnealingLR(opt, n), "CosineAnnealingLR: T_max"),
    (lambda opt, n: LinearWarmup(opt, n), "LinearWarmup: warmup_steps"),
])
@pytest.mark.parametrize("bad", [0, -2, 2.5, True])
def test_a_schedule_length_must_be_a_positive_int(make, name, bad):
    """True was taken as 1 step."""
    with pytest.raises(ValueError, match=f"{name} must be a positive int, got {bad!r}"):
        make(SGD([_param(1.0)], lr=0.1), bad)


def test_a_group_added_after_the_scheduler_is_scheduled_from_its_rate():
    """Progressive unfreezing: the new group kept its rate forever and get_last_lr left it out."""
    first, second = Parameter(np.zeros(2)), Parameter(np.zeros(2))
    optimizer = SGD([first], lr=0.1)
    scheduler = StepLR(optimizer, step_size=2, gamma=0.5)
    scheduler.step()
    optimizer.add_param_group({"params": [second], "lr": 0.05})
    rates = []
    for _ in range(4):
        scheduler.step()
        rates.append([group["lr"] for group in optimizer.param_groups])
    assert rates == [[0.05, 0.025], [0.05, 0.025], [0.025, 0.0125], [0.025, 0.0125]]  # PyTorch's
    assert scheduler.get_last_lr() == [0.025, 0.0125]


@pytest.mark.parametrize("make, other, settings", [
    (lambda opt: StepLR(opt, step_size=7, gamma=0.5), lambda opt: StepLR(opt, step_size=3, gamma=0.9),
     {"step_size": 7, "gamma": 0.5}),
    (lambda opt: CosineAnnealingLR(opt, T_max=10, eta_min=0.01), lambda opt: CosineAnnealingLR(opt, T_max=4),
     {"T_max": 10, "eta_min": 0.01}),
    (lambda opt: LinearWarmup(opt, warmup_steps=5), lambda opt: LinearWarmup(opt, warmup_steps=2),
     {"warmup_steps": 5}),
])
def test_a_scheduler_state_carries_its_settings(make, other, settings):
    """Loaded into a scheduler made with other settings, the state's settings apply (PyTorch's)."""
    saved = make(SGD([Parameter(np.zeros(1))], lr=0.1))
    for _ in range(3):
        saved.step()
    state = saved.state_dict()
    assert {key: state[key] for key in settings} == settings
    resumed = other(SGD([Parameter(np.zeros(1))], lr=0.1))
    resumed.load_state_dict(state)
    for _ in range(6):
        saved.step()
        resumed.step()
        assert resumed.get_last_lr() == saved.get_last_lr()
    with pytest.raises(ValueError, match="must be"):
        resumed.load_state_dict({**state, next(iter(settings)): -1})


def test_a_group_added_during_warm_up_joins_the_warm_up():
    """It started from its full rate and the warm-up's factor carried it to 3.3x that rate."""
    optimizer = SGD([Parameter(np.zeros(1))], lr=0.1)
    warmup = LinearWarmup(optimizer, warmup_steps=10)
    for _ in range(2):
        warmup.step()
    optimizer.add_param_group({"params": [Parameter(np.zeros(1))], "lr": 0.2})
    rates = []
    for _ in range(10):
        warmup.step()
        rates.append(optimizer.param_groups[1]["lr"])
    np.testing.assert_allclose(rates[0], 0.2 * 4 / 10)  # where the others are: 4 of 10 warm-up steps
    np.testing.assert_allclose(rates[-1], 0.2)
    np.testing.assert_allclose(optimizer.param_groups[0]["lr"], 0.1)
