"""A validating reader for IDX files (the format MNIST is distributed in) and an MNIST loader.

The IDX header is: two zero bytes, a type code, the number of dimensions, then one
big-endian int32 per dimension; the data follows, big-endian. Every deviation (wrong
magic, unknown type, a file shorter or longer than its header says) raises ``IDXError``
naming the file and what was expected. Nothing is ever downloaded: the MNIST loader
reads files the user already has, plain or ``.gz``.

The files are untrusted, so ``read_idx`` reads the header first and checks what it announces
(at most ``MAX_DIMENSIONS`` dimensions, a data size within ``max_bytes``) before it allocates
the result; it then reads the data in chunks straight into the result and stops as soon as the
file (or the gzip stream) holds more or less than announced. Only regular files are opened: a
FIFO, a device or a directory is refused at once.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from tinytorch_core.checks import positive_int
from tinytorch_core.files import checked_path, open_regular_file

#: IDX type code -> NumPy dtype (big-endian where it matters)
IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
#: the most dimensions an IDX file may declare (its header has room for 255; MNIST uses 1 and 3)
MAX_DIMENSIONS = 8
#: default limit on the data one IDX file may declare (MNIST's largest file holds 47 MB)
DEFAULT_MAX_BYTES = 2**30

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20  # bytes read (or inflated) at a time


class IDXError(ValueError):
    """A file that is not a well-formed IDX file (or not the MNIST file it should be)."""


def read_idx(path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Read one IDX file (plain or gzip-compressed) into a native-endian NumPy array.

    ``max_bytes`` bounds the data the header may declare; anything malformed raises ``IDXError``.
    """
    path = Path(checked_path(path, "read_idx"))
    max_bytes = positive_int(max_bytes, "max_bytes", "read_idx")  # NaN would switch the limit off
    try:
        handle = open_regular_file(path, error=IDXError, context="read_idx: ")
    except (FileNotFoundError, NotADirectoryError):
        raise IDXError(f"{path}: no such file") from None
    with handle:
        compressed = handle.read(2) == _GZIP_MAGIC
        handle.seek(0)
        try:
            if compressed:
                with gzip.GzipFile(fileobj=handle, mode="rb") as stream:
                    return _read_idx_stream(stream, path, max_bytes, file_size=None)
            return _read_idx_stream(handle, path, max_bytes, file_size=os.fstat(handle.fileno()).st_size)
        except (OSError, EOFError, zlib.error) as exc:  # a truncated or corrupted .gz surfaces here
            raise IDXError(f"{path}: cannot be read as {'gzip' if compressed else 'a file'}: {exc}") from exc


def _read_idx_stream(stream, path: Path, max_bytes: int, file_size: int | None) -> np.ndarray:
    """Header, checks, then data into the result: ``file_size`` is known for a plain file (so a
    wrong length is refused before reading) and None for a gzip stream (read at most one byte
    more than declared)."""
    # 1. the header, checked before anything is allocated
    dtype, shape, header_size = _read_header(stream, path, max_bytes)
    nbytes = math.prod(shape) * dtype.itemsize
    described = f"the header says shape {shape} of {dtype.name} ({nbytes} data bytes)"
    if file_size is not None:
        found = file_size - header_size
        if found < nbytes:
            raise IDXError(f"{path}: truncated: {described}, but only {found} bytes follow")
        if found > nbytes:
            raise IDXError(f"{path}: {found - nbytes} unexpected trailing bytes after the data of shape {shape}")

    # 2. the data, read in chunks into the result array itself
    raw = np.empty(nbytes, dtype=np.uint8)
    view, got = memoryview(raw), 0
    while got < nbytes:
        n = stream.readinto(view[got : got + _CHUNK])
        if not n:
            raise IDXError(f"{path}: truncated: {described}, but only {got} bytes follow")
        got += n
    if stream.read(1):  # for gzip this also checks the stream's CRC and length
        raise IDXError(
            f"{path}: unexpected trailing bytes after the data of shape {shape} (the file holds more than "
            "its header declares)"
        )

    # 3. native byte order, swapped in place rather than copied
    values = raw.view(dtype).reshape(shape)
    if not dtype.isnative:
        values = values.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return values


