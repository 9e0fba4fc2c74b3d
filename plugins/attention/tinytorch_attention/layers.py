"""Transformer layers: LayerNorm, MultiHeadAttention, FeedForward, TransformerBlock and a small GPT."""

from __future__ import annotations

import numbers

import numpy as np

from tinytorch_core import Module, ModuleList, Parameter, Tensor, is_grad_enabled, no_grad, resolve_generator
from tinytorch_core.checks import (array_of, dtype_mismatch, dtype_of, non_negative_int, positive_int, shape_of,
                                   true_or_false)
from tinytorch_embeddings import Embedding, LearnedPositionalEmbedding, SinusoidalPositionalEncoding
from tinytorch_embeddings.functional import check_indices, embedding
from tinytorch_nn import GELU, Dropout, Linear, ReLU

from .cache import cached_causal_mask, model_cache_layers, new_positions
from .functional import check_mask, checked_normalized_shape, layer_norm, scaled_dot_product_attention


def _probability(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not 0.0 <= value < 1.0:
        raise ValueError(f"{where}: dropout must be a probability in [0, 1), got {value!r}")
    return float(value)


class LayerNorm(Module):
    """Normalise the last axes to zero mean and unit (biased) variance, then ``* weight + bias``.

    ``normalized_shape`` (an int or a tuple) is the shape of the axes normalised, the last ones.
    ``weight`` starts at ones and ``bias`` at zeros, both of that shape; ``elementwise_affine=False``
    leaves both out and ``bias=False`` the bias (as in PyTorch).
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True):
        super().__init__()
        self.normalized_shape = checked_normalized_shape(normalized_shape, "LayerNorm")
        if not isinstance(eps, numbers.Real) or isinstance(eps, bool) or not eps > 0:
            raise ValueError(f"LayerNorm: eps must be a positive number, got {eps!r}")
        self.eps = float(eps)
        self.elementwise_affine = true_or_false(elementwise_affine, "elementwise_affine", "LayerNorm")
        with_bias = true_or_false(bias, "bias", "LayerNorm")
        affine = self.elementwise_affine
        self.weight = Parameter(np.ones(self.normalized_shape, dtype=np.float32)) if affine else None
        self.bias = Parameter(np.zeros(self.normalized_shape, dtype=np.float32)) if affine and with_bias else None

    def forward(self, x):
        if self.weight is not None and dtype_of(x) != self.weight.dtype:  # without parameters: any float dtype
            raise dtype_mismatch(self, x, self.weight.dtype)
        shape, normalized = shape_of(x), self.normalized_shape
        if len(shape) < len(normalized) or shape[len(shape) - len(normalized):] != normalized:
            expected = ", ".join(map(str, normalized))
            raise ValueError(f"LayerNorm({expected}): expected input of shape (..., {expected}), got {shape}")
        # with parameters, their shape names the axes (checked above), so layer_norm need not check it again
        return layer_norm(x, self.weight, self.bias, self.eps, normalized_shape=None if self.weight is not None else normalized)

    def extra_repr(self) -> str:
        text = f"{self.normalized_shape}, eps={self.eps:g}"
        if not self.elementwise_affine:
            return text + ", elementwise_affine=False"
        return text if self.bias is not None else text + ", bias=False"


class MultiHeadAttention(Module):
    """Multi-head scaled dot-product attention with separate query/key/value/output projections.

    ``forward(query, key=None, value=None, *, mask=None, causal=False, key_padding_mask=None)``:

    - ``query`` (B, Tq, E); ``key``/``value`` (B, Tk, E). ``key=None`` means self-attention
      (key = value = query); ``value=None`` with a key means value = key (cross-attention).
    - ``mask``: bool, **True = may attend**; shape (Tq, Tk), (B, Tq, Tk), (B, 1, Tq, Tk) or
      (B, H, Tq, Tk) (anything broadcastable to (B, H, Tq, Tk); a 3-D mask is read as (B, Tq, Tk)).
    - ``causal=True``: query ``i`` sees keys ``j <= i`` only.
    - ``key_padding_mask``: bool (B, Tk), **True = padding** (PyTorch's convention for this
      argument): those keys are ignored by every query.

    - ``cache``: a layer cache (``tinytorch_attention.cache.LayerCache``) for self-attention of
      new positions against stored ones, under ``no_grad`` only: ``query`` holds the new
      positions, no ``key``/``value``/masks (``causal`` masks by position in the whole sequence).

    A query left with no key to attend gets a zero vector (before ``out_proj``), not NaN.
    ``dropout`` drops attention weights in training mode. Returns (B, Tq, E).
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True, *, generator=None):
        super().__init__()
        where = "MultiHeadAttention"
        self.embed_dim = positive_int(embed_dim, "embed_dim", where)
        self.num_heads = positive_int(num_heads, "num_heads", where)
        if self.embed_dim % self.num_heads:
            divisors = [h for h in range(1, self.embed_dim + 1) if self.embed_dim % h == 0]
            raise ValueError(
                f"{where}: embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}; "
                f"each head gets embed_dim // num_heads features, so num_heads must be one of {divisors}"
            )
        self.head_dim = self.embed_dim // self.num_heads
        self.dropout = _probability(dropout, where)
        true_or_false(bias, "bias", where)
        # a given generator drives both the initial values and dropout; None means the default
        # generator, looked up at each use so that manual_seed() takes effect
        rng = resolve_generator(generator) if generator is not None else None
        self._dropout_generator = rng
        self.q_proj = Linear(embed_dim, embed_dim, bias=bias, generator=rng)
        self.k_proj = Linear(embed_dim, embed_dim, bias=bias, generator=rng)
        self.v_proj = Linear(embed_dim, embed_dim, bias=bias, generator=rng)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, generator=rng)

    def _check_input(self, name: str, x) -> tuple:
        shape = shape_of(x)
        if len(shape) != 3 or shape[-1] != self.embed_dim:
            raise ValueError(
                f"MultiHeadAttention: {name} must have shape (batch, seq_len, {self.embed_dim}), got {shape}"
            )
        return shape

    def _combined_mask(self, mask, key_padding_mask, batch, query_len, key_len):
        where = "MultiHeadAttention"
        target = (batch, self.num_heads, query_len, key_len)
        allowed = None
        if mask is not None:
            arr = array_of(mask)
            if arr.ndim == 3:  # (B, Tq, Tk): the same mask for every head
                if arr.shape[0] not in (1, batch):  # PyTorch's 3-D attn_mask is (B * heads, Tq, Tk)
                    raise ValueError(f"{where}: a 3-D mask is read as (batch, query_len, key_len) = "
                                     f"({batch}, {query_len}, {key_len}), got {arr.shape}; for one mask per head "
                                     f"pass 4-D (batch, num_heads, query_len, key_len) (PyTorch's (B * heads, Tq, Tk) "
                                     f"reshaped to ({batch}, {self.num_heads}, {query_len}, {key_len}))")
                arr = arr[:, None]
            allowed = check_mask(arr, target, where)
        if key_padding_mask is not None:
            pad = array_of(key_padding_mask)
            if pad.dtype != np.bool_:
                raise TypeError(
                    f"{where}: key_padding_mask must be a bool array (True = padding), got dtype {pad.dtype}"
                )
            if pad.shape != (batch, key_len):
                raise ValueError(
                    f"{where}: key_padding_mask must have shape (batch, key_len) = {(batch, key_len)}, "
                    f"got {pad.shape}"
                )
            # tensor ops, not NumPy: a compiled step recomputes the mask from each batch's padding
            padding = key_padding_mask if isinstance(key_padding_mask, Tensor) else Tensor._wrap(pad)
            keys_allowed = ~padding[:, None, None, :]
            allowed = keys_allowed if allowed is None else keys_allowed & allowed
        return allowed

    def forward(self, query, key=None, value=None, *, mask=None, causal: bool = False, key_padding_mask=None,
                cache=None):  # masks by keyword: PyTorch's 4th is key_padding_mask (True = padding)
        causal = true_or_false(causal, "causal", "MultiHeadAttention")
        if cache is not None:
            if key is not None or value is not None or mask is not None or key_padding_mask is not None:
                raise ValueError(
                    "MultiHeadAttention: with a cache, forward takes the new positions as query only "
                    "(self-attention; causal=True masks by position), got key, value or a mask as well"
                )
            return self._cached_self_attention(query, causal, cache)
        if key is None:
            if value is not None:
                raise ValueError("MultiHeadAttention: value was given without key")
            key = value = query
        elif value is None:
            value = key
        expected = self.q_proj.weight.dtype
        if dtype_of(query) != expected:
            raise dtype_mismatch(self, query, expected, "query")
        if key is not query and (dtype_of(key) != expected or dtype_of(value) != expected):
            bad, what = (key, "key") if dtype_of(key) != expected else (value, "value")
            raise dtype_mismatch(self, bad, expected, what)
        batch, query_len, _ = self._check_input("query", query)
        kb, key_len, _ = self._check_input("key", key)
        vb, value_len, _ = self._check_input("value", value)
        if kb != batch or vb != batch or value_len != key_len:
            raise ValueError(
                f"MultiHeadAttention: query {shape_of(query)}, key {shape_of(key)} and value {shape_of(value)} must "
                "share the batch size, and key and value the length"
            )
        if key_len == 0:
            raise ValueError(
                f"MultiHeadAttention: key and value have no positions (shapes {shape_of(key)}, {shape_of(value)}); "
                "every query needs at least one key to attend to"
            )
        allowed = self._combined_mask(mask, key_padding_mask, batch, query_len, key_len)
        attended = scaled_dot_product_attention(  # splits and merges the heads itself: (B, Tq, E)
            self.q_proj(query), self.k_proj(key), self.v_proj(value), mask=allowed, causal=causal,
            dropout_p=self.dropout if self.training else 0.0, generator=self._dropout_generator,
            num_heads=self.num_heads,
        )
        return self.out_proj(attended)

    def _cached_self_attention(self, x, causal: bool, cache):
        """Self-attention of the new positions ``x`` (B, T, E) over every position in ``cache``:
        only the new positions are projected; the earlier keys and values are read from the cache."""
        if is_grad_enabled():
            raise RuntimeError(
                "MultiHeadAttention: a key/value cache holds plain arrays, so no gradient would reach the "
                "earlier positions; use the cache under tinytorch_core.no_grad() (generation does)"
            )
        if not callable(getattr(cache, "append", None)) or isinstance(cache, type):
            raise TypeError(f"MultiHeadAttention: cache must be a layer cache with append(keys, values), such as "
                            f"KVCache(...).layer(i), got {type(cache).__name__}")
        if dtype_of(x) != self.q_proj.weight.dtype:
            raise dtype_mismatch(self, x, self.q_proj.weight.dtype, "query")
        self._check_input("query", x)
        keys, values = cache.append(self.k_proj(x), self.v_proj(x))  # (B, stored + T, E) each
        query_len = shape_of(x)[1]
        # one new token comes after every stored key: causal needs no mask then (the usual step)
        allowed = cached_causal_mask(query_len, shape_of(keys)[1]) if causal and query_len > 1 else None
        attended = scaled_dot_product_attention(
            self.q_proj(x), keys, values, mask=allowed,
            dropout_p=self.dropout if self.training else 0.0, generator=self._dropout_generator,
            num_heads=self.num_heads,
        )
        return self.out_proj(attended)

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout:g}"


