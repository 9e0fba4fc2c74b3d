"""Checkpoints as untrusted files, and atomic saving.

``load`` must return validated data or raise ``CheckpointError`` for every malformed, truncated
or corrupted file (crafted cases, then fuzzing with random bytes, every prefix of a valid file
and bit flips), without unpickling, without allocating what a header merely claims, and without
hanging. ``save`` must never leave a partial file in place of the previous one, even when the
saving process is killed mid-write.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import time
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

from tinytorch_core.testing import time_limit

from tinytorch_nn import io as ckpt
from tinytorch_nn.checkpoint.safetensors_file import MAX_HEADER_BYTES
from tinytorch_nn.io import CheckpointError, load, save


def small_state():
    return OrderedDict(
        [
            ("blocks.0.weight", np.arange(6, dtype=np.float32).reshape(2, 3)),
            ("blocks.0.bias", np.array([0.5, -1.5], dtype=np.float32)),
            ("steps", np.array(7, dtype=np.int64)),
            ("mask", np.array([True, False, True])),
        ]
    )


def assert_same_state(loaded, expected):
    assert list(loaded) == list(expected)
    for name, value in expected.items():
        assert loaded[name].dtype == value.dtype and loaded[name].shape == value.shape, name
        np.testing.assert_array_equal(loaded[name], value)


def npy_bytes(array=None, header: dict | None = None, version=(1, 0), data: bytes | None = None) -> bytes:
    """A .npy payload; ``header`` overrides what the array would announce."""
    buffer = io.BytesIO()
    if header is None:
        np.lib.format.write_array(buffer, array, allow_pickle=False)
        return buffer.getvalue()
    text = repr(header).encode("latin1")
    pad = 64 - (10 + len(text) + 1) % 64
    text += b" " * pad + b"\n"
    head = np.lib.format.magic(*version) + (struct.pack("<H", len(text)) if version == (1, 0) else struct.pack("<I", len(text)))
    return head + text + (data or b"")


def write_zip(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, payload in members:
            archive.writestr(name, payload)
    return path


# ---- round trip ------------------------------------------------------------------------------------
def test_round_trip_keeps_names_order_dtypes_shapes_and_zero_d_arrays(tmp_path):
    state = small_state()
    state["half"] = np.array([1.5, -2.0], dtype=np.float16)
    state["bytes"] = np.arange(4, dtype=np.uint8)
    save(state, tmp_path / "model.ckpt")
    loaded = load(tmp_path / "model.ckpt")
    assert_same_state(loaded, state)
    assert loaded["steps"].ndim == 0
    assert all(a.flags.writeable for a in loaded.values())


def test_numpy_savez_files_load_including_compressed_fortran_and_big_endian(tmp_path):
    path = tmp_path / "numpy.npz"
    fortran = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    np.savez_compressed(path, w=fortran, b=np.arange(3, dtype=">i4"))
    loaded = load(path)
    np.testing.assert_array_equal(loaded["w"], fortran)
    np.testing.assert_array_equal(loaded["b"], [0, 1, 2])
    assert loaded["b"].dtype.isnative


def test_save_refuses_names_that_load_would_refuse(tmp_path):
    for bad in ("a b", "../escape", "a..b", "w.", "ünïcode", "x" * 600):
        with pytest.raises(ValueError, match="save: entry name"):
            save({bad: np.zeros(1)}, tmp_path / "bad.ckpt")
    assert not (tmp_path / "bad.ckpt").exists()


# ---- crafted malformed files ------------------------------------------------------------------------
def safetensors_file(path, header, data: bytes = b"", length: int | None = None, text: bytes | None = None):
    """A safetensors file: the 8-byte length, the JSON header (or ``text``), then ``data``."""
    text = json.dumps(header).encode() if text is None else text
    path.write_bytes(struct.pack("<Q", len(text) if length is None else length) + text + data)
    return path


def one_array(dtype="F32", shape=(3,), offsets=(0, 12), name="w") -> dict:
    return {name: {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}}


def with_layout(header: dict, layout) -> dict:
    return {"__metadata__": {"tinytorch.layout": layout if isinstance(layout, str) else json.dumps(layout)}, **header}


#: kind -> (header, data bytes) of a safetensors file whose header lies or breaks a rule
SAFETENSORS_HEADERS = {
    "absurd_header": (one_array(shape=(10**12, 10**6), offsets=(0, 16)), b"\0" * 16),
    "short_data": (one_array(offsets=(0, 12)), b"\0" * 8),
    "long_data": (one_array(offsets=(0, 12)), b"\0" * 16),
    "bad_bool": (one_array("BOOL", (3,), (0, 3), name="m"), b"\x01\x00\x07"),
    "bad_name": (one_array(name="../../etc/passwd"), b"\0" * 12),
    "unknown_dtype": (one_array("BF16", (2,), (0, 4)), b"\0" * 4),
    "complex_dtype": (one_array("C64", (1,), (0, 8)), b"\0" * 8),
    "bad_shape": (one_array(shape=(-3,)), b"\0" * 12),
    "bad_offsets": (one_array(offsets=(12, 0)), b"\0" * 12),
    "extra_field": ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "code": "x"}}, b"\0" * 4),
    "overlap": ({**one_array(offsets=(0, 12)), **one_array(offsets=(8, 20), name="b")}, b"\0" * 20),
    "gap": ({**one_array(offsets=(0, 12)), **one_array(offsets=(16, 28), name="b")}, b"\0" * 28),
    "metadata_not_text": ({"__metadata__": {"a": 1}, **one_array()}, b"\0" * 12),
    "layout_names_missing_array": (with_layout(one_array(), {"dict": [["v", {"tensor": "v"}]]}), b"\0" * 12),
    "layout_misplaces_an_array": (with_layout(one_array(), {"dict": [["v", {"tensor": "w"}]]}), b"\0" * 12),
    "layout_misses_an_array": (with_layout(one_array(), {"dict": []}), b"\0" * 12),
    "layout_not_json": (with_layout(one_array(), "{nope"), b"\0" * 12),
    "layout_bad_node": (with_layout(one_array(), {"dict": [["w", {"pickle": "w"}]]}), b"\0" * 12),
}


def write_npz(path, **arrays):
    with open(path, "wb") as handle:  # a file object: np.savez adds no .npz suffix
        np.savez(handle, **arrays)
    return path


def craft(kind: str, tmp_path):
    path = tmp_path / f"{kind}.ckpt"
    good = npy_bytes(np.arange(3, dtype=np.float32))
    if kind == "text":
        path.write_bytes(b"this is not a checkpoint\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        save(small_state(), path)
        path.write_bytes(path.read_bytes()[:-30])
    elif kind == "header_past_the_end":
        safetensors_file(path, one_array(), length=1000)
    elif kind == "header_too_long":
        safetensors_file(path, one_array(), length=2**40)
    elif kind == "not_json":
        safetensors_file(path, None, text=b"{not json")
    elif kind == "not_an_object":
        safetensors_file(path, [1, 2])
    elif kind == "duplicate":
        text = b'{"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, "w": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}}'
        safetensors_file(path, None, text=text, data=b"\0\0")
    elif kind in SAFETENSORS_HEADERS:
        header, data = SAFETENSORS_HEADERS[kind]
        safetensors_file(path, header, data)
    elif kind == "single_array":
        path.write_bytes(good)
    # ---- .npz checkpoints of earlier versions: still read, through the same limits
    elif kind == "npz_truncated":
        write_npz(path, w=np.arange(6.0))
        path.write_bytes(path.read_bytes()[:-30])
    elif kind == "pickled_object":
        write_npz(path, w=np.array([{"a": 1}, None], dtype=object))
    elif kind == "structured":
        write_zip(path, [("w.npy", npy_bytes(np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")])))])
    elif kind == "strings":
        write_zip(path, [("w.npy", npy_bytes(np.array(["ab", "cd"])))])
    elif kind == "npz_bad_name":
        write_zip(path, [("../../etc/passwd.npy", good)])
    elif kind == "not_npy":
        write_zip(path, [("w.npy", good), ("notes.txt", b"hello")])
    elif kind == "npz_duplicate":
        with pytest.warns(UserWarning, match="Duplicate name"):
            write_zip(path, [("w.npy", good), ("w.npy", good)])
    elif kind in NPZ_HEADER_MEMBERS:
        name, descr, shape, data, version = NPZ_HEADER_MEMBERS[kind]
        header = {"descr": descr, "fortran_order": False, "shape": shape}
        write_zip(path, [(name, npy_bytes(header=header, version=version, data=data))])
    elif kind == "header_code":
        header_text = "__import__('os').system('echo pwned')"
        payload = np.lib.format.magic(1, 0) + struct.pack("<H", len(header_text) + 1) + header_text.encode() + b"\n"
        write_zip(path, [("w.npy", payload)])
    elif kind == "bzip2":
        write_zip(path, [("w.npy", good)], compression=zipfile.ZIP_BZIP2)
    elif kind == "crc":
        write_npz(path, w=np.arange(64, dtype=np.float32))
        data = bytearray(path.read_bytes())
        data[200] ^= 0x10  # inside the array data of the only member
        path.write_bytes(bytes(data))
    return path


#: kind -> (member name, dtype, shape, data bytes, .npy version) of an .npz member whose header lies
NPZ_HEADER_MEMBERS = {
    "npz_absurd_header": ("w.npy", "<f8", (10**12, 10**6), b"\0" * 16, (1, 0)),
    "npz_short_data": ("w.npy", "<f4", (5,), b"\0" * 12, (1, 0)),
    "npz_long_data": ("w.npy", "<f4", (2,), b"\0" * 12, (1, 0)),
    "npz_bad_bool": ("m.npy", "|b1", (3,), b"\x01\x00\x07", (1, 0)),
    "version_3": ("w.npy", "<f4", (1,), b"\0" * 4, (3, 0)),
}

CRAFTED = {
    # safetensors
    "text": "is not a checkpoint: its first 8 bytes announce a safetensors header of",
    "empty": "is not a checkpoint: 0 bytes is too short",
    "truncated": "(truncated, or bytes left over)",
    "header_past_the_end": "announces a safetensors header of 1000 bytes but holds",
    "header_too_long": f"over the limit of {MAX_HEADER_BYTES} bytes",
    "not_json": "is not valid JSON",
    "not_an_object": "is not a JSON object",
    "duplicate": "names an entry twice ('w')",
    "absurd_header": "its header announces shape (1000000000000, 1000000) of F32",
    "short_data": "announces 12 bytes of array data but the file holds 8",
    "long_data": "announces 12 bytes of array data but the file holds 16",
    "bad_bool": "bool array holding bytes other than 0 and 1",
    "bad_name": "is not a dotted identifier",
    "unknown_dtype": "has dtype 'BF16', expected one of BOOL",
    "complex_dtype": "has dtype 'C64'",
    "bad_shape": "has an invalid shape [-3]",
    "bad_offsets": "has invalid data_offsets [12, 0]",
    "extra_field": "is not described by exactly 'dtype', 'shape' and 'data_offsets'",
    "overlap": "entry 'b' overlaps the array before it",
    "gap": "leave a gap of 4 bytes before entry 'b'",
    "metadata_not_text": "__metadata__ is not a map of text to text",
    "layout_names_missing_array": "places the array 'v' at 'v', where the file holds no array",
    "layout_misplaces_an_array": "places the array 'w' at 'v', where the file holds no array",
    "layout_misses_an_array": "does not place the array 'w'",
    "layout_not_json": "is not valid JSON",
    "layout_bad_node": "holds a malformed 'pickle' node",
    "single_array": "holds a single array",
    # .npz
    "npz_truncated": "is not a checkpoint archive",
    "pickled_object": "no objects, no pickles",
    "structured": "plain numeric or bool array",
    "strings": "plain numeric or bool array",
    "npz_bad_name": "is not a dotted identifier",
    "not_npy": "'notes.txt' is not a .npy array",
    "npz_duplicate": "appears twice",
    "npz_absurd_header": "its header announces shape (1000000000000, 1000000)",
    "npz_short_data": "holds 12 bytes of data (truncated or corrupted)",
    "npz_long_data": "holds 12 bytes of data (truncated or corrupted)",
    "npz_bad_bool": "bool array holding bytes other than 0 and 1",
    "version_3": "format version (3, 0)",
    "header_code": "damaged or truncated",
    "bzip2": "compression method 12",
    "crc": "Bad CRC-32",
}


@pytest.mark.parametrize("kind", sorted(CRAFTED))
def test_malformed_checkpoints_raise_checkpoint_error_naming_file_and_problem(kind, tmp_path, capfd):
    path = craft(kind, tmp_path)
    with pytest.raises(CheckpointError) as info:
        load(path)
    message = str(info.value)
    assert CRAFTED[kind] in message
    assert os.fspath(path) in message
    assert isinstance(info.value, ValueError)
    assert "pwned" not in capfd.readouterr().out  # nothing in a header is ever executed


def test_size_limit_refuses_a_valid_file_that_is_too_big(tmp_path):
    save({"w": np.zeros(1000, dtype=np.float64)}, tmp_path / "big.ckpt")
    with pytest.raises(CheckpointError, match="over the limit of 4000 bytes"):
        load(tmp_path / "big.ckpt", max_bytes=4000)
    assert load(tmp_path / "big.ckpt", max_bytes=8000)["w"].shape == (1000,)


def test_missing_file_is_an_os_error_not_a_checkpoint_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.ckpt")


# ---- fuzzing --------------------------------------------------------------------------------------------
def check_load_outcome(path) -> str:
    """Load ``path``: validated data, or a CheckpointError; anything else fails the test."""
    try:
        with time_limit(5.0):
            state = load(path)
    except CheckpointError as exc:
        assert os.fspath(path) in str(exc)
        return "refused"
    assert isinstance(state, OrderedDict)
    for name, array in state.items():
        assert ckpt.name_problem(name) is None, name
        assert isinstance(array, np.ndarray) and array.dtype.kind in "biuf" and array.dtype.isnative
        if array.dtype.kind == "b":
            assert array.view(np.uint8).max(initial=0) <= 1
    return "loaded"


def test_fuzz_random_bytes(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "random.ckpt"
    # plain noise, a zip start, a .npy start, and a safetensors length that fits the file
    prefixes = [b"", b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY\x01\x00", struct.pack("<Q", 30) + b'{"w":']
    for k in range(300):
        body = rng.integers(0, 256, int(rng.integers(0, 600)), dtype=np.uint8).tobytes()
        path.write_bytes(prefixes[k % len(prefixes)] + body)
        assert check_load_outcome(path) == "refused"


def test_fuzz_every_truncation_of_a_small_checkpoint(tmp_path):
    source = tmp_path / "source.ckpt"
    save(small_state(), source)
    data = source.read_bytes()
    path = tmp_path / "cut.ckpt"
    for length in range(len(data)):  # every proper prefix
        path.write_bytes(data[:length])
        assert check_load_outcome(path) == "refused", length
    path.write_bytes(data)
    assert_same_state(load(path), small_state())


def test_fuzz_sampled_truncations_of_a_larger_compressed_checkpoint(tmp_path):
    source = tmp_path / "source.npz"
    rng = np.random.default_rng(1)
    np.savez_compressed(source, **{"layer.weight": rng.standard_normal((128, 128)), "layer.bias": np.zeros(128)})
    data = source.read_bytes()
    path = tmp_path / "cut.npz"
    lengths = sorted(set(rng.integers(0, len(data), 150).tolist()) | {0, 1, len(data) - 1, len(data) // 2})
    for length in lengths:
        path.write_bytes(data[:length])
        assert check_load_outcome(path) == "refused", length


def test_fuzz_bit_flips_of_valid_checkpoints(tmp_path):
    rng = np.random.default_rng(2)
    stored = tmp_path / "stored.ckpt"
    save(small_state(), stored)
    deflated = tmp_path / "deflated.npz"
    np.savez_compressed(deflated, w=np.arange(40, dtype=np.float32), n=np.array(3))
    path = tmp_path / "flipped.ckpt"
    outcomes = {"loaded": 0, "refused": 0}
    for source in (stored, deflated):
        data = source.read_bytes()
        flips = [(i, 1 << int(rng.integers(8))) for i in range(len(data))]  # one flip at every byte
        flips += [(int(rng.integers(len(data))), 1 << int(rng.integers(8))) for _ in range(200)]
        for position, bit in flips:
            corrupted = bytearray(data)
            corrupted[position] ^= bit
            path.write_bytes(bytes(corrupted))
            outcomes[check_load_outcome(path)] += 1
    # flips in fields zipfile ignores (timestamps, local-header copies) load; the CRC catches the rest
    assert outcomes["refused"] > 0 and outcomes["loaded"] > 0


# the stale-temporary cleanup and SIGKILL semantics are POSIX's
posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX process and file semantics")


# ---- atomic saving --------------------------------------------------------------------------------------
def temporaries(directory, target="model.ckpt"):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(f".{target}.tmp-"))


def test_save_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "model.ckpt"
    save({"w": np.zeros(3)}, target)
    save({"w": np.ones(3)}, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.ckpt"]
    np.testing.assert_array_equal(load(target)["w"], np.ones(3))


def test_save_that_fails_midway_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "model.ckpt"
    save(small_state(), target)

    def failing_fsync(fd):  # a full disk often shows only when the written data is flushed
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk full"):
        save({"a": np.zeros(10), "b": np.zeros(10)}, target)
    assert_same_state(load(target), small_state())
    assert temporaries(tmp_path) == []


PAUSED_SAVE = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    from tinytorch_nn import io

    target, marker = sys.argv[1], sys.argv[2]

    def pause(fd):  # test-only hook: freeze once the data is written, before it is renamed
        open(marker, "w").close()
        time.sleep(120)

    os.fsync = pause
    io.save({"a": np.full(1000, 9.0), "b": np.full(1000, 9.0)}, target)
    """
)

