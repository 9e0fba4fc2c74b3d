"""Tokenizer vocabularies as untrusted files, and atomic saving.

``CharTokenizer.load`` must return a valid tokenizer or raise ``VocabularyError`` (a
``ValueError``) naming the file, for crafted bad files and under fuzzing (random bytes, every
prefix of a valid file, bit flips), quickly and without another exception type. ``save`` must
keep the previous file when a save fails or is killed before its rename.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from tinytorch_core.testing import time_limit

from tinytorch_embeddings import CharTokenizer
from tinytorch_embeddings.tokenizer import VocabularyError

TEXT = "Hello, world! Ünïcödé ✓ 字"


def vocab_json(**fields) -> str:
    data = {"format": "tinytorch-char-tokenizer", "version": 1, "chars": ["a", "b"]}
    data.update(fields)
    return json.dumps(data)


CRAFTED = {
    "not_utf8": (b"\xff\xfe{}", "is not UTF-8 text"),
    "not_json": (b"{'chars': ['a']}", "is not valid JSON"),
    "truncated": (vocab_json().encode()[:-5], "is not valid JSON"),
    "deep_nesting": (b"[" * 100_000 + b"]" * 100_000, "JSON lists and objects; a vocabulary has at most"),
    "many_empty_objects": (b"[" + b",".join([b"{}"] * 100_000) + b"]", "JSON lists and objects"),
    # more entries than code points: refused before parsing (16 MiB of them cost 224 MB parsed)
    "many_values": (b'{"chars": [' + b",".join([b'"a"'] * 1_200_000) + b"]}", "JSON values; a vocabulary has at most"),
    # Python >= 3.11 refuses to parse the integer; 3.10 parses it and the version check refuses it
    "huge_integer": (vocab_json(version=0).replace('"version": 0', '"version": ' + "9" * 5000).encode(),
                     ("is not valid JSON", "'version' is 9999")),
    "version_true": (vocab_json(version=True).encode(), "'version' is True"),
    "chars_not_list": (vocab_json(chars="ab").encode(), "'chars' must be a non-empty list"),
    "long_entry": (vocab_json(chars=["a", "x" * 100_000]).encode(), "must be a single character, got 'xxxx"),
    "non_string_entry": (vocab_json(chars=["a", 7]).encode(), "must be a single character, got 7"),
    "duplicate": (vocab_json(chars=["a", "b", "a"]).encode(), "lists 'a' (U+0061) more than once"),
    "bad_unk": (vocab_json(unk_token=["?"]).encode(), "'unk_token' ['?'] is not one of 'chars'"),
    "extra_keys": (vocab_json(code="__import__('os')").encode(), "unexpected keys ['code']"),
}


@pytest.mark.parametrize("kind", sorted(CRAFTED))
def test_malformed_vocabularies_raise_vocabulary_error_naming_the_file(kind, tmp_path):
    content, excerpt = CRAFTED[kind]
    path = tmp_path / "vocab.json"
    path.write_bytes(content)
    with pytest.raises(VocabularyError) as info:
        CharTokenizer.load(path)
    message = str(info.value)
    assert any(e in message for e in ((excerpt,) if isinstance(excerpt, str) else excerpt)), message
    assert os.fspath(path) in message
    assert len(message) < 1000  # a hostile file cannot blow up the message
    assert isinstance(info.value, ValueError)


def test_size_limit(tmp_path):
    path = tmp_path / "vocab.json"
    CharTokenizer.from_text(TEXT).save(path)
    size = path.stat().st_size
    with pytest.raises(VocabularyError, match=f"larger than the limit of {size - 1} bytes"):
        CharTokenizer.load(path, max_bytes=size - 1)
    assert CharTokenizer.load(path, max_bytes=size) == CharTokenizer.from_text(TEXT)


def test_a_huge_vocabulary_with_a_duplicate_is_refused_quickly():
    chars = [chr(c) for c in range(0x4E00, 0x4E00 + 20_000)] + ["a", "a"]
    # a hang guard, not a benchmark: a quadratic duplicate search would take minutes here
    with time_limit(30.0), pytest.raises(VocabularyError, match="more than once"):
        CharTokenizer.from_dict({"format": "tinytorch-char-tokenizer", "version": 1, "chars": chars})


def test_lone_surrogate_vocabulary_round_trips(tmp_path):
    tok = CharTokenizer(["a", "\ud800"])
    tok.save(tmp_path / "vocab.json")
    assert CharTokenizer.load(tmp_path / "vocab.json") == tok


# ---- fuzzing ----------------------------------------------------------------------------------------
def outcome(path) -> str:
    try:
        with time_limit(5.0):
            tok = CharTokenizer.load(path)
    except VocabularyError as exc:
        assert os.fspath(path) in str(exc)
        return "refused"
    assert isinstance(tok, CharTokenizer) and tok.vocab_size >= 1
    assert tok.decode(np.arange(tok.vocab_size)) == "".join(tok.chars)  # a usable tokenizer
    return "loaded"


def test_fuzz_random_bytes_truncations_and_bit_flips(tmp_path):
    rng = np.random.default_rng(0)
    source = tmp_path / "source.json"
    CharTokenizer.from_text(TEXT, unk_token="?").save(source)
    data = source.read_bytes()
    path = tmp_path / "fuzzed.json"
    counts = {"loaded": 0, "refused": 0}
    for k in range(200):
        path.write_bytes((b"{" if k % 2 else b"") + rng.integers(0, 256, int(rng.integers(0, 300)), dtype=np.uint8).tobytes())
        counts[outcome(path)] += 1
    for length in range(len(data)):  # every proper prefix
        path.write_bytes(data[:length])
        assert outcome(path) == "refused", length
    for position in range(len(data)):
        corrupted = bytearray(data)
        corrupted[position] ^= 1 << int(rng.integers(8))
        path.write_bytes(bytes(corrupted))
        counts[outcome(path)] += 1
    assert counts["refused"] > 0 and counts["loaded"] > 0  # some flips only change whitespace or a char


# the stale-temporary cleanup and SIGKILL semantics are POSIX's
posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX process and file semantics")


# ---- atomic saving ------------------------------------------------------------------------------------
def test_a_failed_save_keeps_the_previous_vocabulary(tmp_path, monkeypatch):
    path = tmp_path / "vocab.json"
    old = CharTokenizer.from_text("abc")
    old.save(path)

    def broken_fsync(*args, **kwargs):
        raise OSError("disk full (simulated)")

    import tinytorch_nn.io as io_module

    monkeypatch.setattr(io_module.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        CharTokenizer.from_text("xyz").save(path)
    monkeypatch.undo()
    assert CharTokenizer.load(path) == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vocab.json"]


KILLED_BEFORE_RENAME = textwrap.dedent(
    """
    import os, sys, time
    from tinytorch_embeddings import CharTokenizer
    import tinytorch_nn.io as io_module

    path, marker = sys.argv[1], sys.argv[2]

    def fsync_then_pause(fd):  # test-only hook: the new file is written, the rename not done
        os.fsync(fd)
        open(marker, "w").close()
        time.sleep(120)

    io_module.os = type(sys)("os_with_hook")
    io_module.os.__dict__.update(os.__dict__)
    io_module.os.fsync = fsync_then_pause
    CharTokenizer.from_text("a brand new vocabulary").save(path)
    """
)


@posix_only
def test_a_save_killed_before_its_rename_keeps_the_previous_vocabulary(tmp_path):
    path, marker = tmp_path / "vocab.json", tmp_path / "paused"
    old = CharTokenizer.from_text("abc")
    old.save(path)
    child = subprocess.Popen([sys.executable, "-c", KILLED_BEFORE_RENAME, str(path), str(marker)])
    try:
        stop = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None and time.monotonic() < stop, "the saving child never paused"
            time.sleep(0.01)
        leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".vocab.json.tmp-")]
        assert len(leftovers) == 1
    finally:
        child.kill()
        child.wait(timeout=30)
    assert CharTokenizer.load(path) == old
    CharTokenizer.from_text("xyz").save(path)  # the next save removes the dead child's temporary
    assert sorted(p.name for p in tmp_path.iterdir()) == ["paused", "vocab.json"]
