"""What a checkpoint carries and what sharing means: a quantization-aware model's calibration
travels with its state dict, a loaded pruning mask is a 0/1 mask or refused, and pruning keeps a
shared (tied) layer shared or refuses it. Each test names the silent failure it guards against."""

from __future__ import annotations


import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import StateDictError, Tensor
from tinytorch_compression import (FakeQuantize, MinMaxObserver, PercentileObserver, prune_channels,
                                   prune_global_unstructured, prune_l1_unstructured, quantize, remove, sparsity)

X = Tensor(np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32))


pytestmark = pytest.mark.filterwarnings("error")  # a warning in any test here is a failure


def qat_model(seed, observer=None):
    return tt.nn.Sequential(tt.nn.Linear(4, 4, generator=seed), FakeQuantize(observer))


# ---- FakeQuantize: the observed range is part of the state dict ------------------------------------------
def test_a_fake_quantize_checkpoint_carries_its_calibration(tmp_path):
    """The observer's range was no buffer: a fresh model refused eval() ("no values observed yet"),
    and a model that had observed other data silently kept its own range."""
    trained = qat_model(0)
    trained(X), trained(3 * X)
    trained.eval()
    assert {"1.observer.min_val", "1.observer.max_val"} <= set(trained.state_dict())
    path = tmp_path / "qat.safetensors"
    tt.io.save(trained.state_dict(), path)
    fresh, other = qat_model(1), qat_model(1)
    other(100 * X)  # calibrated on other data
    for model in (fresh, other):
        model.load_state_dict(tt.io.load(path))
        np.testing.assert_array_equal(model.eval()(X).data, trained(X).data)


def test_observer_state_round_trips_for_every_observer_and_per_channel():
    """Per channel, and the percentile observer's count of batches (its running mean goes on)."""
    for make in (lambda: PercentileObserver(90.0), lambda: MinMaxObserver(symmetric=True, axis=1)):
        trained = qat_model(0, make())
        trained(X), trained(2 * X)
        other = qat_model(0, make())
        other(5 * X)  # a per-channel observer knows its channels only once it has seen data
        other.load_state_dict(trained.state_dict())
        np.testing.assert_array_equal(other.eval()(X).data, trained.eval()(X).data)
        trained.train()(X), other.train()(X)  # one more batch each: the same running state
        np.testing.assert_array_equal(other.eval()(X).data, trained.eval()(X).data)


def test_a_checkpoint_without_observer_state_is_refused_or_recalibrated():
    """Saved before the observers' range was stored: strict loading names the missing keys; with
    strict=False the model keeps no range of its own, and eval() says so instead of guessing."""
    trained = qat_model(0)
    trained(X)
    old = {k: v for k, v in trained.state_dict().items() if ".observer." not in k}
    with pytest.raises(StateDictError, match="missing keys: .*1.observer.min_val"):
        qat_model(1).load_state_dict(old)
    fresh = qat_model(1)
    fresh.load_state_dict(old, strict=False)
    with pytest.raises(RuntimeError, match="no values observed yet"):
        fresh.eval()(X)


@pytest.mark.parametrize("value", [np.nan, np.inf, 99.0], ids=["nan", "inf", "min-above-max"])
def test_a_damaged_observer_state_is_refused(value):
    model = qat_model(0)
    model(X)
    state = model.state_dict()
    state["1.observer.min_val"] = np.full_like(state["1.observer.min_val"], value)
    model.load_state_dict(state)
    with pytest.raises(ValueError, match="MovingAverageMinMaxObserver: the stored range"):
        model.eval()(X)


def test_a_damaged_percentile_count_is_refused():
    model = qat_model(0, PercentileObserver(90.0))
    model(X)
    state = model.state_dict()
    state["1.observer.num_batches"] = np.zeros_like(state["1.observer.num_batches"])
    model.load_state_dict(state)
    with pytest.raises(ValueError, match="over 0 batches"):
        model(X)


# ---- Pruned: a loaded mask is a 0/1 mask --------------------------------------------------------------------
@pytest.mark.parametrize("value", [0.5, np.nan, np.inf, 2.0, -1.0])
def test_a_loaded_pruning_mask_that_is_not_zeros_and_ones_is_refused(value):
    """A mask of 0.5 halved the weights while sparsity() still said 0.5; NaN gave NaN weights."""
    pruned = prune_l1_unstructured(tt.nn.Sequential(tt.nn.ReLU(), tt.nn.Linear(4, 4, generator=0)), 0.5)
    state = pruned.state_dict()
    state["1.weight_mask"][0, 0] = value
    pruned.load_state_dict(state)
    for use in (lambda: pruned(X), lambda: sparsity(pruned), lambda: remove(pruned), lambda: quantize(pruned, [X]),
                lambda: prune_l1_unstructured(pruned, 0.75)):
        with pytest.raises(ValueError, match="layer '1' .*weight_mask must hold only 0 and 1"):
            use()


def test_a_valid_loaded_mask_is_used():
    pruned = prune_l1_unstructured(tt.nn.Sequential(tt.nn.Linear(4, 4, generator=0)), 0.5)
    state = pruned.state_dict()
    state["0.weight_orig"][...] = 1.0
    state["0.weight_mask"][...] = np.eye(4)
    pruned.load_state_dict(state)
    np.testing.assert_array_equal(pruned[0].weight.data, np.eye(4))
    assert sparsity(pruned) == 0.75


# ---- shared layers: pruning keeps them shared, or refuses ---------------------------------------------------
def tied():
    layer = tt.nn.Linear(4, 4, generator=0)
    return tt.nn.Sequential(layer, tt.nn.ReLU(), layer)


@pytest.mark.parametrize("prune", [prune_l1_unstructured, prune_global_unstructured])
def test_pruning_keeps_a_shared_layer_shared(prune):
    """Pruning made two weight_orig that drifted apart after one step; remove gave 4 parameters."""
    model = tied()
    pruned = prune(model, 0.5)
    assert pruned[0] is pruned[2] and len(list(pruned.parameters())) == 2
    assert sparsity(pruned) == 0.5 and list(sparsity(pruned, by_layer=True)) == ["0"]
    optimizer = tt.optim.SGD(pruned.parameters(), lr=0.1)
    pruned(X).sum().backward()
    optimizer.step()
    plain = remove(pruned)
    assert plain[0] is plain[2] and len(list(plain.parameters())) == 2
    np.testing.assert_array_equal(plain(X).data, pruned(X).data)


def test_pruning_refuses_distinct_layers_that_share_one_weight():
    first = tt.nn.Linear(4, 4, generator=0)
    second = tt.nn.Linear(4, 4, generator=1)
    second.weight = first.weight  # tied weights, separate biases
    model = tt.nn.Sequential(first, tt.nn.ReLU(), second)
    for prune in (prune_l1_unstructured, prune_global_unstructured):
        with pytest.raises(ValueError, match="layers '0' and '2' share one weight"):
            prune(model, 0.5)


@pytest.mark.parametrize("make", ["same-layer", "same-weight"])
def test_prune_channels_refuses_shared_layers(make):
    """It returned Linear(4, 2) and Linear(2, 4): the shared layer untied, each copy cut differently."""
    model = tied()
    if make == "same-weight":
        second = tt.nn.Linear(4, 4, generator=1)
        second.weight = model[0].weight
        model = tt.nn.Sequential(model[0], tt.nn.ReLU(), second)
    with pytest.raises(ValueError, match="prune_channels: layers '0' and '2' share"):
        prune_channels(model, 0.5)
