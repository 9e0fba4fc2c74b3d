"""A validating reader for IDX files (the format MNIST is distributed in) and an MNIST loader.

The IDX header is: two zero bytes, a type code, the number of dimensions, then one
big-endian int32 per dimension; the data follows, big-endian. Every deviation (wrong
magic, unknown type, a file shorter or longer than its header says) raises ``IDXError``
naming the file and what was expected. Nothing is ever downloaded: the MNIST loader
reads files the user already has, plain or ``.gz``.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

#: IDX type code -> NumPy dtype (big-endian where it matters)
IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"


class IDXError(ValueError):
    """A file that is not a well-formed IDX file (or not the MNIST file it should be)."""


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as fh:
        head = fh.read(2)
    try:
        if head == _GZIP_MAGIC:
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError) as exc:  # a truncated .gz surfaces here
        raise IDXError(f"{path}: cannot be read as {'gzip' if head == _GZIP_MAGIC else 'a file'}: {exc}") from exc


def read_idx(path) -> np.ndarray:
    """Read one IDX file (plain or gzip-compressed) into a native-endian NumPy array."""
    path = Path(path)
    if not path.is_file():
        raise IDXError(f"{path}: no such file")
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise IDXError(f"{path}: {len(raw)} bytes is too short for an IDX header (4 bytes at least)")
    zero0, zero1, type_code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero0 != 0 or zero1 != 0:
        raise IDXError(
            f"{path}: bad magic number 0x{raw[:4].hex()}; an IDX file starts with two zero bytes, "
            "a type code and the number of dimensions (e.g. 0x00000803 for MNIST images)"
        )
    if type_code not in IDX_TYPES:
        known = ", ".join(f"0x{k:02X}" for k in IDX_TYPES)
        raise IDXError(f"{path}: unknown IDX type code 0x{type_code:02X} (known: {known})")
    if ndim == 0:
        raise IDXError(f"{path}: the header declares 0 dimensions")
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise IDXError(
            f"{path}: truncated header: {ndim} dimensions need {header_size} header bytes, "
            f"the file has {len(raw)}"
        )
    dims = struct.unpack(f">{ndim}i", raw[4:header_size])
    if any(d < 0 for d in dims):
        raise IDXError(f"{path}: negative dimension in header {dims}")
    dtype = IDX_TYPES[type_code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    found = len(raw) - header_size
    if found < expected:
        raise IDXError(
            f"{path}: truncated: the header says shape {tuple(dims)} of {dtype.name} "
            f"({expected} data bytes), but only {found} bytes follow"
        )
    if found > expected:
        raise IDXError(
            f"{path}: {found - expected} unexpected trailing bytes after the data of shape {tuple(dims)}"
        )
    data = np.frombuffer(raw, dtype=dtype, count=int(np.prod(dims, dtype=np.int64)), offset=header_size)
    return data.reshape(dims).astype(dtype.newbyteorder("="), copy=True)


def write_idx(path, array) -> Path:
    """Write ``array`` as an IDX file (gzip-compressed if the name ends in ``.gz``)."""
    path = Path(path)
    array = np.asarray(array)
    codes = {v.newbyteorder("=").str.lstrip("<>=|"): k for k, v in IDX_TYPES.items()}
    key = array.dtype.newbyteorder("=").str.lstrip("<>=|")
    if key not in codes:
        raise IDXError(f"write_idx: dtype {array.dtype} has no IDX type code")
    code = codes[key]
    if array.ndim == 0 or array.ndim > 255:
        raise IDXError(f"write_idx: cannot store a {array.ndim}-dimensional array")
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
        if candidate.is_file():
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
