"""Small pieces the milestones share: seeded generators, chunked evaluation, accuracy."""

from __future__ import annotations

import numpy as np

from tinytorch_core import Tensor, no_grad


def generator(seed: int, salt: int) -> np.random.Generator:
    """An independent generator per (run seed, milestone): changing one milestone never shifts another."""
    return np.random.default_rng([int(seed), int(salt)])


def seed_of(rng: np.random.Generator) -> int:
    """An int seed drawn from ``rng`` (for APIs that take ``generator=`` as an int)."""
    return int(rng.integers(0, 2**31 - 1))


def chunked_loss(model, loss_fn, x: np.ndarray, y: np.ndarray, chunk: int = 2048) -> float:
    """Mean loss over (x, y), computed in chunks without a graph (weights by chunk size)."""
    total, count = 0.0, 0
    with no_grad():
        for i in range(0, len(x), chunk):
            xb, yb = x[i:i + chunk], y[i:i + chunk]
            total += float(loss_fn(model, Tensor(xb), Tensor(yb)).item()) * len(xb)
            count += len(xb)
    return total / max(count, 1)


def chunked_outputs(model, x: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Model outputs for ``x`` as one array, computed in chunks without a graph."""
    outs = []
    with no_grad():
        for i in range(0, len(x), chunk):
            outs.append(np.asarray(model(Tensor(x[i:i + chunk])).data))
    return np.concatenate(outs)


def class_accuracy(model, x: np.ndarray, y: np.ndarray, chunk: int = 2048) -> float:
    """Fraction of ``x`` whose arg-max logit is the label."""
    logits = chunked_outputs(model, x, chunk)
    return float(np.mean(logits.argmax(axis=-1) == y))


def binary_accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    """Fraction of ``x`` whose predicted probability is on the label's side of 0.5."""
    probs = chunked_outputs(model, x).reshape(-1)
    return float(np.mean((probs > 0.5) == (y > 0.5)))
