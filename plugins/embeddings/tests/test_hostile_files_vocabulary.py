"""Hostile vocabulary files: nothing but a regular file is opened, and no size costs memory.

Each load runs in a fresh interpreter, which reports the error and how much its peak resident
memory grew during the load. A file over the size limit must be refused before it is read; a
special file (a FIFO, ``/dev/zero``) at once, under a timeout so that a regression fails instead
of hanging. The hostile files are small on disk (sparse files).
"""

from __future__ import annotations

import os

import pytest

from tinytorch_core.testing import assert_load_cost, load_in_fresh_interpreter, special_file

pytestmark = pytest.mark.skipif(os.name != "posix", reason="measures peak memory with resource, uses FIFOs")

MiB = 2**20


def load_in_child(path, **options) -> dict:
    """``CharTokenizer.load(path, **options)`` in a fresh interpreter: its error class, message and peak-memory growth."""
    return load_in_fresh_interpreter("tinytorch_embeddings.tokenizer:CharTokenizer.load", path, **options)


def assert_refused(outcome: dict, excerpt: str, *, legitimate: int = 0) -> None:
    assert outcome["error"] == "VocabularyError", outcome
    assert excerpt in outcome["message"], outcome["message"]
    assert_load_cost(outcome, legitimate)


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "directory"])
def test_load_refuses_anything_but_a_regular_file_at_once(kind, tmp_path):
    path = special_file(kind, tmp_path, "vocab.json")
    outcome = load_in_child(path)  # a FIFO used to block forever in open(), /dev/zero to read to the limit
    assert_refused(outcome, "is not a regular file")
    assert repr(path) in outcome["message"]


def test_a_file_over_the_limit_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "vocab.json"
    with open(path, "wb") as handle:  # 48 MiB that take no room on disk
        handle.truncate(48 * MiB)
    assert_refused(load_in_child(path, max_bytes=32 * MiB), f"is larger than the limit of {32 * MiB} bytes")


def test_more_entries_than_there_are_code_points_are_refused_before_they_are_scanned(tmp_path):
    path = tmp_path / "vocab.json"
    chars = ",".join(['"a"'] * 0x110001)  # 4.5 MB: longer than any list of distinct characters
    path.write_text(f'{{"format": "tinytorch-char-tokenizer", "version": 1, "chars": [{chars}]}}')
    outcome = load_in_child(path)
    assert outcome["error"] == "VocabularyError", outcome
    assert "lists 1114113 entries, more than the 1114112 Unicode code points there are" in outcome["message"]


def test_a_valid_vocabulary_still_loads(tmp_path):
    from tinytorch_embeddings import CharTokenizer

    path = tmp_path / "vocab.json"
    CharTokenizer.from_text("hello, world").save(path)
    outcome = load_in_child(path)
    assert outcome["error"] is None and outcome["message"] == "CharTokenizer(vocab_size=9)", outcome


def test_a_file_of_many_small_entries_is_refused_before_it_is_parsed(tmp_path):
    """16 MiB of '"一",' parsed to 224 MB of Python strings before the entry count was checked."""
    path = tmp_path / "vocab.json"
    entries = ",".join(['"一"'] * (16 * MiB // 6 - 16))
    path.write_text(f'{{"format": "tinytorch-char-tokenizer", "version": 1, "chars": [{entries}]}}', encoding="utf-8")
    # the bytes read are the cost: counted before they are decoded or parsed
    assert_refused(load_in_child(path), "JSON values; a vocabulary has at most", legitimate=path.stat().st_size)
