"""Property tests of BPETokenizer (hypothesis): every Unicode string round-trips exactly, and
training and encoding agree with a plain-Python reference of the textbook algorithm. The runs are
derandomized (the same examples every time) and bounded. Skipped where hypothesis is not
installed (a bare stage environment); ``uv sync`` installs it with the dev group."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

pytest.importorskip("hypothesis")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tinytorch_embeddings import BPETokenizer  # noqa: E402

EOT = "<|endoftext|>"


# ---- a plain-Python reference: the textbook algorithm, one pair at a time -------------------------------
def reference_merge(seq: list, pair: tuple, new_id: int) -> list:
    out, i = [], 0
    while i < len(seq):
        if i + 1 < len(seq) and (seq[i], seq[i + 1]) == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(seq[i])
            i += 1
    return out


def reference_train(text: str, merges: int) -> list:
    seq, learned = list(text.encode("utf-8")), []
    for new_id in range(256, 256 + merges):
        counts = Counter(zip(seq, seq[1:]))
        if not counts:
            break
        pair = min(counts, key=lambda p: (-counts[p], p))  # most frequent, then the smallest pair
        seq = reference_merge(seq, pair, new_id)
        learned.append(pair)
    return learned


def reference_encode(text: str, merges: list) -> list:
    seq = list(text.encode("utf-8"))
    for rank, pair in enumerate(merges):  # every merge in the order learned
        seq = reference_merge(seq, pair, 256 + rank)
    return seq


# ---- agreement with the reference, exact round trips -------------------------------------------------
UNICODE = st.lists(st.one_of(
    st.characters(exclude_categories=("Cs",)),  # any code point but a lone surrogate
    st.sampled_from(["🙂", "👩‍👩‍👧", "🇫🇷", "e\u0301", "\u0308\u0323", "字語", "\x00", "\n", " ", EOT]),
), max_size=40).map("".join)


TRAINED = BPETokenizer.train("Hello, wörld! 🙂🙂 字語字語 " * 3 + EOT, 330, special_tokens=[EOT])


@given(text=UNICODE)
@settings(max_examples=150, deadline=None, derandomize=True)
def test_every_unicode_string_round_trips(text):
    for tokenizer in (TRAINED, BPETokenizer()):
        ids = tokenizer.encode(text)
        assert ids.dtype == np.int64 and ids.ndim == 1
        assert tokenizer.decode(ids, errors="strict") == text
        assert tokenizer.decode(tokenizer.encode(text, allow_special=False), errors="strict") == text


@given(training=st.text(alphabet="abcé ", min_size=1, max_size=60), text=st.text(alphabet="abcdé ", max_size=60),
       merges=st.integers(0, 20))
@settings(max_examples=100, deadline=None, derandomize=True)
def test_training_and_encoding_match_the_reference(training, text, merges):
    tokenizer = BPETokenizer.train(training, 256 + merges)
    assert list(tokenizer.merges) == reference_train(training, merges)
    assert tokenizer.encode(text).tolist() == reference_encode(text, list(tokenizer.merges))


def test_a_longer_text_and_the_large_vocabulary_path_match_the_reference():
    text = "the cat sat on the mat; the bat ate the hat " * 20
    tokenizer = BPETokenizer.train(text, 300)
    assert list(tokenizer.merges) == reference_train(text, 300 - 256)
    large = BPETokenizer(tokenizer.merges, special_tokens=[f"<|{k}|>" for k in range(2100)])  # ranks by searchsorted
    sample = "a bat on the hat, the mat"
    assert large.encode(sample).tolist() == reference_encode(sample, list(tokenizer.merges))
