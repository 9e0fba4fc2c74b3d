"""``BPETokenizer``: byte-level byte-pair encoding, the tokenizer family of GPT-2 and its successors.

The base vocabulary is the 256 byte values, so every string has an encoding (its UTF-8 bytes) and
decoding gives it back exactly: there is no unknown token. Training adds one id per *merge*:

1. write the training text as its UTF-8 bytes, one id per byte;
2. count every adjacent pair of ids (as one int64 code per pair, ``left * V + right``, counted with
   ``np.bincount`` or ``np.unique``: no Python loop over the text);
3. the most frequent pair becomes the next id, ``256 + rank``. **Ties** go to the pair with the
   smallest ``(left, right)``, i.e. the smallest code: the rule never depends on where a pair occurs;
4. replace its occurrences left to right (in a run ``a a a`` the pair ``(a, a)`` merges once, at the
   left), and repeat from 2 until the vocabulary has ``vocab_size`` ids or no pair is left.

Encoding repeats the same merges in the order they were learned: among the pairs present, the one
of the lowest rank is merged everywhere, until no learned pair is left. Every merge is applied to
the whole sequence at once with NumPy.

Special tokens (``"<|endoftext|>"``) take the last ids. Their text is found first and becomes one
id, which no merge touches (training never merges across one); pass ``allow_special=False`` to
``encode`` to treat such text as ordinary bytes (do this for untrusted text). Merges may cross
spaces: there is no pre-splitting into words (GPT-2 adds one with a regular expression).

Saved as JSON (never pickle), and ``load`` validates the untrusted file before building anything.
"""

from __future__ import annotations

import re

import numpy as np

from tinytorch_core.checks import positive_int

from .tokenizer import (MAX_VOCABULARY_BYTES, VocabularyError, _excerpt, check_header, checked_ids, checked_path,
                        read_json_file, write_json_file)

FORMAT = "tinytorch-bpe-tokenizer"
FORMAT_VERSION = 1
BYTES = 256  # the base vocabulary: one id per byte value
#: the largest vocabulary (GPT-4o has about 200,000 ids)
MAX_VOCAB_SIZE = 2**18
#: the bytes of all tokens together; a hostile chain of merges (aa, then aaaa, ...) doubles a token per merge
MAX_TOKEN_TABLE_BYTES = 16 * 2**20  # 45x a GPT-2 table; a doubling chain just under it loads in 17 MB (measured)
#: special tokens are found with one regular expression, whose compile time grows faster than its size:
#: at these limits it compiles in well under a second (200,000 tokens took a minute and 228 MiB)
MAX_SPECIAL_TOKENS = 4096
MAX_SPECIAL_TOKEN_BYTES = 2**18  # all special tokens together, in UTF-8
#: pair counts and merge ranks live in a dense table of vocab_size**2 entries up to this size
_DENSE_PAIR_TABLE = 2**22
_DECODE_ERRORS = ("strict", "replace", "ignore", "backslashreplace", "surrogateescape")  # bytes.decode's handlers
_SEPARATOR = -1  # where a special token was cut out of the training text: no pair spans it


