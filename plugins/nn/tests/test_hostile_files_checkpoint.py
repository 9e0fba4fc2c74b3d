"""Hostile checkpoint files: nothing but a regular file is opened, and no announced size costs memory.

Each load runs in a fresh interpreter, which reports the error and how much its peak resident
memory grew during the load. The bound is the data the file legitimately holds, times 1.2, plus a
small allowance for interpreter noise: a file that announces more than it holds, more than the
budget, or more entries than a checkpoint may have must be refused before memory is spent on it.
The hostile files are small on disk; special files (a FIFO, ``/dev/zero``) run under a timeout
so that a regression fails instead of hanging. Safetensors files (what ``save`` writes) come
first, then the ``.npz`` checkpoints of earlier versions, which ``load`` still reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
import struct

import numpy as np
import pytest

from tinytorch_core.testing import assert_load_cost, load_in_fresh_interpreter, special_file
from tinytorch_nn.checkpoint.safetensors_file import MAX_HEADER_BYTES, MAX_HEADER_VALUES
from tinytorch_nn.io import MAX_ENTRIES, save

pytestmark = pytest.mark.skipif(os.name != "posix", reason="measures peak memory with resource, uses FIFOs")

MiB = 2**20

# A child started by this (large) test process inherits its peak in ``ru_maxrss`` (Linux keeps the
# high-water mark across exec), so a load that stays under the parent's peak would measure 0. Where
# /proc allows it, the child resets its own peak (clear_refs) and reads it (VmHWM) instead.
_LOAD_MEASURED = """
import importlib, json, sys
from tinytorch_nn import io

def status(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))

path, options = sys.argv[1], json.loads(sys.argv[2])
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the peak resident memory starts again from the current one
before = status("VmRSS")
try:
    result = io.load(path, **options)
    error, message = None, repr(result)[:200]
except Exception as exc:
    error, message = type(exc).__name__, str(exc)
