"""The CIFAR-10 binary reader on small synthetic files in the real format, hostile files refused
before anything is allocated, and the CNN milestone built for 3x32x32 colour images."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tinytorch_core import Tensor
from tinytorch_core.cli import main
from tinytorch_core.host.runtime import default_runtime
from tinytorch_milestones import cnn
from tinytorch_milestones.gradient_flow import as_arrays
from tinytorch_milestones.cifar import RECORD_BYTES, CIFARError, load_cifar10, read_cifar_batch
from tinytorch_milestones.runner import RunOptions


def records(labels, seed=0) -> tuple[bytes, np.ndarray]:
    """Binary records for ``labels``: label byte, then R, G and B planes of 32x32 bytes."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(len(labels), 3, 32, 32), dtype=np.uint8)
    table = np.concatenate([np.asarray(labels, np.uint8)[:, None], pixels.reshape(len(labels), -1)], axis=1)
    return table.tobytes(), pixels


def write_split(folder, train_files=5, per_file=8, test=6):
    for i in range(1, train_files + 1):
        (folder / f"data_batch_{i}.bin").write_bytes(records(np.arange(per_file) % 10, seed=i)[0])
    (folder / "test_batch.bin").write_bytes(records(np.arange(test) % 10, seed=99)[0])
    return folder


def test_a_batch_reads_back_its_labels_and_colour_planes(tmp_path):
    data, pixels = records([3, 0, 9])
    path = tmp_path / "data_batch_1.bin"
    path.write_bytes(data)
    images, labels = read_cifar_batch(path)
    assert labels.tolist() == [3, 0, 9] and labels.dtype == np.int64
    assert images.shape == (3, 3, 32, 32) and np.array_equal(images, pixels)
    assert images[1, 2, 0, 5] == data[RECORD_BYTES + 1 + 2 * 1024 + 5]  # blue plane, row 0, column 5


def test_the_split_joins_the_training_files_and_scales_to_unit_range(tmp_path):
    split = load_cifar10(write_split(tmp_path))
    assert split.x_train.shape == (40, 3, 32, 32) and split.x_test.shape == (6, 3, 32, 32)
    assert split.x_train.dtype == np.float32 and 0 <= split.x_train.min() and split.x_train.max() <= 1
    assert (split.channels, split.image_shape, split.features) == (3, (32, 32), 3072)
    assert split.describe().endswith("images of 32x32, 3 channels")


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty"),
    (b"\x00" * (RECORD_BYTES + 7), "not a whole number"),
    (bytes([10]) + b"\x00" * (RECORD_BYTES - 1), "has label 10"),
])
def test_malformed_batches_are_refused(tmp_path, content, message):
    path = tmp_path / "bad.bin"
    path.write_bytes(content)
    with pytest.raises(CIFARError, match=message):
        read_cifar_batch(path)


def test_too_many_records_are_refused_before_reading(tmp_path):
    path = tmp_path / "big.bin"
    with open(path, "wb") as f:  # sparse: 60,001 records announced by the size alone
        f.truncate(60_001 * RECORD_BYTES)
    with pytest.raises(CIFARError, match="over the limit"):
        read_cifar_batch(path)


def test_special_files_and_missing_files_are_refused(tmp_path):
    fifo = tmp_path / "fifo.bin"
    os.mkfifo(fifo)
    with pytest.raises(CIFARError, match="not a regular file"):
        read_cifar_batch(fifo)
    with pytest.raises(CIFARError, match="no such file"):
        read_cifar_batch(tmp_path / "absent.bin")
    with pytest.raises(CIFARError, match="binary version of CIFAR-10"):
        load_cifar10(tmp_path)


@pytest.mark.skipif(default_runtime().stage_status("spatial")[0] != "loaded", reason="needs the spatial stage")
def test_the_cnn_milestone_builds_a_colour_model_and_trains_a_step(tmp_path):
    options = RunOptions(cifar_dir=str(write_split(tmp_path)))
    experiment = cnn.experiment(options)
    x, y = as_arrays(next(iter(experiment.batches)))
    assert x.shape[1:] == (3, 32, 32)
    assert experiment.bars.metric_min == 0.60 and "Conv(32,3x3)" in experiment.architecture
    loss = experiment.loss_fn(experiment.model, Tensor(x[:2]), Tensor(y[:2]))
    loss.backward()
    assert np.isfinite(float(loss.item()))


def test_mnist_and_cifar_together_are_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["milestones", "run", "cnn", "--mnist-dir", str(tmp_path), "--cifar-dir", str(tmp_path)])
    assert info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