class BPETokenizer:
    """Byte-level BPE: ``train`` learns the merges; ``encode`` / ``decode`` convert text and ids.

    Ids ``0..255`` are bytes, ``256 + r`` is the token made by merge ``r`` (``merges[r]`` is its
    pair of earlier ids), and the special tokens come last. Build one with ``BPETokenizer.train``
    or from saved merges (``load``, or ``BPETokenizer(merges, special_tokens)``).
    """

    def __init__(self, merges=(), special_tokens=()):
        specials = _checked_special_tokens(special_tokens)
        pairs, token_bytes = _checked_merges(merges, reserved=len(specials))
        self._merges = pairs
        self._special_ids = {token: BYTES + len(pairs) + k for k, token in enumerate(specials)}
        self._build_decoding_table(token_bytes + [token.encode("utf-8") for token in specials])
        self._build_rank_lookup()
        self._special_pattern = None
        if specials:  # the longest first, so that a special token containing another wins
            alternatives = sorted(specials, key=len, reverse=True)
            self._special_pattern = re.compile(b"|".join(re.escape(t.encode("utf-8")) for t in alternatives))

    # ---- training -------------------------------------------------------------------------------
    @classmethod
    def train(cls, text: str, vocab_size: int, special_tokens=()) -> "BPETokenizer":
        """Learn ``vocab_size - 256 - len(special_tokens)`` merges from ``text`` (fewer if the text
        runs out of pairs). Occurrences of the special tokens in ``text`` are cut out, not learned."""
        vocab_size = positive_int(vocab_size, "vocab_size", "BPETokenizer.train")
        specials = _checked_special_tokens(special_tokens)
        smallest = BYTES + len(specials)
        if not smallest <= vocab_size <= MAX_VOCAB_SIZE:
            raise ValueError(f"BPETokenizer.train: vocab_size must be in {smallest}..{MAX_VOCAB_SIZE} (256 bytes "
                             f"plus {len(specials)} special token(s), then the merges), got {vocab_size}")
        if not isinstance(text, str):
            raise TypeError(f"BPETokenizer.train: expected a str to learn from, got {type(text).__name__}")
        if not text:
            raise ValueError("BPETokenizer.train: the text is empty, so there is nothing to learn")
        ids = cls(special_tokens=specials)._byte_ids(text, "BPETokenizer.train", allow_special=True)
        ids[ids >= BYTES] = _SEPARATOR
        merges = []
        for new_id in range(BYTES, vocab_size - len(specials)):
            codes = _pair_codes(ids, vocab_size)
            best = _most_frequent(codes, vocab_size)
            if best is None:  # every piece of the text is a single token already
                break
            ids = _merge(ids, _left_to_right(np.flatnonzero(codes == best)), new_id)
            merges.append(divmod(best, vocab_size))
        return cls(merges, specials)

    # ---- the vocabulary ---------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self._token_lengths)

    @property
    def merges(self) -> tuple:
        """The learned pairs in the order learned: merge ``r`` makes id ``256 + r``."""
        return tuple((int(a), int(b)) for a, b in self._merges)

    @property
    def special_tokens(self) -> dict:
        """``{text: id}`` of the special tokens."""
        return dict(self._special_ids)

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes id ``token_id`` stands for (a token may hold part of a character)."""
        if not _is_id(token_id):
            raise TypeError(f"BPETokenizer.token_bytes: token_id must be an int, got {_excerpt(token_id)}")
        (token_id,) = checked_ids([token_id], self.vocab_size, "BPETokenizer.token_bytes")
        start = self._token_offsets[token_id]
        return self._token_table[start:start + self._token_lengths[token_id]].tobytes()

    def __len__(self) -> int:
        return self.vocab_size

    def __eq__(self, other) -> bool:
        if not isinstance(other, BPETokenizer):
            return NotImplemented
        return np.array_equal(self._merges, other._merges) and self._special_ids == other._special_ids

    __hash__ = None

    def __repr__(self) -> str:
        specials = f", special_tokens={tuple(self._special_ids)}" if self._special_ids else ""
        return f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self._merges)}{specials})"

    # ---- encode / decode ----------------------------------------------------------------------------
    def encode(self, text: str, allow_special: bool = True) -> np.ndarray:
        """The ids of ``text`` as an int64 array: its bytes, merged in the order the merges were learned.

        With ``allow_special=True`` the text of a special token becomes its id; with ``False`` it is
        encoded like any other text (so untrusted input cannot inject an end-of-text marker)."""
        ids = self._byte_ids(text, "BPETokenizer.encode", allow_special)
        ranks = self._rank_of(_pair_codes(ids, self.vocab_size))  # ranks[i]: the merge rank of (ids[i], ids[i + 1])
        while len(ranks):
            lowest = int(ranks.min())
            if lowest == len(self._merges):  # no learned pair is left
                break
            ids, ranks = self._merge_everywhere(ids, ranks, lowest)
        return ids

    def _merge_everywhere(self, ids: np.ndarray, ranks: np.ndarray, rank: int) -> tuple:
        """Apply merge ``rank`` at every place (left to right); only the pairs next to a merged
        token change, so only their ranks are looked up again."""
        positions = _left_to_right(np.flatnonzero(ranks == rank))
        ranks = np.delete(ranks, positions)  # the merged pairs are gone
        ids = _merge(ids, positions, BYTES + rank)
        merged_at = positions - np.arange(len(positions))  # where the new tokens sit after the merge
        changed = np.unique(np.concatenate((merged_at - 1, merged_at)))
        changed = changed[(changed >= 0) & (changed < len(ranks))]  # the pairs to the left and right of each
        ranks[changed] = self._rank_of(ids[changed] * self.vocab_size + ids[changed + 1])
        return ids, ranks

    def decode(self, ids, errors: str = "replace") -> str:
        """The text of a 1-D sequence of ids (list, array or integer tensor).

        Any sequence decodes; one that cuts a character's bytes apart (sampled ids may) is not UTF-8,
        and ``errors`` says what to do, as in ``bytes.decode``: ``"replace"`` (U+FFFD) or ``"strict"``."""
        ids = checked_ids(ids, self.vocab_size, "BPETokenizer.decode")
        if not isinstance(errors, str):
            raise TypeError(f"BPETokenizer.decode: errors must be a str, one of {_DECODE_ERRORS}, got {errors!r}")
        if errors not in _DECODE_ERRORS:  # checked now, not at the first broken character
            raise ValueError(f"BPETokenizer.decode: errors must be one of {_DECODE_ERRORS}, got {_excerpt(errors)}")
        lengths = self._token_lengths[ids]
        # output byte j of token k is table byte offsets[k] + (j - where token k starts in the output)
        output_starts = np.cumsum(lengths) - lengths
        gather = np.repeat(self._token_offsets[ids] - output_starts, lengths) + np.arange(lengths.sum())
        return self._token_table[gather].tobytes().decode("utf-8", errors)

    # ---- saving (JSON, never pickle: loading a vocabulary must not run code) -------------------------
    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": FORMAT_VERSION, "vocab_size": self.vocab_size,
                "special_tokens": list(self._special_ids), "merges": self._merges.tolist()}

    @classmethod
    def from_dict(cls, data, source: str = "the vocabulary") -> "BPETokenizer":
        """A tokenizer from ``to_dict``'s JSON value, every field checked (``VocabularyError`` naming ``source``)."""
        def fail(why):
            raise VocabularyError(f"BPETokenizer: {source} is not a valid BPE vocabulary: {why}")

        check_header(data, fail, FORMAT, FORMAT_VERSION, {"vocab_size", "special_tokens", "merges"})
        size, merges, specials = data.get("vocab_size"), data.get("merges"), data.get("special_tokens")
        if type(size) is not int or not BYTES <= size <= MAX_VOCAB_SIZE:  # refused before anything is built
            fail(f"'vocab_size' is {_excerpt(size)}, expected an int in {BYTES}..{MAX_VOCAB_SIZE}")
        if not isinstance(merges, list) or not isinstance(specials, list):
            fail(f"'merges' and 'special_tokens' must be lists, got {type(merges).__name__} and "
                 f"{type(specials).__name__}")
        if BYTES + len(merges) + len(specials) != size:
            fail(f"'vocab_size' is {size}, but 256 bytes + {len(merges)} merges + {len(specials)} special "
                 f"tokens make {BYTES + len(merges) + len(specials)}")
        try:
            return cls(merges, specials)
        except (TypeError, ValueError) as exc:
            fail(str(exc))

    def save(self, path) -> None:
        """Write the merges and special tokens as UTF-8 JSON, atomically."""
        write_json_file(path, self.to_dict(), "BPETokenizer.save", indent=None)

    @classmethod
    def load(cls, path, *, max_bytes: int = MAX_VOCABULARY_BYTES) -> "BPETokenizer":
        """Read a vocabulary written by ``save``, validating it (``VocabularyError`` if malformed:
        not a regular file, over ``max_bytes``, not UTF-8, not JSON, wrong fields); a missing or
        unreadable file raises the usual ``OSError``."""
        where = checked_path(path, "BPETokenizer.load")
        containers = MAX_VOCAB_SIZE + 8  # a merge is a pair: one list each, under the top-level object and lists
        values = 3 * MAX_VOCAB_SIZE + MAX_SPECIAL_TOKENS + 64  # a merge is a list and two ids; the specials; the fields
        return cls.from_dict(read_json_file(where, "BPETokenizer.load", max_bytes, containers, values),
                             source=repr(where))

    # ---- internals ------------------------------------------------------------------------------------
    def _byte_ids(self, text, caller: str, allow_special: bool) -> np.ndarray:
        """The UTF-8 bytes of ``text`` as int64 ids, each special token's text replaced by its one id."""
        if not isinstance(text, str):
            raise TypeError(f"{caller}: expected a str, got {type(text).__name__}")
        if not isinstance(allow_special, (bool, np.bool_)):  # "no" would be truthy: special text would count
            raise TypeError(f"{caller}: allow_special must be True or False, got {_excerpt(allow_special)}")
        try:
            raw = text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"{caller}: the text holds a lone surrogate, U+{ord(text[exc.start]):04X} at position "
                             f"{exc.start}, which is not Unicode text (it has no UTF-8 encoding)") from None
        ids = np.frombuffer(raw, dtype=np.uint8).astype(np.int64)
        if self._special_pattern is None or not allow_special:
            return ids
        found = [(m.start(), m.end(), self._special_ids[m.group().decode("utf-8")])
                 for m in self._special_pattern.finditer(raw)]  # one entry per special token in the text
        if not found:
            return ids
        starts, ends, special_ids = (np.array(column, dtype=np.int64) for column in zip(*found))
        depth = np.zeros(len(ids) + 1, dtype=np.int64)  # +1 where a special token starts, -1 after it
        depth[starts] += 1
        depth[ends] -= 1
        keep = np.cumsum(depth[:-1]) == 0
        keep[starts] = True  # each special token's first byte stays, as the token's id
        ids[starts] = special_ids
        return ids[keep]

    def _build_decoding_table(self, token_bytes: list) -> None:
        """All tokens' bytes in one array, with each token's offset and length: decoding is one gather."""
        self._token_lengths = np.array([len(b) for b in token_bytes], dtype=np.int64)
        self._token_offsets = np.cumsum(self._token_lengths) - self._token_lengths
        self._token_table = np.frombuffer(b"".join(token_bytes), dtype=np.uint8)

    def _build_rank_lookup(self) -> None:
        """Pair code -> merge rank (``len(merges)`` for a pair that is never merged)."""
        codes = self._merges[:, 0] * self.vocab_size + self._merges[:, 1]
        ranks = np.arange(len(codes), dtype=np.int64)
        if self.vocab_size**2 <= _DENSE_PAIR_TABLE:
            self._dense_ranks = np.full(self.vocab_size**2, len(codes), dtype=np.int32)
            self._dense_ranks[codes] = ranks
        else:
            order = np.argsort(codes)
            self._dense_ranks, self._sorted_codes, self._sorted_ranks = None, codes[order], ranks[order]

    def _rank_of(self, codes: np.ndarray) -> np.ndarray:
        if self._dense_ranks is not None:
            return self._dense_ranks[codes]
        if len(self._sorted_codes) == 0:
            return np.full(len(codes), 0, dtype=np.int64)  # no merges: every pair is "never merged", rank 0
        slot = np.minimum(np.searchsorted(self._sorted_codes, codes), len(self._sorted_codes) - 1)
        return np.where(self._sorted_codes[slot] == codes, self._sorted_ranks[slot], len(self._merges))


