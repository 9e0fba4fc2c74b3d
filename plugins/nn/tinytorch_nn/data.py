"""Datasets and the ``DataLoader``.

A ``TensorDataset`` is batched with one fancy-index per stored array: the loader builds the
batch's index array (a slice of a permutation when shuffling) and gathers every field at
once, so there is no per-sample Python work. Other datasets are read sample by sample and
their fields stacked.
"""

from __future__ import annotations

import math
import numbers
from collections import Counter

import numpy as np

from tinytorch_core import Tensor, as_tensor, resolve_generator
from tinytorch_core.checks import true_or_false

__all__ = ["DataLoader", "Dataset", "TensorDataset"]


def _wrap(array) -> Tensor:
    # batches are fresh arrays (fancy indexing copies), so the tensor can own them without a copy
    return as_tensor(array)


class Dataset:
    """A sized collection: subclasses define ``__len__`` and ``__getitem__(index)``."""

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")


class TensorDataset(Dataset):
    """Samples are the rows (first axis) of equally long tensors: ``ds[i] == (a[i], b[i], ...)``.

    Arrays and lists are converted as ``Tensor`` converts them (float data becomes float32,
    integer labels stay integer); Tensors are used as they are, without copying.
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        arrays = []
        for k, t in enumerate(tensors):
            array = t.data if isinstance(t, Tensor) else Tensor(t).data
            if array.ndim == 0:
                raise ValueError(f"TensorDataset: tensor {k} is a scalar; every tensor needs a first (sample) axis")
            arrays.append(array)
        lengths = [len(a) for a in arrays]
        if len(set(lengths)) != 1:
            raise ValueError(f"TensorDataset: all tensors must have the same first dimension, got lengths {lengths}")
        self.arrays = tuple(arrays)

    @property
    def tensors(self) -> tuple:
        return tuple(_wrap(a) for a in self.arrays)

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index):
        return tuple(_wrap(np.array(a[index])) for a in self.arrays)

    def gather(self, indices) -> tuple:
        """The batch of samples ``indices`` (an integer array): one fancy-index per tensor."""
        return tuple(_wrap(a[indices]) for a in self.arrays)


def _collate(samples, indices, field=""):
    """Stack a list of samples (tensors, arrays, numbers, or tuples/dicts of them) into Tensors.

    ``indices`` are the samples' dataset indices and ``field`` the path to the part being
    stacked (``[1]``, ``['image']``): both only name the culprit when samples do not match.
    Every sample must have the structure of the first; a sample that differs is refused
    rather than truncated or padded, as PyTorch's ``default_collate`` refuses it.
    """
    first = samples[0]
    if isinstance(first, (tuple, list)):
        _check_same_length(samples, indices, field)
        fields = [_collate([s[k] for s in samples], indices, f"{field}[{k}]") for k in range(len(first))]
        return type(first)(*fields) if hasattr(first, "_fields") else tuple(fields)  # a namedtuple stays one
    if isinstance(first, dict):
        _check_same_keys(samples, indices, field)
        return {key: _collate([s[key] for s in samples], indices, f"{field}[{key!r}]") for key in first}
    if isinstance(first, Tensor):  # tensors keep their dtype
        _check_all_tensors(samples, indices, field)
        return _wrap(_stack([s.data for s in samples], indices, field))
    stacked = _stack([np.asarray(s) for s in samples], indices, field)
    if stacked.dtype.kind not in "fiub":
        raise TypeError(f"DataLoader: cannot batch samples of type {type(first).__name__} (dtype {stacked.dtype})")
    return Tensor(stacked)  # arrays and numbers convert as Tensor() converts them (float -> float32)


def _culprit(indices, k, field) -> str:
    """'sample 2 of the batch (dataset index 7), field [1]': where a mismatch was found."""
    where = f"sample {k} of the batch (dataset index {indices[k]})"
    return f"{where}, field {field}" if field else where


def _check_same_length(samples, indices, field):
    """Tuple samples must all be sequences of the first one's length (zip would drop the rest)."""
    expected = len(samples[0])
    for k, s in enumerate(samples):
        if not isinstance(s, (tuple, list)):
            raise TypeError(f"DataLoader: {_culprit(indices, k, field)} is a {type(s).__name__}, but sample 0 "
                            f"is a {type(samples[0]).__name__} of {expected} fields; "
                            "every sample needs the same structure")
        if len(s) != expected:
            raise ValueError(f"DataLoader: {_culprit(indices, k, field)} has {len(s)} fields, but sample 0 "
                             f"has {expected}; every sample needs the same number of fields")


