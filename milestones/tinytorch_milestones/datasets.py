"""The milestones' data: generated toy problems, the bundled digits, MNIST from the user's files,
and the Zen of Python. Nothing is ever downloaded; every generator is seeded.

``load_digits()`` is public: the bundled handwritten digits, ready to train on::

    from tinytorch_milestones.datasets import load_digits

    digits = load_digits()          # 1,438 train / 359 test images of 8x8, float32 in [0, 1]
    x_train, y_train = digits.train
    x_test, y_test = digits.test
"""

from __future__ import annotations

import codecs
import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinytorch_core.files import open_regular_file

__all__ = ["DataError", "DataMissing", "ImageSplit", "load_digits", "load_mnist_split", "pydoc_topics"]

DIGITS_PATH = Path(__file__).parent / "data" / "digits.npz"


@dataclass(frozen=True)
class ImageSplit:
    """Images (N, H, W), or (N, C, H, W) in colour, as float32 in [0, 1] and integer labels, with a
    fixed train/test split."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int = 10

    @property
    def train(self) -> tuple:
        """``(x_train, y_train)``: images (N, H, W) and their labels."""
        return self.x_train, self.y_train

    @property
    def test(self) -> tuple:
        """``(x_test, y_test)``: held-out images and their labels."""
        return self.x_test, self.y_test

    @property
    def image_shape(self) -> tuple:
        """(H, W)."""
        return self.x_train.shape[-2:]

    @property
    def channels(self) -> int:
        return 1 if self.x_train.ndim == 3 else self.x_train.shape[1]

    @property
    def features(self) -> int:
        """Numbers per image: what an MLP reads."""
        return int(np.prod(self.x_train.shape[1:]))

    def describe(self) -> str:
        h, w = self.image_shape
        colour = f", {self.channels} channels" if self.channels > 1 else ""
        return f"{self.name}: {len(self.x_train)} train / {len(self.x_test)} test images of {h}x{w}{colour}"


class DataError(RuntimeError):
    """Data a milestone needs is missing or malformed (never counted as a pass)."""


class DataMissing(DataError):
    """Data a milestone needs is not on this machine (nothing is downloaded): the milestone is
    locked, with this as the reason."""


def load_digits() -> ImageSplit:
    """The UCI 8x8 handwritten digits bundled with this package, split into train and test sets.

    Returns an ``ImageSplit``: ``x_train`` (1438, 8, 8) and ``x_test`` (359, 8, 8) float32 images
    in [0, 1], ``y_train`` and ``y_test`` int64 labels 0..9 (``.train`` and ``.test`` give the
    ``(x, y)`` pairs). The split is fixed and stratified, 80/20 within each digit (see
    ``data/README.md``). Nothing is downloaded; a missing or damaged file raises ``DataError``.
    """
    try:  # a regular file only, like every file the package reads (see tinytorch_core.files)
        handle = open_regular_file(DIGITS_PATH, error=DataError, context="load_digits: ")
    except FileNotFoundError:
        raise DataError(
            f"the bundled digits file {DIGITS_PATH} is missing; regenerate it with "
            "milestones/scripts/make_digits.py (needs scikit-learn) or reinstall tinytorch-milestones"
        ) from None
    with handle, np.load(handle, allow_pickle=False) as npz:
        missing = {"x_train", "y_train", "x_test", "y_test"} - set(npz.files)
        if missing:
            raise DataError(f"{DIGITS_PATH}: missing arrays {sorted(missing)}")
        arrays = {k: npz[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    scale = 16.0  # UCI pixels are counts of set dots in a 4x4 block: 0..16
    return ImageSplit(
        "digits (UCI 8x8)",
        (arrays["x_train"] / scale).astype(np.float32),
        arrays["y_train"].astype(np.int64),
        (arrays["x_test"] / scale).astype(np.float32),
        arrays["y_test"].astype(np.int64),
    )


def load_mnist_split(directory) -> ImageSplit:
    """MNIST from IDX files the user already has (see ``idx.load_mnist``)."""
    from .idx import load_mnist

    arrays = load_mnist(directory)
    return ImageSplit(
        f"MNIST ({directory})",
        (arrays["x_train"] / 255.0).astype(np.float32),
        arrays["y_train"].astype(np.int64),
        (arrays["x_test"] / 255.0).astype(np.float32),
        arrays["y_test"].astype(np.int64),
    )


def image_data(options) -> ImageSplit:
    """The image set the MLP and CNN milestones use: MNIST with ``--mnist-dir``, CIFAR-10 with
    ``--cifar-dir``, else the bundled digits."""
    if getattr(options, "mnist_dir", None):
        return load_mnist_split(options.mnist_dir)
    if getattr(options, "cifar_dir", None):
        from .cifar import load_cifar10

        return load_cifar10(options.cifar_dir)
    return load_digits()


def two_blobs(rng: np.random.Generator, n: int, *, margin: float = 1.0, spread: float = 0.8):
    """Two Gaussian blobs in 2-D, linearly separable by construction.

    Points are drawn around (-2, -2) and (2, 2); any point closer than ``margin`` to the
    separating line x + y = 0 is redrawn, so a perceptron can reach 100 % on any seed.
    """
    xs, ys = [], []
    need = n
    while need > 0:
        labels = rng.integers(0, 2, size=2 * need)
        centres = np.where(labels[:, None] == 1, 2.0, -2.0)
        points = centres + spread * rng.standard_normal((2 * need, 2))
        distance = (points[:, 0] + points[:, 1]) / np.sqrt(2.0)
        keep = np.sign(distance) == np.where(labels == 1, 1.0, -1.0)
        keep &= np.abs(distance) >= margin
        xs.append(points[keep][:need])
        ys.append(labels[keep][:need])
        need -= len(xs[-1])
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.float32)


def xor_data():
    """The four XOR points and their labels."""
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([0, 1, 1, 0], dtype=np.float32)
    return x, y


def sequence_codes(seqs: np.ndarray, vocab: int) -> np.ndarray:
    """One integer per sequence (base ``vocab``), to tell held-out sequences from training ones."""
    powers = vocab ** np.arange(seqs.shape[1], dtype=np.int64)
    return seqs.astype(np.int64) @ powers


class ReversalTask:
    """Random token sequences and their reversal; a fixed held-out set never appears in training."""

    def __init__(self, vocab: int, length: int, n_test: int, seed: int):
        self.vocab, self.length = vocab, length
        self.rng = np.random.default_rng(seed)
        self.x_test = self._draw(n_test)
        self.y_test = self.x_test[:, ::-1].copy()
        self._test_codes = np.unique(sequence_codes(self.x_test, vocab))

    def _draw(self, n: int) -> np.ndarray:
        return self.rng.integers(0, self.vocab, size=(n, self.length), dtype=np.int64)

    def batch(self, n: int):
        """Training sequences, excluding every held-out sequence."""
        x = self._draw(n)
        held_out = np.isin(sequence_codes(x, self.vocab), self._test_codes)
        while held_out.any():
            x[held_out] = self._draw(int(held_out.sum()))
            held_out = np.isin(sequence_codes(x, self.vocab), self._test_codes)
        return x, x[:, ::-1].copy()


def zen_of_python() -> str:
    """The Zen of Python from CPython's ``this`` module, read without printing it."""
    with contextlib.redirect_stdout(io.StringIO()):
        import this
    return codecs.decode(this.s, "rot13")


def pydoc_topics() -> str:
    """CPython's documentation topics (the ``pydoc_data`` package every Python ships, about 465 KB of
    English), joined in sorted topic order. Some distributions strip the package: ``DataMissing``."""
    try:
        from pydoc_data.topics import topics
    except ImportError as exc:
        raise DataMissing(f"corpus missing: this Python has no pydoc_data package ({exc}); "
                          "it ships with CPython, but some distributions strip it") from None
    if not isinstance(topics, dict) or not topics:
        raise DataMissing("corpus missing: pydoc_data.topics holds no topics")
    return "\n".join(topics[name] for name in sorted(topics))
