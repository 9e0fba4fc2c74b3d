"""Reading the ``.npz`` checkpoints of earlier TinyTorch versions, as untrusted input.

``tt.io.save`` writes safetensors now; ``tt.io.load`` still reads the ``.npz`` archives it used to
write (and those of ``np.savez``) through this reader, so that old checkpoints keep working. It
reads the zip end record and scans the central directory itself before ``zipfile`` builds its
directory, and checks every ``.npy`` header before allocating anything: at most ``MAX_ENTRIES``
entries, names that are dotted identifiers, dtypes plain numeric or bool, the size each header
announces equal to the bytes the entry holds, and the total under the limit. The data is then
inflated in 1 MiB chunks straight into each result array, so loading costs the data the file really
holds and little more. Nothing is unpickled and no code runs.

To convert an old checkpoint: ``tt.io.save(tt.io.load("model.npz"), "model.safetensors")``.
"""

from __future__ import annotations

import io
import math
import os
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from .errors import MAX_ENTRIES, MAX_NAME_LENGTH, CheckpointError, name_problem

__all__ = ["NPZ_MAGIC", "read_npz"]

#: the first bytes of a zip archive: a local file header, a central directory record, or the end
#: record of an empty archive. (Read as a safetensors header length, each is over 30 MB, over the
#: limit: no safetensors file that load accepts starts with them.)
NPZ_MAGIC = (b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06")
_NUMERIC_KINDS = "biuf"
_MAX_HEADER = 10_000  # bytes of one .npy header (NumPy's own default limit)

# A checkpoint is read in four steps, and each step checks what the file announces before memory is
# spent on the next one:
#   1. the end record at the end of the zip file: how many entries, where the central directory is;
#   2. the central directory, one record at a time: every entry's name and the size of its extra
#      fields, before zipfile builds the whole directory in memory;
#   3. each member's .npy header: its own length, then dtype and shape, against the member's size
#      and the budget;
#   4. each member's data, inflated in bounded chunks straight into its result array.

#: bytes read (or inflated) at a time: beyond the result arrays, loading holds about this much
_CHUNK = 1 << 20
#: bytes of extra fields and comment one central-directory record may carry (zip tools write a
#: few dozen; zipfile keeps them in memory for every entry)
MAX_RECORD_EXTRA = 1024

_END_RECORD = struct.Struct("<4s4H2LH")  # end of central directory (22 bytes), then a comment
_ZIP64_LOCATOR = struct.Struct("<4sLQL")  # 20 bytes right before the end record
_ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")  # 56 bytes right before the locator
_CENTRAL_RECORD = struct.Struct("<4s4B4HL2L5H2L")  # 46 bytes, then name, extra fields, comment
_END_SIGNATURE, _LOCATOR_SIGNATURE, _ZIP64_END_SIGNATURE = b"PK\x05\x06", b"PK\x06\x07", b"PK\x06\x06"
_CENTRAL_SIGNATURE = b"PK\x01\x02"
_COMMENT_WINDOW = 1 << 16  # how far before the end record zipfile looks for it (comments < 64 KiB)


@dataclass(frozen=True)
class _Directory:
    """The central directory as the end record describes it."""

    entries: int  # how many entries the end record announces
    start: int  # where the directory starts in the file
    size: int  # its length in bytes


def read_npz(handle, where: str, max_bytes: int) -> "OrderedDict[str, np.ndarray]":
    def fail(why: str):
        raise CheckpointError(f"load: {where!r}: {why}")

    # steps 1 and 2: the end record and the central directory, checked before zipfile reads them
    directory = _find_directory(handle, fail)
    _scan_directory(handle, directory, fail)
    handle.seek(0)
    state: OrderedDict[str, np.ndarray] = OrderedDict()
    total = 0
    with zipfile.ZipFile(handle) as archive:
        infos = archive.infolist()
        if len(infos) != directory.entries:  # zipfile found another directory than the one scanned
            fail(f"its end record announces {directory.entries} entries but zipfile finds {len(infos)}")
        for info in infos:
            name = _entry_name(info.filename, fail)
            if name in state:
                fail(f"entry {name!r} appears twice")
            if info.flag_bits & 0x1:
                fail(f"entry {name!r} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                fail(f"entry {name!r} uses compression method {info.compress_type}; only stored or deflated entries are read")
            budget = max_bytes - total
            if info.file_size > budget + _MAX_HEADER:
                fail(f"entry {name!r} announces {info.file_size} bytes, over the limit of {max_bytes} bytes per file")
            # steps 3 and 4
            array = _read_entry(archive, info, name, budget, max_bytes, fail)
            total += array.nbytes
            state[name] = array
    return state


def _entry_name(member: str, fail) -> str:
    """The state-dict name of the zip member ``member`` (``blocks.0.weight.npy`` -> ``blocks.0.weight``)."""
    if not member.endswith(".npy"):
        fail(f"entry {member[:80]!r} is not a .npy array")
    name = member[:-4]
    problem = name_problem(name)
    if problem:
        fail(f"entry name {name[:80]!r} {problem}")
    return name


# ---- step 1: the end record ------------------------------------------------------------------------
def _find_directory(handle, fail) -> _Directory:
    """Locate the central directory from the end record (and its ZIP64 version), the way zipfile
    does, reading only the last 64 KiB of the file; refuse more entries than ``MAX_ENTRIES``."""
    file_size = handle.seek(0, os.SEEK_END)
    tail_start = max(0, file_size - (_COMMENT_WINDOW + _END_RECORD.size + _ZIP64_LOCATOR.size + _ZIP64_END_RECORD.size))
    handle.seek(tail_start)
    tail = handle.read()

    # the end record closes the file when there is no archive comment; otherwise it is the last
    # one in the final 64 KiB (zipfile looks in the same two places, in the same order)
    at = len(tail) - _END_RECORD.size
    if not (at >= 0 and tail[at : at + 4] == _END_SIGNATURE and tail[-2:] == b"\0\0"):
        at = tail.rfind(_END_SIGNATURE, max(0, len(tail) - _COMMENT_WINDOW - _END_RECORD.size))
    if at < 0 or at + _END_RECORD.size > len(tail):
        handle.seek(0)
        if handle.read(6) == b"\x93NUMPY":
            fail("holds a single array, not a .npz archive of named arrays (was it written with tinytorch_nn.save?)")
        fail("is not a checkpoint archive (not a zip file, or truncated)")
    end = _END_RECORD.unpack_from(tail, at)
    entries, size = end[4], end[5]

    # a ZIP64 end record, found through the locator just before the end record, replaces the
    # 16- and 32-bit fields (numbers of entries over 65,535, directories over 4 GiB)
    zip64_bytes = 0
    locator_at = at - _ZIP64_LOCATOR.size
    zip64_at = locator_at - _ZIP64_END_RECORD.size
    if locator_at >= 0 and tail[locator_at : locator_at + 4] == _LOCATOR_SIGNATURE:
        _, disk, _, disks = _ZIP64_LOCATOR.unpack_from(tail, locator_at)
        if disk != 0 or disks > 1:
            fail("spans several disks")
        if zip64_at >= 0 and tail[zip64_at : zip64_at + 4] == _ZIP64_END_SIGNATURE:
            zip64 = _ZIP64_END_RECORD.unpack_from(tail, zip64_at)
            entries, size = zip64[7], zip64[8]
            zip64_bytes = _ZIP64_LOCATOR.size + _ZIP64_END_RECORD.size

    if entries > MAX_ENTRIES:
        fail(f"its end record announces {entries} entries, over the limit of {MAX_ENTRIES} entries a checkpoint may hold")
    # the directory ends where the (ZIP64) end record begins, as zipfile computes it
    start = tail_start + at - zip64_bytes - size
    if start < 0:
        fail(f"its end record announces a central directory of {size} bytes, more than the file holds (truncated)")
    return _Directory(entries=entries, start=start, size=size)


# ---- step 2: the central directory -----------------------------------------------------------------
def _scan_directory(handle, directory: _Directory, fail) -> None:
    """Read the central directory one record at a time, as zipfile will, holding nothing: refuse
    more records than the end record announced, names that are not entry names, and oversized
    extra fields, so that zipfile only ever builds a directory that is small and well formed."""
    handle.seek(directory.start)
    scanned = records = 0
    while scanned < directory.size:  # zipfile's loop: records until the announced size is used up
        records += 1
        if records > directory.entries:
            fail(f"its central directory holds more than the {directory.entries} entries its end record announces")
        record = handle.read(_CENTRAL_RECORD.size)
        if len(record) != _CENTRAL_RECORD.size or record[:4] != _CENTRAL_SIGNATURE:
            fail("its central directory is truncated or damaged")
        name_length, extra_length, comment_length = _CENTRAL_RECORD.unpack(record)[12:15]
        if name_length > MAX_NAME_LENGTH + 4:
            fail(f"entry {records} has a name of {name_length} bytes, over the limit of {MAX_NAME_LENGTH} characters")
        if extra_length + comment_length > MAX_RECORD_EXTRA:
            fail(
                f"entry {records} carries extra fields and comment of {extra_length + comment_length} bytes, "
                f"over the limit of {MAX_RECORD_EXTRA} bytes"
            )
        _entry_name(handle.read(name_length).decode("ascii", "replace"), fail)  # names are ASCII identifiers
        handle.seek(extra_length + comment_length, os.SEEK_CUR)
        scanned += _CENTRAL_RECORD.size + name_length + extra_length + comment_length
    if records != directory.entries:
        fail(f"its end record announces {directory.entries} entries but its central directory holds {records}")


# ---- steps 3 and 4: one member ---------------------------------------------------------------------
def _read_entry(archive, info, name: str, budget: int, max_bytes: int, fail) -> np.ndarray:
    """The array of one member: header checked against the member's size and the budget, then
    the data inflated in chunks into the array itself."""
    with archive.open(info) as member:
        shape, fortran_order, dtype = _read_npy_header(member, name, fail)
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in _NUMERIC_KINDS:
            fail(f"entry {name!r} has dtype {dtype}, expected a plain numeric or bool array (no objects, no pickles)")
        if not all(isinstance(s, int) and s >= 0 for s in shape):
            fail(f"entry {name!r} has an invalid shape {shape!r}")
        if math.prod(s for s in shape if s) * dtype.itemsize >= 2**63:  # NumPy refuses it, even with a 0 size
            fail(f"entry {name!r} has a shape {str(shape)[:80]} no array can have (over 2**63 bytes without its 0 sizes)")
        nbytes = math.prod(shape) * dtype.itemsize  # Python integers: no overflow
        data_bytes = info.file_size - member.tell()
        if nbytes != data_bytes:
            fail(
                f"entry {name!r}: its header announces shape {shape} of {dtype} ({nbytes} bytes) but the entry "
                f"holds {data_bytes} bytes of data (truncated or corrupted)"
            )
        if nbytes > budget:
            fail(f"its arrays add up to {max_bytes - budget + nbytes} bytes, over the limit of {max_bytes} bytes per file")

        raw = np.empty(nbytes, dtype=np.uint8)  # the result's own memory; nothing is held twice
        _read_exactly(member, memoryview(raw), name, fail)
        if member.read(1):  # reading to the end also makes zipfile verify the CRC-32
            fail(f"entry {name!r} holds more data than its header announces")
    if dtype.kind == "b" and nbytes and raw.max() > 1:
        fail(f"entry {name!r} is a bool array holding bytes other than 0 and 1 (corrupted)")
    values = raw.view(dtype)
    if not dtype.isnative:  # swap the bytes where they are instead of copying the array
        values = values.byteswap(inplace=True).view(dtype.newbyteorder("="))
    if fortran_order:
        return values.reshape(shape[::-1]).transpose()
    return values.reshape(shape)


def _read_npy_header(member, name: str, fail):
    """``(shape, fortran_order, dtype)`` from a .npy header, whose length is checked before it is
    read (NumPy's own reader reads an announced header of up to 4 GiB before it complains)."""
    magic = member.read(8)  # b"\x93NUMPY", then the major and minor version
    if len(magic) != 8 or magic[:6] != b"\x93NUMPY":
        fail(f"entry {name!r} is not a .npy array (no .npy magic at its start)")
    version = (magic[6], magic[7])
    if version not in ((1, 0), (2, 0)):
        fail(f"entry {name!r} uses .npy format version {version}; versions 1.0 and 2.0 are read")
    field_size = 2 if version == (1, 0) else 4  # the header's length: uint16, or uint32 in version 2.0
    length_field = member.read(field_size)
    if len(length_field) != field_size:
        fail(f"entry {name!r} ends inside its .npy header (truncated)")
    header_length = int.from_bytes(length_field, "little")
    if header_length > _MAX_HEADER:
        fail(f"entry {name!r} announces a .npy header of {header_length} bytes, over the limit of {_MAX_HEADER} bytes")
    header = member.read(header_length)
    # NumPy parses the header (a Python literal, never evaluated as code) once it is known to be short
    parse = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    return parse(io.BytesIO(length_field + header), max_header_size=_MAX_HEADER)


def _read_exactly(member, view: memoryview, name: str, fail) -> None:
    """Fill ``view`` from ``member`` in chunks of at most ``_CHUNK`` bytes (a single large read
    would first build the whole data as a second, temporary copy)."""
    got = 0
    while got < len(view):
        n = member.readinto(view[got : got + _CHUNK])
        if not n:
            fail(f"entry {name!r} ends after {got} of {len(view)} bytes (truncated)")
        got += n