_ACTIVATIONS = {
    "gelu_tanh": lambda: GELU(approximate="tanh"),
    "gelu": lambda: GELU(approximate="none"),
    "relu": lambda: ReLU(),
}


class FeedForward(Module):
    """Position-wise MLP: ``fc2(dropout(activation(fc1(x))))``, E -> hidden_dim -> E.

    ``activation``: ``"gelu_tanh"`` (GELU, tanh approximation; the default, as in GPT-2),
    ``"gelu"`` (exact, erf) or ``"relu"``.
    """

    def __init__(self, embed_dim: int, hidden_dim: int, dropout: float = 0.0, activation: str = "gelu_tanh",
                 generator=None):
        super().__init__()
        where = "FeedForward"
        embed_dim = positive_int(embed_dim, "embed_dim", where)
        hidden_dim = positive_int(hidden_dim, "hidden_dim", where)
        if activation not in _ACTIVATIONS:
            raise ValueError(f"{where}: activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        # a given generator drives both the initial values and dropout; None means the default
        # generator, looked up at each use so that manual_seed() takes effect
        rng = resolve_generator(generator) if generator is not None else None
        self.activation = activation
        self.fc1 = Linear(embed_dim, hidden_dim, generator=rng)
        self.act = _ACTIVATIONS[activation]()
        self.drop = Dropout(_probability(dropout, where), generator=rng)
        self.fc2 = Linear(hidden_dim, embed_dim, generator=rng)

    def forward(self, x):
        if dtype_of(x) != self.fc1.weight.dtype:
            raise dtype_mismatch(self, x, self.fc1.weight.dtype)
        return self.fc2(self.drop(self.act(self.fc1(x))))


class TransformerBlock(Module):
    """Pre-norm transformer block:

    ``x = x + dropout(attn(ln1(x)))``, then ``x = x + dropout(ff(ln2(x)))``.

    ``causal=True`` makes every attention call causal (decoder block). ``forward(x, mask=None,
    key_padding_mask=None, cache=None)`` passes the masks, or a layer cache, to the attention (see
    ``MultiHeadAttention``).
    """

    def __init__(self, embed_dim: int, num_heads: int, ff_dim: int, dropout: float = 0.0, causal: bool = False,
                 generator=None):
        super().__init__()
        rng = resolve_generator(generator) if generator is not None else None  # see FeedForward
        self.causal = true_or_false(causal, "causal", "TransformerBlock")
        self.ln1 = LayerNorm(embed_dim)
        self.attn = MultiHeadAttention(embed_dim, num_heads, dropout=dropout, generator=rng)
        self.ln2 = LayerNorm(embed_dim)
        self.ff = FeedForward(embed_dim, ff_dim, dropout=dropout, generator=rng)
        self.drop = Dropout(_probability(dropout, "TransformerBlock"), generator=rng)

    def forward(self, x, mask=None, key_padding_mask=None, cache=None):
        if dtype_of(x) != self.ln1.weight.dtype:
            raise dtype_mismatch(self, x, self.ln1.weight.dtype)
        attended = self.attn(self.ln1(x), mask=mask, causal=self.causal, key_padding_mask=key_padding_mask, cache=cache)
        x = x + self.drop(attended)
        return x + self.drop(self.ff(self.ln2(x)))

    def extra_repr(self) -> str:
        return f"causal={self.causal}"


class GPT(Module):
    """A small decoder-only language model (GPT-2 layout, pre-norm).

    ``logits = head(ln_f(blocks(dropout(tok_emb(idx) + pos_emb))))`` with ``idx`` (B, T) integer
    token ids, T <= ``max_len``; returns (B, T, vocab_size). ``positional="learned"`` (GPT-2's
    trained position vectors) or ``"sinusoidal"`` (the fixed table of Vaswani et al.). The token
    and learned position tables start as N(0, 0.02**2) draws (GPT-2's choice); every Linear keeps
    the nn stage's default init.

    ``forward(idx, cache=cache)`` (under ``no_grad``) takes only the *new* positions: a model cache
    (``tinytorch_attention.cache.ModelCache``) holds the keys and values of the ``cache.length``
    earlier ones, so ``idx`` sits at positions ``cache.length, ...`` and attends to them too.
    """

    init_std = 0.02
    positional_kinds = ("learned", "sinusoidal")

    def __init__(self, vocab_size: int, max_len: int, embed_dim: int, num_heads: int, num_layers: int,
                 ff_dim: int, dropout: float = 0.0, causal: bool = True, generator=None,
                 positional: str = "learned"):
        super().__init__()
        where = "GPT"
        self.vocab_size = positive_int(vocab_size, "vocab_size", where)
        self.max_len = positive_int(max_len, "max_len", where)
        self.num_layers = positive_int(num_layers, "num_layers", where)
        if positional not in self.positional_kinds:
            raise ValueError(f"{where}: positional must be one of {self.positional_kinds}, got {positional!r}")
        self.positional = positional
        self.causal = true_or_false(causal, "causal", "GPT")
        rng = resolve_generator(generator) if generator is not None else None  # see FeedForward
        self.tok_emb = Embedding(self.vocab_size, embed_dim, generator=rng)
        with no_grad():
            self.tok_emb.weight.mul_(self.init_std)  # N(0, 1) -> N(0, 0.02**2)
        if positional == "learned":
            self.pos_emb = LearnedPositionalEmbedding(self.max_len, embed_dim, generator=rng)
        else:
            self.pos_emb = SinusoidalPositionalEncoding(self.max_len, embed_dim)
        self.drop = Dropout(_probability(dropout, where), generator=rng)
        self.blocks = ModuleList(
            TransformerBlock(embed_dim, num_heads, ff_dim, dropout=dropout, causal=causal, generator=rng)
            for _ in range(self.num_layers)
        )
        self.ln_f = LayerNorm(embed_dim)
        self.head = Linear(embed_dim, self.vocab_size, generator=rng)

    def forward(self, idx, key_padding_mask=None, cache=None):
        shape = shape_of(idx)
        if len(shape) != 2:
            raise ValueError(f"GPT: expected token ids of shape (batch, seq_len), got {shape}")
        if shape[1] == 0:
            raise ValueError(f"GPT: expected at least one token per sequence, got token ids of shape {shape}")
        layer_caches = [None] * self.num_layers if cache is None else self._layer_caches(cache)
        start = 0 if cache is None else int(cache.length)  # the position of idx's first token
        if start + shape[1] > self.max_len:
            stored = "" if cache is None else f" after the {start} positions already in the cache"
            raise ValueError(
                f"GPT: sequence length {shape[1]}{stored} exceeds max_len {self.max_len}; crop the input to the "
                f"last {self.max_len} tokens"
            )
        if cache is not None and key_padding_mask is not None:
            raise ValueError("GPT: key_padding_mask cannot be combined with a cache (it would have to cover "
                             "the cached positions too)")
        check_indices(idx, self.vocab_size, "GPT")
        positions = None if cache is None else new_positions(cache, shape[1], "GPT")
        x = self.drop(self._add_positions(self.tok_emb(idx), positions))
        for block, layer_cache in zip(self.blocks, layer_caches):
            x = block(x, key_padding_mask=key_padding_mask, cache=layer_cache)
        if cache is not None:
            cache.advance(shape[1])  # every layer now holds the new positions
        return self.head(self.ln_f(x))

    def _layer_caches(self, cache) -> list:
        if not self.causal:  # with causal=False earlier positions see later ones: stored keys go stale
            raise ValueError("GPT: a key/value cache needs a causal model; this one has causal=False, so every "
                             "position attends to later ones and must be recomputed (call it without a cache)")
        return model_cache_layers(cache, self.num_layers, "GPT")

    def _add_positions(self, tokens, positions):
        """``tokens`` (B, T, E) plus the vectors of positions ``0 .. T - 1``, or of ``positions``
        (T,) when a cache says where the tokens sit."""
        if positions is None:
            return self.pos_emb(tokens)
        # a cached step (under no_grad): the table rows the full sequence would get, added the
        # same way, so a cached position gets exactly the input an uncached one does. A lookup
        # op, not a slice: the positions are data, which a compiled decoding step replays
        table = self.pos_emb.weight if self.positional == "learned" else self.pos_emb.pe
        return tokens + embedding(positions, table)

    def generate(self, prompt_ids, max_new_tokens: int, temperature: float = 1.0, top_k=None, generator=None):
        """Extend ``prompt_ids`` ((T,) or (B, T) ints) by ``max_new_tokens`` sampled tokens.

        Each step feeds the last ``max_len`` tokens, scales the last position's logits by
        ``1 / temperature``, keeps the ``top_k`` largest (if given) and samples with ``generator``
        (a seed or Generator; the default generator otherwise). ``temperature=0`` or ``top_k=1``
        picks the most likely token (greedy). Runs in eval mode without recording a graph and
        restores the previous mode. Returns an int64 array: the prompt followed by the new tokens,
        with the prompt's shape.

        This is the plain reference: every step recomputes every position. The generation stage's
        ``tinytorch_core.generation.generate`` adds the key/value cache (same tokens, far faster),
        nucleus (top-p) sampling and a clear error, instead of cropping, past ``max_len``.
        """
        try:
            ids = array_of(prompt_ids)
        except ValueError:  # NumPy cannot stack prompts of different lengths
            raise ValueError("GPT.generate: prompt_ids must hold prompts of equal length") from None
        single = ids.ndim == 1
        if ids.ndim not in (1, 2) or ids.shape[-1] == 0:
            raise ValueError(f"GPT.generate: prompt_ids must be a non-empty (T,) or (B, T) array, got shape {ids.shape}")
        check_indices(ids, self.vocab_size, "GPT.generate")
        max_new_tokens = non_negative_int(max_new_tokens, "max_new_tokens", "GPT.generate")
        if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) \
                or not 0 <= temperature < float("inf"):
            raise ValueError(f"GPT.generate: temperature must be a finite number >= 0, got {temperature!r}")
        if top_k is not None:
            top_k = positive_int(top_k, "top_k", "GPT.generate")
        rng = resolve_generator(generator)
        greedy = temperature == 0 or top_k == 1
        prompt = ids.astype(np.int64).reshape(1, -1) if single else ids.astype(np.int64)
        out = _token_buffer(prompt, max_new_tokens)
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                for position in range(prompt.shape[1], out.shape[1]):
                    window = out[:, max(0, position - self.max_len):position]  # the last max_len tokens
                    logits = self(window).data[:, -1, :].astype(np.float64)
                    if not np.isfinite(logits).all():
                        raise ValueError("GPT.generate: the model's logits hold NaN or inf; no token can be chosen")
                    if greedy:
                        nxt = logits.argmax(axis=-1)
                    else:  # shifted first: a tiny temperature then gives -inf (probability 0), never +inf
                        with np.errstate(over="ignore"):
                            nxt = _sample((logits - logits.max(axis=-1, keepdims=True)) / temperature, top_k, rng)
                    out[:, position] = nxt
        finally:
            self.train(was_training)
        return out[0] if single else out

    def extra_repr(self) -> str:
        return f"vocab_size={self.vocab_size}, max_len={self.max_len}, num_layers={self.num_layers}"


