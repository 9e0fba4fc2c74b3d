"""Nested checkpoints, and training that stops, saves, and resumes bit for bit.

``save`` takes a nested state (a model's, an optimizer's and a scheduler's state dicts, where the
data stands) and ``load`` gives the same structure back: arrays as NumPy arrays, every other value
with its Python type (integer keys, tuples, big integers of a generator's state). A run stopped in
the middle of an epoch, saved to a file and resumed in a fresh model, optimizer, scheduler and
loader must end with exactly the parameters of a run that never stopped.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import safetensors.numpy

import tinytorch_core as tt
from tinytorch_core.testing import special_file, time_limit
from tinytorch_nn import io
from tinytorch_nn.io import CheckpointError, load, save


# ---- nested state -------------------------------------------------------------------------------------------
def nested_state() -> dict:
    return {
        "model": OrderedDict([("fc.weight", np.arange(6, dtype=np.float32).reshape(2, 3)), ("fc.bias", np.zeros(2, np.float32))]),
        "optimizer": {
            "state": {0: {"step": 7, "exp_avg": np.ones(3)}, 2: {"momentum_buffer": np.full(2, 0.5, np.float32)}},
            "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "nesterov": False, "note": None, "params": [0, 1, 2]}],
        },
        "scheduler": {"last_epoch": 3, "base_lrs": [0.1, 1e-3]},
        "shuffle": np.random.default_rng(5).bit_generator.state,  # 128-bit integers
        "third": np.float32(1 / 3),  # a NumPy scalar comes back as the Python number it holds
        "empty": {},
    }


def assert_same_structure(loaded, expected, where="state"):
    if isinstance(expected, (np.ndarray, tt.Tensor)):
        expected = expected.data if isinstance(expected, tt.Tensor) else expected
        assert isinstance(loaded, np.ndarray), where
        assert loaded.dtype == expected.dtype and loaded.shape == expected.shape, where
        np.testing.assert_array_equal(loaded, expected)
    elif isinstance(expected, dict):
        assert isinstance(loaded, dict) and list(loaded) == list(expected), where
        for key in expected:
            assert_same_structure(loaded[key], expected[key], f"{where}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert type(loaded) is type(expected) and len(loaded) == len(expected), where
        for k, (a, b) in enumerate(zip(loaded, expected)):
            assert_same_structure(a, b, f"{where}[{k}]")
    else:
        expected = expected.item() if isinstance(expected, np.generic) else expected
        assert type(loaded) is type(expected) and loaded == expected, where


def test_nested_state_round_trips_with_its_types(tmp_path):
    state = nested_state()
    save(state, tmp_path / "run.safetensors")
    loaded = load(tmp_path / "run.safetensors")
    assert_same_structure(loaded, state)
    assert list(loaded["optimizer"]["state"]) == [0, 2]  # integer keys stay integers


def test_nested_arrays_are_plain_safetensors_entries_under_dotted_names(tmp_path):
    save(nested_state(), tmp_path / "run.safetensors")
    arrays = safetensors.numpy.load_file(tmp_path / "run.safetensors")  # any safetensors reader
    assert sorted(arrays) == [
        "model.fc.bias", "model.fc.weight", "optimizer.state.0.exp_avg", "optimizer.state.2.momentum_buffer",
    ]


def test_an_optimizer_state_dict_saves_on_its_own(tmp_path):
    model = tt.nn.Linear(3, 2, generator=0)
    opt = tt.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(tt.Tensor(np.ones((4, 3), np.float32))).sum().backward()
    opt.step()
    save(opt.state_dict(), tmp_path / "opt.safetensors")  # used to fail: a nested dict
    assert_same_structure(load(tmp_path / "opt.safetensors"), opt.state_dict())


def test_a_file_from_another_safetensors_writer_loads_in_file_order(tmp_path):
    path = tmp_path / "other.safetensors"
    safetensors.numpy.save_file({"b": np.zeros(2, np.float32), "a": np.ones((2, 2))}, path, metadata={"format": "np"})
    loaded = load(path)
    assert isinstance(loaded, OrderedDict) and sorted(loaded) == ["a", "b"]
    np.testing.assert_array_equal(loaded["a"], np.ones((2, 2)))


class Unsaveable:
    pass


@pytest.mark.parametrize(
    "state, error, excerpt",
    [
        ({"opt": {"bad key": np.zeros(1)}}, ValueError, "save: entry name 'bad key' is not a dotted identifier"),
        ({"opt": {-1: np.zeros(1)}}, ValueError, "is not a string or an integer >= 0"),
        ({"opt": {True: 1}}, ValueError, "is not a string or an integer >= 0"),
        ({"x": {1.5, 2.5}}, TypeError, "entry 'x' is a set"),
        ({"x": Unsaveable()}, TypeError, "a checkpoint holds arrays, Tensors, numbers"),
        ({"x": np.array([1 + 2j])}, TypeError, "has dtype complex128"),
        ({"a": {"b": np.zeros(1)}, "a.b": np.ones(1)}, ValueError, "would both be stored as 'a.b'"),
    ],
)
def test_save_refuses_what_load_could_not_give_back(state, error, excerpt, tmp_path):
    with pytest.raises(error, match=excerpt.replace("(", r"\(").replace(")", r"\)")):
        save(state, tmp_path / "bad.safetensors")
    assert not (tmp_path / "bad.safetensors").exists()


def test_save_refuses_a_state_that_contains_itself(tmp_path):
    state: dict = {"w": np.zeros(1)}
    state["self"] = state
    with pytest.raises(ValueError, match="nested more than 32 levels deep"):
        save(state, tmp_path / "loop.safetensors")


def test_fuzz_bit_flips_of_a_nested_checkpoint_load_or_refuse(tmp_path):
    source = tmp_path / "run.safetensors"
    save(nested_state(), source)
    data = source.read_bytes()
    header_end = 8 + int.from_bytes(data[:8], "little")
    rng = np.random.default_rng(3)
    path = tmp_path / "flipped.safetensors"
    outcomes = {"loaded": 0, "refused": 0}
    for position in range(header_end):  # every byte of the length and the header (with the layout)
        corrupted = bytearray(data)
        corrupted[position] ^= 1 << int(rng.integers(8))
        path.write_bytes(bytes(corrupted))
        try:
            with time_limit(5.0):
                state = load(path)
        except CheckpointError as exc:
            assert str(path) in str(exc)
            outcomes["refused"] += 1
            continue
        assert isinstance(state, dict)
        outcomes["loaded"] += 1
    assert outcomes["refused"] > outcomes["loaded"]  # flips in spaces or in numbers may still load


# ---- resuming ----------------------------------------------------------------------------------------------
class Run:
    """A model, its optimizer, scheduler and shuffling loader, and where the data stands."""

    def __init__(self, recipe: str, seed: int):
        data = np.random.default_rng(42)
        x, y = data.standard_normal((100, 4)).astype(np.float32), data.integers(0, 3, 100)
        self.model = tt.nn.Sequential(tt.nn.Linear(4, 16, generator=seed), tt.nn.ReLU(), tt.nn.Linear(16, 3, generator=seed + 1))
        self.loader = tt.data.DataLoader(tt.data.TensorDataset(x, y), batch_size=16, shuffle=True, generator=seed + 2)
        self.optimizer, self.scheduler = RECIPES[recipe](self.model)
        self.loss = tt.nn.CrossEntropyLoss()
        self.epoch, self.batch = 0, 0  # the next batch to train on
        self.shuffle_state = None  # the loader's generator as the current epoch began

    def batches(self):
        """Batches from where the run stands. An epoch's order is drawn from the loader's generator
        when the epoch begins, so the generator's state is kept from then: a run resumed mid-epoch
        draws the same order again and skips the batches already trained on."""
        while True:
            self.shuffle_state = self.loader.generator.bit_generator.state
            for index, batch in enumerate(self.loader):
                if index >= self.batch:
                    self.batch = index + 1
                    yield batch
            self.epoch, self.batch = self.epoch + 1, 0

    def train(self, steps: int) -> None:
        for _, (x, y) in zip(range(steps), self.batches()):
            self.optimizer.zero_grad()
            self.loss(self.model(x), y).backward()
            self.optimizer.step()
            self.scheduler.step()

    def checkpoint(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "data": {"epoch": self.epoch, "batch": self.batch, "shuffle": self.shuffle_state},
        }

    def resume(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.loader.generator.bit_generator.state = state["data"]["shuffle"]
        self.epoch, self.batch = state["data"]["epoch"], state["data"]["batch"]


def _sgd(model):
    opt = tt.optim.SGD(model.parameters(), lr=0.2, momentum=0.9, nesterov=True, weight_decay=1e-3)
    return opt, tt.optim.StepLR(opt, step_size=4, gamma=0.5)


def _adam(model):
    head, body = list(model[2].parameters()), list(model[0].parameters())
    opt = tt.optim.Adam([{"params": body}, {"params": head, "lr": 3e-3}], lr=1e-2, weight_decay=1e-4)
    return opt, tt.optim.CosineAnnealingLR(opt, T_max=20, eta_min=1e-4)


def _adamw(model):
    opt = tt.optim.AdamW(model.parameters(), lr=1e-2)
    return opt, tt.optim.LinearWarmup(opt, warmup_steps=8)


def _rmsprop(model):
    opt = tt.optim.RMSprop(model.parameters(), lr=1e-3, momentum=0.9, centered=True, weight_decay=1e-4)
    return opt, tt.optim.MultiStepLR(opt, milestones=[6, 12, 12], gamma=0.5)  # drops before and after each stop


def _adagrad(model):
    head, body = list(model[2].parameters()), list(model[0].parameters())
    opt = tt.optim.Adagrad([{"params": body}, {"params": head, "lr": 0.05}], lr=0.1, lr_decay=1e-2,
                           initial_accumulator_value=0.1)
    return opt, tt.optim.ExponentialLR(opt, gamma=0.9)


RECIPES = {"sgd_momentum_steplr": _sgd, "adam_two_groups_cosine": _adam, "adamw_warmup": _adamw,
           "rmsprop_centered_momentum_multistep": _rmsprop, "adagrad_two_groups_exponential": _adagrad}
TOTAL_STEPS = 20  # 7 batches an epoch: about three epochs


@pytest.mark.parametrize("stop_at", [10, 14])  # mid-epoch, and right after an epoch's last batch
@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_a_resumed_run_is_bit_identical_to_an_uninterrupted_one(recipe, stop_at, tmp_path):
    uninterrupted = Run(recipe, seed=0)
    uninterrupted.train(TOTAL_STEPS)

    first = Run(recipe, seed=0)
    first.train(stop_at)
    save(first.checkpoint(), tmp_path / "run.safetensors")
    del first

    resumed = Run(recipe, seed=100)  # fresh weights, optimizer, scheduler and shuffling
    resumed.resume(load(tmp_path / "run.safetensors"))
    resumed.train(TOTAL_STEPS - stop_at)

    for (name, a), (_, b) in zip(uninterrupted.model.state_dict().items(), resumed.model.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert_same_structure(resumed.optimizer.state_dict(), uninterrupted.optimizer.state_dict())
    assert resumed.scheduler.get_last_lr() == uninterrupted.scheduler.get_last_lr()
    assert (resumed.epoch, resumed.batch) == (uninterrupted.epoch, uninterrupted.batch)


def test_resuming_matters_a_fresh_run_differs(tmp_path):
    # the check above is not vacuous: without the checkpoint, the other seed trains elsewhere
    a, b = Run("adam_two_groups_cosine", seed=0), Run("adam_two_groups_cosine", seed=100)
    a.train(5)
    b.train(5)
    assert not np.array_equal(a.model.state_dict()["0.weight"], b.model.state_dict()["0.weight"])


def test_io_is_the_tt_io_namespace():
    assert tt.io.save is io.save and tt.io.load is io.load


def test_save_refuses_a_header_load_would_refuse(tmp_path):
    from tinytorch_nn.checkpoint.safetensors_file import MAX_HEADER_BYTES

    with pytest.raises(ValueError, match="too many arrays or too much text for one file"):
        save({"w": np.zeros(1), "note": "x" * MAX_HEADER_BYTES}, tmp_path / "big.safetensors")
    with pytest.raises(ValueError, match="JSON values, over the limit"):
        # 2,500 arrays: within MAX_ENTRIES, but with the layout their header passes the JSON-value limit
        save({f"w{k}": np.zeros(1) for k in range(2_500)}, tmp_path / "many.safetensors")
    assert not list(tmp_path.iterdir())


def test_save_to_a_directory_or_a_missing_folder_names_the_path(tmp_path):
    state = {"w": tt.Tensor(np.ones(2, np.float32))}
    # before: the errors named the temporary file written next to the target
    with pytest.raises(IsADirectoryError, match=r"save: .* names a directory, not a file"):
        tt.io.save(state, tmp_path)
    missing = tmp_path / "missing" / "model.safetensors"
    with pytest.raises(FileNotFoundError, match=r"save: cannot save .*: the folder .*missing.* does not exist"):
        tt.io.save(state, missing)
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_save_never_replaces_a_special_file_and_writes_through_a_symlink(tmp_path):
    """The rename replaced a FIFO (or a device node) by a regular file, and a symlink by a file,
    leaving its target as it was."""
    import os

    state = {"w": tt.Tensor(np.ones(2, np.float32))}
    fifo = special_file("fifo", tmp_path, "pipe")
    with pytest.raises(FileExistsError, match=r"save: .*pipe.* is not a regular file \(it is a FIFO"):
        tt.io.save(state, fifo)
    assert os.path.exists(fifo) and not os.path.isfile(fifo)
    target = tmp_path / "target.safetensors"
    target.write_bytes(b"old")
    link = tmp_path / "link.safetensors"
    link.symlink_to(target)
    tt.io.save(state, link)
    assert link.is_symlink()
    np.testing.assert_array_equal(tt.io.load(target)["w"], np.ones(2, np.float32))


def test_a_path_that_is_not_a_path_is_refused_naming_the_function():
    """A bare TypeError named neither load nor save."""
    with pytest.raises(TypeError, match=r"load: expected a file path \(str or os.PathLike\), got NoneType"):
        tt.io.load(None)
    with pytest.raises(TypeError, match=r"save: expected a file path \(str or os.PathLike\), got int"):
        tt.io.save({"w": np.zeros(2, np.float32)}, 3)


def test_a_masked_array_in_a_state_dict_is_refused():
    """load_state_dict dropped the mask without a word, while Tensor() and ops refuse it."""
    model = tt.nn.Linear(2, 2)
    state = model.state_dict()
    state["weight"] = np.ma.array(np.ones((2, 2), np.float32), mask=True)
    with pytest.raises(TypeError, match="load_state_dict into Linear: 'weight': a masked array's mask would be ignored"):
        model.load_state_dict(state)


@pytest.mark.parametrize("name", ["m" * 240 + ".st", "é" * 120 + ".st"])
def test_save_to_a_long_legal_file_name(tmp_path, name):
    """The temporary file's name (the target's, plus host, pid and marks) passed 255 bytes: the
    save failed with ENAMETOOLONG naming the hidden temporary file."""
    path = tmp_path / name
    tt.io.save({"w": np.ones(2, np.float32)}, path)
    assert [p.name for p in tmp_path.iterdir()] == [name]
    np.testing.assert_array_equal(tt.io.load(path)["w"], np.ones(2, np.float32))
