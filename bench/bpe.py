"""Byte-level BPE on about 1 MB of text: training time, encoding time and tokens per second.

The text is generated (seeded): words drawn from a Zipf distribution over a vocabulary of made-up
words, some with accents, CJK characters and emoji, in sentences; so the figures do not depend on
a download. The character tokenizer encodes the same text in the same run, as the baseline.

Run: uv run python bench/bpe.py [--megabytes 1] [--vocab-size 1024]   (prints figures; not a test)
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tinytorch_embeddings import BPETokenizer, CharTokenizer

SYLLABLES = ["ka", "to", "re", "mi", "sa", "lo", "ne", "vu", "di", "po", "an", "el", "or", "is", "th", "qu",
             "é", "ü", "ñ", "ø", "字", "語", "🙂"]


def generated_text(megabytes: float, seed: int = 0) -> str:
    """Sentences of Zipf-distributed made-up words: about ``megabytes`` MB of UTF-8."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 5, size=5000)
    words = ["".join(rng.choice(SYLLABLES, size=n)) for n in lengths]  # a vocabulary, not the text
    target = int(megabytes * 2**20)
    picks = np.minimum(rng.zipf(1.3, size=target // 4), len(words)) - 1
    enders = rng.choice([" ", " ", " ", " ", " ", ", ", ". ", ".\n"], size=len(picks))
    text = "".join(np.char.add(np.array(words, dtype=object)[picks].astype(str), enders))
    return text.encode("utf-8")[:target].decode("utf-8", "ignore")


def seconds(work) -> tuple:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=float, default=1.0)
    parser.add_argument("--vocab-size", type=int, default=1024)
    args = parser.parse_args()

    text = generated_text(args.megabytes)
    size = len(text.encode("utf-8"))
    print(f"text: {size / 2**20:.2f} MiB of UTF-8, {len(text)} characters")

    train_s, tokenizer = seconds(lambda: BPETokenizer.train(text, args.vocab_size, special_tokens=["<|endoftext|>"]))
    print(f"train  BPE to vocab_size {tokenizer.vocab_size} ({len(tokenizer.merges)} merges): {train_s:.2f} s")

    encode_s, ids = seconds(lambda: tokenizer.encode(text))
    decode_s, back = seconds(lambda: tokenizer.decode(ids))
    assert back == text, "the round trip lost the text"
    print(f"encode BPE: {encode_s:.2f} s, {len(ids)} tokens ({size / len(ids):.2f} bytes per token), "
          f"{len(ids) / encode_s:,.0f} tokens/s, {size / encode_s / 2**20:.2f} MiB/s")
    print(f"decode BPE: {decode_s:.3f} s, {len(ids) / decode_s:,.0f} tokens/s")

    chars = CharTokenizer.from_text(text)
    char_s, char_ids = seconds(lambda: chars.encode(text))
    print(f"encode CharTokenizer (baseline, vocab {chars.vocab_size}): {char_s:.3f} s, {len(char_ids)} tokens, "
          f"{len(char_ids) / char_s:,.0f} tokens/s; BPE makes {len(char_ids) / len(ids):.2f}x fewer tokens")


if __name__ == "__main__":
    main()
