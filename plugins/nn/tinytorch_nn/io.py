"""Saving and loading state dicts as ``.npz`` archives: named numeric arrays only, never pickles.

A checkpoint may come from anywhere, so ``load`` treats it as untrusted input. It opens regular
files only (a FIFO or ``/dev/zero`` is refused at once), reads the zip end record and scans the
central directory itself before ``zipfile`` builds its directory, and checks every ``.npy``
header before allocating anything: at most ``MAX_ENTRIES`` entries, names that are dotted
identifiers (``blocks.0.attn.weight``), dtypes plain numeric or bool, the size each header
announces equal to the bytes the entry holds, and the total under a limit. The data is then
inflated in 1 MiB chunks straight into each result array, so loading costs the data the file
really holds and little more. Nothing is unpickled and no code runs. Whatever is malformed,
truncated or corrupted raises ``CheckpointError`` (a ``ValueError``) naming the file and the problem.

``save`` is atomic: it writes a temporary file in the target's directory, flushes and fsyncs it,
then renames it onto the target, so a crash mid-save leaves the previous checkpoint intact. A
save killed outright (SIGKILL, power loss) can leave its temporary file
(``.<name>.tmp-<host>-<pid>-<token>``) behind; the next save of the same target on the same host
removes such leftovers once the process that wrote them is gone.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import secrets
import socket
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from tinytorch_core import Tensor
from tinytorch_core.files import open_regular_file

__all__ = ["CheckpointError", "atomic_write", "load", "save"]

_NUMERIC_KINDS = "biuf"

#: default limit on the array data one checkpoint may announce (2 GiB); ``load(max_bytes=...)``
DEFAULT_MAX_BYTES = 2**31
#: at most this many arrays per checkpoint, and this many characters per name
MAX_ENTRIES = 100_000
MAX_NAME_LENGTH = 512
_MAX_HEADER = 10_000  # bytes of one .npy header (NumPy's own default limit)

# each dotted part is an identifier or a list index (ModuleList / Sequential children)
_NAME_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")


class CheckpointError(ValueError):
    """A checkpoint file that is malformed, truncated, corrupted or not a flat map of named
    numeric arrays. The message names the file and what is wrong with it."""


def name_problem(name) -> str | None:
    """Why ``name`` cannot be a state-dict entry name, or None when it can."""
    if not isinstance(name, str) or not name:
        return "is not a non-empty string"
    if len(name) > MAX_NAME_LENGTH:
        return f"is {len(name)} characters long (the limit is {MAX_NAME_LENGTH})"
    if not all(_NAME_PART.fullmatch(part) for part in name.split(".")):
        return "is not a dotted identifier (parts such as 'layer', '0', 'weight' joined by dots)"
    return None


# ---- atomic writing ------------------------------------------------------------------------------
_TEMP_MARK = ".tmp-"
_HOST = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname()) or "host"
_in_flight: set[str] = set()  # this process's temporary files, so the stale cleanup skips them


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: it exists but belongs to someone else
        return True
    return True


def _remove_stale_temporaries(directory: str, base: str) -> None:
    """Delete temporary files of earlier saves of ``base`` that were killed before the rename:
    only this host's, and only those whose writing process no longer runs."""
    if os.name != "posix":  # os.kill(pid, 0) would not be a harmless probe elsewhere
        return
    prefix = f".{base}{_TEMP_MARK}"
    try:
        entries = [e.name for e in os.scandir(directory) if e.name.startswith(prefix)]
    except OSError:
        return
    for entry in entries:
        host, pid_text = _temp_name_owner(entry[len(prefix):])
        if host != _HOST or not pid_text.isdigit():
            continue
        pid = int(pid_text)
        path = os.path.join(directory, entry)
        if path in _in_flight or (pid != os.getpid() and _process_alive(pid)):
            continue
        with contextlib.suppress(OSError):
            os.unlink(path)


