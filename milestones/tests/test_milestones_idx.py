"""The IDX reader and the MNIST loader, on small files the tests write (nothing is downloaded)."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from tinytorch_milestones.datasets import load_mnist_split
from tinytorch_milestones.idx import IDXError, load_mnist, read_idx, write_idx


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """IDX encoding written out by hand, independent of write_idx."""
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(5, 4, 3), dtype=np.uint8)


def test_reads_a_well_formed_file(tmp_path, images):
    path = tmp_path / "imgs-idx3-ubyte"
    path.write_bytes(idx_bytes(images))
    out = read_idx(path)
    assert out.dtype == np.uint8
    assert out.shape == (5, 4, 3)
    np.testing.assert_array_equal(out, images)


def test_reads_gzip_and_big_endian_types(tmp_path):
    values = np.array([[1.5, -2.25], [1e6, 0.0]], dtype=np.float32)
    path = tmp_path / "floats.gz"
    path.write_bytes(gzip.compress(idx_bytes(values, 0x0D)))
    out = read_idx(path)
    assert out.dtype == np.float32 and out.dtype.isnative
    np.testing.assert_array_equal(out, values)
    ints = np.array([-70000, 5, 2**30], dtype=np.int32)
    path = tmp_path / "ints"
    path.write_bytes(idx_bytes(ints, 0x0C))
    np.testing.assert_array_equal(read_idx(path), ints)


def test_write_then_read_round_trip(tmp_path, images):
    for name in ("a-idx3-ubyte", "b-idx3-ubyte.gz"):
        path = write_idx(tmp_path / name, images)
        np.testing.assert_array_equal(read_idx(path), images)
    assert (tmp_path / "a-idx3-ubyte").read_bytes() == idx_bytes(images)


def test_truncated_data_is_a_clear_error(tmp_path, images):
    path = tmp_path / "short"
    path.write_bytes(idx_bytes(images)[:-7])
    with pytest.raises(IDXError, match=r"truncated.*\(5, 4, 3\).*60 data bytes.*only 53"):
        read_idx(path)


def test_truncated_header_and_gzip_are_clear_errors(tmp_path, images):
    path = tmp_path / "header"
    path.write_bytes(idx_bytes(images)[:9])
    with pytest.raises(IDXError, match="truncated header"):
        read_idx(path)
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(idx_bytes(images))[:-10])
    with pytest.raises(IDXError, match="cannot be read as gzip"):
        read_idx(path)


def test_wrong_magic_and_unknown_type(tmp_path, images):
    data = bytearray(idx_bytes(images))
    data[0] = 0x1A
    path = tmp_path / "magic"
    path.write_bytes(bytes(data))
    with pytest.raises(IDXError, match="bad magic number 0x1a000803"):
        read_idx(path)
    data = bytearray(idx_bytes(images))
    data[2] = 0x07
    path.write_bytes(bytes(data))
    with pytest.raises(IDXError, match="unknown IDX type code 0x07"):
        read_idx(path)


def test_trailing_bytes_and_missing_file(tmp_path, images):
    path = tmp_path / "long"
    path.write_bytes(idx_bytes(images) + b"\x00\x00")
    with pytest.raises(IDXError, match="2 unexpected trailing bytes"):
        read_idx(path)
    with pytest.raises(IDXError, match="no such file"):
        read_idx(tmp_path / "absent")


def write_fake_mnist(directory, n_train=12, n_test=6, gz=False, dotted=False):
    rng = np.random.default_rng(1)
    suffix = ".gz" if gz else ""
    arrays = {
        "train-images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for stem, arr in arrays.items():
        kind = "idx3" if arr.ndim == 3 else "idx1"
        name = f"{stem}.{kind}-ubyte" if dotted else f"{stem}-{kind}-ubyte"
        write_idx(directory / f"{name}{suffix}", arr)
    return arrays


@pytest.mark.parametrize("gz,dotted", [(False, False), (True, False), (False, True)])
def test_load_mnist_from_a_directory(tmp_path, gz, dotted):
    arrays = write_fake_mnist(tmp_path, gz=gz, dotted=dotted)
    loaded = load_mnist(tmp_path)
    np.testing.assert_array_equal(loaded["x_train"], arrays["train-images"])
    np.testing.assert_array_equal(loaded["y_test"], arrays["t10k-labels"])
    split = load_mnist_split(tmp_path)
    assert split.x_train.dtype == np.float32 and split.x_train.shape == (12, 28, 28)
    assert 0.0 <= split.x_train.min() and split.x_train.max() <= 1.0
    assert split.y_train.dtype == np.int64


def test_load_mnist_rejects_mismatched_or_missing_files(tmp_path):
    write_fake_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(5, dtype=np.uint8))
    with pytest.raises(IDXError, match="6 test images but 5 test labels"):
        load_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.full(6, 12, dtype=np.uint8))
    with pytest.raises(IDXError, match="label 12 is out of range"):
        load_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(IDXError, match="no MNIST file 't10k-labels-idx1-ubyte'.*nothing is downloaded"):
        load_mnist(tmp_path)
    with pytest.raises(IDXError, match="not a directory"):
        load_mnist(tmp_path / "nowhere")
