"""The key/value cache: what a causal model has already computed about earlier positions.

In causal attention a position's key and value depend only on the tokens up to it, so they never
change once computed. ``KVCache`` keeps them: one ``LayerKVCache`` per attention layer, each two
arrays ``(batch, max_len, width)`` allocated once for the whole context. It implements the
attention stage's cache protocol (``tinytorch_attention.cache``), with the position as data:

- the new tokens' positions are an int array (``positions``), like the token ids;
- ``append`` writes the new keys and values at those positions, in place, and returns views of
  every position up to the last new one, all in one op (``generation::kv_cache_write``).

So nothing a decoding step does depends on a Python number that changes from step to step: the
step's inputs are arrays of the same shapes at every position, and the kernels read the position
from them. The acceleration stage can record the step once and replay it (``generate`` does).
"""

from __future__ import annotations

import numpy as np

from tinytorch_core import Function, is_grad_enabled
from tinytorch_core.checks import array_of, dtype_of, positive_int, shape_of

#: the most positions a cache may hold: far beyond the context of any model built here (GPT's
#: learned position table alone holds max_len x embed_dim numbers), so a larger max_len is a
#: mistake, refused when the cache is created instead of failing at its first allocation
MAX_LEN_LIMIT = 1 << 20


class KVCacheWrite(Function):
    """Store new keys and values at their positions in a layer's buffers, in place.

    ``forward(ctx, key_buffer, value_buffer, keys, values, positions)``: buffers (B, S, E),
    ``keys``/``values`` (B, T, E) at ``positions`` (T,), consecutive. Returns read-only views of
    the buffers' positions ``0 .. positions[-1]``: every stored key and value, the new ones last.
    Their length comes from the positions array, so a replayed step attends to as many keys as
    an eager one would. Not differentiable: a cache serves inference only (under ``no_grad``).
    """

    differentiable = False

    @staticmethod
    def forward(ctx, key_buffer, value_buffer, keys, values, positions):
        start, end = positions[0], positions[-1] + 1  # consecutive positions: one slice
        key_buffer[:, start:end] = keys
        value_buffer[:, start:end] = values
        stored_keys, stored_values = key_buffer[:, :end], value_buffer[:, :end]
        stored_keys.flags.writeable = stored_values.flags.writeable = False  # views: the cache owns them
        return stored_keys, stored_values


def kv_cache_write(key_buffer, value_buffer, keys, values, positions):
    """Write ``keys`` and ``values`` (B, T, E) into ``key_buffer`` and ``value_buffer`` (B, S, E)
    at ``positions`` (T,), consecutive ints in ``0 .. S - 1``, in place. Returns read-only views
    of both buffers' positions ``0 .. positions[-1]`` (see ``KVCacheWrite``)."""
    where = "kv_cache_write"
    buffers = [array_of(b) for b in (key_buffer, value_buffer)]
    if any(b.ndim != 3 or b.shape != buffers[0].shape or b.dtype != buffers[0].dtype or b.dtype.kind != "f"
           or not b.flags.writeable for b in buffers):
        raise ValueError(f"{where}: key_buffer and value_buffer must be writable floating arrays of one shape "
                         f"(batch, max_len, width) and dtype, got {[(b.dtype.name, b.shape) for b in buffers]}")
    batch, max_len, width = buffers[0].shape
    index = array_of(positions)
    if index.ndim != 1 or index.size == 0 or index.dtype.kind not in "iu":
        raise TypeError(f"{where}: positions must be a non-empty (T,) int array, got {index.dtype} of shape "
                        f"{index.shape}")
    shapes = [shape_of(keys), shape_of(values)]
    dtypes = [dtype_of(keys), dtype_of(values)]
    if any(shape != (batch, index.size, width) for shape in shapes) or any(d != buffers[0].dtype for d in dtypes):
        raise ValueError(f"{where}: keys and values must be {buffers[0].dtype} of shape (batch, T, width) = "
                         f"{(batch, index.size, width)} for buffers {buffers[0].shape} and {index.size} positions, "
                         f"got {dtypes[0]} {shapes[0]} and {dtypes[1]} {shapes[1]}")
    if index.min() < 0 or index.max() >= max_len:
        raise IndexError(f"{where}: positions must lie in 0..{max_len - 1} (the buffers hold max_len={max_len}), "
                         f"got {index.min()}..{index.max()}")
    if index.size > 1 and not (np.diff(index) == 1).all():
        raise ValueError(f"{where}: positions must be consecutive (the new tokens follow each other), got "
                         f"{index.tolist() if index.size < 8 else index}")
    if is_grad_enabled() and any(getattr(t, "requires_grad", False) for t in (keys, values)):
        raise RuntimeError(f"{where}: not differentiable (a cache serves inference, and no gradient would reach "
                           "the stored positions); call it under tinytorch_core.no_grad()")
    return KVCacheWrite.apply(key_buffer, value_buffer, keys, values, index)


