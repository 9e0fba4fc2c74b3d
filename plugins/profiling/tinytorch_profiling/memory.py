"""Live tensor memory: how many bytes of array data the profiled ops hold right now, and the peak.

A view (a reshape, a transpose, a slice) shares its memory with the array it views, so each
block of memory is counted once, by its *owner*: the array at the end of the ``.base`` chain.
A block is counted from the first time an op returns it (or a view of it) and stops counting
when NumPy frees it (a ``weakref.finalize`` on the owner).
"""

from __future__ import annotations

import weakref

import numpy as np


def memory_owner(array: np.ndarray) -> np.ndarray:
    """The array that owns ``array``'s memory (``array`` itself if it is not a view)."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


class LiveMemory:
    """Bytes of array data alive now (``current``) and the most at any moment (``peak``)."""

    def __init__(self):
        self.current = 0
        self.peak = 0
        self._blocks: dict[int, int] = {}  # id of an owner -> its bytes, while it is alive

    def seen(self, array: np.ndarray) -> int:
        """Count ``array``'s memory if it is new; returns the bytes newly counted (0 for a view
        of memory already counted)."""
        owner = memory_owner(array)
        key = id(owner)
        if key in self._blocks:
            return 0
        self._blocks[key] = owner.nbytes
        self.current += owner.nbytes
        self.peak = max(self.peak, self.current)
        weakref.finalize(owner, self._freed, key)
        return owner.nbytes

    def _freed(self, key: int) -> None:
        self.current -= self._blocks.pop(key, 0)