def _check_same_keys(samples, indices, field):
    """Dict samples must all have the first one's keys (extra keys would be dropped silently)."""
    expected = set(samples[0])
    for k, s in enumerate(samples):
        if not isinstance(s, dict):
            raise TypeError(f"DataLoader: {_culprit(indices, k, field)} is a {type(s).__name__}, but sample 0 "
                            "is a dict; every sample needs the same structure")
        if set(s) != expected:
            missing, extra = sorted(expected - set(s), key=repr), sorted(set(s) - expected, key=repr)
            raise ValueError(f"DataLoader: {_culprit(indices, k, field)} has different keys than sample 0 "
                             f"(missing {missing}, extra {extra}); every sample needs the same keys")


def _check_all_tensors(samples, indices, field):
    """Tensor samples keep their dtype, so a batch cannot mix them with arrays or numbers."""
    for k, s in enumerate(samples):
        if not isinstance(s, Tensor):
            raise TypeError(f"DataLoader: {_culprit(indices, k, field)} is a {type(s).__name__}, but sample 0 "
                            "is a Tensor; every sample needs the same structure")


def _stack(arrays, indices, field) -> np.ndarray:
    """``np.stack`` of equally shaped arrays, naming the first sample whose shape differs from the
    batch's most common one (so an odd first sample is the one named, not its well-formed neighbour)."""
    shapes = [np.shape(a) for a in arrays]
    if any(shape != shapes[0] for shape in shapes):
        common = Counter(shapes).most_common(1)[0][0]
        k = next(k for k, shape in enumerate(shapes) if shape != common)
        usual = next(j for j, shape in enumerate(shapes) if shape == common)
        raise ValueError(f"DataLoader: {_culprit(indices, k, field)} has shape {tuple(shapes[k])}, but sample "
                         f"{usual} has shape {tuple(common)}; samples of one batch must have equal shapes")
    return np.stack(arrays)


def _check_generator(generator):
    """A seed must be a non-negative int (NumPy's own refusal does not name the loader)."""
    seed_or_generator = (type(None), int, np.integer, np.random.Generator)
    if isinstance(generator, (bool, np.bool_)) or not isinstance(generator, seed_or_generator):
        raise TypeError(f"DataLoader: generator must be a numpy Generator or a non-negative int seed, "
                        f"got {type(generator).__name__}")
    if isinstance(generator, (int, np.integer)) and generator < 0:
        raise ValueError(f"DataLoader: generator must be a numpy Generator or a non-negative int seed, got {generator}")


class DataLoader:
    """Iterate over ``dataset`` in batches of ``batch_size``.

    ``shuffle=True`` draws a new permutation every epoch from the loader's own generator
    (``generator``: a Generator or an int seed, resolved once, so a seed makes the whole
    sequence of epochs reproducible). ``drop_last`` drops a final incomplete batch.
    A dataset with a ``gather(indices)`` method (``TensorDataset``) is batched through it in
    one step; any other is read sample by sample and collated. ``sampler``, an iterable of
    indices with a length (``tinytorch_core.distributed.DistributedSampler``), chooses the
    samples and their order instead of ``shuffle``.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, *, drop_last=False, generator=None, sampler=None):
        if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"DataLoader: the dataset must define __len__ and __getitem__, got {type(dataset).__name__}")
        shuffle = true_or_false(shuffle, "shuffle", "DataLoader")
        if sampler is not None and (shuffle or not hasattr(sampler, "__iter__") or not hasattr(sampler, "__len__")):
            raise ValueError("DataLoader: sampler must be an iterable of indices with a length, and shuffle "
                             f"must stay False when one is given (it decides the order); got {type(sampler).__name__}"
                             f"{' with shuffle=True' if shuffle else ''}")
        self.dataset = dataset
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = true_or_false(drop_last, "drop_last", "DataLoader")
        _check_generator(generator)
        self.generator = resolve_generator(generator) if shuffle else None

    def __len__(self) -> int:
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _order(self) -> np.ndarray:
        if self.sampler is not None:
            return np.fromiter(self.sampler, dtype=np.intp)
        n = len(self.dataset)
        return self.generator.permutation(n) if self.shuffle else np.arange(n)

    def __iter__(self):
        order = self._order()
        n, size = len(order), self.batch_size
        stop = n - n % size if self.drop_last else n
        gather = getattr(self.dataset, "gather", None)
        for start in range(0, stop, size):
            indices = order[start : start + size]
            if gather is not None:
                yield gather(indices)
            else:
                yield _collate([self.dataset[int(i)] for i in indices], indices)
