"""Choosing the next token from a model's last logits: greedy, temperature, top-k, top-p.

Every helper works on a ``(batch, vocab)`` array of logits, one row per sequence, without a
loop over rows. A filter keeps some tokens and sets the others' logits to ``-inf`` (probability
zero after the softmax); ``sample_tokens`` then draws one token per row.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from tinytorch_core.checks import array_of, positive_int


def _logit_rows(logits, where: str) -> np.ndarray:
    """``logits`` as a floating (batch, vocab) array whose rows can be sampled from: no NaN, no
    ``+inf``, and at least one finite logit per row (``-inf`` marks a token that is ruled out).
    A model that produced anything else is broken; choosing a token from it would hide that."""
    rows = array_of(logits)
    if rows.ndim != 2 or rows.shape[-1] == 0 or rows.dtype.kind != "f":
        raise ValueError(f"{where}: logits must be a floating (batch, vocab) array, got {rows.dtype} {rows.shape}")
    bad = np.isnan(rows).any(axis=-1) | (rows == np.inf).any(axis=-1) | (rows == -np.inf).all(axis=-1)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(
            f"{where}: row {row} of the logits holds NaN or +inf, or no finite value at all, so no token can be "
            f"chosen from it (finite logits, with -inf for ruled-out tokens, are expected); run the model under "
            f"tinytorch_core.detect_anomaly() to find where it came from"
        )
    return rows


def check_top_p(p, where: str) -> float:
    """``p`` as a float in (0, 1], or a clear error."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 < p <= 1.0:
        raise ValueError(f"{where}: top_p must be a number in (0, 1] (1 keeps every token), got {p!r}")
    return float(p)


def top_k_filter(logits, k: int) -> np.ndarray:
    """Keep each row's ``k`` largest logits; the others become ``-inf``. A token tied with the
    k-th largest is kept too (ties are not broken arbitrarily)."""
    rows = _logit_rows(logits, "top_k_filter")
    k = positive_int(k, "k", "top_k_filter")
    if k >= rows.shape[-1]:
        return rows.copy()  # a new array, as for any k
    kth_largest = np.partition(rows, -k, axis=-1)[:, [-k]]  # (B, 1)
    return np.where(rows >= kth_largest, rows, -np.inf)


def top_p_filter(logits, p: float) -> np.ndarray:
    """Nucleus filtering: keep each row's most likely tokens, most likely first, until their
    probability reaches ``p`` (the most likely token always stays); the others become ``-inf``.

    A token is kept when the probability of the tokens ranked above it is still below ``p``.
    Equal probabilities rank by token id (a stable sort), so the result is deterministic.
    """
    rows = _logit_rows(logits, "top_p_filter")
    p = check_top_p(p, "top_p_filter")
    if p >= 1.0:  # every token, exactly (a float32 cumulative sum can reach 1 before the last token)
        return rows.copy()  # a new array, as for any p: a write into it must not change the logits
    probs = softmax_rows(rows.astype(np.float64))  # the ranks' sums in float64, whatever the logits' dtype
    ranking = np.argsort(-probs, axis=-1, kind="stable")  # most likely first
    ranked = np.take_along_axis(probs, ranking, axis=-1)
    mass_above = np.cumsum(ranked, axis=-1) - ranked  # probability of the tokens ranked higher
    mass_above[:, 0] = 0.0  # exactly: the top token is always kept
    keep = np.empty_like(ranked, dtype=bool)
    np.put_along_axis(keep, ranking, mass_above < p, axis=-1)  # back from ranks to token ids
    return np.where(keep, rows, -np.inf)


def softmax_rows(logits) -> np.ndarray:
    """Softmax of each row (shifted by its max: ``exp`` never overflows; ``-inf`` gives 0)."""
    rows = _logit_rows(logits, "softmax_rows")
    shifted = np.exp(_shifted(rows))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _shifted(rows: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """``(rows - row max) / temperature``: the same softmax, and every value <= 0, so a tiny
    temperature or a huge logit gap can only give ``-inf`` (probability 0, the right limit)."""
    with np.errstate(over="ignore"):  # overflow here means "far below the max": -inf is exact enough
        return (rows - rows.max(axis=-1, keepdims=True)) / temperature


def sample_tokens(logits, rng: np.random.Generator) -> np.ndarray:
    """One token id per row, drawn from ``softmax(logits)`` with one uniform number per row from
    ``rng``: the token whose cumulative-probability interval holds the draw. (B,) int64."""
    rows = _logit_rows(logits, "sample_tokens")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"sample_tokens: rng must be a numpy Generator (np.random.default_rng(seed)), got {rng!r}")
    cumulative = np.cumsum(softmax_rows(rows.astype(np.float64)), axis=-1)
    draws = rng.random((rows.shape[0], 1)) * cumulative[:, -1:]  # scaled: the total may round below 1
    chosen = (cumulative <= draws).sum(axis=-1)  # how many intervals end at or before the draw
    return np.minimum(chosen, rows.shape[-1] - 1).astype(np.int64)


def choose_next(logits, temperature: float, top_k, top_p, rng) -> np.ndarray:
    """The next token of each row: the most likely one when ``temperature == 0`` (greedy; no
    random draw), else a draw from ``softmax(logits / temperature)`` after the top-k and top-p
    filters (each skipped when None)."""
    rows = _logit_rows(logits, "choose_next").astype(np.float64)
    temperature = check_temperature(temperature, "choose_next")
    if temperature == 0:
        return rows.argmax(axis=-1).astype(np.int64)  # ties: the lowest token id
    rows = _shifted(rows, temperature)
    if top_k is not None:
        rows = top_k_filter(rows, positive_int(top_k, "top_k", "choose_next"))
    if top_p is not None:
        rows = top_p_filter(rows, check_top_p(top_p, "choose_next"))
    return sample_tokens(rows, rng)


def check_temperature(temperature, where: str) -> float:
    """``temperature`` as a finite float >= 0, or a clear error."""
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) \
            or not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"{where}: temperature must be a finite number >= 0 (0 = greedy), got {temperature!r}")
    return float(temperature)