# ---- the steps of training and encoding -----------------------------------------------------------------
def _pair_codes(ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """One int64 code per adjacent pair, ``left * vocab_size + right``; -1 where a pair spans a separator."""
    left, right = ids[:-1], ids[1:]
    codes = left * vocab_size + right
    if len(ids) and ids.min() < 0:
        codes[(left < 0) | (right < 0)] = -1
    return codes


def _most_frequent(codes: np.ndarray, vocab_size: int):
    """The code of the most frequent pair, the smallest code among equals; None if there is no pair."""
    codes = codes[codes >= 0]
    if codes.size == 0:
        return None
    if vocab_size**2 <= _DENSE_PAIR_TABLE:
        return int(np.argmax(np.bincount(codes)))  # argmax picks the first (smallest) code of a tie
    distinct, counts = np.unique(codes, return_counts=True)  # sorted codes: the same first-of-a-tie rule
    return int(distinct[np.argmax(counts)])


def _left_to_right(hits: np.ndarray) -> np.ndarray:
    """The positions of one pair that a left-to-right pass merges. Only a pair of two equal ids
    can overlap itself: in ``a a a a`` the pair ``(a, a)`` is found at p, p+1, p+2, and the pass
    merges p and p+2 (at p+1 the left ``a`` is gone). Within each run of consecutive positions,
    every other one is kept."""
    if len(hits) < 2:
        return hits
    starts_run = np.concatenate(([True], np.diff(hits) != 1))
    run_start = np.maximum.accumulate(np.where(starts_run, hits, 0))
    return hits[(hits - run_start) % 2 == 0]


def _merge(ids: np.ndarray, positions: np.ndarray, new_id: int) -> np.ndarray:
    """``ids`` with the pair starting at each of ``positions`` (none overlapping) replaced by ``new_id``."""
    ids[positions] = new_id
    keep = np.ones(len(ids), dtype=bool)
    keep[positions + 1] = False
    return ids[keep]


# ---- validating merges and special tokens (they may come from an untrusted file) ---------------------------
def _checked_special_tokens(special_tokens) -> list:
    if isinstance(special_tokens, str):
        raise TypeError("BPETokenizer: special_tokens must be a list of strings, "
                        f"got the str {_excerpt(special_tokens)}")
    try:
        specials = list(special_tokens)
    except TypeError:
        raise TypeError(f"BPETokenizer: special_tokens must be a list of strings, got {type(special_tokens).__name__}"
                        ) from None
    if len(specials) > MAX_SPECIAL_TOKENS:  # refused before a token is looked at
        raise ValueError(f"BPETokenizer: {len(specials)} special tokens, over the limit of {MAX_SPECIAL_TOKENS}")
    for token in specials:
        if not isinstance(token, str) or not token:
            raise TypeError(f"BPETokenizer: every special token must be a non-empty str, got {_excerpt(token)}")
        try:
            token.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"BPETokenizer: the special token {_excerpt(token)} holds a lone surrogate "
                             "(no UTF-8)") from None
    if len(set(specials)) != len(specials):
        raise ValueError(f"BPETokenizer: special_tokens lists a token more than once: {_excerpt(specials)}")
    size = sum(len(token.encode("utf-8")) for token in specials)
    if size > MAX_SPECIAL_TOKEN_BYTES:  # the matcher's compile time grows with it
        raise ValueError(f"BPETokenizer: the special tokens spell {size} bytes together, over the limit of "
                         f"{MAX_SPECIAL_TOKEN_BYTES}")
    return specials


