"""The seam for a key/value cache: what ``GPT.forward(idx, cache=...)`` asks of one.

Generating text one token at a time recomputes, at every step, the keys and values of every
earlier position, although causal attention never changes them. A cache keeps them. This stage
defines only *what a cache must do* (two small protocols) and how its layers use one; the
generation stage supplies the cache (``tinytorch_core.generation.KVCache``), which preallocates
the arrays and writes into them in place.

- ``GPT.forward(idx, cache=cache)`` reads ``cache.length`` (positions stored so far: the new
  tokens sit at positions ``length, length + 1, ...``), looks up those positions' vectors, hands
  block ``i`` the layer cache ``cache.layer(i)``, and calls ``cache.advance(T)`` once every layer
  has stored its ``T`` new positions.
- ``MultiHeadAttention.forward(x, cache=layer_cache)`` projects only the new positions, calls
  ``layer_cache.append(keys, values)`` and attends its queries to the keys returned: the
  earlier positions' keys are read, never recomputed.

A cache may also hand out the new tokens' positions as an array (``positions(count)``; else
they are ``length, length + 1, ...``). A cache that does, and stores and returns keys with an op
that reads those positions, makes a decoding step whose every position-dependent choice is data
inside ops: a compiled step (the acceleration stage) records it once and replays it at every
position. The generation stage's ``KVCache`` does that.

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

    # optional: def positions(self, count) -> the (count,) int array of the new tokens' positions
    # (``length ..`` when absent); a static cache hands out the array a compiled step is given


def model_cache_layers(cache, num_layers: int, where: str) -> list:
    """Check that ``cache`` follows ``ModelCache`` and return its first ``num_layers`` layer caches,
    all fetched before any work, so a cache that is too small fails before any layer stores a thing."""
    length = getattr(cache, "length", None)
    if not (callable(getattr(cache, "layer", None)) and callable(getattr(cache, "advance", None))) \
            or isinstance(cache, type):
        raise TypeError(f"{where}: cache must be a key/value cache such as tinytorch_core.generation.KVCache"
                        f".for_model(model) (with length, layer() and advance()), got {cache!r}")
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 0:
        raise TypeError(f"{where}: cache.length must be an int >= 0 (positions stored), got {length!r}")
    layers = [cache.layer(index) for index in range(num_layers)]
    if not all(callable(getattr(layer, "append", None)) for layer in layers):
        raise TypeError(f"{where}: cache.layer(i) must return a layer cache with append(keys, values)")
    return layers


def new_positions(cache, count: int, where: str) -> np.ndarray:
    """The positions of the ``count`` new tokens: ``cache.positions(count)`` if the cache hands
    them out, else ``length, ..., length + count - 1``."""
    if not callable(getattr(cache, "positions", None)):
        return np.arange(cache.length, cache.length + count)
    positions = cache.positions(count)
    shape, dtype = np.shape(positions), getattr(positions, "dtype", None)
    if shape != (count,) or dtype is None or dtype.kind not in "iu":
        raise TypeError(f"{where}: cache.positions({count}) must return a ({count},) int array, got "
                        f"{dtype} of shape {shape}")
    return positions


def cached_causal_mask(query_len: int, key_len: int) -> np.ndarray:
    """``(Tq, Tk)`` bool for queries that are the *last* ``Tq`` of ``Tk`` positions: query ``i``
    sits at position ``Tk - Tq + i`` and may attend keys ``j <= Tk - Tq + i``. With an empty cache
    (``Tq == Tk``) it is the ordinary causal mask; one new token (``Tq == 1``) sees every key."""
    return np.tri(query_len, key_len, k=key_len - query_len, dtype=bool)