def _read_header(stream, path: Path, max_bytes: int) -> tuple[np.dtype, tuple, int]:
    """``(dtype, shape, header size)`` of an IDX header, every field checked, the declared data
    size computed with Python integers (no overflow) and kept within ``max_bytes``."""
    magic = stream.read(4)
    if len(magic) < 4:
        raise IDXError(f"{path}: {len(magic)} bytes is too short for an IDX header (4 bytes at least)")
    zero0, zero1, type_code, ndim = magic
    if zero0 != 0 or zero1 != 0:
        raise IDXError(
            f"{path}: bad magic number 0x{magic.hex()}; an IDX file starts with two zero bytes, "
            "a type code and the number of dimensions (e.g. 0x00000803 for MNIST images)"
        )
    if type_code not in IDX_TYPES:
        known = ", ".join(f"0x{k:02X}" for k in IDX_TYPES)
        raise IDXError(f"{path}: unknown IDX type code 0x{type_code:02X} (known: {known})")
    if ndim == 0:
        raise IDXError(f"{path}: the header declares 0 dimensions")
    if ndim > MAX_DIMENSIONS:
        raise IDXError(f"{path}: the header declares {ndim} dimensions, over the limit of {MAX_DIMENSIONS} for an IDX file")
    header_size = 4 + 4 * ndim
    sizes = stream.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise IDXError(
            f"{path}: truncated header: {ndim} dimensions need {header_size} header bytes, "
            f"the file has {4 + len(sizes)}"
        )
    shape = struct.unpack(f">{ndim}i", sizes)
    if any(d < 0 for d in shape):
        raise IDXError(f"{path}: negative dimension in header {shape}")
    dtype = IDX_TYPES[type_code]
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > max_bytes:
        raise IDXError(
            f"{path}: the header says shape {shape} of {dtype.name} ({nbytes} data bytes), over the limit "
            f"of {max_bytes} bytes (pass max_bytes= to allow more)"
        )
    return dtype, shape, header_size


def write_idx(path, array) -> Path:
    """Write ``array`` as an IDX file (gzip-compressed if the name ends in ``.gz``)."""
    path = Path(path)
    array = np.asarray(array)
    codes = {v.newbyteorder("=").str.lstrip("<>=|"): k for k, v in IDX_TYPES.items()}
    key = array.dtype.newbyteorder("=").str.lstrip("<>=|")
    if key not in codes:
        raise IDXError(f"write_idx: dtype {array.dtype} has no IDX type code")
    code = codes[key]
    if array.ndim == 0 or array.ndim > MAX_DIMENSIONS:
        raise IDXError(
            f"write_idx: cannot store a {array.ndim}-dimensional array (IDX files here have 1 to {MAX_DIMENSIONS} dimensions)"
        )
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as fh:
            fh.write(payload)
    else:
        path.write_bytes(payload)
    return path


MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def _find(directory: Path, stem: str) -> Path:
    # both spellings circulate: 'train-images-idx3-ubyte' and 'train-images.idx3-ubyte'
    dotted = stem.replace("-idx", ".idx")
    candidates = [directory / f"{name}{ext}" for name in (stem, dotted) for ext in ("", ".gz")]
    for candidate in candidates:
        if candidate.exists():  # a FIFO or a directory in its place is refused by read_idx, by name
            return candidate
    tried = ", ".join(c.name for c in candidates)
    raise IDXError(f"{directory}: no MNIST file '{stem}' (looked for {tried}); nothing is downloaded")


def load_mnist(directory) -> dict:
    """The four MNIST arrays from IDX files in ``directory``: images (N, 28, 28) uint8, labels (N,)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise IDXError(f"--mnist-dir {directory}: not a directory")
    arrays = {key: read_idx(_find(directory, stem)) for key, stem in MNIST_FILES.items()}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or x.dtype != np.uint8:
            raise IDXError(f"{directory}: {split} images must be a 3-D uint8 array (N, rows, cols), got "
                           f"{x.ndim}-D {x.dtype}")
        if y.ndim != 1 or y.dtype != np.uint8:
            raise IDXError(f"{directory}: {split} labels must be a 1-D uint8 array, got {y.ndim}-D {y.dtype}")
        if len(x) != len(y):
            raise IDXError(f"{directory}: {len(x)} {split} images but {len(y)} {split} labels")
        if len(y) and y.max() > 9:
            raise IDXError(f"{directory}: {split} label {int(y.max())} is out of range 0..9")
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise IDXError(
            f"{directory}: train images are {arrays['x_train'].shape[1:]} but test images are "
            f"{arrays['x_test'].shape[1:]}"
        )
    return arrays