def _temp_name_owner(tail: str) -> tuple[str, str]:
    """``<host>-<pid>-<token>`` -> (host, pid) as text."""
    head = tail.rpartition("-")[0]
    host, _, pid = head.rpartition("-")
    return host, pid


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(directory, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path):
    """Yield a binary file; on a clean exit its content replaces ``path`` in one rename.

    The data goes to a temporary file in the same directory (so the rename cannot cross file
    systems), which is flushed and fsynced before ``os.replace``. If the block raises, the
    temporary file is removed and ``path`` is untouched.
    """
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    base = os.path.basename(target)
    if not base:
        raise IsADirectoryError(f"save: {target!r} names a directory, not a file")
    _remove_stale_temporaries(directory, base)
    temp = os.path.join(directory, f".{base}{_TEMP_MARK}{_HOST}-{os.getpid()}-{secrets.token_hex(4)}")
    # O_EXCL: never reuse an existing file; mode 0o666 lets the umask decide, as open() would
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    _in_flight.add(temp)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    finally:
        _in_flight.discard(temp)
    _fsync_directory(directory)


# ---- saving ---------------------------------------------------------------------------------------
def _as_saveable(name, value) -> np.ndarray:
    array = value.data if isinstance(value, Tensor) else value
    if not isinstance(array, (np.ndarray, np.generic, int, float, bool)):
        raise TypeError(
            f"save: entry '{name}' is a {type(value).__name__}; a state dict maps names to arrays or "
            "Tensors (nested dicts such as an optimizer's state are not supported)"
        )
    array = np.asarray(array)
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(f"save: entry '{name}' has dtype {array.dtype}; only numeric and bool arrays are saved")
    return array


def save(state_dict, path) -> None:
    """Write ``state_dict`` (name -> array/Tensor, e.g. ``model.state_dict()``) to ``path`` as .npz.

    The file is written exactly at ``path`` (no suffix is added), atomically: readers see either
    the previous file or the complete new one. Names must be dotted identifiers, which is what
    ``Module.state_dict`` produces and what ``load`` accepts.
    """
    if not hasattr(state_dict, "items"):
        raise TypeError(f"save: expected a mapping of names to arrays, got {type(state_dict).__name__}")
    entries = []
    for name, value in state_dict.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"save: state dict keys must be non-empty strings, got {name!r}")
        problem = name_problem(name)
        if problem:
            raise ValueError(f"save: entry name {name!r} {problem}; load would refuse it")
        entries.append((name, _as_saveable(name, value)))
    if len(entries) > MAX_ENTRIES:
        raise ValueError(f"save: {len(entries)} entries is more than the {MAX_ENTRIES} a checkpoint may hold")
    with atomic_write(path) as handle:
        # written by hand rather than np.savez: keys like 'file' or 'allow_pickle' would collide
        # with np.savez's own keyword arguments
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name, array in entries:
                with archive.open(name + ".npy", "w", force_zip64=True) as member:
                    # C order keeps files simple; np.ascontiguousarray would turn a 0-d array into 1-d
                    c_order = array if array.flags.c_contiguous else array.copy(order="C")
                    np.lib.format.write_array(member, c_order, allow_pickle=False)


# ---- loading --------------------------------------------------------------------------------------
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


def load(path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> "OrderedDict[str, np.ndarray]":
    """Read a checkpoint written by ``save``: an ordered name -> array mapping (for ``load_state_dict``).

    The file is validated before any array is allocated (see the module docstring); anything
    wrong raises ``CheckpointError``. ``max_bytes`` bounds the array data the file may announce.
    Only regular files are read: a FIFO, a device or a directory raises ``CheckpointError`` at
    once. A missing or unreadable file raises the usual ``OSError``.
    """
    where = os.fspath(path)
    with open_regular_file(where, error=CheckpointError, context="load: ") as handle:
        try:
            return _read_checkpoint(handle, where, max_bytes)
        except (CheckpointError, MemoryError):
            raise
        except Exception as exc:  # any parser failure on untrusted bytes means a damaged file
            raise CheckpointError(
                f"load: {where!r} is not a valid checkpoint (damaged or truncated): {type(exc).__name__}: {exc}"
            ) from exc


def _read_checkpoint(handle, where: str, max_bytes: int) -> "OrderedDict[str, np.ndarray]":
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
