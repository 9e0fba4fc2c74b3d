"""``generate``: extend prompts token by token with a causal language model.

Each step needs the logits of the last position only. Without a cache the model recomputes the
whole sequence for them (step ``t`` costs ``t`` positions, so ``n`` steps cost ``O(n**2)``
positions). With a ``KVCache`` the prompt is computed once and every later step feeds the model
one new token, which attends to the stored keys and values: each step costs one position.

One position is little arithmetic, so the Python work of running the layers op by op (checks,
Tensors, module calls) becomes most of a step. Every decoding step does the same work on
arrays of the same shapes (the cache is static: the position is data), so the acceleration
stage's ``compile`` records the step on its first two calls and replays its kernels for the
rest: the same arithmetic without that Python work (``compiled=False`` runs every step eagerly).
"""

from __future__ import annotations

import numbers

import numpy as np

from tinytorch_acceleration import CompileError, compile
from tinytorch_core import no_grad
from tinytorch_core.checks import array_of, non_negative_int, positive_int
from tinytorch_embeddings.functional import check_indices

from .cache import KVCache
from .sampling import check_temperature, check_top_p, choose_next

_WHERE = "generate"


def generate(model, prompt_ids, max_new_tokens: int, temperature: float = 1.0, top_k=None, top_p=None,
             seed=None, use_cache: bool = True, compiled: bool = True, on_token=None) -> np.ndarray:
    """The prompt followed by ``max_new_tokens`` new token ids, as an int64 array.

    - ``model``: a causal language model, a tinytorch ``Module`` such as ``tinytorch_core.nn.GPT``
      (``forward(idx)`` -> logits (B, T, vocab); ``vocab_size``, ``max_len``, ``num_layers``;
      ``forward(idx, cache=...)`` when ``use_cache``). It runs in eval mode under ``no_grad``;
      its mode is restored afterwards.
    - ``prompt_ids``: (T,) or (B, T) ints in ``0 .. vocab_size - 1``, T >= 1: B prompts of equal
      length. The result has shape (T + max_new_tokens,) or (B, T + max_new_tokens).
    - ``temperature == 0``: greedy (the most likely token; top_k and top_p change nothing). Else
      each token is drawn from ``softmax(logits / temperature)``, restricted to the ``top_k`` most
      likely tokens and to the nucleus of probability ``top_p`` when given, with
      ``np.random.default_rng(seed)``: the same seed gives the same tokens, with or without cache.
    - The context is not slid: ``T + max_new_tokens > max_len`` is a ``ValueError`` before any work
      (a sliding window would re-position every token at each step, which a cache cannot reuse).
    - ``compiled`` (with the cache): replay the one-token step with ``tinytorch_acceleration.compile``
      after recording it twice; the same tokens as eager steps. A model whose step a replay cannot
      follow (Python work on the values) is detected at the second recording and runs eagerly.
    - ``on_token(position, token_ids)``, if given, is called as each new token is chosen, with its
      position and a copy of the (B,) chosen ids: to show text as it comes, or to time each step.
    """
    _check_model(model)
    prompt, single = _check_prompt(model, prompt_ids)
    _check_decoding(model, use_cache, compiled, on_token)
    max_new_tokens = non_negative_int(max_new_tokens, "max_new_tokens", _WHERE)
    _check_context(model, prompt.shape[1], max_new_tokens)
    temperature = check_temperature(temperature, _WHERE)
    top_k = None if top_k is None else positive_int(top_k, "top_k", _WHERE)
    top_p = None if top_p is None else check_top_p(top_p, _WHERE)
    rng = np.random.default_rng(_check_seed(seed))

    batch, prompt_len = prompt.shape
    ids = np.empty((batch, prompt_len + max_new_tokens), dtype=np.int64)
    ids[:, :prompt_len] = prompt
    was_training = model.training
    model.eval()  # no dropout: generation is inference

    def put(position: int, logits) -> None:
        """Choose the token at ``position`` from the (B, vocab) logits that predict it; report it."""
        ids[:, position] = choose_next(logits, temperature, top_k, top_p, rng)
        if on_token is not None:
            on_token(position, ids[:, position].copy())

    try:
        with no_grad():
            if use_cache:
                _extend_cached(model, ids, prompt_len, put, bool(compiled))
            else:
                _extend_uncached(model, ids, prompt_len, put)
    finally:
        model.train(was_training)
    return ids[0] if single else ids


def _extend_uncached(model, ids: np.ndarray, prompt_len: int, put) -> None:
    """Fill ``ids[:, prompt_len:]``: each step runs the model on the whole sequence so far."""
    for position in range(prompt_len, ids.shape[1]):
        put(position, _last_logits(model, model(ids[:, :position]), position))


def _extend_cached(model, ids: np.ndarray, prompt_len: int, put, compiled: bool) -> None:
    """Fill ``ids[:, prompt_len:]``: the model sees the prompt once, then one new token a step."""
    if ids.shape[1] == prompt_len:
        return
    cache = KVCache.for_model(model)
    put(prompt_len, _last_logits(model, model(ids[:, :prompt_len], cache=cache), prompt_len))

    def decode(token_ids, positions, buffers):
        """One new token per sequence at ``positions`` (1,). ``buffers``: the cache's arrays, an
        argument so that a compiled step binds them and its replays write into them."""
        cache.seek(positions)
        return model(token_ids, cache=cache)

    step = _compiled(decode, model) if compiled else decode
    buffers = cache.arrays  # allocated by the prompt's step, the same arrays from here on
    for position in range(prompt_len + 1, ids.shape[1]):
        # the token chosen last sits at position - 1: its keys and values are the ones not cached yet
        inputs = (ids[:, position - 1 : position], np.array([position - 1]), buffers)
        try:
            logits = step(*inputs)
        except CompileError:  # the model's step depends on its values: decode eagerly from here on
            step = decode
            logits = step(*inputs)  # the cache is addressed by position: writing this one again is harmless
        put(position, _last_logits(model, logits, 1))


