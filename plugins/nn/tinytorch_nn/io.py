"""Saving and loading state dicts as ``.npz`` archives: named numeric arrays only, never pickles.

A checkpoint may come from anywhere, so ``load`` treats it as untrusted input. It parses the zip
directory and every ``.npy`` header itself and checks them before allocating anything: entry
names must be dotted identifiers (``blocks.0.attn.weight``), dtypes plain numeric or bool, the
size each header announces must match the bytes the entry holds, and the total stays under a
limit. Nothing is unpickled and no code runs. Whatever is malformed, truncated or corrupted
raises ``CheckpointError`` (a ``ValueError``) naming the file and the problem.

``save`` is atomic: it writes a temporary file in the target's directory, flushes and fsyncs it,
then renames it onto the target, so a crash mid-save leaves the previous checkpoint intact. A
save killed outright (SIGKILL, power loss) can leave its temporary file
(``.<name>.tmp-<host>-<pid>-<token>``) behind; the next save of the same target on the same host
removes such leftovers once the process that wrote them is gone.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import secrets
import socket
import zipfile
from collections import OrderedDict

import numpy as np

from tinytorch_core import Tensor

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
def load(path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> "OrderedDict[str, np.ndarray]":
    """Read a checkpoint written by ``save``: an ordered name -> array mapping (for ``load_state_dict``).

    The file is validated before any array is allocated (see the module docstring); anything
    wrong raises ``CheckpointError``. ``max_bytes`` bounds the array data the file may announce.
    A missing or unreadable file raises the usual ``OSError``.
    """
    where = os.fspath(path)
    with open(where, "rb") as handle:
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

    try:
        archive = zipfile.ZipFile(handle)
    except zipfile.BadZipFile:
        handle.seek(0)
        if handle.read(6) == b"\x93NUMPY":
            fail("holds a single array, not a .npz archive of named arrays (was it written with tinytorch_nn.save?)")
        fail("is not a checkpoint archive (not a zip file, or truncated)")
    state: OrderedDict[str, np.ndarray] = OrderedDict()
    total = 0
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ENTRIES:
            fail(f"holds {len(infos)} entries, more than the {MAX_ENTRIES} a checkpoint may hold")
        for info in infos:
            member = info.filename
            if info.is_dir() or not member.endswith(".npy"):
                fail(f"entry {member!r} is not a .npy array")
            name = member[:-4]
            problem = name_problem(name)
            if problem:
                fail(f"entry name {name!r} {problem}")
            if name in state:
                fail(f"entry {name!r} appears twice")
            if info.flag_bits & 0x1:
                fail(f"entry {name!r} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                fail(f"entry {name!r} uses compression method {info.compress_type}; only stored or deflated entries are read")
            if info.file_size > max_bytes - total + _MAX_HEADER:
                fail(f"entry {name!r} announces {info.file_size} bytes, over the limit of {max_bytes} bytes per file")
            array, nbytes = _read_entry(archive, info, name, fail)
            total += nbytes
            if total > max_bytes:
                fail(f"its arrays add up to {total} bytes, over the limit of {max_bytes} bytes per file")
            state[name] = array
    return state


def _read_entry(archive, info, name: str, fail):
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(member, max_header_size=_MAX_HEADER)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(member, max_header_size=_MAX_HEADER)
        else:
            fail(f"entry {name!r} uses .npy format version {version}; versions 1.0 and 2.0 are read")
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in _NUMERIC_KINDS:
            fail(f"entry {name!r} has dtype {dtype}, expected a plain numeric or bool array (no objects, no pickles)")
        if not all(isinstance(s, int) and s >= 0 for s in shape):
            fail(f"entry {name!r} has an invalid shape {shape!r}")
        nbytes = math.prod(shape) * dtype.itemsize
        data_bytes = info.file_size - member.tell()
        if nbytes != data_bytes:
            fail(
                f"entry {name!r}: its header announces shape {shape} of {dtype} ({nbytes} bytes) but the entry "
                f"holds {data_bytes} bytes of data (truncated or corrupted)"
            )
        raw = np.empty(nbytes, dtype=np.uint8)
        view = memoryview(raw)
        got = 0
        while got < nbytes:
            n = member.readinto(view[got:])
            if not n:
                fail(f"entry {name!r} ends after {got} of {nbytes} bytes (truncated)")
            got += n
        if member.read(1):  # reading to the end also makes zipfile verify the CRC-32
            fail(f"entry {name!r} holds more data than its header announces")
    if dtype.kind == "b" and nbytes and raw.max() > 1:
        fail(f"entry {name!r} is a bool array holding bytes other than 0 and 1 (corrupted)")
    values = raw.view(dtype)
    if not dtype.isnative:
        values = values.astype(dtype.newbyteorder("="))
    if fortran_order:
        return values.reshape(shape[::-1]).transpose(), nbytes
    return values.reshape(shape), nbytes
