"""Opening files that may come from anywhere: regular files only.

A loader of untrusted files (a checkpoint, a vocabulary, a dataset) reads what a path names. If
that path names ``/dev/zero``, the loader reads zeros until the machine runs out of memory; if it
names a FIFO, ``open`` waits forever for a writer; a terminal or a socket is no better. So every
loader opens its file through ``open_regular_file``, which

1. opens the path with ``O_NONBLOCK``, so that opening a FIFO returns at once instead of waiting;
2. asks the *opened descriptor* what it is (``fstat``), so nothing can swap the path between the
   check and the open;
3. refuses anything but a regular file with the loader's own error class, naming the path;
4. hands the descriptor back as an ordinary binary file, blocking again.

Loaders take the file's size from the same descriptor (``os.fstat(handle.fileno()).st_size``) to
check what a header announces against what the file holds before they allocate anything.
"""

from __future__ import annotations

import errno
import os
import stat

__all__ = ["checked_path", "open_regular_file", "writable_target"]

# what a path names when it is not a regular file, in words for the error message
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)

# O_NONBLOCK: a FIFO opens without waiting for a writer; O_NOCTTY: a terminal never becomes ours
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)


def _kind(mode: int) -> str:
    return next((words for test, words in _KINDS if test(mode)), "some other kind of file")


def open_regular_file(path, *, error: type[Exception], context: str = ""):
    """Open ``path`` for binary reading if it is a regular file; otherwise raise ``error``.

    ``error`` is the loader's own error class (e.g. ``CheckpointError``) and ``context`` the start
    of its messages (e.g. ``"load: "``). The message names the path and what it is instead:
    ``load: '/dev/zero' is not a regular file (it is a character device)``. A path that does not
    exist, or that may not be read, raises the usual ``OSError``.
    """
    where = os.fspath(path)

    def refuse(mode: int):
        return error(f"{context}{where!r} is not a regular file (it is {_kind(mode)}); only regular files are read")

    # 1. open without blocking
    try:
        descriptor = os.open(where, _OPEN_FLAGS)
    except OSError:
        # some special files cannot be opened at all (a socket: ENXIO; a directory on Windows)
        try:
            mode = os.stat(where).st_mode
        except OSError:
            mode = None
        if mode is not None and not stat.S_ISREG(mode):
            raise refuse(mode) from None
        raise
    try:
        # 2. and 3. ask the descriptor, not the path, what was opened
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise refuse(mode)
        # 4. reads of a regular file never block, but a plain file object should not be non-blocking
        if _OPEN_FLAGS & getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def name_max(directory: str) -> int:
    """The longest file name, in bytes, the file system of ``directory`` allows (255 if it won't say)."""
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def writable_target(path, caller: str) -> str:
    """Where a save of ``path`` goes: the file a symlink points to (a save writes through it, as
    ``open(path, "wb")`` would), refused when that is a directory, a device, a FIFO or a socket (a
    save renames a new file over its target, and would replace the special file itself)."""
    target = os.path.realpath(os.fsdecode(path))
    name, limit = os.path.basename(target), name_max(os.path.dirname(target) or ".")
    if len(os.fsencode(name)) > limit:  # else the rename at the end fails, naming the temporary file
        raise OSError(errno.ENAMETOOLONG, f"{caller}: the file name {name[:40]!r}... is {len(os.fsencode(name))} "
                      f"bytes, longer than the {limit} the file system allows")
    try:
        mode = os.stat(target).st_mode
    except OSError:  # does not exist yet: a new regular file
        return target
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(f"{caller}: {os.fsdecode(path)!r} names a directory, not a file; save to a file in it")
    if not stat.S_ISREG(mode):
        raise FileExistsError(f"{caller}: {os.fsdecode(path)!r} is not a regular file (it is {_kind(mode)}); "
                              "save to a regular file")
    return target


def checked_path(path, caller: str) -> str:
    """``path`` (a str, bytes or ``os.PathLike``) as a str, or a ``TypeError`` naming ``caller``."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"{caller}: expected a file path (str or os.PathLike), got {type(path).__name__}")
    text = os.fsdecode(path)
    if "\0" in text:  # open() would raise "embedded null byte", naming no caller
        raise ValueError(f"{caller}: the path {text!r} holds a NUL byte, which no file name can")
    return text