class LayerKVCache:
    """One attention layer's keys and values.

    The two ``(batch, max_len, width)`` arrays are allocated at the first ``append``, when the
    batch size, width and dtype of the keys are known, then written in place: storing a position
    never copies the earlier ones.
    """

    def __init__(self, owner: "KVCache", index: int):
        self._owner = owner  # holds the positions: every layer stores the same ones
        self.index = index
        self.keys: np.ndarray | None = None
        self.values: np.ndarray | None = None

    def append(self, keys, values) -> tuple:
        """Store ``keys`` and ``values`` (B, T, E) at the owner's next ``T`` positions; return
        read-only views of every stored position's keys and values, (B, length + T, E)."""
        self._check(keys, values)
        if self.keys is None or (self._owner.length == 0 and not self._holds_like(keys)):
            # the first append, or the first after reset() of a batch of another size, width or dtype
            self._allocate(shape_of(keys), dtype_of(keys))
        positions = self._owner.positions(shape_of(keys)[1])
        return kv_cache_write(self.keys, self.values, keys, values, positions)

    def _allocate(self, key_shape: tuple, dtype) -> None:
        """The two ``(batch, max_len, width)`` arrays for keys like these. An allocation the
        system refuses is named: NumPy's own words ("Unable to allocate 58.2 TiB") say neither
        which object asked nor which setting made it so large."""
        batch, _, width = key_shape
        shape = (batch, self._owner.max_len, width)
        try:
            self.keys = np.zeros(shape, dtype=dtype)
            self.values = np.zeros(shape, dtype=dtype)
        except MemoryError:
            self.keys = self.values = None  # a half-made pair must not be written into later
            pair = 2 * np.dtype(dtype).itemsize * batch * self._owner.max_len * width
            every_layer = pair * self._owner.num_layers
            raise MemoryError(
                f"KVCache layer {self.index}: cannot allocate its keys and values, two {dtype} arrays of shape "
                f"{shape}: {_readable_bytes(pair)} for this layer, {_readable_bytes(every_layer)} for all "
                f"{self._owner.num_layers} layer(s); max_len={self._owner.max_len} sets the size, and "
                "KVCache.for_model(model) fits it to the model's context"
            ) from None

    def _holds_like(self, keys) -> bool:
        """Whether ``keys`` have the batch size, width and dtype of the stored arrays."""
        (batch, _, width), dtype = shape_of(keys), dtype_of(keys)
        return (batch, width, dtype) == (self.keys.shape[0], self.keys.shape[2], self.keys.dtype)

    def _check(self, keys, values) -> None:
        where = f"KVCache layer {self.index}"
        key_shape, value_shape = shape_of(keys), shape_of(values)
        key_dtype, value_dtype = dtype_of(keys), dtype_of(values)
        if len(key_shape) != 3 or key_shape != value_shape or key_dtype is None or key_dtype.kind != "f" \
                or key_dtype != value_dtype:
            raise ValueError(
                f"{where}: keys and values must be floating arrays of one shape (batch, new_positions, width), "
                f"got {key_dtype} {key_shape} and {value_dtype} {value_shape}"
            )
        if self.keys is not None and self._owner.length and not self._holds_like(keys):
            raise ValueError(
                f"{where}: holds batch {self.keys.shape[0]}, width {self.keys.shape[2]}, {self.keys.dtype}; "
                f"got keys of shape {key_shape} and dtype {key_dtype} (reset() to start a new sequence)"
            )
        if self._owner.length + key_shape[1] > self._owner.max_len:
            raise ValueError(
                f"{where}: holds at most max_len={self._owner.max_len} positions; {self._owner.length} are "
                f"stored and {key_shape[1]} more came"
            )


