"""The contract of stage ``generation`` (a key/value cache, greedy and sampled decoding), checked
through the public API with the attention stage's ``tt.nn.GPT``. Greedy decoding is compared with
a reference computed here (the full forward at every step, argmax); the cache is checked through
the attention stage's cache protocol only (``length``, ``layer(i).append``, ``advance``)."""

from __future__ import annotations

import numpy as np

import tinytorch_core as tt

from . import Check, ConformanceError, expect_close, expect_error
from .contract import Helper, Layer, Op

VOCAB = 11


def _gpt(positional="learned"):
    """A float64 GPT whose untrained choices depend on the tokens (token vectors of scale 0.4)."""
    model = tt.nn.GPT(VOCAB, 40, 16, 2, 2, 32, generator=3, positional=positional).to(np.float64)
    with tt.no_grad():
        model.tok_emb.weight.mul_(20.0)
    return model


PROMPTS = np.random.default_rng(0).integers(0, VOCAB, (2, 6))


def greedy_reference(model, prompts, steps):
    ids = np.array(prompts)
    with tt.no_grad():
        for _ in range(steps):
            logits = model(ids).data[:, -1]
            ids = np.concatenate([ids, logits.argmax(axis=-1)[:, None]], axis=1)
    return ids


def _expect_equal(what, actual, expected):
    actual = np.asarray(actual)
    if actual.shape != expected.shape or not np.array_equal(actual, expected):
        raise ConformanceError(f"{what}: got {actual.tolist()}, expected {expected.tolist()}")


# ---- generate -----------------------------------------------------------------------------------------
def generate_greedy():
    model = _gpt()
    expected = greedy_reference(model, PROMPTS, 20)
    for use_cache in (True, False):
        _expect_equal(f"generate(temperature=0, use_cache={use_cache})",
                      tt.generation.generate(model, PROMPTS, 20, temperature=0, use_cache=use_cache), expected)
    _expect_equal("generate of one (T,) prompt", tt.generation.generate(model, PROMPTS[1], 20, temperature=0),
                  expected[1])


def generate_sampled():
    model = _gpt("sinusoidal")
    options = dict(temperature=0.8, top_k=8, top_p=0.9, seed=4)
    cached = np.asarray(tt.generation.generate(model, PROMPTS, 25, **options))
    _expect_equal("sampled generate without the cache (same seed)",
                  tt.generation.generate(model, PROMPTS, 25, use_cache=False, **options), cached)
    _expect_equal("sampled generate again with the same seed", tt.generation.generate(model, PROMPTS, 25, **options),
                  cached)
    _expect_equal("the prompt at the start of the result", cached[:, :6], PROMPTS)
    other = np.asarray(tt.generation.generate(model, PROMPTS, 25, **{**options, "seed": 5}))
    if np.array_equal(other, cached):
        raise ConformanceError("generate with seeds 4 and 5 gave the same 25 tokens: the seed is ignored")


def generate_errors():
    model = _gpt()
    generate = tt.generation.generate
    for error, call, what in (
        (ValueError, lambda: generate(model, np.zeros(41, np.int64), 1), "a prompt longer than max_len"),
        (ValueError, lambda: generate(model, PROMPTS, 35), "prompt + max_new_tokens beyond max_len"),
        (ValueError, lambda: generate(model, np.zeros((2, 0), np.int64), 1), "an empty prompt"),
        (IndexError, lambda: generate(model, np.array([1, VOCAB]), 1), "a token id out of range"),
        (ValueError, lambda: generate(model, PROMPTS, 1, temperature=-1.0), "a negative temperature"),
        (ValueError, lambda: generate(model, PROMPTS, 1, top_p=0.0), "top_p=0"),
        (ValueError, lambda: generate(model, PROMPTS, 1, top_p=1.5), "top_p=1.5"),
        (ValueError, lambda: generate(model, PROMPTS, 1, top_k=0), "top_k=0"),
    ):
        expect_error(error, call, f"generate with {what}")


