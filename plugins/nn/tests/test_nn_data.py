"""Datasets, the DataLoader (shuffling, coverage, drop_last, collation) and saving."""

import zipfile

import numpy as np
import pytest

from tinytorch_core import Tensor
from tinytorch_nn import DataLoader, Dataset, TensorDataset, load, save


def _dataset(n=10):
    features = np.arange(n * 3, dtype=np.float64).reshape(n, 3)
    labels = np.arange(n) % 4
    return TensorDataset(features, labels)


def test_tensor_dataset_items_and_dtypes():
    ds = _dataset()
    assert len(ds) == 10
    x, y = ds[2]
    np.testing.assert_array_equal(x.data, [6.0, 7.0, 8.0])
    assert x.dtype == np.float32 and y.dtype.kind == "i" and int(y.item()) == 2
    with pytest.raises(ValueError, match=r"same first dimension.*\[3, 2\]"):
        TensorDataset(np.zeros((3, 2)), np.zeros(2))
    t = Tensor(np.zeros((4, 2)), dtype=np.float64)
    assert TensorDataset(t).arrays[0] is t.data  # tensors are used without a copy


def test_loader_without_shuffle_keeps_order_and_sizes():
    loader = DataLoader(_dataset(10), batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and [len(b[1]) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([b[1].data for b in batches]), np.arange(10) % 4)
    assert isinstance(batches[0][0], Tensor) and batches[0][0].shape == (4, 3)
    assert batches[0][0].dtype == np.float32


def test_drop_last():
    loader = DataLoader(_dataset(10), batch_size=4, drop_last=True)
    assert len(loader) == 2 and [len(b[0]) for b in loader] == [4, 4]
    assert len(DataLoader(_dataset(8), batch_size=4, drop_last=True)) == 2


def _epoch_rows(loader):
    return np.concatenate([x.data[:, 0] // 3 for x, _ in loader]).astype(int)


def test_shuffle_is_reproducible_and_covers_every_sample_once():
    a = DataLoader(_dataset(23), batch_size=5, shuffle=True, generator=42)
    b = DataLoader(_dataset(23), batch_size=5, shuffle=True, generator=42)
    first, second = _epoch_rows(a), _epoch_rows(a)
    np.testing.assert_array_equal(np.sort(first), np.arange(23))
    np.testing.assert_array_equal(np.sort(second), np.arange(23))
    assert not np.array_equal(first, second)  # a new order every epoch
    assert not np.array_equal(first, np.arange(23))
    np.testing.assert_array_equal(_epoch_rows(b), first)  # same seed, same sequence of epochs
    np.testing.assert_array_equal(_epoch_rows(b), second)
    c = DataLoader(_dataset(23), batch_size=5, shuffle=True, generator=np.random.default_rng(42))
    np.testing.assert_array_equal(_epoch_rows(c), first)


def test_shuffle_with_drop_last_draws_full_batches_of_distinct_samples():
    loader = DataLoader(_dataset(23), batch_size=5, shuffle=True, drop_last=True, generator=1)
    rows = _epoch_rows(loader)
    assert len(rows) == 20 and len(set(rows.tolist())) == 20


class Squares(Dataset):
    def __len__(self):
        return 5

    def __getitem__(self, i):
        return {"x": np.array([i, i * i], dtype=np.float64), "y": i % 2}


def test_generic_dataset_is_collated():
    batch = next(iter(DataLoader(Squares(), batch_size=3)))
    np.testing.assert_array_equal(batch["x"].data, [[0, 0], [1, 1], [2, 4]])
    assert batch["x"].dtype == np.float32
    np.testing.assert_array_equal(batch["y"].data, [0, 1, 0])
    with pytest.raises(NotImplementedError, match="__len__"):
        len(Dataset())


def test_loader_argument_errors():
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(_dataset(), batch_size=0)
    with pytest.raises(TypeError, match="__len__"):
        DataLoader(object())


# ---- save / load ---------------------------------------------------------------------------------
def test_save_load_round_trip_keeps_names_order_and_dtypes(tmp_path):
    state = {
        "layer.weight": np.arange(6, dtype=np.float32).reshape(2, 3),
        "file": np.array([1, 2], dtype=np.int64),  # would collide with np.savez's own argument
        "allow_pickle": Tensor([True, False]),
        "count": np.array(3),
    }
    path = tmp_path / "state"
    save(state, path)
    loaded = load(path)
    assert list(loaded) == list(state)
    for key, value in state.items():
        expected = value.data if isinstance(value, Tensor) else value
        np.testing.assert_array_equal(loaded[key], expected)
        assert loaded[key].dtype == expected.dtype


def test_save_refuses_what_is_not_a_mapping_of_numeric_state(tmp_path):
    # nested state (an optimizer's) is saved since issue 17; what cannot be given back is refused
    save({"opt": {"lr": np.array(1.0)}}, tmp_path / "a.npz")
    assert load(tmp_path / "a.npz")["opt"]["lr"] == 1.0
    with pytest.raises(TypeError, match="a checkpoint holds arrays"):
        save({"opt": {"lr": object()}}, tmp_path / "a.npz")
    with pytest.raises(TypeError, match="dtype object"):
        save({"w": np.array([None, 1], dtype=object)}, tmp_path / "b.npz")
    with pytest.raises(TypeError, match="keys must be non-empty strings"):
        save({1: np.zeros(2)}, tmp_path / "c.npz")
    with pytest.raises(TypeError, match="mapping"):
        save([np.zeros(2)], tmp_path / "d.npz")


def test_load_refuses_pickles_and_single_arrays(tmp_path):
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, w=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        load(pickled)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError, match="single array"):
        load(single)
    assert zipfile.is_zipfile(pickled)


def test_a_sampler_chooses_the_rows_and_their_order():
    loader = DataLoader(_dataset(10), batch_size=2, sampler=[7, 1, 4])
    assert len(loader) == 2
    np.testing.assert_array_equal(np.concatenate([x.data[:, 0] // 3 for x, _ in loader]).astype(int), [7, 1, 4])
    with pytest.raises(ValueError, match="shuffle must stay False"):
        DataLoader(_dataset(10), sampler=[1, 2], shuffle=True)
    with pytest.raises(ValueError, match="iterable of indices with a length, .*got int"):
        DataLoader(_dataset(10), sampler=3)


def test_namedtuple_samples_batch_as_the_same_namedtuple():
    """They came back as plain tuples, so batch.x failed later with an AttributeError."""
    from collections import namedtuple

    Pair = namedtuple("Pair", "x y")

    class Pairs(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return Pair(np.full(2, i, np.float32), i)

    batch = next(iter(DataLoader(Pairs(), batch_size=4)))
    assert type(batch) is Pair
    np.testing.assert_array_equal(batch.x.data[:, 0], [0, 1, 2, 3])
    np.testing.assert_array_equal(batch.y.data, [0, 1, 2, 3])