print(json.dumps({"error": error, "message": message, "growth": status("VmHWM") - before}))
"""


def _peak_can_be_reset() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


PEAK_RESETS = _peak_can_be_reset()


def load_in_child(path, **options) -> dict:
    """Load ``path`` in a fresh interpreter: its error class, message and peak-memory growth."""
    if not PEAK_RESETS:
        return load_in_fresh_interpreter("tinytorch_nn.io:load", path, **options)
    done = subprocess.run([sys.executable, "-c", _LOAD_MEASURED, os.fspath(path), json.dumps(options)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def assert_refused(outcome: dict, excerpt: str, *, legitimate: int = 0) -> None:
    assert outcome["error"] == "CheckpointError", outcome
    assert excerpt in outcome["message"], outcome["message"]
    assert_load_cost(outcome, legitimate)


# ---- safetensors: legitimate files cost their data ---------------------------------------------------------
def legitimate_states(size: int) -> dict:
    quarter = size // 4 // 4  # float32 elements in a quarter of ``size``
    return {
        "one_array": {"w": np.ones(size // 4, np.float32)},
        "many_arrays": {f"blocks.{k}.weight": np.ones(size // 4 // 48, np.float32) for k in range(48)},
        "training_state": {  # a model, its Adam state and a scheduler, as a training checkpoint holds them
            "model": {"fc.weight": np.ones(quarter, np.float32), "fc.bias": np.ones(quarter, np.float32)},
            "optimizer": {
                "state": {0: {"step": 3, "exp_avg": np.ones(quarter, np.float32), "exp_avg_sq": np.ones(quarter, np.float32)}},
                "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0]}],
            },
            "scheduler": {"last_epoch": 3, "base_lrs": [0.1]},
        },
    }


@pytest.mark.parametrize("kind", ["one_array", "many_arrays", "training_state"])
def test_a_safetensors_checkpoint_costs_no_more_than_its_data(kind, tmp_path):
    size = 48 * MiB
    path = tmp_path / "model.safetensors"
    save(legitimate_states(size)[kind], path)
    outcome = load_in_child(path)
    assert outcome["error"] is None, outcome
    assert_load_cost(outcome, size)
    if PEAK_RESETS:  # measured for real: the arrays themselves were counted
        assert outcome["growth"] >= size, outcome


# ---- safetensors: hostile headers, refused before they cost memory ---------------------------------------
def safetensors_file(path, header_text: bytes, data: bytes = b"", length: int | None = None):
    path.write_bytes(struct.pack("<Q", len(header_text) if length is None else length) + header_text + data)
    return path


def test_a_header_announcing_more_data_than_the_file_holds_is_refused_before_allocating(tmp_path):
    header = json.dumps({"w": {"dtype": "U8", "shape": [48 * MiB], "data_offsets": [0, 48 * MiB]}}).encode()
    path = safetensors_file(tmp_path / "bomb.safetensors", header, data=bytes(1024))
    assert_refused(load_in_child(path), f"announces {48 * MiB} bytes of array data but the file holds 1024")


def test_a_header_announcing_more_than_the_budget_is_refused(tmp_path):
    path = tmp_path / "big.safetensors"
    save({"w": np.zeros(MiB, np.uint8)}, path)
    assert_refused(load_in_child(path, max_bytes=MiB // 2), f"over the limit of {MiB // 2} bytes per file")


@pytest.mark.parametrize("length", [MAX_HEADER_BYTES + 1, 2**63])
def test_a_header_length_over_the_limit_is_refused_before_the_header_is_read(length, tmp_path):
    path = safetensors_file(tmp_path / "header.safetensors", b"{}" + bytes(MiB), length=length)
    assert_refused(load_in_child(path), f"over the limit of {MAX_HEADER_BYTES} bytes")


def test_a_header_of_too_many_json_values_is_refused_before_it_is_parsed(tmp_path):
    # parsed, "[[]]," costs about 30 times its size; counted first, it costs nothing
    text = b'{"x":[' + b"[[]]," * (MAX_HEADER_BYTES // 5 - 4) + b"0]}"
    path = safetensors_file(tmp_path / "values.safetensors", text)
    assert_refused(load_in_child(path), f"over the limit of {MAX_HEADER_VALUES}")


@pytest.mark.parametrize("kind", ["nested_lists", "long_text", "empty_arrays"])
def test_the_largest_header_allowed_costs_little_whatever_it_holds(kind, tmp_path):
    if kind == "nested_lists":  # just under the value limit, of the costliest values
        text = b'{"x":[' + b"[[]]," * (MAX_HEADER_VALUES // 3 - 10) + b"0]}"
    elif kind == "long_text":  # one metadata text as long as a header may be
        text = b'{"__metadata__":{"note":"' + b"a" * (MAX_HEADER_BYTES - 40) + b'"}}'
    else:  # as many (empty) arrays as the header may describe: a legitimate file
        entry = '"a{}":{{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}'
        count = MAX_HEADER_VALUES // 11
        text = ("{" + ",".join(entry.format(k) for k in range(count)) + "}").encode()
    assert len(text) <= MAX_HEADER_BYTES
    outcome = load_in_child(safetensors_file(tmp_path / "header.safetensors", text))
    assert outcome["error"] in (None, "CheckpointError"), outcome
    assert_load_cost(outcome, 0)


# ---- .npz checkpoints of earlier versions: hostile files, built small ------------------------------------------------------------------------
def npy_header(shape, descr="|u1", version=(1, 0)) -> bytes:
    text = repr({"descr": descr, "fortran_order": False, "shape": tuple(shape)}).encode("latin1")
    text += b" " * (64 - (12 + len(text) + 1) % 64) + b"\n"
    length = struct.pack("<H", len(text)) if version == (1, 0) else struct.pack("<I", len(text))
    return np.lib.format.magic(*version) + length + text


def deflated_zeros_checkpoint(path, data_bytes: int, header: bytes | None = None):
    """One deflated member ``w.npy`` whose header announces ``data_bytes`` of uint8 zeros, which follow:
    about a thousandth of that on disk."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("w.npy", "w", force_zip64=True) as member:
            member.write(header if header is not None else npy_header((data_bytes,)))
            chunk = bytes(MiB)
            for start in range(0, data_bytes, MiB):
                member.write(chunk[: min(MiB, data_bytes - start)])
    return path


def spoil_central_crc(path) -> None:
    """Change the CRC-32 the central directory records for the first member (zipfile checks that one)."""
    data = bytearray(path.read_bytes())
    at = data.rindex(b"PK\x01\x02") + 16
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


CENTRAL_RECORD = struct.Struct("<4s4B4HL2L5H2L")  # the zip format's central-directory file header