# ---- KVCache ------------------------------------------------------------------------------------------
class _Spy:
    """A model cache around the provider's: records how many positions each layer is given."""

    def __init__(self, cache):
        self.cache, self.appended = cache, []

    @property
    def length(self):
        return self.cache.length

    def layer(self, index):
        inner = self.cache.layer(index)
        spy = self

        class Layer:
            def append(self, keys, values):
                spy.appended.append(tuple(np.shape(keys)))
                return inner.append(keys, values)
        return Layer()

    def advance(self, count):
        self.cache.advance(count)


def kv_cache_contract():
    model = _gpt()
    ids = np.random.default_rng(1).integers(0, VOCAB, (2, 9))
    spy = _Spy(tt.generation.KVCache(model.num_layers, model.max_len))
    with tt.no_grad():
        full = model(ids).data
        stepped = [model(ids[:, :4], cache=spy).data] + [model(ids[:, p : p + 1], cache=spy).data for p in range(4, 9)]
    expect_close("logits of the prompt, then one token at a time through KVCache", np.concatenate(stepped, axis=1),
                 full, rtol=1e-10, atol=1e-10)
    if spy.cache.length != 9:
        raise ConformanceError(f"KVCache.length after 9 positions is {spy.cache.length}")
    if spy.appended != [(2, 4, 16)] * 2 + [(2, 1, 16)] * 10:
        raise ConformanceError(f"the layers appended keys of shapes {spy.appended}: a step must compute only "
                               "its new position")
    cache = tt.generation.KVCache(1, 3)
    keys = np.arange(8.0).reshape(1, 2, 4)
    stored = np.asarray(getattr(cache.layer(0).append(keys, keys)[0], "data", None))
    if stored.shape != (1, 2, 4) or not np.array_equal(stored, keys):
        raise ConformanceError(f"KVCache.layer(0).append of 2 positions returned keys {stored.tolist()}, expected "
                               f"the 2 appended {keys.tolist()}")
    cache.advance(2)
    expect_error(ValueError, lambda: cache.layer(0).append(keys, keys), "KVCache(max_len=3) given a 4th position")


# ---- the cache's op -----------------------------------------------------------------------------------
def kv_cache_write_forward():
    key_buffer, value_buffer = np.zeros((2, 5, 3)), np.full((2, 5, 3), -1.0)
    keys = np.random.default_rng(2).standard_normal((2, 2, 3))
    stored_keys, stored_values = tt.ops.kv_cache_write(key_buffer, value_buffer, keys, keys + 1, np.array([1, 2]))
    expected_keys, expected_values = np.zeros((2, 5, 3)), np.full((2, 5, 3), -1.0)
    expected_keys[:, 1:3], expected_values[:, 1:3] = keys, keys + 1
    _expect_equal("kv_cache_write: key_buffer written in place at positions 1 and 2", key_buffer, expected_keys)
    _expect_equal("kv_cache_write: value_buffer written in place", value_buffer, expected_values)
    _expect_equal("kv_cache_write: the keys returned (positions 0..2)", np.asarray(stored_keys.data),
                  expected_keys[:, :3])
    _expect_equal("kv_cache_write: the values returned (positions 0..2)", np.asarray(stored_values.data),
                  expected_values[:, :3])


def kv_cache_write_errors():
    key_buffer, keys = np.zeros((1, 4, 2)), np.ones((1, 1, 2))
    for error, positions, what in ((IndexError, np.array([4]), "a position past the buffer"),
                                   (IndexError, np.array([-1]), "a negative position"),
                                   (TypeError, np.array([1.0]), "a float position")):
        expect_error(error, lambda: tt.ops.kv_cache_write(key_buffer, key_buffer.copy(), keys, keys, positions),
                     f"kv_cache_write with {what}")
    expect_error(ValueError, lambda: tt.ops.kv_cache_write(key_buffer, key_buffer.copy(), np.ones((1, 1, 3)),
                                                           np.ones((1, 1, 3)), np.array([0])),
                 "kv_cache_write with keys of another width")


# ---- the sampling helpers -----------------------------------------------------------------------------
def top_k_forward():
    logits = np.array([[1.0, 4.0, 2.0, 3.0], [0.0, -1.0, 5.0, 5.0]])
    kept = np.isfinite(np.asarray(tt.generation.top_k_filter(logits, 2)))
    _expect_equal("top_k_filter(logits, 2): the tokens kept", kept,
                  np.array([[False, True, False, True], [False, False, True, True]]))