def _compiled(decode, model):
    """``decode`` compiled. Its token ids and positions replay over the whole range the model
    checks when it runs eagerly (ids below vocab_size, positions below max_len), not only over
    the values its two recordings saw."""
    return compile(decode, integer_ranges={"token_ids": (0, model.vocab_size - 1),
                                           "positions": (0, model.max_len - 1)})


def _last_logits(model, output, length: int) -> np.ndarray:
    """The last position's logits (B, vocab) of ``model``'s output for ``length`` positions, after
    checking its shape: an id sampled from a wider row would not be a token of the model."""
    logits = array_of(output)
    batch = logits.shape[0] if logits.ndim else 0
    if logits.shape != (batch, length, model.vocab_size):
        raise ValueError(
            f"{_WHERE}: the model returned logits of shape {logits.shape} for {length} position(s); expected "
            f"(batch, {length}, vocab_size={model.vocab_size})"
        )
    return logits[:, -1, :]


def _check_model(model) -> None:
    """``model`` as ``generate`` uses it, checked before anything else: the sizes of a causal
    language model, and what a tinytorch ``Module`` has to run in eval mode and be restored
    (``training``, ``eval()``, ``train(mode)``, a call). Without this, a model lacking one of
    them failed with a bare AttributeError from inside ``generate``."""
    for attribute in ("vocab_size", "max_len", "num_layers"):
        if not hasattr(model, attribute):
            raise TypeError(
                f"{_WHERE}: model must be a causal language model with vocab_size, max_len and num_layers "
                f"(such as tinytorch_core.nn.GPT); {type(model).__name__} has no {attribute!r}"
            )
    lacking = [name for name, present in (
        ("a bool 'training'", isinstance(getattr(model, "training", None), (bool, np.bool_))),
        ("eval()", callable(getattr(model, "eval", None))),
        ("train(mode)", callable(getattr(model, "train", None))),
        ("a call model(ids)", callable(model)),
    ) if not present]
    if lacking:
        raise TypeError(
            f"{_WHERE}: model must be a tinytorch Module (such as tinytorch_core.nn.GPT), which generate calls, "
            f"puts in eval mode and restores to its training mode; {type(model).__name__} lacks "
            f"{', '.join(lacking)}"
        )


def _check_prompt(model, prompt_ids) -> tuple[np.ndarray, bool]:
    """The prompt as a (B, T) array, and whether it came as one (T,) sequence."""
    try:
        ids = array_of(prompt_ids)
    except ValueError:  # NumPy cannot stack prompts of different lengths
        raise ValueError(f"{_WHERE}: prompt_ids must hold prompts of equal length (pad them, or generate "
                         "for each prompt separately)") from None
    if ids.ndim not in (1, 2) or ids.shape[-1] == 0 or ids.size == 0:
        raise ValueError(
            f"{_WHERE}: prompt_ids must be a non-empty (T,) sequence or a (B, T) batch of equal-length "
            f"prompts with T >= 1, got shape {ids.shape}"
        )
    check_indices(ids, model.vocab_size, f"{_WHERE} (prompt_ids)")
    single = ids.ndim == 1
    return (ids[None, :] if single else ids), single


def _check_decoding(model, use_cache, compiled, on_token) -> None:
    """The options that choose how tokens are computed and reported."""
    if not isinstance(compiled, (bool, np.bool_)):
        raise TypeError(f"{_WHERE}: compiled must be True or False, got {compiled!r}")
    if on_token is not None and not callable(on_token):
        raise TypeError(f"{_WHERE}: on_token must be None or a function (position, token_ids), got {on_token!r}")
    if not isinstance(use_cache, (bool, np.bool_)):
        raise TypeError(f"{_WHERE}: use_cache must be True or False, got {use_cache!r}")
    if use_cache and not getattr(model, "causal", True):
        # a non-causal model's earlier positions see later ones: their stored keys would be stale
        raise ValueError(f"{_WHERE}: the model is not causal (causal=False), so a key/value cache would change its "
                         "answers; pass use_cache=False")


def _check_context(model, prompt_len: int, max_new_tokens: int) -> None:
    if prompt_len > model.max_len:
        raise ValueError(
            f"{_WHERE}: the prompt has {prompt_len} tokens, more than the model's context max_len="
            f"{model.max_len}; crop it to its last {model.max_len} tokens"
        )
    if prompt_len + max_new_tokens > model.max_len:
        raise ValueError(
            f"{_WHERE}: {prompt_len} prompt tokens + max_new_tokens={max_new_tokens} exceed the model's "
            f"context max_len={model.max_len}; this generate does not slide a window, so ask for at most "
            f"{model.max_len - prompt_len} new tokens (or crop the prompt)"
        )


def _check_seed(seed):
    if seed is None or isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"{_WHERE}: seed must be None, an int >= 0 or a numpy Generator, got {seed!r}")
    return int(seed)
