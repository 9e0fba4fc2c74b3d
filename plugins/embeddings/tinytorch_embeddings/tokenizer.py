"""The ``Tokenizer`` protocol, and ``CharTokenizer``: one token per character, with an explicit
policy for unknown characters. (``BPETokenizer``, the other implementation, is in ``bpe.py``.)

A vocabulary file is JSON, never a pickle: loading one cannot run code. ``CharTokenizer.load``
treats the file as untrusted (a regular file only, size limit checked before reading, strict
UTF-8 and JSON, every field validated) and raises ``VocabularyError`` for anything malformed;
``save`` replaces the file atomically.
"""

from __future__ import annotations

import json
import numbers
import os
from collections import Counter
from typing import Protocol, runtime_checkable

import numpy as np

from tinytorch_core import Tensor
from tinytorch_core.checks import positive_int
from tinytorch_core.files import checked_path, open_regular_file
from tinytorch_nn.io import atomic_write

FORMAT = "tinytorch-char-tokenizer"
FORMAT_VERSION = 1
#: default size limit of a vocabulary file (every Unicode code point fits in about 9 MB)
MAX_VOCABULARY_BYTES = 16 * 2**20
_CODE_POINTS = 0x110000  # no vocabulary of distinct characters is longer


class VocabularyError(ValueError):
    """A tokenizer vocabulary file or mapping that is malformed; the message names the source and the problem."""


@runtime_checkable
class Tokenizer(Protocol):
    """What a model's training and sampling code may rely on, whichever tokenizer made the ids.

    ``CharTokenizer`` and ``BPETokenizer`` implement it (the milestones use nothing else). How a
    tokenizer is built is its own business (``CharTokenizer.from_text``, ``BPETokenizer.train``).
    """

    @property
    def vocab_size(self) -> int:
        """The number of ids: every id is in ``0 .. vocab_size - 1`` (the embedding table's rows)."""

    def encode(self, text: str) -> np.ndarray:
        """The ids of ``text``, an int64 array of shape ``(n,)``."""

    def decode(self, ids) -> str:
        """The text of a 1-D sequence of ids (list, array or integer tensor)."""

    def save(self, path) -> None:
        """Write the vocabulary as JSON (never pickle), atomically."""

    @classmethod
    def load(cls, path) -> "Tokenizer":
        """Read what ``save`` wrote, treating the file as untrusted (``VocabularyError`` if malformed)."""


def _check_char(value, what: str) -> str:
    if not isinstance(value, str) or len(value) != 1:
        raise ValueError(f"CharTokenizer: {what} must be a single character, got {_excerpt(value)}")
    return value


def _show(char: str) -> str:
    return f"{char!r} (U+{ord(char):04X})"


