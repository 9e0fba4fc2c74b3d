"""BPE vocabularies as untrusted files: ``BPETokenizer.load`` returns a valid tokenizer or raises
``VocabularyError`` naming the file and the problem, for crafted bad files and under fuzzing,
quickly, and without spending memory on what the file merely claims."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from tinytorch_core.testing import load_in_fresh_interpreter, special_file, time_limit
from tinytorch_embeddings import BPETokenizer, VocabularyError
from tinytorch_embeddings.bpe import MAX_VOCAB_SIZE

EOT = "<|endoftext|>"


def vocab_json(**fields) -> bytes:
    data = {"format": "tinytorch-bpe-tokenizer", "version": 1, "vocab_size": 259,
            "special_tokens": [EOT], "merges": [[97, 97], [256, 98]]}
    data.update(fields)
    return json.dumps(data).encode()


def doubling_chain(merges: int) -> list:
    """(a, a) -> 256, (256, 256) -> 257, ...: token k is 2**(k+1) bytes long (2**40 bytes by merge 39)."""
    return [[97, 97]] + [[256 + k, 256 + k] for k in range(merges - 1)]


CRAFTED = {
    "not_utf8": (b'{"format": "tinytorch-bpe-tokenizer", "x": "\xff"}', "is not UTF-8 text"),
    "truncated": (vocab_json()[:-7], "is not valid JSON"),
    "not_json": (b"{'merges': []}", "is not valid JSON"),
    "deep_nesting": (b"[" * 100_000 + b"]" * 100_000, "RecursionError"),
    "not_an_object": (b"[1, 2]", "expected a JSON object, got list"),
    "wrong_format": (vocab_json(format="tinytorch-char-tokenizer"), "'format' is 'tinytorch-char-tokenizer'"),
    "version_true": (vocab_json(version=True), "'version' is True"),
    "extra_keys": (vocab_json(code="__import__('os')"), "unexpected keys ['code']"),
    "huge_vocab_claim": (vocab_json(vocab_size=10**12), "'vocab_size' is 1000000000000, expected an int in 256..262144"),
    "vocab_size_string": (vocab_json(vocab_size="259"), "'vocab_size' is '259', expected an int"),
    "vocab_size_mismatch": (vocab_json(vocab_size=300), "256 bytes + 2 merges + 1 special tokens make 259"),
    "merges_not_list": (vocab_json(merges={"97": 97}), "'merges' and 'special_tokens' must be lists, got dict"),
    "merge_not_pair": (vocab_json(merges=[[97, 97], [1, 2, 3]]), "merge 1 must be a pair of integer ids, got [1, 2, 3]"),
    "merge_float": (vocab_json(merges=[[97, 97.0], [1, 2]]), "merge 0 must be a pair of integer ids, got [97, 97.0]"),
    "merge_bool": (vocab_json(merges=[[True, 97], [1, 2]]), "merge 0 must be a pair of integer ids"),
    "merge_unknown_id": (vocab_json(merges=[[97, 97], [257, 98]]),
                         "merge 1 is [257, 98], but a merge may only pair ids defined before it, 0..256"),
    "merge_negative_id": (vocab_json(merges=[[-1, 97], [1, 2]]), "merge 0 is [-1, 97]"),
    "merge_huge_id": (vocab_json(merges=[[10**30, 97], [1, 2]]), "merge 0 is [1000000000000000000000000000000, 97]"),
    "merge_repeated": (vocab_json(merges=[[97, 97], [97, 97]]), "merge 1 repeats the pair [97, 97] of an earlier merge"),
    "special_not_str": (vocab_json(special_tokens=[7]), "every special token must be a non-empty str, got 7"),
    "special_empty": (vocab_json(special_tokens=[""]), "every special token must be a non-empty str, got ''"),
    "special_repeated": (vocab_json(special_tokens=[EOT, EOT], vocab_size=260), "lists a token more than once"),
    "special_surrogate": (vocab_json(special_tokens=["\ud800"]), "holds a lone surrogate"),
    "doubling_chain": (vocab_json(merges=doubling_chain(40), vocab_size=256 + 40 + 1),
                       "the tokens spell more than 16777216 bytes together"),
}


@pytest.mark.parametrize("kind", sorted(CRAFTED))
def test_malformed_vocabularies_raise_vocabulary_error_naming_the_file(kind, tmp_path):
    content, excerpt = CRAFTED[kind]
    path = tmp_path / "bpe.json"
    path.write_bytes(content)
    with time_limit(10.0), pytest.raises(VocabularyError) as info:
        BPETokenizer.load(path)
    message = str(info.value)
    assert excerpt in message, message
    assert repr(os.fspath(path)) in message
    assert len(message) < 1000  # a hostile file cannot blow up the message


def test_more_merges_than_a_vocabulary_may_hold_are_refused_before_they_are_checked(tmp_path):
    path = tmp_path / "bpe.json"
    merges = ",".join(["[97, 97]"] * MAX_VOCAB_SIZE)  # 2.4 MB of one repeated merge
    path.write_text('{"format": "tinytorch-bpe-tokenizer", "version": 1, "vocab_size": 262144, '
                    f'"special_tokens": [], "merges": [{merges}]}}')
    with pytest.raises(VocabularyError, match="'vocab_size' is 262144, but 256 bytes \\+ 262144 merges"):
        BPETokenizer.load(path)
    with pytest.raises(ValueError, match="262144 merges make a vocabulary over the limit of 262144 ids"):
        BPETokenizer([[97, 97]] * MAX_VOCAB_SIZE)


def test_the_size_limit_is_checked_before_reading(tmp_path):
    path = tmp_path / "bpe.json"
    BPETokenizer.train("abracadabra " * 10, 270).save(path)
    size = path.stat().st_size
    with pytest.raises(VocabularyError, match=f"BPETokenizer.load: .* is larger than the limit of {size - 1} bytes"):
        BPETokenizer.load(path, max_bytes=size - 1)
    assert BPETokenizer.load(path, max_bytes=size) == BPETokenizer.train("abracadabra " * 10, 270)


@pytest.mark.skipif(os.name != "posix", reason="uses a FIFO")
def test_anything_but_a_regular_file_is_refused_at_once(tmp_path):
    path = special_file("fifo", tmp_path, "bpe.json")
    outcome = load_in_fresh_interpreter("tinytorch_embeddings.bpe:BPETokenizer.load", path)
    assert outcome["error"] == "VocabularyError" and "is not a regular file" in outcome["message"], outcome


def test_fuzz_truncations_and_bit_flips(tmp_path):
    source = tmp_path / "source.json"
    BPETokenizer.train(f"Hello, wörld 🙂 {EOT} hello hello", 280, special_tokens=[EOT]).save(source)
    data = source.read_bytes()
    path = tmp_path / "fuzzed.json"
    rng = np.random.default_rng(0)
    outcomes = {"loaded": 0, "refused": 0}

    def outcome(content: bytes) -> str:
        path.write_bytes(content)
        try:
            with time_limit(5.0):
                tokenizer = BPETokenizer.load(path)
        except VocabularyError as exc:
            assert os.fspath(path) in str(exc)
            return "refused"
        text = tokenizer.decode(np.arange(tokenizer.vocab_size))  # a usable tokenizer
        assert tokenizer.decode(tokenizer.encode(text)) == text
        return "loaded"

    for length in range(0, len(data), 7):  # proper prefixes
        assert outcome(data[:length]) == "refused", length
    for position in rng.integers(0, len(data), size=300):
        corrupted = bytearray(data)
        corrupted[position] ^= 1 << int(rng.integers(8))
        outcomes[outcome(bytes(corrupted))] += 1
    assert outcomes["refused"] > 0 and outcomes["loaded"] > 0  # some flips only change a digit or a space
