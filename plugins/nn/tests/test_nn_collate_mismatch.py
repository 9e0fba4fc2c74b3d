"""A DataLoader refuses samples of different structure or shape instead of dropping data."""

import numpy as np
import pytest

from tinytorch_core import Tensor
from tinytorch_nn import DataLoader, Dataset


class _Samples(Dataset):
    """A dataset over a fixed list of samples."""

    def __init__(self, samples):
        self.samples = samples

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        return self.samples[index]


def _batch(samples, batch_size=4):
    return list(DataLoader(_Samples(samples), batch_size=batch_size))


def test_tuple_samples_of_different_lengths_are_refused():
    x = np.zeros(2, np.float32)
    samples = [(x, 0), (x, 1), (x, 2, "extra"), (x, 3)]
    with pytest.raises(ValueError, match=r"DataLoader: sample 2 of the batch \(dataset index 2\) has 3 fields, "
                                         r"but sample 0 has 2"):
        _batch(samples)


def test_a_sample_that_is_not_a_tuple_among_tuples_is_refused():
    samples = [(np.zeros(2), 0), np.zeros(2)]
    with pytest.raises(TypeError, match=r"sample 1 of the batch \(dataset index 1\) is a ndarray, but sample 0 is a tuple"):
        _batch(samples)


def test_dict_samples_with_other_keys_are_refused():
    samples = [{"x": 1.0, "y": 0}, {"x": 2.0, "y": 1, "z": 5}]
    with pytest.raises(ValueError, match=r"sample 1 of the batch \(dataset index 1\) has different keys than "
                                         r"sample 0 \(missing \[\], extra \['z'\]\)"):
        _batch(samples)
    samples = [{"x": 1.0, "y": 0}, {"x": 2.0}]
    with pytest.raises(ValueError, match=r"missing \['y'\], extra \[\]"):  # was a raw KeyError
        _batch(samples)


def test_ragged_array_samples_name_the_sample_and_the_shapes():
    samples = [(np.zeros(2), 0), (np.zeros(2), 1), (np.zeros(3), 2)]
    with pytest.raises(ValueError, match=r"sample 2 of the batch \(dataset index 2\), field \[0\] has shape \(3,\), "
                                         r"but sample 0 has shape \(2,\)"):
        _batch(samples)
    tensors = [{"image": Tensor(np.zeros((2, 2)))}, {"image": Tensor(np.zeros((2, 3)))}]
    with pytest.raises(ValueError, match=r"field \['image'\] has shape \(2, 3\), but sample 0 has shape \(2, 2\)"):
        _batch(tensors)


def test_the_dataset_index_is_named_in_later_batches():
    samples = [np.zeros(2)] * 5 + [np.zeros(4)]
    with pytest.raises(ValueError, match=r"sample 1 of the batch \(dataset index 5\) has shape \(4,\)"):
        _batch(samples)


def test_matching_samples_still_collate():
    samples = [({"a": np.full(2, i)}, i) for i in range(3)]
    (features, labels), = _batch(samples)
    assert features["a"].shape == (3, 2) and labels.shape == (3,)


@pytest.mark.parametrize("shuffle", [True, False])
def test_a_negative_seed_is_refused_naming_the_loader(shuffle):
    with pytest.raises(ValueError, match=r"DataLoader: generator must be a numpy Generator or a non-negative int "
                                         r"seed, got -1"):
        DataLoader(_Samples([1, 2]), generator=-1, shuffle=shuffle)
    with pytest.raises(TypeError, match=r"DataLoader: generator must be .* got float"):
        DataLoader(_Samples([1, 2]), generator=1.5, shuffle=shuffle)
    DataLoader(_Samples([1, 2]), generator=np.random.default_rng(0), shuffle=shuffle)


def test_an_odd_first_sample_is_the_one_named():
    """The first sample's shape was taken as the rule, so its well-formed neighbour was blamed."""

    class OddFirst(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.zeros(4 if i == 0 else 3, np.float32)

    with pytest.raises(ValueError, match=r"sample 0 of the batch \(dataset index 0\) has shape \(4,\), but sample 1 "
                                         r"has shape \(3,\)"):
        next(iter(DataLoader(OddFirst(), batch_size=5)))
