"""Regenerate ``tinytorch_milestones/data/digits.npz``, the 8x8 handwritten digits the
MLP and CNN milestones train on.

The images come from scikit-learn's bundled copy of the UCI "Optical Recognition of
Handwritten Digits" data (1,797 images of 8x8 pixels, each pixel a count 0..16).
scikit-learn is used only to read that copy; the split is done here with NumPy:

* stratified by class, 20 % of every class goes to the test set
  (``round(0.2 * class_count)`` images), the rest to the training set;
* a ``numpy.random.default_rng(0)`` generator picks the test images of each class
  and then shuffles each set, so running the script twice gives identical arrays.

Usage (scikit-learn is not a dependency of TinyTorch; a throwaway venv is enough)::

    python3 -m venv /tmp/skl && /tmp/skl/bin/pip install scikit-learn numpy
    /tmp/skl/bin/python milestones/scripts/make_digits.py

The file holds ``x_train`` / ``x_test`` (uint8, (N, 8, 8)) and ``y_train`` / ``y_test``
(uint8 labels 0..9); it contains no object arrays, so ``np.load(path,
allow_pickle=False)`` reads it.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

SEED = 0
TEST_FRACTION = 0.2
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "tinytorch_milestones" / "data" / "digits.npz"


def load_source() -> tuple[np.ndarray, np.ndarray]:
    """Images (1797, 8, 8) uint8 and labels (1797,) uint8 from scikit-learn's copy."""
    from sklearn.datasets import load_digits  # imported here: only this script needs it

    bunch = load_digits()
    images = np.asarray(bunch.images)
    labels = np.asarray(bunch.target)
    if images.shape != (1797, 8, 8) or labels.shape != (1797,):
        raise SystemExit(f"unexpected digits shapes {images.shape} / {labels.shape}")
    if not np.array_equal(images, np.round(images)) or images.min() < 0 or images.max() > 16:
        raise SystemExit("unexpected pixel values: expected integer counts 0..16")
    if set(np.unique(labels).tolist()) != set(range(10)):
        raise SystemExit("unexpected labels: expected the classes 0..9")
    return images.astype(np.uint8), labels.astype(np.uint8)


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test): per class, a random ``round(test_fraction * count)`` go to test."""
    rng = np.random.default_rng(seed)
    train_parts, test_parts = [], []
    for cls in range(10):
        members = np.flatnonzero(labels == cls)  # ascending, so the result only depends on the seed
        members = rng.permutation(members)
        n_test = int(round(test_fraction * members.size))
        test_parts.append(members[:n_test])
        train_parts.append(members[n_test:])
    train = rng.permutation(np.concatenate(train_parts))
    test = rng.permutation(np.concatenate(test_parts))
    return train, test


def fingerprint(arrays: dict) -> str:
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(key.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Write the bundled 8x8 digits split (needs scikit-learn).")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output .npz (default: {DEFAULT_OUT})")
    args = parser.parse_args(argv)

    images, labels = load_source()
    train, test = stratified_split(labels, TEST_FRACTION, SEED)
    assert np.intersect1d(train, test).size == 0 and train.size + test.size == labels.size
    arrays = {
        "x_train": images[train],
        "y_train": labels[train],
        "x_test": images[test],
        "y_test": labels[test],
    }

    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)

    # read it back the way the milestones do, to be sure the file is usable
    with np.load(args.out, allow_pickle=False) as npz:
        for key, value in arrays.items():
            assert np.array_equal(npz[key], value) and npz[key].dtype == value.dtype, key

    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")
    for key, value in arrays.items():
        print(f"  {key:8s} {str(value.dtype):6s} {value.shape}")
    for split in ("train", "test"):
        counts = np.bincount(arrays["y_" + split], minlength=10)
        print(f"  {split:5s} class counts: " + " ".join(f"{c}:{n}" for c, n in enumerate(counts)))
    print(f"  sha256 of the arrays: {fingerprint(arrays)}")


if __name__ == "__main__":
    main()
