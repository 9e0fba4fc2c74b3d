"""Saving and loading state dicts as ``.npz`` archives: named arrays only, never pickles.

``save`` writes each entry with ``allow_pickle=False``, so an object array (or anything that
is not a plain numeric array) is refused at save time; ``load`` reads with
``allow_pickle=False`` and checks that the file is a flat name -> numeric array mapping.
"""

from __future__ import annotations

import os
import zipfile
from collections import OrderedDict

import numpy as np

from tinytorch_core import Tensor

__all__ = ["load", "save"]

_NUMERIC_KINDS = "biuf"


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

    The file is written exactly at ``path`` (no suffix is added).
    """
    if not hasattr(state_dict, "items"):
        raise TypeError(f"save: expected a mapping of names to arrays, got {type(state_dict).__name__}")
    entries = []
    for name, value in state_dict.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"save: state dict keys must be non-empty strings, got {name!r}")
        entries.append((name, _as_saveable(name, value)))
    # written by hand rather than np.savez: keys like 'file' or 'allow_pickle' would collide
    # with np.savez's own keyword arguments
    with zipfile.ZipFile(os.fspath(path), "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in entries:
            with archive.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)


def load(path) -> "OrderedDict[str, np.ndarray]":
    """Read a file written by ``save``: an ordered name -> array mapping (for ``load_state_dict``)."""
    try:
        loaded = np.load(os.fspath(path), allow_pickle=False)
    except ValueError as exc:
        raise ValueError(f"load: {os.fspath(path)!r} is not a state dict archive without pickles ({exc})") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ValueError(
            f"load: {os.fspath(path)!r} holds a single array, not a .npz archive of named arrays "
            "(was it written with tinytorch_nn.save?)"
        )
    state = OrderedDict()
    with loaded:
        for name in loaded.files:
            array = loaded[name]
            if array.dtype.kind not in _NUMERIC_KINDS:
                raise ValueError(f"load: entry '{name}' has dtype {array.dtype}, expected a numeric array")
            state[name] = array
    return state
