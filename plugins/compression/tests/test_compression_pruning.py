"""Magnitude pruning: exact amounts, masks that survive optimizer steps, global thresholds, remove."""

from __future__ import annotations

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_compression import Pruned, prune_channels, prune_global_unstructured, prune_l1_unstructured, remove, sparsity


def mlp(seed=0):
    rng = np.random.default_rng(seed)
    return tt.nn.Sequential(tt.nn.Linear(6, 10, generator=rng), tt.nn.ReLU(), tt.nn.Linear(10, 3, generator=rng))


def test_per_layer_pruning_zeroes_the_smallest_of_each_layer():
    model = mlp()
    pruned = prune_l1_unstructured(model, 0.3)
    assert isinstance(pruned[0], Pruned) and model[0].weight.data.min() != 0  # the original is untouched
    for dense, layer in ((model[0], pruned[0]), (model[2], pruned[2])):
        w = dense.weight.data
        zeroed = layer.weight.data == 0
        assert zeroed.sum() == round(0.3 * w.size)
        assert np.abs(w[zeroed]).max() <= np.abs(w[~zeroed]).min()
    assert sparsity(pruned) == pytest.approx((18 + 9) / 90)


def test_global_pruning_uses_one_threshold():
    model = mlp()
    model[2].weight.data[...] *= 0.01  # the second layer's weights are all small: it loses most
    pruned = prune_global_unstructured(model, 0.5)
    assert sparsity(pruned) == pytest.approx(0.5)
    by_layer = sparsity(pruned, by_layer=True)
    assert by_layer["2"] == 1.0 and by_layer["0"] == pytest.approx(15 / 60)


def test_masks_persist_through_optimizer_steps_and_remove_bakes_them():
    pruned = prune_global_unstructured(mlp(), 0.6)
    mask = pruned[0].weight_mask.data == 0
    optimizer = tt.optim.Adam(pruned.parameters(), lr=0.1, weight_decay=0.1)
    x, y = tt.Tensor(np.random.default_rng(1).standard_normal((16, 6)).astype(np.float32)), tt.Tensor(np.arange(16) % 3)
    for _ in range(5):
        loss = tt.ops.cross_entropy(pruned(x), y)
        optimizer.zero_grad()
        loss.backward()
        assert np.all(pruned[0].weight_orig.grad.data[mask] == 0)  # the mask stops the gradient
        optimizer.step()
    assert np.all(pruned[0].weight.data[mask] == 0) and sparsity(pruned) >= 0.6
    plain = remove(pruned)
    assert type(plain[0]) is tt.nn.Linear and sorted(plain.state_dict()) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    np.testing.assert_array_equal(plain(x).data, pruned(x).data)


def test_pruning_again_counts_the_earlier_zeros():
    twice = prune_global_unstructured(prune_global_unstructured(mlp(), 0.4), 0.7)
    assert sparsity(twice) == pytest.approx(0.7) and isinstance(twice[0].layer, tt.nn.Linear)


def test_pruned_gradients_match_finite_differences(gradcheck):
    pruned = prune_l1_unstructured(mlp(), 0.5).to(np.float64)
    x = np.random.default_rng(2).standard_normal((4, 6))
    assert gradcheck(lambda w: pruned[2](pruned[1](pruned[0](tt.Tensor(x, dtype=np.float64)))) * w,
                     np.ones((4, 3)))
    assert gradcheck(pruned, x)


def test_channel_pruning_of_an_mlp_is_a_smaller_dense_mlp():
    model = mlp()
    small = prune_channels(model, 0.5)
    assert [tuple(p.shape) for p in small.parameters()] == [(5, 6), (5,), (3, 5), (3,)]
    norms = np.linalg.norm(model[0].weight.data, axis=1)
    kept = np.sort(np.argsort(-norms)[:5])
    x = np.random.default_rng(3).standard_normal((4, 6)).astype(np.float32)
    hidden = np.maximum(x @ model[0].weight.data[kept].T + model[0].bias.data[kept], 0)
    expected = hidden @ model[2].weight.data[:, kept].T + model[2].bias.data
    np.testing.assert_allclose(small(tt.Tensor(x)).data, expected, rtol=1e-5, atol=1e-6)


def test_bad_amounts_and_models_are_refused():
    with pytest.raises(ValueError, match=r"amount must be a fraction in \[0, 1\]"):
        prune_l1_unstructured(mlp(), 1.5)
    with pytest.raises(ValueError, match="fraction"):
        prune_channels(mlp(), 1.0)
    with pytest.raises(ValueError, match="no Linear or Conv2d"):
        sparsity(tt.nn.Sequential(tt.nn.ReLU()))
    with pytest.raises(ValueError, match="cannot remove channels across"):
        prune_channels(tt.nn.Sequential(tt.nn.Linear(2, 4), tt.nn.Softmax(), tt.nn.Linear(4, 2)), 0.5)
