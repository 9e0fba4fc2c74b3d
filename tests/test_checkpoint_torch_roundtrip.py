"""A TinyTorch checkpoint is a PyTorch checkpoint: safetensors, under PyTorch's names and layouts.

TinyTorch model -> ``tt.io.save`` -> ``safetensors.torch.load_file`` -> a ``torch.nn`` model of the
same architecture gives the same outputs; and back: a ``torch.nn`` model ->
``safetensors.torch.save_file`` -> ``tt.io.load`` -> a TinyTorch model gives the torch outputs.
Skipped where PyTorch is not installed (like the other PyTorch comparisons). ``docs/checkpoints.md``
shows the same round trip.
"""

from __future__ import annotations

import numpy as np
import pytest

import tinytorch_core as tt

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")


def tt_mlp(seed: int):
    return tt.nn.Sequential(tt.nn.Linear(8, 16, generator=seed), tt.nn.ReLU(), tt.nn.Linear(16, 3, generator=seed + 1))


def torch_mlp():
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))


def tt_cnn(seed: int):
    return tt.nn.Sequential(
        tt.nn.Conv2d(1, 4, 3, padding=1, generator=seed), tt.nn.BatchNorm2d(4), tt.nn.ReLU(),
        tt.nn.MaxPool2d(2), tt.nn.Flatten(), tt.nn.Linear(4 * 4 * 4, 3, generator=seed + 1),
    )


def torch_cnn():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 3),
    )


ARCHITECTURES = {"mlp": (tt_mlp, torch_mlp, (5, 8)), "cnn": (tt_cnn, torch_cnn, (5, 1, 8, 8))}


def torch_outputs(model, x: np.ndarray) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def tt_outputs(model, x: np.ndarray) -> np.ndarray:
    model.eval()
    with tt.no_grad():
        return model(tt.Tensor(x)).data


def trained_statistics(model) -> None:
    """Give a TinyTorch model's batch norm running statistics that are not the defaults."""
    model.train()
    model(tt.Tensor(np.random.default_rng(9).standard_normal((16, 1, 8, 8)).astype(np.float32)))


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_tinytorch_checkpoint_loads_into_the_same_torch_model(arch, tmp_path):
    make_tt, make_torch, shape = ARCHITECTURES[arch]
    if arch == "cnn":
        pytest.importorskip("tinytorch_spatial")
    ours = make_tt(0)
    if arch == "cnn":
        trained_statistics(ours)
    path = tmp_path / "model.safetensors"
    tt.io.save(ours.state_dict(), path)

    theirs = make_torch()
    theirs.load_state_dict(safetensors_torch.load_file(path))  # strict: BatchNorm's batch counter too
    if arch == "cnn":
        assert int(theirs[1].num_batches_tracked) == 1

    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose(torch_outputs(theirs, x), tt_outputs(ours, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_torch_checkpoint_loads_into_the_same_tinytorch_model(arch, tmp_path):
    make_tt, make_torch, shape = ARCHITECTURES[arch]
    if arch == "cnn":
        pytest.importorskip("tinytorch_spatial")
    torch.manual_seed(3)
    theirs = make_torch()
    path = tmp_path / "torch.safetensors"
    safetensors_torch.save_file(theirs.state_dict(), path)

    ours = make_tt(7)
    ours.load_state_dict(tt.io.load(path))  # strict: every name, shape and dtype matches

    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose(tt_outputs(ours, x), torch_outputs(theirs, x), rtol=1e-5, atol=1e-5)


def test_linear_weights_keep_pytorchs_out_by_in_layout(tmp_path):
    ours = tt.nn.Linear(8, 3, generator=0)
    tt.io.save(ours.state_dict(), tmp_path / "linear.safetensors")
    loaded = safetensors_torch.load_file(tmp_path / "linear.safetensors")
    assert tuple(loaded["weight"].shape) == (3, 8) and loaded["weight"].dtype == torch.float32
    np.testing.assert_array_equal(loaded["weight"].numpy(), ours.weight.data)
