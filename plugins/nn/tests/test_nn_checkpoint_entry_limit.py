"""Both checkpoint formats hold at most MAX_ENTRIES arrays: the room a safetensors header has.

A legacy .npz archive of 99,999 empty arrays (22 MB) used to cost 74 MiB and 4 s to load; it is
now refused from its end record, before one directory entry is read.
"""

import io
import time
import zipfile

import numpy as np
import pytest

from tinytorch_nn.io import MAX_ENTRIES, CheckpointError, load, save


def _npz_of_empty_arrays(path, count: int):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.zeros((0,), np.float32))
    member = buffer.getvalue()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for i in range(count):
            archive.writestr(f"a{i}.npy", member)
    return path


LIMIT = 2_500  # written out: a test in terms of MAX_ENTRIES would follow any change of it


def test_the_entry_limit_is_the_room_a_safetensors_header_has():
    assert MAX_ENTRIES == LIMIT


def test_an_npz_of_more_entries_than_a_safetensors_header_holds_is_refused_before_reading_them(tmp_path):
    path = _npz_of_empty_arrays(tmp_path / "many.npz", LIMIT + 1)
    started = time.perf_counter()
    with pytest.raises(CheckpointError, match=r"many.npz.*its end record announces 2501 entries, "
                                              r"over the limit of 2500 entries a checkpoint may hold"):
        load(path)
    assert time.perf_counter() - started < 0.5  # the end record alone decides


def test_an_npz_at_the_limit_still_loads(tmp_path):
    state = load(_npz_of_empty_arrays(tmp_path / "full.npz", LIMIT))
    assert len(state) == LIMIT


def test_save_refuses_more_arrays_than_the_limit(tmp_path):
    state = {f"a{i}": np.zeros(1, np.float32) for i in range(LIMIT + 1)}
    with pytest.raises(ValueError, match=r"save: 2501 arrays is more than the 2500 a checkpoint may hold"):
        save(state, tmp_path / "many.safetensors")


def test_an_integer_too_long_to_write_as_text_is_refused_naming_its_entry(tmp_path):
    """Python's own 'Exceeds the limit (4300 digits)' came out of the JSON encoder, naming nothing."""
    with pytest.raises(ValueError, match="save: entry 'step' is an integer of 16610 bits"):
        save({"weights": np.ones(2), "step": 10**5000}, tmp_path / "x.safetensors")
    save({"step": 10**40}, tmp_path / "y.safetensors")
    assert load(tmp_path / "y.safetensors")["step"] == 10**40