class CharTokenizer:
    """Maps each character of a fixed vocabulary to an integer id and back.

    Ids are positions in ``chars``. Unknown characters are handled explicitly:

    - ``unk_token=None`` (default): ``encode`` raises ``ValueError`` naming the character
      and its position, so data never silently loses information;
    - ``unk_token="?"`` (any single character): that character joins the vocabulary (if it
      is not already in it) and every unknown character encodes to its id. Such an encoding
      does not round-trip: decoding gives the ``unk_token`` back, not the original character.

    Encoding and decoding are vectorised through the characters' code points.
    """

    def __init__(self, chars, unk_token: str | None = None):
        try:
            chars = list(chars)
        except TypeError:
            raise TypeError("CharTokenizer: chars must be a str or a sequence of single characters, got "
                            f"{type(chars).__name__}") from None
        for c in chars:
            _check_char(c, "every vocabulary entry")
        if len(set(chars)) != len(chars):
            repeated = sorted(c for c, n in Counter(chars).items() if n > 1)
            raise ValueError(f"CharTokenizer: the vocabulary lists {', '.join(map(_show, repeated))} more than once")
        if unk_token is not None:
            _check_char(unk_token, "unk_token")
            if unk_token not in chars:
                chars.append(unk_token)
        if not chars:
            raise ValueError("CharTokenizer: the vocabulary is empty")
        self._chars = tuple(chars)
        self.unk_token = unk_token
        self.unk_id = chars.index(unk_token) if unk_token is not None else None
        self._code_of_id = np.array([ord(c) for c in chars], dtype=np.uint32)
        order = np.argsort(self._code_of_id, kind="stable")
        self._sorted_codes = self._code_of_id[order]
        self._id_of_sorted = order.astype(np.int64)

    @classmethod
    def from_text(cls, text: str, unk_token: str | None = None) -> "CharTokenizer":
        """A vocabulary of every distinct character of ``text``, sorted by code point."""
        if not isinstance(text, str):
            raise TypeError(f"CharTokenizer.from_text: expected a str, got {type(text).__name__}")
        if not text:
            raise ValueError("CharTokenizer.from_text: the text is empty, so there is no vocabulary")
        return cls(sorted(set(text)), unk_token=unk_token)

    # ---- vocabulary -----------------------------------------------------------------------
    @property
    def chars(self) -> tuple:
        return self._chars

    @property
    def vocab_size(self) -> int:
        return len(self._chars)

    def __len__(self) -> int:
        return len(self._chars)

    def __contains__(self, char) -> bool:
        return char in self._chars

    def __eq__(self, other) -> bool:
        if not isinstance(other, CharTokenizer):
            return NotImplemented
        return self._chars == other._chars and self.unk_token == other.unk_token

    __hash__ = None

    def __repr__(self) -> str:
        unk = f", unk_token={self.unk_token!r}" if self.unk_token is not None else ""
        return f"CharTokenizer(vocab_size={self.vocab_size}{unk})"

    # ---- encode / decode ----------------------------------------------------------------------
    def encode(self, text: str) -> np.ndarray:
        """The ids of the characters of ``text`` as an int64 array of shape ``(len(text),)``."""
        if not isinstance(text, str):
            raise TypeError(f"CharTokenizer.encode: expected a str, got {type(text).__name__}")
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        slot = np.minimum(np.searchsorted(self._sorted_codes, codes), len(self._sorted_codes) - 1)
        known = self._sorted_codes[slot] == codes
        ids = self._id_of_sorted[slot]
        if not known.all():
            if self.unk_id is None:
                position = int(np.argmin(known))
                raise ValueError(
                    f"CharTokenizer.encode: character {_show(text[position])} at position {position} is "
                    f"not in the vocabulary of {self.vocab_size} characters; build the tokenizer from "
                    "text that contains it, or pass unk_token= to map unknown characters to one id"
                )
            ids[~known] = self.unk_id
        return ids

    def decode(self, ids) -> str:
        """The text of a 1-D sequence of ids (list, array or integer tensor)."""
        arr = checked_ids(ids, self.vocab_size, "CharTokenizer.decode")
        return self._code_of_id[arr].tobytes().decode("utf-32-le", "surrogatepass")

    # ---- saving (JSON, never pickle: loading a vocabulary must not run code) -------------------
    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "chars": list(self._chars),
            "unk_token": self.unk_token,
        }

    @classmethod
    def from_dict(cls, data, source: str = "the vocabulary") -> "CharTokenizer":
        def fail(why):
            raise VocabularyError(f"CharTokenizer: {source} is not a valid tokenizer vocabulary: {why}")

        check_header(data, fail, FORMAT, FORMAT_VERSION, {"chars", "unk_token"})
        chars, unk = data.get("chars"), data.get("unk_token")
        if not isinstance(chars, list) or not chars:
            fail("'chars' must be a non-empty list of single characters")
        if len(chars) > _CODE_POINTS:  # refused before the list is copied and scanned
            fail(f"'chars' lists {len(chars)} entries, more than the {_CODE_POINTS} Unicode code points there are")
        if unk is not None and unk not in chars:
            fail(f"'unk_token' {_excerpt(unk)} is not one of 'chars'")
        try:
            return cls(chars, unk_token=unk)
        except ValueError as exc:
            fail(str(exc))

    def save(self, path) -> None:
        """Write the vocabulary as UTF-8 JSON, atomically (a crash mid-save keeps the old file)."""
        write_json_file(path, self.to_dict(), "CharTokenizer.save")

    @classmethod
    def load(cls, path, *, max_bytes: int = MAX_VOCABULARY_BYTES) -> "CharTokenizer":
        """Read a vocabulary written by ``save``, validating it.

        Anything malformed (not a regular file, over ``max_bytes``, not UTF-8, not JSON, wrong
        fields) raises ``VocabularyError``; a missing or unreadable file raises the usual ``OSError``.
        """
        where = checked_path(path, "CharTokenizer.load")
        return cls.from_dict(read_json_file(where, "CharTokenizer.load", max_bytes), source=repr(where))


def checked_ids(ids, vocab_size: int, caller: str) -> np.ndarray:
    """``ids`` (list, array or integer tensor) as a 1-D integer array, every id in ``0 .. vocab_size - 1``."""
    try:
        arr = ids.data if isinstance(ids, Tensor) else np.asarray(ids)
    except ValueError:  # NumPy cannot stack rows of different lengths
        raise ValueError(f"{caller}: expected a 1-D sequence of ids, got rows of different lengths; decode each row "
                         "separately") from None
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim > 1:
        raise ValueError(f"{caller}: expected a 1-D sequence of ids, got shape {arr.shape}; decode each row separately")
    if arr.dtype == object and all(isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in arr.flat):
        arr = np.array([i if 0 <= i < vocab_size else -1 for i in arr.flat])  # Python ints beyond int64
        _check_range(arr, ids, vocab_size, caller)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{caller}: ids must be integers, got {arr.dtype} (first value {arr.flat[0]!r})")
    arr = arr.reshape(-1)
    _check_range(arr, arr, vocab_size, caller)
    return arr