def _token_buffer(prompt: np.ndarray, max_new_tokens: int) -> np.ndarray:
    """The prompt followed by room for ``max_new_tokens`` ids, allocated before any step runs: a
    count no memory can hold is refused at once, not after hours of growing."""
    shape = (prompt.shape[0], prompt.shape[1] + max_new_tokens)
    try:
        out = np.empty(shape, dtype=np.int64)
    except (MemoryError, ValueError):
        raise MemoryError(f"GPT.generate: max_new_tokens={max_new_tokens} for {shape[0]} prompt(s) needs an "
                          f"array of {shape} token ids, more than the memory can hold") from None
    out[:, :prompt.shape[1]] = prompt
    return out


def _sample(logits: np.ndarray, top_k, rng) -> np.ndarray:
    """One draw per row from ``softmax(logits)``, restricted to the ``top_k`` largest if given."""
    if top_k is not None and top_k < logits.shape[-1]:
        kth = np.partition(logits, -top_k, axis=-1)[:, -top_k][:, None]
        logits = np.where(logits >= kth, logits, -np.inf)
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    cumulative = np.cumsum(probs, axis=-1)
    draws = rng.random((logits.shape[0], 1)) * cumulative[:, -1:]
    return np.minimum((cumulative <= draws).sum(axis=-1), logits.shape[-1] - 1)
