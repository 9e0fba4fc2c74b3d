"""Saving and loading checkpoints as safetensors files: named arrays, never pickles.

``save(state, path)`` writes ``state`` (``model.state_dict()``, or a nested dict such as
``{"model": ..., "optimizer": opt.state_dict(), "scheduler": sched.state_dict()}``) as a
`safetensors <https://huggingface.co/docs/safetensors>`_ file through the ``safetensors`` package:
every array under its dotted name (``fc1.weight``, ``optimizer.state.0.exp_avg``), and the
structure around the arrays (numbers, strings, dict and list shapes) as JSON in the file's metadata
(see ``checkpoint/layout.py``). A model's state dict is stored under the names PyTorch uses, so
``safetensors.torch.load_file`` reads it into a ``torch.nn`` model of the same architecture.

The save is atomic (``checkpoint/atomic.py``): a crash mid-save leaves the previous file intact.

A checkpoint may come from anywhere, so ``load`` treats it as untrusted input. It opens regular
files only (a FIFO or ``/dev/zero`` is refused at once) and checks the whole safetensors header
against the file before an array is allocated (``checkpoint/safetensors_file.py``); the arrays
are then read straight into their own memory, so loading costs the data the file holds and little
more. The ``.npz`` checkpoints of earlier versions are still read, through a reader with the same
limits (``checkpoint/npz_file.py``). Whatever is malformed, truncated, corrupted or over a limit
raises ``CheckpointError`` (a ``ValueError``) naming the file and the problem.
"""

from __future__ import annotations

import os
from collections import OrderedDict

import safetensors.numpy

from tinytorch_core.files import open_regular_file

from .checkpoint.atomic import atomic_write
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
    where = os.fspath(path)
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
