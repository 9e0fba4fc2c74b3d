"""The seam for a key/value cache: what ``GPT.forward(idx, cache=...)`` asks of one.

Generating text one token at a time recomputes, at every step, the keys and values of every
earlier position, although causal attention never changes them. A cache keeps them. This stage
defines only *what a cache must do* (two small protocols) and how its layers use one; the
generation stage supplies the cache (``tinytorch_core.generation.KVCache``), which preallocates
the arrays and writes into them in place.

- ``GPT.forward(idx, cache=cache)`` reads ``cache.length`` (positions stored so far: the new
  tokens sit at positions ``length, length + 1, ...``, which picks their position vectors), hands
  block ``i`` the layer cache ``cache.layer(i)``, and calls ``cache.advance(T)`` once every layer
  has stored its ``T`` new positions.
- ``MultiHeadAttention.forward(x, cache=layer_cache)`` projects only the new positions, calls
  ``layer_cache.append(keys, values)`` and attends its queries to every key returned: the
  earlier positions' keys are read, never recomputed.

The cache holds plain arrays, so no gradient reaches earlier positions through it: the layers
accept a cache only with gradient recording off (``tinytorch_core.no_grad()``).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class LayerCache(Protocol):
    """One attention layer's stored keys and values."""

    def append(self, keys, values) -> tuple:
        """Store the new positions' ``keys`` and ``values`` (B, T, E) after those already stored;
        return the keys and values of every position so far, (B, length + T, E) each."""


class ModelCache(Protocol):
    """Every layer's cache, and how many positions they hold."""

    length: int  # positions stored so far, the same in every layer

    def layer(self, index: int) -> LayerCache:
        """The cache of attention layer ``index`` (0 = the first block)."""

    def advance(self, count: int) -> None:
        """Every layer has stored ``count`` new positions: ``length`` grows by ``count``."""


def cached_causal_mask(query_len: int, key_len: int) -> np.ndarray:
    """``(Tq, Tk)`` bool for queries that are the *last* ``Tq`` of ``Tk`` positions: query ``i``
    sits at position ``Tk - Tq + i`` and may attend keys ``j <= Tk - Tq + i``. With an empty cache
    (``Tq == Tk``) it is the ordinary causal mask; one new token (``Tq == 1``) sees every key."""
    return np.tri(query_len, key_len, k=key_len - query_len, dtype=bool)
