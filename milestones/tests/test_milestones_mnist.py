"""``--mnist-dir``: the MLP and CNN milestones read MNIST-format IDX files (written here: small
and synthetic, never downloaded) and build their models for 28x28 images."""

from __future__ import annotations

import numpy as np
import pytest

from tinytorch_core.host.runtime import Runtime
from tinytorch_milestones.idx import write_idx
from tinytorch_milestones.runner import RunOptions, lock_state, run_milestone


def write_synthetic_mnist(directory, n_train=256, n_test=64):
    """Ten easy classes: class k lights up a 4-pixel-wide bar at column 2 + 2k, plus noise."""
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n, dtype=np.uint8) % 10
        images = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)
        for k in range(10):
            images[labels == k, 4:24, 2 + 2 * k:6 + 2 * k] = 255
        write_idx(directory / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(directory / f"{split}-labels-idx1-ubyte.gz", labels)


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_image_milestones_train_on_mnist_files(tmp_path, name):
    runtime = Runtime()
    runtime.load()
    milestone = runtime.milestones[name]
    if lock_state(milestone, runtime)[0]:
        pytest.skip(f"{name} is locked")
    write_synthetic_mnist(tmp_path)
    result = run_milestone(milestone, RunOptions(mnist_dir=str(tmp_path), runtime=runtime))
    assert result.error == ""
    assert result.data == f"MNIST ({tmp_path}): 256 train / 64 test images of 28x28"
    for part in result.parts:
        assert part.gradients.ok, part.gradients.failures()
        assert part.moved == part.movable
    if name == "mlp":
        assert result.parts[0].architecture.startswith("Linear(784,128)")
    else:
        assert "Linear(512,10)" in result.parts[-1].architecture  # 28 -> 24 -> 12 -> 8 -> 4: 32 * 4 * 4


def test_a_broken_mnist_directory_is_an_error_not_a_pass(tmp_path):
    runtime = Runtime()
    runtime.load()
    milestone = runtime.milestones["mlp"]
    if lock_state(milestone, runtime)[0]:
        pytest.skip("mlp is locked")
    write_synthetic_mnist(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])
    result = run_milestone(milestone, RunOptions(mnist_dir=str(tmp_path), runtime=runtime))
    assert result.status == "error" and result.failed
    assert "IDXError" in result.error and "t10k-images" in result.error
