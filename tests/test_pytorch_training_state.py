"""PyTorch's meanings for the state around training: schedulers made after another or later in
training, gradient clipping of NaN gradients, optimizer states saved with a scheduler, tied
weights in a state dict, and the container edits (``seq[i] = m``, ``del seq[i]``, ``a + b``).
Each failed before its fix (another number than PyTorch's, or a raw Python error); values are
checked against formulas written here."""

import math

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Tensor


def _optimizer(lr=1.0):
    return tt.optim.SGD([tt.nn.Parameter(np.zeros(2, np.float32))], lr=lr)


def _lr(optimizer):
    return optimizer.param_groups[0]["lr"]


# ---- schedulers start from the rate the group has now -----------------------------------------------
def test_a_warmup_then_a_cosine_scheduler_chain_as_in_pytorch():
    """Making the cosine scheduler reset the rate to 1.0, undoing the warm-up's 0.25; the rate
    then climbed to about 3x the base rate."""
    optimizer = _optimizer()
    warmup, cosine = tt.optim.LinearWarmup(optimizer, 4), tt.optim.CosineAnnealingLR(optimizer, T_max=10)
    rates = []
    for _ in range(6):
        rates.append(_lr(optimizer))
        warmup.step()
        cosine.step()
    warm = [min(1.0, (epoch + 1) / 4) for epoch in range(6)]
    cosine_factor = [(1 + math.cos(math.pi * epoch / 10)) / 2 for epoch in range(6)]
    np.testing.assert_allclose(rates, [w * c for w, c in zip(warm, cosine_factor)], rtol=1e-12)


def test_a_scheduler_made_later_in_training_keeps_the_current_rate():
    optimizer = _optimizer(0.1)
    step_lr = tt.optim.StepLR(optimizer, step_size=1, gamma=0.5)
    for _ in range(3):
        step_lr.step()
    assert _lr(optimizer) == pytest.approx(0.0125)
    tt.optim.CosineAnnealingLR(optimizer, T_max=5)
    assert _lr(optimizer) == pytest.approx(0.0125)  # it was reset to 0.1


def test_an_optimizer_state_saved_with_a_scheduler_loads_into_a_fresh_optimizer():
    """'initial_lr', which a scheduler adds to each group, was refused as an unknown hyperparameter."""
    optimizer = _optimizer(0.1)
    scheduler = tt.optim.StepLR(optimizer, step_size=1, gamma=0.5)
    scheduler.step()
    saved = optimizer.state_dict()
    fresh = _optimizer(0.1)
    fresh.load_state_dict(saved)
    assert _lr(fresh) == pytest.approx(0.05) and fresh.param_groups[0]["initial_lr"] == pytest.approx(0.1)
    saved["param_groups"][0]["initial_lr"] = "high"
    with pytest.raises(TypeError, match="initial_lr must be a number"):
        _optimizer().load_state_dict(saved)


