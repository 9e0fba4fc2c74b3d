"""The key/value cache: what a causal model has already computed about earlier positions.

In causal attention a position's key and value depend only on the tokens up to it, so they never
change once computed. ``KVCache`` keeps them: one ``LayerKVCache`` per attention layer, each two
arrays ``(batch, max_len, width)`` allocated once for the whole context and filled in place, one
slice of new positions at a time. It implements the attention stage's cache protocol
(``tinytorch_attention.cache.ModelCache`` / ``LayerCache``), which ``GPT.forward(idx, cache=...)``
and ``MultiHeadAttention`` use; nothing in the attention stage is patched.
"""

from __future__ import annotations

import numpy as np

from tinytorch_core.checks import array_of, positive_int


class LayerKVCache:
    """One attention layer's keys and values.

    The two ``(batch, max_len, width)`` arrays are allocated at the first ``append``, when the
    batch size, width and dtype of the keys are known, then written in place: storing a position
    never copies the earlier ones.
    """

    def __init__(self, owner: "KVCache", index: int):
        self._owner = owner  # holds the shared length: every layer stores the same positions
        self.index = index
        self.keys: np.ndarray | None = None
        self.values: np.ndarray | None = None

    def append(self, keys, values) -> tuple:
        """Store ``keys`` and ``values`` (B, T, E) at positions ``length .. length + T - 1``;
        return read-only views of every stored position's keys and values, (B, length + T, E)."""
        new_keys, new_values = array_of(keys), array_of(values)
        self._check(new_keys, new_values)
        if self.keys is None or (self._owner.length == 0 and not self._holds_like(new_keys)):
            # the first append, or the first after reset() of a batch of another size, width or dtype
            batch, _, width = new_keys.shape
            self.keys = np.zeros((batch, self._owner.max_len, width), dtype=new_keys.dtype)
            self.values = np.zeros_like(self.keys)
        start = self._owner.length
        end = start + new_keys.shape[1]
        self.keys[:, start:end] = new_keys
        self.values[:, start:end] = new_values
        stored_keys, stored_values = self.keys[:, :end], self.values[:, :end]
        stored_keys.flags.writeable = stored_values.flags.writeable = False  # views: the cache owns them
        return stored_keys, stored_values

    def _holds_like(self, keys: np.ndarray) -> bool:
        """Whether ``keys`` have the batch size, width and dtype of the stored arrays."""
        return (keys.shape[0], keys.shape[2], keys.dtype) == (self.keys.shape[0], self.keys.shape[2], self.keys.dtype)

    def _check(self, keys: np.ndarray, values: np.ndarray) -> None:
        where = f"KVCache layer {self.index}"
        if keys.ndim != 3 or keys.shape != values.shape or keys.dtype.kind != "f" or keys.dtype != values.dtype:
            raise ValueError(
                f"{where}: keys and values must be floating arrays of one shape (batch, new_positions, width), "
                f"got {keys.dtype} {keys.shape} and {values.dtype} {values.shape}"
            )
        if self.keys is not None and self._owner.length and not self._holds_like(keys):
            raise ValueError(
                f"{where}: holds batch {self.keys.shape[0]}, width {self.keys.shape[2]}, {self.keys.dtype}; "
                f"got keys of shape {keys.shape} and dtype {keys.dtype} (reset() to start a new sequence)"
            )
        if self._owner.length + keys.shape[1] > self._owner.max_len:
            raise ValueError(
                f"{where}: holds at most max_len={self._owner.max_len} positions; {self._owner.length} are "
                f"stored and {keys.shape[1]} more came"
            )


class KVCache:
    """Every attention layer's keys and values for up to ``max_len`` positions of a batch.

    ``length`` counts the positions stored so far; the next tokens sit at positions ``length,
    length + 1, ...``. ``GPT.forward(idx, cache=cache)`` appends ``idx``'s positions to every
    layer, then calls ``advance``. Memory: ``2 * num_layers * batch * max_len * width`` numbers
    (``nbytes``), whatever the length, because the arrays are allocated for the whole context.
    """

    def __init__(self, num_layers: int, max_len: int):
        self.num_layers = positive_int(num_layers, "num_layers", "KVCache")
        self.max_len = positive_int(max_len, "max_len", "KVCache")
        self.length = 0
        self.layers = tuple(LayerKVCache(self, index) for index in range(self.num_layers))

    @classmethod
    def for_model(cls, model) -> "KVCache":
        """A cache sized for ``model``: its ``num_layers`` attention layers and ``max_len`` positions."""
        if not (hasattr(model, "num_layers") and hasattr(model, "max_len")):
            raise TypeError(f"KVCache.for_model: expected a model with num_layers and max_len (such as "
                            f"tinytorch_core.nn.GPT), got {type(model).__name__}")
        return cls(model.num_layers, model.max_len)

    def layer(self, index: int) -> LayerKVCache:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < self.num_layers:
            raise IndexError(f"KVCache: layer index must be an int in 0..{self.num_layers - 1} (the cache holds "
                             f"{self.num_layers} layer(s); KVCache.for_model(model) fits a model), got {index!r}")
        return self.layers[index]

    def advance(self, count: int) -> None:
        """``count`` new positions are now stored in every layer."""
        count = positive_int(count, "count", "KVCache.advance")
        if self.length + count > self.max_len:
            raise ValueError(f"KVCache.advance: {self.length} + {count} positions exceed max_len={self.max_len}")
        self.length += count

    def reset(self) -> None:
        """Forget every stored position. The arrays stay allocated, to be overwritten by a batch of
        the same size, width and dtype; another batch gets new arrays at its first append."""
        self.length = 0

    @property
    def nbytes(self) -> int:
        return sum(layer.keys.nbytes + layer.values.nbytes for layer in self.layers if layer.keys is not None)

    def __repr__(self) -> str:
        return f"KVCache(num_layers={self.num_layers}, max_len={self.max_len}, length={self.length})"
