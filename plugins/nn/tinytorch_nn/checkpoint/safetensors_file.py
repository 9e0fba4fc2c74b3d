"""The safetensors format: its header checked as untrusted input, its arrays read by the package.

A safetensors file has three parts::

    8 bytes     N, the header's length (an unsigned little-endian integer)
    N bytes     the header, a JSON object: {name: {"dtype": "F32", "shape": [2, 3],
                "data_offsets": [begin, end]}, ..., "__metadata__": {text: text}}
    the rest    the arrays' bytes, back to back; [begin, end) counts from the end of the header

``read_header`` checks everything the header announces against the file before one byte of array
data is read or one array allocated: the header's length (at most ``MAX_HEADER_BYTES``, and no
longer than the file), the number of JSON values in it (counted before it is parsed, because
parsing costs up to 50 bytes of memory per value), names that are dotted identifiers, dtypes from
``DTYPES``, sizes that match the shapes, offsets that tile the data exactly (no overlap, no gap,
nothing missing or left over) and a total under ``max_bytes``.

``read_arrays`` then lets ``safetensors.safe_open(..., framework="np")`` read them, with its
``pread`` backend: each array is read straight into its own memory. (The default ``mmap`` backend
maps the file, and mapped pages count as the process's memory too: a load would cost twice the data.)
"""

from __future__ import annotations

import json
import math
import os
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from safetensors import safe_open

from .errors import MAX_ENTRIES, CheckpointError, name_problem

__all__ = ["DTYPES", "MAX_HEADER_BYTES", "MAX_HEADER_VALUES", "Entry", "header_problem", "read_arrays", "read_header"]

#: the safetensors dtypes read and written, and their NumPy dtypes (the format is little-endian)
DTYPES = {
    "BOOL": np.dtype("?"), "U8": np.dtype("<u1"), "I8": np.dtype("<i1"), "U16": np.dtype("<u2"),
    "I16": np.dtype("<i2"), "U32": np.dtype("<u4"), "I32": np.dtype("<i4"), "U64": np.dtype("<u8"),
    "I64": np.dtype("<i8"), "F16": np.dtype("<f2"), "F32": np.dtype("<f4"), "F64": np.dtype("<f8"),
}
#: the longest header read, and the most JSON values in it (room for about MAX_ENTRIES arrays)
MAX_HEADER_BYTES = 2**20
MAX_HEADER_VALUES = 40_000
MAX_DIMS = 64  # NumPy's own limit
_LENGTH_BYTES = 8
_ENTRY_FIELDS = {"dtype", "shape", "data_offsets"}


@dataclass(frozen=True)
class Entry:
    """One array as the header announces it."""

    name: str
    dtype: np.dtype
    shape: tuple
    begin: int  # where its bytes start and end, counted from the end of the header
    end: int


@dataclass(frozen=True)
class Header:
    entries: list  # of Entry, in the order of their data in the file
    metadata: dict  # text -> text


def header_problem(length: int, text: bytes) -> str | None:
    """Why a header of ``length`` bytes reading ``text`` is refused before it is parsed, or None.
    (``save`` asks too, so that it never writes what ``load`` would refuse.)"""
    if length > MAX_HEADER_BYTES:
        return f"announces a safetensors header of {length} bytes, over the limit of {MAX_HEADER_BYTES} bytes"
    # every JSON value but the first follows one of these bytes (names and numbers cannot contain
    # them; counting those inside strings too only overestimates)
    values = 1 + sum(text.count(mark) for mark in (b",", b":", b"[", b"{"))
    if values > MAX_HEADER_VALUES:
        return f"its header holds about {values} JSON values, over the limit of {MAX_HEADER_VALUES}"
    return None


# ---- the header --------------------------------------------------------------------------------------
def read_header(handle, fail, max_bytes: int) -> Header:
    """The validated header of the open file ``handle``; ``fail(why)`` raises."""
    file_size = os.fstat(handle.fileno()).st_size
    length = _header_length(handle, file_size, fail)
    text = handle.read(length)
    problem = header_problem(length, text)
    if problem:
        fail(problem)
    fields = _parse_json_object(text, fail)
    metadata = _metadata(fields.pop("__metadata__", {}), fail)
    if len(fields) > MAX_ENTRIES:
        fail(f"its header announces {len(fields)} arrays, over the limit of {MAX_ENTRIES} arrays a checkpoint may hold")
    entries = sorted((_entry(name, info, fail) for name, info in fields.items()), key=lambda e: (e.begin, e.end))
    _check_data_is_tiled(entries, file_size - _LENGTH_BYTES - length, max_bytes, fail)
    return Header(entries, metadata)


def _header_length(handle, file_size: int, fail) -> int:
    """N from the first 8 bytes, checked against the limit and the file's size before it is read."""
    if file_size < _LENGTH_BYTES:
        fail(f"is not a checkpoint: {file_size} bytes is too short for a safetensors file (truncated?)")
    length = int.from_bytes(handle.read(_LENGTH_BYTES), "little")
    if length > MAX_HEADER_BYTES:
        fail(
            f"is not a checkpoint: its first 8 bytes announce a safetensors header of {length} bytes, "
            f"over the limit of {MAX_HEADER_BYTES} bytes (not a safetensors file, or damaged)"
        )
    if length > file_size - _LENGTH_BYTES:
        fail(
            f"is not a checkpoint: it announces a safetensors header of {length} bytes but holds "
            f"{file_size - _LENGTH_BYTES} bytes after the length (truncated, or not a safetensors file)"
        )
    return length


