"""A validating reader for CIFAR-10's *binary* version, and the loader of its train/test split.

Each file of the binary version (``data_batch_1.bin`` .. ``data_batch_5.bin``, ``test_batch.bin``)
is a sequence of records of 3073 bytes: one label byte (0..9), then the 32x32 image's red, green
and blue planes, 1024 bytes each, row by row. The pickled Python version is never read
(unpickling runs code from the file). The files are untrusted, like the IDX files: only regular
files are opened, the size is checked (a whole number of records, at most ``max_records``)
before anything is allocated, the data is read into the result array itself, and every label
must be a class id.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tinytorch_core.files import open_regular_file

from .datasets import DataError, ImageSplit

CHANNELS, SIDE, CLASSES = 3, 32, 10
RECORD_BYTES = 1 + CHANNELS * SIDE * SIDE
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
#: records one file may hold (CIFAR-10's files hold 10,000 each)
DEFAULT_MAX_RECORDS = 50_000
_CHUNK = 1 << 20


class CIFARError(DataError):
    """A file that is not a well-formed CIFAR-10 binary batch."""


def read_cifar_batch(path, *, max_records: int = DEFAULT_MAX_RECORDS) -> tuple[np.ndarray, np.ndarray]:
    """One binary batch file: ``(images, labels)``, images uint8 (N, 3, 32, 32), labels int64 (N,)."""
    path = Path(path)
    try:
        handle = open_regular_file(path, error=CIFARError, context="read_cifar_batch: ")
    except (FileNotFoundError, NotADirectoryError):
        raise CIFARError(f"{path}: no such file") from None
    with handle:
        size = os.fstat(handle.fileno()).st_size
        records = _checked_record_count(path, size, max_records)
        raw = np.empty(size, dtype=np.uint8)
        view, got = memoryview(raw), 0
        while got < size:  # into the result itself, in chunks
            n = handle.readinto(view[got:got + _CHUNK])
            if not n:
                raise CIFARError(f"{path}: the file shrank while being read ({got} of {size} bytes)")
            got += n
    table = raw.reshape(records, RECORD_BYTES)
    labels = table[:, 0].astype(np.int64)
    bad = np.flatnonzero(labels >= CLASSES)
    if bad.size:
        raise CIFARError(f"{path}: record {bad[0]} has label {labels[bad[0]]}; CIFAR-10 labels are 0..9 "
                         "(is this the CIFAR-100 or the pickled version?)")
    return table[:, 1:].reshape(records, CHANNELS, SIDE, SIDE), labels


def _checked_record_count(path: Path, size: int, max_records: int) -> int:
    if size == 0:
        raise CIFARError(f"{path}: the file is empty; a CIFAR-10 binary batch holds records of {RECORD_BYTES} bytes")
    if size % RECORD_BYTES:
        raise CIFARError(
            f"{path}: {size} bytes is not a whole number of {RECORD_BYTES}-byte records (1 label byte + 3x32x32 "
            f"pixels); {size // RECORD_BYTES} records and {size % RECORD_BYTES} bytes over. Is it the binary version?"
        )
    records = size // RECORD_BYTES
    if records > max_records:
        raise CIFARError(f"{path}: {records:,} records, over the limit of {max_records:,} for one batch file")
    return records


def load_cifar10(directory) -> ImageSplit:
    """CIFAR-10 from the binary files in ``directory``: every ``data_batch_*.bin`` present (at
    least one) for training, ``test_batch.bin`` for testing; images float32 (N, 3, 32, 32) in [0, 1]."""
    directory = Path(directory)
    train_paths = [directory / name for name in TRAIN_FILES if (directory / name).exists()]
    if not train_paths or not (directory / TEST_FILE).exists():
        raise CIFARError(f"{directory}: needs data_batch_1.bin (.. data_batch_5.bin) and {TEST_FILE}, the "
                         "binary version of CIFAR-10 (cifar-10-binary.tar.gz, unpacked)")
    batches = [read_cifar_batch(p) for p in train_paths]
    x_test, y_test = read_cifar_batch(directory / TEST_FILE)
    return ImageSplit(
        f"CIFAR-10 ({directory}, {len(train_paths)} training batch file(s))",
        np.concatenate([x for x, _ in batches]).astype(np.float32) / np.float32(255),
        np.concatenate([y for _, y in batches]),
        x_test.astype(np.float32) / np.float32(255),
        y_test,
    )