def top_p_forward():
    logits = np.log(np.array([[0.2, 0.5, 0.3], [0.1, 0.6, 0.3]]))
    kept = np.isfinite(np.asarray(tt.generation.top_p_filter(logits, 0.7)))
    _expect_equal("top_p_filter(logits, 0.7): the tokens kept", kept,
                  np.array([[False, True, True], [False, True, True]]))
    kept = np.isfinite(np.asarray(tt.generation.top_p_filter(logits, 0.55)))
    _expect_equal("top_p_filter(logits, 0.55): the tokens kept", kept,
                  np.array([[False, True, True], [False, True, False]]))


def sample_tokens_forward():
    probs = np.array([0.1, 0.0, 0.6, 0.3])
    with np.errstate(divide="ignore"):
        logits = np.tile(np.log(probs), (20000, 1))
    tokens = np.asarray(tt.generation.sample_tokens(logits, np.random.default_rng(0)))
    frequencies = np.bincount(tokens, minlength=4) / len(tokens)
    expect_close("sample_tokens: the frequency of each token (probabilities 0.1, 0, 0.6, 0.3)", frequencies,
                 probs, rtol=0.0, atol=0.015)


CHECKS = [
    Check("generation.generate", "forward", generate_greedy),
    Check("generation.generate", "contract", generate_sampled),
    Check("generation.generate", "contract", generate_errors),
    Check("generation.KVCache", "contract", kv_cache_contract),
    Check("ops.kv_cache_write", "forward", kv_cache_write_forward),
    Check("ops.kv_cache_write", "contract", kv_cache_write_errors),
    Check("generation.top_k_filter", "forward", top_k_forward),
    Check("generation.top_p_filter", "forward", top_p_forward),
    Check("generation.sample_tokens", "forward", sample_tokens_forward),
]

CONTRACT = [
    Helper("generation", "generate",
           "model, prompt_ids, max_new_tokens, temperature=1.0, top_k=None, top_p=None, seed=None, use_cache=True",
           """The prompt ((T,) or (B, T) ints) followed by max_new_tokens new ids (int64). Under no_grad,
    in eval mode: each step takes the model's last logits; temperature 0 is greedy (argmax), else
    draw from softmax(logits / temperature) after top_k_filter and top_p_filter, with
    np.random.default_rng(seed). use_cache: a KVCache; the prompt once, then one token a step
    (model(idx, cache=cache)); the same tokens as without it. ValueError for an empty prompt,
    prompt + max_new_tokens > model.max_len, temperature < 0, top_p outside (0, 1], top_k < 1;
    IndexError for ids outside 0..vocab_size - 1."""),
    Op("kv_cache_write", "key_buffer, value_buffer, keys, values, positions", inputs=(), differentiable=False,
       doc="""Write keys and values (B, T, E) into the buffers (B, S, E) at positions (T,), consecutive
    ints, in place; return views of both buffers' positions 0..positions[-1] (every stored one).
    IndexError for a position outside 0..S-1, TypeError for float positions, ValueError for other shapes.""",
       sample=""),
    Layer("KVCache", "num_layers, max_len", namespace="generation", base="object",
          doc="""The attention stage's cache protocol: length (positions stored), layer(i) -> an object
    whose append(keys, values) stores (B, T, E) at positions length.. and returns every stored
    position's keys and values (B, length + T, E) (kv_cache_write does both); advance(count) adds
    count to length. Allocate (B, max_len, E) per layer once; ValueError beyond max_len.""",
          methods=("def layer(self, index)", "def advance(self, count)")),
    Helper("generation", "top_k_filter", "logits, k",
           """(B, V) logits with all but each row's k largest set to -inf (ties with the k-th kept)."""),
    Helper("generation", "top_p_filter", "logits, p",
           """(B, V) logits keeping each row's most likely tokens until their probability reaches p
    (a token is kept when the tokens ranked above it hold less than p); the others -inf."""),
    Helper("generation", "sample_tokens", "logits, rng",
           """One token id per row of (B, V) logits, drawn from softmax(logits) with the numpy Generator rng."""),
]