class KVCache:
    """Every attention layer's keys and values for up to ``max_len`` positions of a batch.

    ``length`` counts the positions stored so far; the next tokens sit at positions ``length,
    length + 1, ...`` (``positions``), or where ``seek`` put them. ``GPT.forward(idx,
    cache=cache)`` appends ``idx``'s positions to every layer, then calls ``advance``. Memory:
    ``2 * num_layers * batch * max_len * width`` numbers (``nbytes``), whatever the length,
    because the arrays are allocated for the whole context; ``max_len`` is therefore at most
    ``MAX_LEN_LIMIT``, and ``for_model`` sizes it to the model's context.
    """

    def __init__(self, num_layers: int, max_len: int):
        self.num_layers = positive_int(num_layers, "num_layers", "KVCache")
        self.max_len = positive_int(max_len, "max_len", "KVCache")
        if self.max_len > MAX_LEN_LIMIT:
            raise ValueError(f"KVCache: max_len must be at most {MAX_LEN_LIMIT:,} positions, got {self.max_len:,}; "
                             "KVCache.for_model(model) fits the cache to the model's context")
        self.length = 0
        self._next_positions = None  # the array seek() was given, until advance()
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

    def positions(self, count: int) -> np.ndarray:
        """The positions of the next ``count`` tokens: the array given to ``seek``, or ``length ..
        length + count - 1``."""
        given = self._next_positions
        if given is not None and given.shape == (count,):
            return given
        return np.arange(self.length, self.length + count)

    def seek(self, positions) -> None:
        """The next tokens sit at ``positions`` ((T,) consecutive ints): keep that very array for
        the layers (a compiled step binds it) and set ``length`` to ``positions[0]``. The caller
        vouches that the earlier positions are stored: a replayed step writes the buffers without
        this object seeing it, so ``generate`` tells the cache where each step sits."""
        positions = array_of(positions)
        if positions.ndim != 1 or positions.size == 0 or positions.dtype.kind not in "iu":
            raise ValueError(f"KVCache.seek: positions must be a non-empty (T,) int array, got "
                             f"{positions.dtype} of shape {positions.shape}")
        start = int(positions[0])
        if not 0 <= start <= self.max_len - positions.size \
                or not np.array_equal(positions, np.arange(start, start + positions.size)):
            raise ValueError(
                f"KVCache.seek: positions must be consecutive ints in 0..max_len-1={self.max_len - 1}; got "
                f"{positions.tolist() if positions.size < 8 else positions}"
            )
        self.length, self._next_positions = start, positions

    def advance(self, count: int) -> None:
        """``count`` new positions are now stored in every layer."""
        count = positive_int(count, "count", "KVCache.advance")
        if self.length + count > self.max_len:
            raise ValueError(f"KVCache.advance: {self.length} + {count} positions exceed max_len={self.max_len}")
        self.length += count
        self._next_positions = None

    def reset(self) -> None:
        """Forget every stored position. The arrays stay allocated, to be overwritten by a batch of
        the same size, width and dtype; another batch gets new arrays at its first append."""
        self.length = 0
        self._next_positions = None

    @property
    def arrays(self) -> tuple:
        """Every allocated buffer, keys and values of each layer in order: what a compiled step
        that writes into them takes as an argument, so that its replays write into them too."""
        return tuple(a for layer in self.layers for a in (layer.keys, layer.values) if a is not None)

    @property
    def nbytes(self) -> int:
        return sum(layer.keys.nbytes + layer.values.nbytes for layer in self.layers if layer.keys is not None)

    def __repr__(self) -> str:
        return f"KVCache(num_layers={self.num_layers}, max_len={self.max_len}, length={self.length})"


def _readable_bytes(nbytes: int) -> str:
    """A byte count as people read it: ``58.2 TiB``, ``1.5 GiB``, ``640 KiB``."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:  # three digits, or the whole number beyond them: 1,536 TiB, not 1.54e+03
            value = nbytes / scale
            return f"{value:.3g} {unit}" if value < 1000 else f"{value:,.0f} {unit}"
    return f"{nbytes} bytes"
