"""Saving and loading checkpoints as safetensors files: named arrays, never pickles.

``save(state, path)`` writes ``state`` (``model.state_dict()``, or a nested dict such as
``{"model": ..., "optimizer": opt.state_dict(), "scheduler": sched.state_dict()}``) as a
`safetensors <https://huggingface.co/docs/safetensors>`_ file through the ``safetensors`` package:
every array under its dotted name (``fc1.weight``, ``optimizer.state.0.exp_avg``), and the
structure around the arrays (numbers, strings, dict and list shapes) as JSON in the file's metadata
(see ``checkpoint/layout.py``). A model's state dict is stored under the names PyTorch uses, so
``safetensors.torch.load_file`` reads it into a ``torch.nn`` model of the same architecture.

The save is atomic: it writes a temporary file in the target's directory, flushes and fsyncs it,
then renames it onto the target, so a crash mid-save leaves the previous checkpoint intact. A
save killed outright (SIGKILL, power loss) can leave its temporary file
(``.<name>.tmp-<host>-<pid>-<token>``) behind; the next save of the same target on the same host
removes such leftovers once the process that wrote them is gone.

A checkpoint may come from anywhere, so ``load`` treats it as untrusted input. It opens regular
files only (a FIFO or ``/dev/zero`` is refused at once) and checks the whole safetensors header
against the file before an array is allocated (``checkpoint/safetensors_file.py``); the arrays
are then read straight into their own memory, so loading costs the data the file holds and little
more. The ``.npz`` checkpoints of earlier versions are still read, through a reader with the same
limits (``checkpoint/npz_file.py``). Whatever is malformed, truncated, corrupted or over a limit
raises ``CheckpointError`` (a ``ValueError``) naming the file and the problem.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import socket
from collections import OrderedDict

import safetensors.numpy

from tinytorch_core.checks import positive_int
from tinytorch_core.files import checked_path, open_regular_file, writable_target

# MAX_ENTRIES, MAX_NAME_LENGTH and name_problem are offered here too, beside the error they go with
from .checkpoint.errors import MAX_ENTRIES, MAX_NAME_LENGTH, CheckpointError, name_problem  # noqa: F401
from .checkpoint.layout import LAYOUT_KEY, flatten, unflatten
from .checkpoint.npz_file import NPZ_MAGIC, read_npz
from .checkpoint.safetensors_file import header_problem, read_arrays, read_header

__all__ = ["CheckpointError", "atomic_write", "load", "save"]

#: default limit on the array data one checkpoint may announce (2 GiB); ``load(max_bytes=...)``
DEFAULT_MAX_BYTES = 2**31


def save(state, path) -> None:
    """Write ``state`` to ``path`` as a safetensors file (no suffix is added), atomically.

    ``state`` maps names to arrays or Tensors (``model.state_dict()``), or nests dicts, lists and
    tuples of arrays, numbers, strings, booleans and None (``opt.state_dict()``, a whole training
    checkpoint). Names must be dotted identifiers, which is what ``Module.state_dict`` produces and
    what ``load`` accepts. ``load(path)`` gives the same structure back, arrays as NumPy arrays.
    """
    arrays, layout = flatten(state)
    data = safetensors.numpy.save(arrays, metadata={LAYOUT_KEY: layout})
    length = int.from_bytes(data[:8], "little")
    problem = header_problem(length, data[8 : 8 + length])
    if problem:  # never write a file that load would refuse
        raise ValueError(f"save: the checkpoint's header {problem}: too many arrays or too much text for one file")
    with atomic_write(path) as handle:
        handle.write(data)


def load(path, *, max_bytes: int = DEFAULT_MAX_BYTES):
    """Read a checkpoint written by ``save`` (or any safetensors file, or an old ``.npz`` one).

    Returns what was saved: for a state dict, an ordered name -> array mapping (for
    ``load_state_dict``); for nested state, the same nesting. A safetensors file written elsewhere
    (by PyTorch) gives its arrays in file order. The file is validated before any array is
    allocated; anything wrong raises ``CheckpointError``. ``max_bytes`` bounds the array data the
    file may announce. Only regular files are read: a FIFO, a device or a directory raises
    ``CheckpointError`` at once. A missing or unreadable file raises the usual ``OSError``.
    """
    where = checked_path(path, "load")
    max_bytes = positive_int(max_bytes, "max_bytes", "load")  # NaN would switch the limit off
    with open_regular_file(where, error=CheckpointError, context="load: ") as handle:
        try:
            return _read_checkpoint(handle, where, max_bytes)
        except (CheckpointError, MemoryError):
            raise
        except Exception as exc:  # any failure on untrusted bytes means a damaged file
            raise CheckpointError(
                f"load: {where!r} is not a valid checkpoint (damaged or truncated): {type(exc).__name__}: {exc}"
            ) from exc


def _read_checkpoint(handle, where: str, max_bytes: int):
    def fail(why: str):
        raise CheckpointError(f"load: {where!r}: {why}")

    start = handle.read(8)
    handle.seek(0)
    if start.startswith(NPZ_MAGIC):  # a zip archive: a checkpoint of an earlier version
        return read_npz(handle, where, max_bytes)
    if start.startswith(b"\x93NUMPY"):
        fail("holds a single array (np.save), not a checkpoint of named arrays (was it written with tt.io.save?)")
    header = read_header(handle, fail, max_bytes)
    arrays = read_arrays(handle, where, header, fail)
    layout = header.metadata.get(LAYOUT_KEY)
    if layout is None:  # written by another safetensors writer: the arrays as the file holds them
        return OrderedDict(arrays)
    return unflatten(layout, arrays, fail)


# ---- atomic writing (also used by the tokenizer's save) ------------------------------------------------
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


def _temp_stem(base: str) -> str:
    """``base`` as the temporary file's name begins: shortened (with a digest, so that it stays
    the file's own) when the host, pid and marks would push a legal name past 255 bytes."""
    if len(os.fsencode(base)) <= 120:
        return base
    return re.sub(r"[^A-Za-z0-9_.-]", "_", base[:40]) + "~" + hashlib.sha256(os.fsencode(base)).hexdigest()[:16]


def _remove_stale_temporaries(directory: str, base: str) -> None:
    """Delete temporary files of earlier saves of ``base`` that were killed before the rename:
    only this host's, and only those whose writing process no longer runs."""
    if os.name != "posix":  # os.kill(pid, 0) would not be a harmless probe elsewhere
        return
    prefix = f".{_temp_stem(base)}{_TEMP_MARK}"
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
def atomic_write(path, caller: str = "save"):
    """Yield a binary file; on a clean exit its content replaces ``path`` in one rename.

    The data goes to a temporary file in the same directory (so the rename cannot cross file
    systems), which is flushed and fsynced before ``os.replace``. If the block raises, the
    temporary file is removed and ``path`` is untouched. A symlink is written through (its target
    is replaced); a directory, a device, a FIFO, or a path whose folder does not exist, is refused
    first, with ``caller`` (the function saving) named in the error.
    """
    path = checked_path(path, caller)
    if not os.path.basename(path):
        raise IsADirectoryError(f"{caller}: {os.fsdecode(path)!r} names a directory, not a file; save to a file in it")
    target = writable_target(path, caller)
    directory = os.path.dirname(target)
    base = os.path.basename(target)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{caller}: cannot save {target!r}: the folder {directory!r} does not exist")
    _remove_stale_temporaries(directory, base)
    temp = os.path.join(directory, f".{_temp_stem(base)}{_TEMP_MARK}{_HOST}-{os.getpid()}-{secrets.token_hex(4)}")
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