def _is_id(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _checked_merges(merges, reserved: int):
    """The merges as an ``(M, 2)`` int64 array and every token's bytes, after checking that each
    merge pairs ids defined before it, none repeats, and the tokens' bytes stay under the limit."""
    try:
        merges = merges.tolist() if isinstance(merges, np.ndarray) else list(merges)
    except TypeError:
        raise TypeError(f"BPETokenizer: merges must be a list of (left, right) id pairs, got {type(merges).__name__}"
                        ) from None
    if BYTES + len(merges) + reserved > MAX_VOCAB_SIZE:  # refused before a merge is looked at
        raise ValueError(f"BPETokenizer: {len(merges)} merges make a vocabulary over the limit of {MAX_VOCAB_SIZE} ids")
    token_bytes = [bytes([b]) for b in range(BYTES)]
    total = BYTES
    for rank, pair in enumerate(merges):  # a loop over the vocabulary, not the text
        if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not all(_is_id(i) for i in pair):
            raise TypeError(f"BPETokenizer: merge {rank} must be a pair of integer ids, got {_excerpt(pair)}")
        if not all(0 <= i < BYTES + rank for i in pair):
            raise ValueError(f"BPETokenizer: merge {rank} is {_excerpt(list(pair))}, but a merge may only pair ids "
                             f"defined before it, 0..{BYTES + rank - 1} (256 bytes, then one id per earlier merge)")
        total += len(token_bytes[pair[0]]) + len(token_bytes[pair[1]])
        if total > MAX_TOKEN_TABLE_BYTES:  # checked before the token is built
            raise ValueError(f"BPETokenizer: by merge {rank} the tokens spell more than {MAX_TOKEN_TABLE_BYTES} "
                             "bytes together, over the limit (a chain of merges doubling one token?)")
        token_bytes.append(token_bytes[pair[0]] + token_bytes[pair[1]])
    pairs = np.array(merges, dtype=np.int64).reshape(len(merges), 2)
    codes = pairs[:, 0] * MAX_VOCAB_SIZE + pairs[:, 1]
    distinct, first = np.unique(codes, return_index=True)
    if len(distinct) != len(codes):
        again = int(np.setdiff1d(np.arange(len(codes)), first)[0])
        raise ValueError(f"BPETokenizer: merge {again} repeats the pair {pairs[again].tolist()} of an earlier merge")
    return pairs, token_bytes
