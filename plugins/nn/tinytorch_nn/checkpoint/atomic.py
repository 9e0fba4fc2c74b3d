"""Atomic saving: a crash mid-save leaves the previous file intact.

``atomic_write`` writes a temporary file in the target's directory, flushes and fsyncs it, then
renames it onto the target, so readers see either the previous file or the complete new one. A
save killed outright (SIGKILL, power loss) can leave its temporary file
(``.<name>.tmp-<host>-<pid>-<token>``) behind; the next save of the same target on the same host
removes such leftovers once the process that wrote them is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket

__all__ = ["atomic_write"]

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
