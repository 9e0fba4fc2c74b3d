"""Hostile IDX files: nothing but a regular file is opened, and no announced size costs memory.

Each read runs in a fresh interpreter, which reports the error and how much its peak resident
memory grew during the read. The bound is the data the file legitimately holds, times 1.2, plus a
small allowance for interpreter noise: a header that announces less than the gzip stream holds,
more than the budget, or too many dimensions must be refused before memory is spent on it. The
hostile files are small on disk (gzip, sparse files); special files (a FIFO, ``/dev/zero``) run
under a timeout so that a regression fails instead of hanging.
"""

from __future__ import annotations

import gzip
import math
import os
import struct

import numpy as np
import pytest

from tinytorch_core.testing import assert_load_cost, load_in_fresh_interpreter, special_file
from tinytorch_milestones.idx import MAX_DIMENSIONS, write_idx

pytestmark = pytest.mark.skipif(os.name != "posix", reason="measures peak memory with resource, uses FIFOs")

MiB = 2**20


def read_in_child(path, function: str = "read_idx", **options) -> dict:
    """``idx.<function>(path, **options)`` in a fresh interpreter: its error class, message and peak-memory growth."""
    return load_in_fresh_interpreter(f"tinytorch_milestones.idx:{function}", path, **options)


def assert_growth(outcome: dict, legitimate: int = 0) -> None:
    assert_load_cost(outcome, legitimate)


def assert_refused(outcome: dict, excerpt: str, *, legitimate: int = 0) -> None:
    assert outcome["error"] == "IDXError", outcome
    assert excerpt in outcome["message"], outcome["message"]
    assert_growth(outcome, legitimate)


def idx_header(shape, type_code: int = 0x08) -> bytes:
    return bytes([0, 0, type_code, len(shape)]) + struct.pack(f">{len(shape)}i", *shape)


def gzip_file(path, header: bytes, zeros: int):
    """``header`` then ``zeros`` zero bytes, gzip-compressed (about a thousandth of that on disk)."""
    with gzip.open(path, "wb") as stream:
        stream.write(header)
        chunk = bytes(MiB)
        for start in range(0, zeros, MiB):
            stream.write(chunk[: min(MiB, zeros - start)])
    return path


def sparse_file(path, header: bytes, zeros: int):
    """``header`` then ``zeros`` zero bytes that take no room on disk."""
    with open(path, "wb") as handle:
        handle.write(header)
        handle.truncate(len(header) + zeros)
    return path


# ---- special files ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "directory"])
def test_read_idx_refuses_anything_but_a_regular_file_at_once(kind, tmp_path):
    path = special_file(kind, tmp_path, "train-images-idx3-ubyte")
    outcome = read_in_child(path)
    assert_refused(outcome, "is not a regular file")
    assert path in outcome["message"]


def test_load_mnist_refuses_a_fifo_in_place_of_an_mnist_file(tmp_path):
    for stem in ("train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        write_idx(tmp_path / stem, np.zeros((2, 28, 28) if "images" in stem else 2, dtype=np.uint8))
    os.mkfifo(tmp_path / "train-images-idx3-ubyte")
    outcome = read_in_child(tmp_path, "load_mnist")
    assert_refused(outcome, "is not a regular file (it is a FIFO (named pipe))")
    assert "train-images-idx3-ubyte" in outcome["message"]


# ---- announced sizes ------------------------------------------------------------------------------------
def test_a_gzip_stream_longer_than_its_header_declares_is_refused_without_inflating_it(tmp_path):
    path = gzip_file(tmp_path / "bomb.gz", idx_header((10,)), 48 * MiB)  # 48 KiB on disk
    assert_refused(read_in_child(path), "unexpected trailing bytes after the data of shape (10,)")


def test_a_gzip_stream_shorter_than_its_header_declares_costs_only_what_it_holds(tmp_path):
    path = gzip_file(tmp_path / "short.gz", idx_header((48 * MiB,)), MiB)
    assert_refused(read_in_child(path), "but only 1048576 bytes follow", legitimate=MiB)


@pytest.mark.parametrize("compressed", [True, False], ids=["gzip", "plain"])
def test_a_valid_file_costs_no_more_than_the_data_it_holds(compressed, tmp_path):
    size = 48 * MiB
    make = gzip_file if compressed else sparse_file
    path = make(tmp_path / "big-idx3-ubyte", idx_header((size // 1024, 32, 32)), size)
    outcome = read_in_child(path)
    assert outcome["error"] is None, outcome
    assert_growth(outcome, size)


def test_big_endian_data_is_swapped_in_place(tmp_path):
    size = 48 * MiB
    path = sparse_file(tmp_path / "floats-idx1", idx_header((size // 4,), type_code=0x0D), size)
    outcome = read_in_child(path)
    assert outcome["error"] is None, outcome
    assert_growth(outcome, size)


def test_a_declared_size_over_the_budget_is_refused_before_reading(tmp_path):
    path = sparse_file(tmp_path / "big-idx3-ubyte", idx_header((60_000, 28, 28)), 60_000 * 28 * 28)
    assert_refused(read_in_child(path, max_bytes=MiB), f"(47040000 data bytes), over the limit of {MiB} bytes")


@pytest.mark.parametrize("compressed", [True, False], ids=["gzip", "plain"])
@pytest.mark.parametrize("shape", [(2**16,) * 4, (2**31 - 1,) * 3], ids=["wraps_to_zero", "huge"])
def test_dimensions_whose_product_overflows_int64_are_refused(shape, compressed, tmp_path):
    # 2**64 elements wrap around to 0 in int64: an empty body would then "match" the header
    make = gzip_file if compressed else sparse_file
    path = make(tmp_path / "overflow", idx_header(shape, type_code=0x0E), 0)
    assert_refused(read_in_child(path), f"({math.prod(shape) * 8} data bytes), over the limit of")


@pytest.mark.parametrize("ndim", [MAX_DIMENSIONS + 1, 255])
def test_too_many_dimensions_are_refused(ndim, tmp_path):
    path = sparse_file(tmp_path / "many", idx_header((1,) * ndim), 1)
    assert_refused(read_in_child(path), f"declares {ndim} dimensions, over the limit of {MAX_DIMENSIONS}")


def test_write_idx_refuses_what_read_idx_would_refuse(tmp_path):
    from tinytorch_milestones.idx import IDXError

    with pytest.raises(IDXError, match=f"cannot store a {MAX_DIMENSIONS + 1}-dimensional array"):
        write_idx(tmp_path / "many", np.zeros((1,) * (MAX_DIMENSIONS + 1), dtype=np.uint8))


def test_load_digits_opens_only_a_regular_file(tmp_path, monkeypatch):
    from tinytorch_core.testing import time_limit

    from tinytorch_milestones import datasets

    fifo = tmp_path / "digits.npz"
    os.mkfifo(fifo)
    monkeypatch.setattr(datasets, "DIGITS_PATH", fifo)
    with time_limit(10.0), pytest.raises(datasets.DataError, match="is not a regular file"):
        datasets.load_digits()
    monkeypatch.setattr(datasets, "DIGITS_PATH", tmp_path / "absent.npz")
    with pytest.raises(datasets.DataError, match="is missing"):
        datasets.load_digits()