def central_directory_bomb(path, records: int, announced: int):
    """A zip of nothing but a central directory: ``records`` entries named ``w.npy`` (51 bytes each)
    behind a ZIP64 end record that announces ``announced`` entries."""
    name = b"w.npy"
    record = CENTRAL_RECORD.pack(b"PK\x01\x02", 45, 3, 45, 0, 0, 0, 0, 0x21, 0, 0, 0, len(name), 0, 0, 0, 0, 0, 0)
    directory = (record + name) * records
    zip64_end = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, announced, announced, len(directory), 0)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, len(directory), 1)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    path.write_bytes(directory + zip64_end + locator + end)
    return path


# ---- special files ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "directory"])
def test_load_refuses_anything_but_a_regular_file_at_once(kind, tmp_path):
    path = special_file(kind, tmp_path, "model.ckpt")
    outcome = load_in_child(path)  # a FIFO used to block forever in open(), /dev/zero to read zeros
    assert_refused(outcome, "is not a regular file")
    assert repr(path) in outcome["message"]


# ---- announced sizes ------------------------------------------------------------------------------------
@pytest.mark.parametrize("crc", ["right", "wrong"])
def test_a_deflated_member_costs_no_more_than_the_data_it_holds(crc, tmp_path):
    size = 48 * MiB  # 48 KiB on disk
    path = deflated_zeros_checkpoint(tmp_path / "bomb.ckpt", size)
    assert path.stat().st_size < MiB
    if crc == "right":
        outcome = load_in_child(path)
        assert outcome["error"] is None, outcome
        assert_load_cost(outcome, size)
    else:  # inflated into the result array in chunks, then refused: never held twice
        spoil_central_crc(path)
        assert_refused(load_in_child(path), "Bad CRC-32", legitimate=size)


def test_a_member_over_the_budget_is_refused_before_it_is_inflated(tmp_path):
    path = deflated_zeros_checkpoint(tmp_path / "bomb.ckpt", 48 * MiB)
    assert_refused(load_in_child(path, max_bytes=MiB), f"over the limit of {MiB} bytes")


def test_a_member_holding_more_than_its_npy_header_declares_is_refused_before_it_is_inflated(tmp_path):
    path = deflated_zeros_checkpoint(tmp_path / "bomb.ckpt", 48 * MiB, header=npy_header((10,)))
    assert_refused(load_in_child(path), "its header announces shape (10,)")


def test_a_huge_npy_header_length_is_refused_before_the_header_is_read(tmp_path):
    # a version 2.0 header may announce up to 4 GiB of header text; NumPy would read it all first
    length = 48 * MiB
    header = np.lib.format.magic(2, 0) + struct.pack("<I", length)
    path = deflated_zeros_checkpoint(tmp_path / "header.ckpt", length, header=header)
    assert_refused(load_in_child(path), f"announces a .npy header of {length} bytes, over the limit of")


# ---- announced entries ----------------------------------------------------------------------------------
def test_a_directory_of_more_entries_than_a_checkpoint_may_hold_is_refused_before_it_is_built(tmp_path):
    records = 2 * MAX_ENTRIES  # 10 MB on disk; zipfile would build 200,000 ZipInfo objects (about 80 MB)
    path = central_directory_bomb(tmp_path / "entries.ckpt", records, announced=records)
    outcome = load_in_child(path)
    assert_refused(outcome, f"announces {records} entries, over the limit of {MAX_ENTRIES} entries")


def test_a_directory_holding_more_entries_than_its_end_record_announces_is_refused(tmp_path):
    # zipfile reads the directory by its size and never looks at the count: the scan must count
    path = central_directory_bomb(tmp_path / "entries.ckpt", 2 * MAX_ENTRIES, announced=3)
    assert_refused(load_in_child(path), "holds more than the 3 entries its end record announces")


def test_oversized_extra_fields_in_the_directory_are_refused(tmp_path):
    path = tmp_path / "extra.ckpt"
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo("w.npy")
        info.extra = struct.pack("<HH", 0xCAFE, 60_000) + bytes(60_000)
        archive.writestr(info, npy_header((0,)))
    assert_refused(load_in_child(path), "extra fields and comment of")


def test_a_shape_no_array_can_have_is_a_header_error_not_damage(tmp_path):
    """[0, 2**62, 2**62] holds 0 bytes, so the sizes matched; NumPy then refused it and the error
    said the file was damaged or truncated."""
    from tinytorch_nn.io import CheckpointError, load

    header = json.dumps({"w": {"dtype": "F32", "shape": [0, 2**62, 2**62], "data_offsets": [0, 0]}}).encode()
    path = tmp_path / "huge_shape.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(CheckpointError, match=r"entry 'w' has a shape .* no array can have"):
        load(path)