# ---- gradient clipping ------------------------------------------------------------------------------
def _with_grads(*grads):
    params = [tt.nn.Parameter(np.zeros(np.shape(g), np.float32)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = Tensor(np.asarray(g, np.float32))
    return params


def test_clipping_a_nan_gradient_makes_every_gradient_nan_as_in_pytorch():
    """The NaN norm left every gradient unclipped, so the other parameters stepped with them."""
    params = _with_grads([[1.0, 2.0], [np.nan, 3.0]], [100.0, 0.0])
    total = tt.optim.clip_grad_norm_(params, max_norm=1.0)
    assert math.isnan(total)
    assert all(np.isnan(p.grad.data).all() for p in params)


def test_clipping_options_error_if_nonfinite_foreach_and_inf_by_name():
    params = _with_grads([np.inf, 1.0])
    with pytest.raises(RuntimeError, match="clip_grad_norm_: the total norm of order 2.0 of the gradients is inf"):
        tt.optim.clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(params[0].grad.data, [np.inf, 1.0])  # refused before any change
    params = _with_grads([3.0, -4.0])
    assert tt.optim.clip_grad_norm_(params, 2.0, norm_type="inf", foreach=True) == 4.0
    np.testing.assert_allclose(params[0].grad.data, [3.0 * 2 / (4 + 1e-6), -4.0 * 2 / (4 + 1e-6)], rtol=1e-6)
    with pytest.raises(TypeError, match="error_if_nonfinite must be True or False"):
        tt.optim.clip_grad_norm_(params, 1.0, error_if_nonfinite="yes")


# ---- state dicts ------------------------------------------------------------------------------------
class _Tied(tt.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = tt.nn.Linear(3, 5, bias=False, generator=0)
        self.head = tt.nn.Linear(3, 5, bias=False, generator=1)
        self.head.weight = self.emb.weight


def test_a_tied_weight_is_in_the_state_dict_under_each_name():
    """It was listed once, so neither PyTorch nor TinyTorch could load the other's state strictly."""
    model = _Tied()
    state = model.state_dict()
    assert list(state) == ["emb.weight", "head.weight"]
    np.testing.assert_array_equal(state["emb.weight"], state["head.weight"])
    state["emb.weight"][...] = 1.0
    state["head.weight"][...] = 1.0
    assert _Tied().load_state_dict(state).missing_keys == []
    with pytest.raises(tt.StateDictError, match=r"missing keys: \['head.weight'\]"):
        _Tied().load_state_dict({"emb.weight": state["emb.weight"]})
    assert len(list(model.parameters())) == 1  # parameters() still lists it once


def test_load_state_dict_returns_pytorchs_named_pair():
    result = tt.nn.Linear(2, 2).load_state_dict({"weight": np.zeros((2, 2), np.float32), "extra": np.zeros(1)},
                                                 strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["extra"]
    assert result["missing_keys"] == ["bias"]
    missing, unexpected = result
    assert (missing, unexpected) == (["bias"], ["extra"])


def test_module_zero_grad_can_keep_zeros():
    layer = tt.nn.Linear(2, 1)
    layer(Tensor(np.ones((1, 2), np.float32))).sum().backward()
    layer.zero_grad(set_to_none=False)
    assert layer.weight.grad is not None and not layer.weight.grad.data.any()
    layer.zero_grad()
    assert layer.weight.grad is None


# ---- container edits --------------------------------------------------------------------------------
def _names(module):
    return [name for name, _ in module.named_children()]


def test_sequential_item_assignment_deletion_and_concatenation():
    relu, tanh = tt.nn.ReLU(), tt.nn.Tanh()
    seq = tt.nn.Sequential(tt.nn.Linear(2, 3), relu, tt.nn.Linear(3, 1))
    seq[1] = tanh
    assert seq[1] is tanh and _names(seq) == ["0", "1", "2"]
    x = Tensor(np.array([[0.5, -1.0]], np.float32))
    expected = seq[2](tanh(seq[0](x))).data
    np.testing.assert_array_equal(seq(x).data, expected)  # forward runs the new module
    del seq[0]
    assert _names(seq) == ["0", "1"] and seq[0] is tanh
    both = seq + tt.nn.Sequential(relu)
    assert _names(both) == ["0", "1", "2"] and both[2] is relu
    del both[-2:]
    assert _names(both) == ["0"]
    with pytest.raises(IndexError, match="out of range"):
        seq[5] = relu
    with pytest.raises(TypeError, match="cannot assign a int to '0', a sub-module of Sequential"):
        seq[0] = 3  # it silently removed the layer
    assert seq[0] is tanh


def test_module_list_item_assignment_deletion_and_concatenation():
    a, b, c = tt.nn.Linear(2, 2), tt.nn.Linear(2, 3), tt.nn.ReLU()
    layers = tt.nn.ModuleList([a, b])
    layers[0] = c
    assert list(layers) == [c, b] and list(layers.state_dict()) == ["1.weight", "1.bias"]
    del layers[0]
    assert list(layers) == [b] and list(layers.state_dict()) == ["0.weight", "0.bias"]
    joined = layers + tt.nn.ModuleList([a])
    assert list(joined) == [b, a]
    with pytest.raises(TypeError, match="ModuleList indices must be int or slice, got str"):
        layers["0"]
