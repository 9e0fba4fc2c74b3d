"""Careless and hostile use of the tokenizers: wrong types, ragged ids, bad options, duplicate JSON
keys, paths that are no file. Each is a clear error naming the method, never a raw traceback or a
silently different meaning."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_embeddings import BPETokenizer, CharTokenizer
from tinytorch_embeddings.tokenizer import VocabularyError

CHAR = CharTokenizer.from_text("hello world")
BPE = BPETokenizer.train("hello world hello <|e|> world", 262, special_tokens=["<|e|>"])
TOKENIZERS = {"char": CHAR, "bpe": BPE}


@pytest.mark.parametrize("name", TOKENIZERS)
def test_ragged_ids_are_a_clear_error(name):
    tokenizer = TOKENIZERS[name]
    with pytest.raises(ValueError, match=r"decode: expected a 1-D sequence of ids, got rows of different lengths"):
        tokenizer.decode([[1], [1, 2]])  # before: NumPy's "setting an array element with a sequence"


@pytest.mark.parametrize("name", TOKENIZERS)
def test_ids_beyond_int64_are_out_of_range_not_non_integers(name):
    tokenizer = TOKENIZERS[name]
    with pytest.raises(IndexError, match=r"decode: id 1180591620717411303424 at position 1 is out of range"):
        tokenizer.decode([1, 2**70])  # before: "ids must be integers, got object"
    assert tokenizer.decode(np.array([1, 2], dtype=object)) == tokenizer.decode([1, 2])


@pytest.mark.parametrize("flag", ["no", "False", None, 0, 1])
def test_allow_special_must_be_a_bool(flag):
    # before: any truthy value (the string "False" too) let text inject a special token
    with pytest.raises(TypeError, match="BPETokenizer.encode: allow_special must be True or False"):
        BPE.encode("<|e|>", allow_special=flag)
    assert BPE.encode("<|e|>", allow_special=np.False_).tolist() == BPE.encode("<|e|>", allow_special=False).tolist()


def test_decode_checks_its_error_handler_before_decoding():
    with pytest.raises(ValueError, match=r"BPETokenizer.decode: errors must be one of \('strict', 'replace'"):
        BPE.decode([104], errors="bogus")  # before: accepted until the first broken character (LookupError)
    with pytest.raises(TypeError, match="BPETokenizer.decode: errors must be a str"):
        BPE.decode([104], errors=None)
    assert BPE.decode([104, 0xE2], errors="ignore") == "h"


@pytest.mark.parametrize("token_id", [1.0, True, [1, 2], None])
def test_token_bytes_takes_one_int(token_id):
    with pytest.raises(TypeError, match="BPETokenizer.token_bytes: token_id must be an int"):
        BPE.token_bytes(token_id)


@pytest.mark.parametrize("build, message", [
    (lambda: CharTokenizer(None), "CharTokenizer: chars must be a str or a sequence of single characters, got NoneType"),
    (lambda: CharTokenizer(5), "CharTokenizer: chars must be a str or a sequence"),
    (lambda: BPETokenizer(None), r"BPETokenizer: merges must be a list of \(left, right\) id pairs, got NoneType"),
    (lambda: BPETokenizer((), 5), "BPETokenizer: special_tokens must be a list of strings, got int"),
    (lambda: BPETokenizer.train("ab", 260, special_tokens=None), "special_tokens must be a list of strings"),
], ids=["char-none", "char-int", "bpe-merges-none", "bpe-specials-int", "train-specials-none"])
def test_constructors_name_what_they_expected(build, message):
    with pytest.raises(TypeError, match=message):  # before: "'NoneType' object is not iterable"
        build()


@pytest.mark.parametrize("name", TOKENIZERS)
@pytest.mark.parametrize("max_bytes", [-1, 0, "10", None, 1e9, True])
def test_load_checks_max_bytes(name, max_bytes, tmp_path):
    tokenizer = TOKENIZERS[name]
    path = tmp_path / "vocab.json"
    tokenizer.save(path)
    # before: "'>' not supported between 'int' and 'str'", or "larger than the limit of -1 bytes"
    with pytest.raises(ValueError, match="load: max_bytes must be a positive int"):
        type(tokenizer).load(path, max_bytes=max_bytes)


@pytest.mark.parametrize("name", TOKENIZERS)
def test_paths_that_name_no_file_to_write_are_clear_errors(name, tmp_path):
    tokenizer = TOKENIZERS[name]
    with pytest.raises(IsADirectoryError, match=r"save: .* names a directory, not a file; save to a file in it"):
        tokenizer.save(tmp_path)  # before: the message named a temporary file
    with pytest.raises(FileNotFoundError, match=r"save: cannot save .*: the folder .* does not exist"):
        tokenizer.save(tmp_path / "missing" / "vocab.json")
    for call in (tokenizer.save, type(tokenizer).load):
        with pytest.raises(TypeError, match=r"(save|load): expected a file path \(str or os.PathLike\), got NoneType"):
            call(None)
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind
    tokenizer.save(bytes(tmp_path / "vocab.json"))
    assert type(tokenizer).load(bytes(tmp_path / "vocab.json")) == tokenizer


@pytest.mark.parametrize("name", TOKENIZERS)
def test_a_vocabulary_naming_a_key_twice_is_refused(name, tmp_path):
    tokenizer = TOKENIZERS[name]
    path = tmp_path / "vocab.json"
    tokenizer.save(path)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('"format"', '"version": 1, "format"', 1), encoding="utf-8")
    # before: the last value silently won, so two readers could disagree on what the file says
    with pytest.raises(VocabularyError, match=r"load: .* repeats the key 'version' in one JSON object"):
        type(tokenizer).load(path)


@pytest.mark.parametrize("specials, message", [
    ([f"<|{k}|>" for k in range(4097)], "4097 special tokens, over the limit of 4096"),
    (["x" * (2**18 + 1)], "the special tokens spell 262145 bytes together, over the limit of 262144"),
], ids=["count", "bytes"])
def test_special_tokens_are_limited_to_what_compiles_in_well_under_a_second(specials, message, tmp_path):
    # before: 200,000 special tokens in a 2.9 MB vocabulary took 55 s and 228 MiB to load
    with pytest.raises(ValueError, match=message):
        BPETokenizer((), specials)
    path = tmp_path / "vocab.json"
    path.write_text(json.dumps({"format": "tinytorch-bpe-tokenizer", "version": 1, "vocab_size": 256 + len(specials),
                                "merges": [], "special_tokens": specials}), encoding="utf-8")
    with pytest.raises(VocabularyError, match=message):
        BPETokenizer.load(path)
    assert BPETokenizer((), specials[:4096] if len(specials) > 1 else ["x" * 2**18]).vocab_size > 256


def test_a_non_finite_gradient_reaches_only_the_rows_looked_up():
    """The small-table backward multiplied by a one-hot matrix: 0 * inf put NaN in every row."""
    table = tt.nn.Embedding(4, 2)
    table.to(np.float64)
    out = table(tt.tensor(np.array([1])))
    out.backward(tt.tensor([[np.inf, 1.0]], dtype=np.float64))
    assert table.weight.grad.data.tolist() == [[0.0, 0.0], [np.inf, 1.0], [0.0, 0.0], [0.0, 0.0]]
