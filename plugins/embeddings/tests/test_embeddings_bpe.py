"""BPETokenizer: known merges computed by hand, the tie-break rule, special tokens, the errors of bad
input, and the one Tokenizer protocol both tokenizers implement. (Round trips of arbitrary Unicode
and agreement with a plain-Python reference: ``test_props_bpe.py``.)"""

from __future__ import annotations

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Tensor
from tinytorch_embeddings import BPETokenizer, CharTokenizer, Tokenizer

EOT = "<|endoftext|>"


# ---- known answers ------------------------------------------------------------------------------------
def test_merges_of_a_small_text_computed_by_hand():
    # "aaabdaaabac" as bytes: a=97, b=98, c=99, d=100.
    #   a a a b d a a a b a c    pairs: (a,a) x4, (a,b) x2, (b,d) (d,a) (b,a) (a,c) x1
    #   merge 0: (97, 97) -> 256, left to right, so "aaa" becomes 256 a
    #   256 a b d 256 a b a c    pairs: (256,a) x2, (a,b) x2, (b,d) (d,256) (b,a) (a,c) x1
    #   merge 1: a tie of (256, 97) and (97, 98), both twice: the smaller pair (97, 98) -> 257
    #   256 257 d 256 257 a c    pairs: (256,257) x2, the rest once
    #   merge 2: (256, 257) -> 258
    #   258 d 258 a c            (Wikipedia's "XdXac")
    tokenizer = BPETokenizer.train("aaabdaaabac", vocab_size=259)
    assert tokenizer.merges == ((97, 97), (97, 98), (256, 257))
    assert tokenizer.encode("aaabdaaabac").tolist() == [258, 100, 258, 97, 99]
    assert tokenizer.token_bytes(258) == b"aaab"
    assert tokenizer.vocab_size == 259 and tokenizer.decode([258, 100]) == "aaabd"
    # encoding other text applies the merges in order: "aaaa" -> 256 256; "aab" -> 256 98, never 97 257
    assert tokenizer.encode("aaaa").tolist() == [256, 256]
    assert tokenizer.encode("aab").tolist() == [256, 98]


def test_ties_go_to_the_smallest_pair_wherever_it_occurs():
    # every pair occurs once: the smallest (left, right) wins, not the first in the text
    for text in ("xyab", "abxy", "xaby"):
        assert BPETokenizer.train(text, 257).merges[0] == (97, 98), text
    # equal counts, the larger pair first in the text: (98, 98) "bb" twice and (97, 97) "aa" twice
    assert BPETokenizer.train("bbxbbyaazaa", 257).merges == ((97, 97),)


def test_training_is_deterministic_and_stops_when_no_pair_is_left():
    text = "the cat sat on the mat; the bat ate the hat " * 20
    first, second = BPETokenizer.train(text, 300), BPETokenizer.train(text, 300)
    assert first == second and first.merges == second.merges
    short = BPETokenizer.train("abc", 1000)  # "abc" -> "ab c" -> "abc": two merges and no pair left
    assert short.merges == ((97, 98), (256, 99)) and short.vocab_size == 258


def test_a_large_vocabulary_looks_ranks_up_in_sorted_codes_with_the_same_result():
    text = "abracadabra, cadabra abra " * 5
    small = BPETokenizer.train(text, 280)
    large = BPETokenizer(small.merges, special_tokens=[f"<|{k}|>" for k in range(2100)])  # vocab_size**2 > 2**22
    assert large._dense_ranks is None and small._dense_ranks is not None
    assert large.encode(text).tolist() == small.encode(text).tolist()
    assert large.decode(large.encode(text)) == text


