"""``tinytorch_core.files.open_regular_file``: the one way loaders of untrusted files open them.

A regular file (or a link to one) opens as an ordinary blocking binary file; a FIFO, a device, a
directory or a socket is refused at once with the caller's error class, naming the path and what
it is, and no descriptor is left open. The loaders' own tests (``test_hostile_files_*.py`` in
plugins/nn, plugins/embeddings and milestones) check each loader against the same files.
"""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core.files import open_regular_file
from tinytorch_core.testing import time_limit

pytestmark = pytest.mark.skipif(os.name != "posix", reason="FIFOs, devices and sockets are POSIX's")


class LoaderError(ValueError):
    """Stands for a loader's own error class (CheckpointError, VocabularyError, IDXError)."""


def open_or_refuse(path):
    with time_limit(10.0):  # a regression would block in open() on a FIFO
        return open_regular_file(path, error=LoaderError, context="loader: ")


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0


def test_a_regular_file_opens_as_a_blocking_binary_file(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"\x00\x01\x02")
    with open_or_refuse(path) as handle:
        assert handle.read() == b"\x00\x01\x02"
        assert os.fstat(handle.fileno()).st_size == 3
        assert os.get_blocking(handle.fileno())
    link = tmp_path / "link.bin"
    link.symlink_to(path)
    with open_or_refuse(link) as handle:
        assert handle.read(1) == b"\x00"


def special(kind: str, tmp_path, request):
    if kind == "fifo":
        os.mkfifo(tmp_path / "fifo")
        return tmp_path / "fifo", "a FIFO (named pipe)"
    if kind == "directory":
        return tmp_path, "a directory"
    if kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        request.addfinalizer(server.close)
        server.bind(os.fspath(tmp_path / "sock"))
        return tmp_path / "sock", "a socket"
    device = {"dev_zero": "/dev/zero", "dev_null": "/dev/null"}[kind]
    if not os.path.exists(device):
        pytest.skip(f"no {device} here")
    return device, "a character device"


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "dev_null", "directory", "socket"])
def test_anything_but_a_regular_file_is_refused_at_once_with_the_callers_error(kind, tmp_path, request):
    path, what = special(kind, tmp_path, request)
    before = open_descriptors()
    with pytest.raises(LoaderError) as info:
        open_or_refuse(path)
    assert str(info.value) == (
        f"loader: {os.fspath(path)!r} is not a regular file (it is {what}); only regular files are read"
    )
    assert open_descriptors() == before  # the descriptor opened for the check is closed again


def test_a_link_to_a_device_is_refused_by_what_it_opens(tmp_path):
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero here")
    link = tmp_path / "model.ckpt"
    link.symlink_to("/dev/zero")
    with pytest.raises(LoaderError, match="is not a regular file \\(it is a character device\\)"):
        open_or_refuse(link)


def test_a_missing_file_is_the_usual_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        open_or_refuse(tmp_path / "absent")


def test_load_cost_is_seen_even_below_the_parents_peak(tmp_path):
    """The child measures its own peak: a parent that once held more memory than the load
    needs (pytest, after big tests) must not hide the load's growth."""
    from tinytorch_core.testing import load_in_fresh_interpreter

    held = np.ones(200 * 2**20 // 8)  # the parent's peak: 200 MiB, touched
    path = tmp_path / "data.bin"
    np.zeros(48 * 2**20 // 8).tofile(path)
    outcome = load_in_fresh_interpreter("numpy:fromfile", path)
    del held
    if outcome.get("method") != "VmHWM":
        pytest.skip("no per-process peak reset here (/proc/self/clear_refs)")
    assert outcome["error"] is None
    assert outcome["growth"] >= 40 * 2**20, outcome


@pytest.mark.parametrize("max_bytes", [float("nan"), None, "x", 0, True])
def test_a_max_bytes_that_is_not_a_positive_int_is_refused_naming_the_loader(tmp_path, max_bytes):
    """NaN switched the limit off (every comparison with NaN is False); None blamed the file."""
    from tinytorch_milestones.idx import read_idx

    path = tmp_path / "c.safetensors"
    tt.io.save({"a": np.ones(2, np.float32)}, path)
    with pytest.raises(ValueError, match="load: max_bytes must be a positive int"):
        tt.io.load(path, max_bytes=max_bytes)
    with pytest.raises(ValueError, match="read_idx: max_bytes must be a positive int"):
        read_idx(path, max_bytes=max_bytes)


def test_a_path_with_a_nul_byte_or_a_name_too_long_is_refused_naming_the_call(tmp_path):
    from tinytorch_milestones.idx import read_idx

    nul = str(tmp_path / "a\0b")
    for call, name in ((lambda: tt.io.load(nul), "load"), (lambda: read_idx(nul), "read_idx"),
                       (lambda: tt.io.save({"a": np.ones(2)}, nul), "save")):
        with pytest.raises(ValueError, match=f"{name}: the path .* holds a NUL byte"):
            call()
    with pytest.raises(OSError, match="save: the file name 'aaa.*is 300 bytes, longer than the"):
        tt.io.save({"a": np.ones(2)}, tmp_path / ("a" * 300))
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind
