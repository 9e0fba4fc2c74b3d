"""Live tensor memory: how many bytes of array data the profiled ops hold right now, and the peak.

A view (a reshape, a transpose, a slice) shares its memory with the array it views, so each
block of memory is counted once, by its *owner*: the array at the end of the ``.base`` chain.
A block is counted from the first time an op returns it (or a view of it) and stops counting
when NumPy frees it (a weak reference to the owner with a callback).
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
        self._blocks: dict[int, tuple] = {}  # id of an owner -> (its bytes, a weak reference to it)
        self._owner_of_reference: dict[int, int] = {}  # id of that weak reference -> id of the owner

    def seen(self, array: np.ndarray) -> int:
        """Count ``array``'s memory if it is new; returns the bytes newly counted (0 for a view
        of memory already counted)."""
        owner = memory_owner(array)
        key = id(owner)
        if key in self._blocks:
            return 0
        reference = weakref.ref(owner, self._freed)  # called when NumPy frees the owner
        self._blocks[key] = (owner.nbytes, reference)
        self._owner_of_reference[id(reference)] = key
        self.current += owner.nbytes
        self.peak = max(self.peak, self.current)
        return owner.nbytes

    def _freed(self, reference) -> None:
        nbytes, _ = self._blocks.pop(self._owner_of_reference.pop(id(reference)))
        self.current -= nbytes