# ---- special tokens ---------------------------------------------------------------------------------------
def test_special_tokens_are_one_id_never_split_and_never_merged():
    text = f"hello world{EOT}hello there{EOT}"
    tokenizer = BPETokenizer.train(text, 300, special_tokens=[EOT, "<|pad|>"])
    eot, pad = tokenizer.special_tokens[EOT], tokenizer.special_tokens["<|pad|>"]
    assert (eot, pad) == (tokenizer.vocab_size - 2, tokenizer.vocab_size - 1)  # the last ids
    assert all(eot not in pair and pad not in pair for pair in tokenizer.merges)
    assert all(b"<" not in tokenizer.token_bytes(256 + r) for r in range(len(tokenizer.merges)))  # never learned
    ids = tokenizer.encode(f"hello{EOT}{EOT}x<|pad|>")
    assert ids.tolist().count(eot) == 2 and ids.tolist().count(pad) == 1
    assert tokenizer.decode(ids) == f"hello{EOT}{EOT}x<|pad|>"
    # allow_special=False: the same text is ordinary bytes (untrusted input cannot inject the marker)
    plain = tokenizer.encode(f"x{EOT}", allow_special=False)
    assert eot not in plain.tolist() and tokenizer.decode(plain) == f"x{EOT}"


def test_training_never_merges_across_a_special_token():
    tokenizer = BPETokenizer.train(f"ab{EOT}ab{EOT}ba", 270, special_tokens=[EOT])
    assert (98, 97) not in tokenizer.merges[:1]  # "b" + "a" across the cut would count as often as "ab"
    assert tokenizer.merges == ((97, 98), (98, 97))


def test_the_longest_special_token_wins():
    tokenizer = BPETokenizer(special_tokens=["<|a|>", "<|a|><|b|>"])
    assert tokenizer.encode("<|a|><|b|>").tolist() == [tokenizer.special_tokens["<|a|><|b|>"]]


# ---- bad input ---------------------------------------------------------------------------------------------
def test_bad_input_raises_clear_errors():
    tokenizer = BPETokenizer.train("aaabdaaabac", 259)
    with pytest.raises(ValueError, match=r"vocab_size must be in 257\.\.262144 .* got 256"):
        BPETokenizer.train("abc", 256, special_tokens=[EOT])
    with pytest.raises(ValueError, match="vocab_size must be a positive int, got True"):
        BPETokenizer.train("abc", True)
    with pytest.raises(ValueError, match="the text is empty"):
        BPETokenizer.train("", 300)
    with pytest.raises(TypeError, match="BPETokenizer.encode: expected a str, got bytes"):
        tokenizer.encode(b"abc")
    with pytest.raises(ValueError, match="lone surrogate, U\\+D800 at position 1"):
        tokenizer.encode("a\ud800")
    with pytest.raises(TypeError, match="BPETokenizer.decode: ids must be integers, got float64"):
        tokenizer.decode(np.array([1.0]))
    with pytest.raises(IndexError, match="id 259 at position 1 is out of range for a vocabulary of size 259"):
        tokenizer.decode([97, 259])
    with pytest.raises(ValueError, match="expected a 1-D sequence of ids, got shape"):
        tokenizer.decode(np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(UnicodeDecodeError):
        tokenizer.decode([0xC3], errors="strict")  # half a character
    assert tokenizer.decode([0xC3]) == "\ufffd" and tokenizer.decode(Tensor(np.array([97]))) == "a"
    with pytest.raises(TypeError, match="special_tokens must be a list of strings"):
        BPETokenizer(special_tokens=EOT)
    with pytest.raises(ValueError, match="lists a token more than once"):
        BPETokenizer(special_tokens=[EOT, EOT])


# ---- one protocol, two tokenizers ---------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda text: CharTokenizer.from_text(text),
                                  lambda text: BPETokenizer.train(text, 270, special_tokens=[EOT])],
                         ids=["char", "bpe"])
def test_both_tokenizers_implement_the_protocol(make, tmp_path):
    text = "to be or not to be, that is the question"
    tokenizer = make(text)
    assert isinstance(tokenizer, Tokenizer)
    ids = tokenizer.encode(text)
    assert ids.dtype == np.int64 and 0 <= ids.min() and ids.max() < tokenizer.vocab_size
    assert tokenizer.decode(ids) == text
    tokenizer.save(tmp_path / "vocab.json")
    again = type(tokenizer).load(tmp_path / "vocab.json")
    assert again == tokenizer and again.encode(text).tolist() == ids.tolist()
    assert tt.text.BPETokenizer is BPETokenizer and tt.text.CharTokenizer is CharTokenizer