def _check_range(arr: np.ndarray, given, vocab_size: int, caller: str) -> None:
    bad = (arr < 0) | (arr >= vocab_size)
    if bad.any():
        position = int(np.argmax(bad))
        value = int(np.ravel(given)[position])
        raise IndexError(f"{caller}: id {value} at position {position} is out of range for a vocabulary of size "
                         f"{vocab_size} (valid ids are 0..{vocab_size - 1})")


def check_header(data, fail, format_name: str, version: int, fields: set) -> None:
    """The checks every saved vocabulary starts with: a JSON object of ``format_name`` at
    ``version``, holding no keys but those and ``fields``; ``fail(why)`` raises."""
    if not isinstance(data, dict):
        fail(f"expected a JSON object, got {type(data).__name__}")
    if data.get("format") != format_name:
        fail(f"'format' is {_excerpt(data.get('format'))}, expected {format_name!r}")
    found = data.get("version")
    if type(found) is not int or found != version:  # True == 1, so check the type
        fail(f"'version' is {_excerpt(found)}, this code reads version {version}")
    unexpected = sorted(set(data) - {"format", "version"} - set(fields))
    if unexpected:
        fail(f"unexpected keys {_excerpt(unexpected)}")


def read_json_file(where: str, caller: str, max_bytes: int, max_containers: int = 16,
                   max_values: int = _CODE_POINTS + 64):
    """The JSON value of the untrusted file ``where``: a regular file only, its size checked
    before a byte is read, strict UTF-8, at most ``max_containers`` lists and objects and at
    most ``max_values`` values in all (both counted before parsing: 16 MiB of ``[{},{},...]``
    parsed to 450 MB, and of ``"a",`` to 224 MB; a character vocabulary has two containers, at
    most two more "[" and "{" among its characters, and a value per code point at most); any
    problem raises ``VocabularyError`` naming ``caller`` and the file."""

    def too_large():
        return VocabularyError(
            f"{caller}: {where!r} is larger than the limit of {max_bytes} bytes for a vocabulary "
            "file (pass max_bytes= to allow more)"
        )

    max_bytes = positive_int(max_bytes, "max_bytes", caller)
    with open_regular_file(where, error=VocabularyError, context=f"{caller}: ") as handle:
        if os.fstat(handle.fileno()).st_size > max_bytes:  # refused before a byte is read
            raise too_large()
        raw = handle.read(max_bytes + 1)  # bounded even if the file grows meanwhile
    if len(raw) > max_bytes:
        raise too_large()
    # counted in the bytes, before they are decoded or parsed (UTF-8 never hides "[", "{" or ","
    # inside a longer character); brackets and commas inside strings count too: upper bounds
    containers = raw.count(b"[") + raw.count(b"{")
    if containers > max_containers:
        raise VocabularyError(f"{caller}: {where!r} holds up to {containers} JSON lists and objects; a "
                              f"vocabulary has at most {max_containers}")
    values = raw.count(b",") + containers + 1  # each value but a container's last is followed by a comma
    if values > max_values:
        raise VocabularyError(f"{caller}: {where!r} holds up to {values} JSON values; a vocabulary has at most "
                              f"{max_values}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise VocabularyError(f"{caller}: {where!r} is not UTF-8 text: {exc}") from None
    del raw  # the text replaces the bytes: never both while the JSON is parsed
    try:
        return json.loads(text, object_pairs_hook=_object_without_repeated_keys)
    except MemoryError:
        raise
    except _RepeatedKey as exc:  # which of the two values counts would be a guess
        raise VocabularyError(f"{caller}: {where!r} repeats the key {_excerpt(exc.args[0])} in one JSON "
                              "object") from None
    except Exception as exc:  # JSONDecodeError, RecursionError (deep nesting), huge integers
        raise VocabularyError(f"{caller}: {where!r} is not valid JSON: {type(exc).__name__}: {exc}") from None


class _RepeatedKey(Exception):
    """A JSON object that names one key twice (``json`` would silently keep the last value)."""


def _object_without_repeated_keys(pairs: list) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen = set()
        raise _RepeatedKey(next(key for key, _ in pairs if key in seen or seen.add(key)))
    return obj


def write_json_file(path, data: dict, caller: str, indent: int | None = 1) -> None:
    """``data`` as UTF-8 JSON, atomically (a crash mid-save keeps the old file)."""
    target = checked_path(path, caller)
    try:
        payload = json.dumps(data, ensure_ascii=False, indent=indent).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate character: escape it instead
        payload = json.dumps(data, ensure_ascii=True, indent=indent).encode("ascii")
    with atomic_write(target, caller) as handle:  # refuses a directory or a missing folder
        handle.write(payload)


def _excerpt(value, limit: int = 60) -> str:
    """``repr`` of a value read from a file, cut short: a hostile file may hold huge strings."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
