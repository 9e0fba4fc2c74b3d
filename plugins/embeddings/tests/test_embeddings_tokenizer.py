"""CharTokenizer: round trip, unknown characters, saving and validated loading."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tinytorch_core
from tinytorch_core import Tensor
from tinytorch_embeddings import CharTokenizer

TEXT = "to be, or not to be: that is the question.\n"


def test_resolves_through_the_core_text_namespace(tinytorch_runtime):
    assert tinytorch_core.text.CharTokenizer is CharTokenizer


def test_round_trip_and_vocabulary_order():
    tok = CharTokenizer.from_text(TEXT)
    assert tok.chars == tuple(sorted(set(TEXT)))
    assert tok.vocab_size == len(tok) == len(set(TEXT))
    ids = tok.encode(TEXT)
    assert ids.dtype == np.int64 and ids.shape == (len(TEXT),)
    assert [tok.chars[i] for i in ids] == list(TEXT)
    assert tok.decode(ids) == TEXT
    assert tok.decode(ids.tolist()) == TEXT
    assert tok.decode(Tensor(ids)) == TEXT
    assert tok.encode("") .shape == (0,) and tok.decode([]) == ""


def test_non_ascii_characters_round_trip():
    text = "naïve café — 東京 🙂"
    tok = CharTokenizer.from_text(text)
    assert tok.decode(tok.encode(text)) == text


def test_unknown_character_raises_naming_it_and_its_position():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(ValueError, match=r"'z' \(U\+007A\) at position 2"):
        tok.encode("abzc")


def test_unknown_characters_map_to_the_unk_token_when_asked():
    tok = CharTokenizer.from_text("abc", unk_token="?")
    assert tok.chars == ("a", "b", "c", "?") and tok.unk_id == 3
    ids = tok.encode("axbyz")
    np.testing.assert_array_equal(ids, [0, 3, 1, 3, 3])
    assert tok.decode(ids) == "a?b??"
    # an unk token already in the vocabulary keeps its id
    tok2 = CharTokenizer.from_text("ab?", unk_token="?")
    assert tok2.vocab_size == 3 and tok2.encode("z")[0] == tok2.chars.index("?")


def test_decode_refuses_bad_ids():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(IndexError, match=r"id 3 at position 1 .*size 3"):
        tok.decode([0, 3])
    with pytest.raises(IndexError, match="id -1"):
        tok.decode([-1])
    with pytest.raises(TypeError, match="integers"):
        tok.decode(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="1-D"):
        tok.decode(np.zeros((2, 2), dtype=np.int64))


def test_bad_vocabularies_are_refused():
    with pytest.raises(ValueError, match="more than once"):
        CharTokenizer(["a", "b", "a"])
    with pytest.raises(ValueError, match="single character"):
        CharTokenizer(["a", "bc"])
    with pytest.raises(ValueError, match="empty"):
        CharTokenizer.from_text("")
    with pytest.raises(TypeError):
        CharTokenizer.from_text(["a"])


def test_save_and_load_round_trip(tmp_path):
    tok = CharTokenizer.from_text(TEXT + "é", unk_token="~")
    path = tmp_path / "vocab.json"
    tok.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == "tinytorch-char-tokenizer" and data["chars"] == list(tok.chars)
    loaded = CharTokenizer.load(path)
    assert loaded == tok
    np.testing.assert_array_equal(loaded.encode("not é!"), tok.encode("not é!"))


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json {", "not valid JSON"),
        (json.dumps([1, 2]), "expected a JSON object"),
        (json.dumps({"format": "other", "version": 1, "chars": ["a"]}), "'format'"),
        (json.dumps({"format": "tinytorch-char-tokenizer", "version": 9, "chars": ["a"]}), "'version'"),
        (json.dumps({"format": "tinytorch-char-tokenizer", "version": 1, "chars": []}), "non-empty list"),
        (json.dumps({"format": "tinytorch-char-tokenizer", "version": 1, "chars": ["a", "a"]}), "more than once"),
        (json.dumps({"format": "tinytorch-char-tokenizer", "version": 1, "chars": ["ab"]}), "single character"),
        (
            json.dumps({"format": "tinytorch-char-tokenizer", "version": 1, "chars": ["a"], "unk_token": "?"}),
            "not one of 'chars'",
        ),
        (
            json.dumps({"format": "tinytorch-char-tokenizer", "version": 1, "chars": ["a"], "extra": 1}),
            "unexpected keys",
        ),
    ],
)
def test_load_validates_what_it_reads(tmp_path, content, message):
    path = tmp_path / "vocab.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        CharTokenizer.load(path)
