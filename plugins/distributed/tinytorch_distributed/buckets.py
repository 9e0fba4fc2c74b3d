"""Gradient buckets: which parameters' gradients travel together in one all-reduce.

One all-reduce per parameter pays MPI's fixed cost per message many times; one all-reduce for
the whole model waits for the last gradient before anything is sent. Buckets are the middle
way (PyTorch's DDP does the same): parameters in *reverse* registration order, because backward
finishes the last layers first, grouped until a bucket holds ``bucket_size`` bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Bucket:
    """Parameters whose gradients are all-reduced together, as one flat array of ``dtype``."""

    index: int
    parameters: list
    dtype: np.dtype
    waiting: int = 0  # parameters whose gradient is not final yet in this backward pass
    request: object = None  # the all-reduce in flight (an MPI request)
    result: np.ndarray | None = field(default=None, repr=False)  # where the all-reduce writes the sum

    @property
    def nbytes(self) -> int:
        return sum(p.data.nbytes for p in self.parameters)


def assign_buckets(parameters, bucket_size: int) -> list[Bucket]:
    """Group ``parameters`` (in registration order) into buckets, last parameter first.

    A bucket closes when adding the next parameter would pass ``bucket_size`` bytes, or when the
    dtype changes (a bucket is one flat array); a parameter larger than ``bucket_size`` gets a
    bucket of its own. Every rank computes the same buckets from the same model."""
    groups: list[list] = []
    size = 0
    for parameter in reversed(list(parameters)):
        current = groups[-1] if groups else None
        fits = current is not None and size + parameter.data.nbytes <= bucket_size
        if fits and current[0].data.dtype == parameter.data.dtype:
            current.append(parameter)
            size += parameter.data.nbytes
        else:
            groups.append([parameter])
            size = parameter.data.nbytes
    return [Bucket(k, group, group[0].data.dtype) for k, group in enumerate(groups)]


def flatten_gradients(bucket: Bucket) -> np.ndarray:
    """The bucket's gradients in one fresh flat array, then one flag per parameter: 1 when this
    rank's backward gave it a gradient, 0 when not (its gradient travels as zeros). Summed over
    the ranks, a flag of 0 means no rank reached the parameter."""
    gradients = [(p.grad.data if p.grad is not None else np.zeros(p.data.shape, bucket.dtype)).ravel()
                 for p in bucket.parameters]
    reached = np.array([p.grad is not None for p in bucket.parameters], dtype=bucket.dtype)
    return np.concatenate([*gradients, reached]).astype(bucket.dtype, copy=False)


def unflatten_into_gradients(bucket: Bucket, flat: np.ndarray) -> list:
    """Split ``flat`` back into one array per parameter, shaped like it (views of ``flat``), or
    None for a parameter no rank reached (its flag, the last entries, summed to 0)."""
    sizes = [p.data.size for p in bucket.parameters]
    pieces = np.split(flat[: sum(sizes)], np.cumsum(sizes)[:-1])
    reached = flat[sum(sizes):]
    return [piece.reshape(p.data.shape) if flag > 0 else None
            for piece, p, flag in zip(pieces, bucket.parameters, reached)]