BIG_SAVE = textwrap.dedent(
    """
    import sys
    import numpy as np
    from tinytorch_nn import io

    big = {f"w{k}": np.full(2_000_000, float(k), dtype=np.float64) for k in range(4)}  # 64 MB
    print("ready", flush=True)
    io.save(big, sys.argv[1])
    """
)


def run_child(script, *args):
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE)


def kill(child):
    child.kill()  # SIGKILL: no cleanup handler runs
    child.wait(timeout=30)
    child.stdout.close()


@posix_only
def test_killed_save_keeps_the_previous_checkpoint_deterministic(tmp_path):
    """The child is frozen mid-write by a test-only hook, then SIGKILLed."""
    target, marker = tmp_path / "model.ckpt", tmp_path / "paused"
    save(small_state(), target)
    before = target.read_bytes()
    child = run_child(PAUSED_SAVE, target, marker)
    try:
        stop = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None, "the saving child exited early"
            assert time.monotonic() < stop, "the saving child never reached the pause"
            time.sleep(0.01)
        assert len(temporaries(tmp_path)) == 1  # the kill lands while the temporary is being written
    finally:
        kill(child)
    assert target.read_bytes() == before
    assert_same_state(load(target), small_state())
    # the killed child's temporary remains until the next save of this target removes it
    leftover = temporaries(tmp_path)
    assert len(leftover) == 1 and str(child.pid) in leftover[0]
    save({"w": np.ones(2)}, target)
    assert temporaries(tmp_path) == []
    np.testing.assert_array_equal(load(target)["w"], np.ones(2))


def temporary_has_data(directory) -> bool:
    for name in temporaries(directory):
        with contextlib.suppress(FileNotFoundError):  # renamed meanwhile
            if (directory / name).stat().st_size > 0:
                return True
    return False


@posix_only
def test_killed_save_of_a_large_checkpoint_keeps_the_previous_one(tmp_path):
    """No hook: kill the child as soon as its temporary file holds data, retrying until a kill
    lands mid-write (the temporary file still exists afterwards)."""
    target = tmp_path / "model.ckpt"
    save(small_state(), target)
    for _ in range(10):
        child = run_child(BIG_SAVE, target)
        try:
            assert child.stdout.readline().strip() == b"ready"
            stop = time.monotonic() + 60
            while not temporary_has_data(tmp_path) and child.poll() is None:
                assert time.monotonic() < stop, "the saving child never started writing"
                time.sleep(0.001)
        finally:
            kill(child)
        state = load(target)  # either checkpoint, complete: never a partial file
        if temporaries(tmp_path):  # the kill landed mid-write
            assert_same_state(state, small_state())
            return
        assert list(state) == ["w0", "w1", "w2", "w3"]  # the save finished first: try again
        save(small_state(), target)
    pytest.fail("no kill landed mid-write in 10 attempts")