def _parse_json_object(text: bytes, fail) -> dict:
    def refuse_repeats(pairs):
        keys = [key for key, _ in pairs]
        if len(set(keys)) != len(keys):
            repeated = next(k for k in keys if keys.count(k) > 1)
            fail(f"its header names an entry twice ({repeated[:80]!r})")
        return dict(pairs)

    if not text.startswith(b"{"):
        fail("its safetensors header is not a JSON object")
    try:
        fields = json.loads(text.decode("utf-8"), object_pairs_hook=refuse_repeats)
    except CheckpointError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        fail(f"its safetensors header is not valid JSON ({type(exc).__name__}: {str(exc)[:120]})")
    if not isinstance(fields, dict):
        fail("its safetensors header is not a JSON object")
    return fields


def _metadata(metadata, fail) -> dict:
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        fail("its header's __metadata__ is not a map of text to text")
    return metadata


def _entry(name: str, info, fail) -> Entry:
    """One header field, checked on its own: name, dtype, shape, and a size that fits the offsets."""
    problem = name_problem(name)
    if problem:
        fail(f"entry name {name[:80]!r} {problem}")
    if not isinstance(info, dict) or set(info) != _ENTRY_FIELDS:
        fail(f"entry {name!r} is not described by exactly 'dtype', 'shape' and 'data_offsets'")
    code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if code not in DTYPES:
        fail(f"entry {name!r} has dtype {str(code)[:20]!r}, expected one of {', '.join(DTYPES)} (plain numeric or bool arrays)")
    if not (isinstance(shape, list) and len(shape) <= MAX_DIMS and all(_is_count(s) for s in shape)):
        fail(f"entry {name!r} has an invalid shape {str(shape)[:80]} (at most {MAX_DIMS} sizes >= 0)")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_count, offsets)) and offsets[0] <= offsets[1]):
        fail(f"entry {name!r} has invalid data_offsets {str(offsets)[:80]} (expected [begin, end], 0 <= begin <= end)")
    dtype = DTYPES[code]
    if math.prod(s for s in shape if s) * dtype.itemsize >= 2**63:  # NumPy refuses it, even with a 0 size
        fail(f"entry {name!r} has a shape {str(shape)[:80]} no array can have (over 2**63 bytes without its 0 sizes)")
    nbytes = math.prod(shape) * dtype.itemsize  # Python integers: no overflow
    if nbytes != offsets[1] - offsets[0]:
        fail(
            f"entry {name!r}: its header announces shape {tuple(shape)} of {code} ({nbytes} bytes) but its "
            f"offsets hold {offsets[1] - offsets[0]} bytes"
        )
    return Entry(name, dtype, tuple(shape), offsets[0], offsets[1])


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_data_is_tiled(entries: list, data_size: int, max_bytes: int, fail) -> None:
    """The arrays, sorted by offset, must cover the data exactly: each one starts where the previous
    one ends (no overlap, no gap), and the last ends where the file does."""
    position = 0
    for entry in entries:
        if entry.begin < position:
            fail(f"entry {entry.name!r} overlaps the array before it (its data starts at {entry.begin}, before {position})")
        if entry.begin > position:
            fail(f"its arrays leave a gap of {entry.begin - position} bytes before entry {entry.name!r}")
        position = entry.end
    if position > max_bytes:
        fail(f"its arrays add up to {position} bytes, over the limit of {max_bytes} bytes per file")
    if position != data_size:
        fail(
            f"its header announces {position} bytes of array data but the file holds {data_size} "
            "(truncated, or bytes left over)"
        )


# ---- the arrays --------------------------------------------------------------------------------------
def read_arrays(handle, where: str, header: Header, fail) -> "OrderedDict[str, np.ndarray]":
    """Every array of the checked ``header``, in file order, read by safetensors from the open file."""
    arrays = OrderedDict()
    with safe_open(_path_of_open_file(handle, where), framework="np", backend="pread") as reader:
        for entry in header.entries:
            array = reader.get_tensor(entry.name)
            if array.dtype != entry.dtype or array.shape != entry.shape:  # the file changed meanwhile
                fail(f"entry {entry.name!r} changed while it was read")
            if entry.dtype.kind == "b" and array.size and array.view(np.uint8).max() > 1:
                fail(f"entry {entry.name!r} is a bool array holding bytes other than 0 and 1 (corrupted)")
            arrays[entry.name] = array
    return arrays


def _path_of_open_file(handle, where: str) -> str:
    """A path naming the very file ``handle`` has open (and whose header was checked), so that
    safetensors cannot open another one put in its place; the path itself where there is none."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        path = f"{folder}/{handle.fileno()}"
        if os.path.exists(path):
            return path
    return where
