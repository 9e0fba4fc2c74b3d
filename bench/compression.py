"""Compression on the bundled digits: every figure next to its float32 baseline, in one run.

Run from the repository root (about a minute or two)::

    uv run python bench/compression.py [--epochs 8] [--seed 0]

The CNN milestone model (``build_cnn`` with ``DIGITS_ARCH``) is trained like the milestone
(Adam 1e-3, batch 32, label smoothing 0.1), for ``--epochs`` epochs; then, each against the
float32 model of the same run:

1. INT8 post-training quantization: test accuracy, checkpoint size on disk, and latency of a
   batch of 256 (float32 and INT8 in interleaved rounds for 8 s: the ratio of the medians and its
   95 % bootstrap interval, from the profiling stage's ``compare``);
2. 80 % global unstructured magnitude pruning, fine-tuned with the masks in place;
3. structured pruning of 50 % of each conv's channels (a smaller dense model), fine-tuned:
   accuracy and latency against the dense model;
4. the structured-pruned model quantized to INT8: size against float32 and accuracy;
5. distillation: an MLP of a quarter of the CNN's parameters trained on hard labels, and the
   same MLP (same initial weights, same batches, same steps) distilled from the CNN.

BLAS runs on one thread (``tinytorch_milestones.blas``): small matrices, a busy machine.
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time

import numpy as np

import tinytorch_core as tt
from tinytorch_milestones.blas import blas_threads
from tinytorch_milestones.cnn import DIGITS_ARCH, build_cnn
from tinytorch_milestones.datasets import load_digits
from tinytorch_milestones.mlp import DIGITS_TRAINING, standardized

C = tt.compression
LATENCY_BATCH, LATENCY_SECONDS = 256, 8.0


def train(model, arrays, epochs: int, seed: int, lr=DIGITS_TRAINING.lr, loss_of=None):
    """Adam over shuffled batches of ``arrays`` (the same batches for every model trained with
    this seed) on ``loss_of(model, *batch)``; by default the milestone's cross-entropy with label
    smoothing on (x, y)."""
    criterion = tt.nn.CrossEntropyLoss(label_smoothing=DIGITS_TRAINING.label_smoothing)
    loss_of = loss_of or (lambda model, xb, yb, *rest: criterion(model(xb), yb))
    loader = tt.data.DataLoader(tt.data.TensorDataset(*arrays), batch_size=DIGITS_TRAINING.batch, shuffle=True,
                                generator=seed)
    optimizer = tt.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for batch in loader:
            loss = loss_of(model, *batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


def accuracy(model, x, y) -> float:
    with tt.no_grad():
        logits = np.concatenate([model(tt.Tensor(x[i : i + 512])).data for i in range(0, len(x), 512)])
    return 100.0 * float(np.mean(logits.argmax(axis=1) == y))


def latency_ratio(candidate, baseline, x) -> tuple[float, float, float, tuple]:
    """Median ms of each for one batch and the ratio of the medians with its 95 % interval: the
    profiling stage's ``compare``, which runs the two in interleaved rounds for
    ``LATENCY_SECONDS``, so a slow moment of the machine hits both."""
    batch = tt.Tensor(x)
    with tt.no_grad():
        result = tt.profiler.compare(lambda: baseline(batch), lambda: candidate(batch), warmup=2,
                                     min_time=LATENCY_SECONDS, min_runs=20, labels=("baseline", "candidate"))
    return 1e3 * result.b.median, 1e3 * result.a.median, result.ratio, result.ci95


def disk_bytes(model, folder: str, name: str) -> int:
    path = os.path.join(folder, name)
    tt.io.save(model.state_dict(), path)
    again = tt.io.load(path)  # and the dtypes come back as saved (int8 stays int8)
    assert all(again[k].dtype == v.dtype for k, v in model.state_dict().items()), name
    return os.path.getsize(path)


def calibration(x, y):
    return tt.data.DataLoader(tt.data.TensorDataset(x, y), batch_size=128)


def row(label, value, baseline, unit="", note=""):
    print(f"  {label:<44} {value:>10} {baseline:>10} {unit:<6} {note}")


def quantization(cnn, x_train, y_train, x_test, y_test, base_acc, folder):
    int8 = C.quantize(cnn, calibration(x_train, y_train), num_batches=8)
    acc = accuracy(int8, x_test, y_test)
    float_disk, int8_disk = disk_bytes(cnn, folder, "cnn_f32.safetensors"), disk_bytes(int8, folder, "cnn_int8.safetensors")
    weights_f32 = sum(p.data.nbytes for p in cnn.parameters())
    weights_int8 = C.model_size(int8).by_dtype["int8"]
    q_ms, f_ms, ratio, (low, high) = latency_ratio(int8, cnn, x_test[:LATENCY_BATCH])
    print("\n1. INT8 post-training quantization (per-channel weights, min-max activations, 8 calibration batches)")
    print(f"  {'':<44} {'INT8':>10} {'float32':>10}")
    row("test accuracy", f"{acc:.2f}", f"{base_acc:.2f}", "%", f"difference {acc - base_acc:+.2f} points")
    row("checkpoint on disk (tt.io.save)", f"{int8_disk:,}", f"{float_disk:,}", "bytes", f"{float_disk / int8_disk:.2f}x smaller")
    row("weight bytes (int8 vs float32 weights)", f"{weights_int8:,}", f"{weights_f32:,}", "bytes",
        f"{weights_f32 / weights_int8:.2f}x smaller (conv/linear weights; biases int32, scales float32)")
    row(f"latency, batch of {LATENCY_BATCH}", f"{q_ms:.2f}", f"{f_ms:.2f}", "ms", f"INT8 / float32 = {ratio:.3f} (95 % interval {low:.3f} to {high:.3f})")
    return float_disk


def unstructured(cnn, x_train, y_train, x_test, y_test, base_acc, args):
    pruned = C.prune_global_unstructured(cnn, 0.8)
    before = accuracy(pruned, x_test, y_test)
    train(pruned, (x_train, y_train), args.finetune_epochs, args.seed + 1, lr=5e-4)
    acc, sparsity = accuracy(pruned, x_test, y_test), C.sparsity(pruned)
    print(f"\n2. Global unstructured magnitude pruning to 80 %, fine-tuned {args.finetune_epochs} epochs (masks kept)")
    print(f"  {'':<44} {'pruned':>10} {'dense':>10}")
    row("sparsity of conv/linear weights after fine-tuning", f"{100 * sparsity:.1f}", "0.0", "%")
    row("test accuracy before fine-tuning", f"{before:.2f}", f"{base_acc:.2f}", "%")
    row("test accuracy after fine-tuning", f"{acc:.2f}", f"{base_acc:.2f}", "%", f"difference {acc - base_acc:+.2f} points")


def structured(cnn, x_train, y_train, x_test, y_test, base_acc, args, float_disk, folder):
    small = C.prune_channels(cnn, 0.5)
    before = accuracy(small, x_test, y_test)
    train(small, (x_train, y_train), args.finetune_epochs, args.seed + 2, lr=5e-4)
    acc = accuracy(small, x_test, y_test)
    s_ms, d_ms, ratio, (low, high) = latency_ratio(small, cnn, x_test[:LATENCY_BATCH])
    print(f"\n3. Structured pruning: 50 % of each conv's channels removed, fine-tuned {args.finetune_epochs} epochs")
    print(f"  {'':<44} {'pruned':>10} {'dense':>10}")
    row("parameters", f"{small.num_parameters():,}", f"{cnn.num_parameters():,}", "", f"{cnn.num_parameters() / small.num_parameters():.2f}x fewer")
    row("test accuracy before fine-tuning", f"{before:.2f}", f"{base_acc:.2f}", "%")
    row("test accuracy after fine-tuning", f"{acc:.2f}", f"{base_acc:.2f}", "%", f"difference {acc - base_acc:+.2f} points")
    row(f"latency, batch of {LATENCY_BATCH} (float32 both)", f"{s_ms:.2f}", f"{d_ms:.2f}", "ms", f"pruned / dense = {ratio:.3f} ({low:.3f} to {high:.3f})")
    both = C.quantize(small, calibration(x_train, y_train), num_batches=8)
    both_acc, both_disk = accuracy(both, x_test, y_test), disk_bytes(both, folder, "cnn_pruned_int8.safetensors")
    print("\n4. Structured pruning + INT8")
    print(f"  {'':<44} {'both':>10} {'float32':>10}")
    row("checkpoint on disk", f"{both_disk:,}", f"{float_disk:,}", "bytes", f"{float_disk / both_disk:.2f}x smaller")
    row("test accuracy", f"{both_acc:.2f}", f"{base_acc:.2f}", "%", f"difference {both_acc - base_acc:+.2f} points")


def distillation(cnn, x_train, y_train, x_test, y_test, args):
    features = int(np.prod(x_train.shape[1:]))
    hidden = (cnn.num_parameters() // 4 - 10) // (features + 11)  # features*h + h + 10*h + 10 parameters
    flat_train, flat_test = x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1)

    def student():
        rng = np.random.default_rng(args.seed + 3)  # the same initial weights for both students
        return tt.nn.Sequential(tt.nn.Linear(features, hidden, generator=rng), tt.nn.ReLU(),
                                tt.nn.Linear(hidden, 10, generator=rng))

    with tt.no_grad():
        teacher_logits = cnn(tt.Tensor(x_train)).data
    arrays = (flat_train, y_train, teacher_logits)  # the teacher's logits ride along with each batch

    def distilled(model, xb, yb, teacher_b):
        return C.distillation_loss(model(xb), teacher_b, yb, temperature=args.temperature, alpha=args.alpha)

    plain = tt.nn.CrossEntropyLoss()  # hard labels alone: no smoothing, as in the distillation loss's hard term
    hard = train(student(), arrays, args.student_epochs, args.seed + 4, loss_of=lambda m, xb, yb, _: plain(m(xb), yb))
    soft = train(student(), arrays, args.student_epochs, args.seed + 4, loss_of=distilled)
    print(f"\n5. Distillation: student MLP {features}-{hidden}-10 ({student().num_parameters():,} parameters, "
          f"teacher CNN {cnn.num_parameters():,}), {args.student_epochs} epochs, same batches and initial weights")
    print(f"  {'':<44} {'distilled':>10} {'hard':>10}")
    row(f"student test accuracy (T={args.temperature:g}, alpha={args.alpha:g})", f"{accuracy(soft, flat_test, y_test):.2f}",
        f"{accuracy(hard, flat_test, y_test):.2f}", "%", f"teacher {accuracy(cnn, x_test, y_test):.2f} %")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8, help="CNN training epochs")
    parser.add_argument("--finetune-epochs", type=int, default=3)
    parser.add_argument("--student-epochs", type=int, default=10)
    parser.add_argument("--temperature", type=float, default=4.0)
    parser.add_argument("--alpha", type=float, default=0.9, help="weight of the soft (teacher) term")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = load_digits()
    x_train, x_test = (x[:, None] for x in standardized(data))
    y_train, y_test = data.y_train, data.y_test
    started = time.perf_counter()
    with blas_threads() as blas, tempfile.TemporaryDirectory() as folder:
        cnn, words = build_cnn(tt, DIGITS_ARCH, data.image_shape, data.num_classes, np.random.default_rng(args.seed))
        train(cnn, (x_train, y_train), args.epochs, args.seed)
        base_acc = accuracy(cnn, x_test, y_test)
        print(f"{data.describe()}; {blas}\nCNN {words}: {cnn.num_parameters():,} parameters, {args.epochs} epochs, "
              f"float32 test accuracy {base_acc:.2f} % ({len(x_test)} test images: one image is "
              f"{100 / len(x_test):.2f} points)")
        float_disk = quantization(cnn, x_train, y_train, x_test, y_test, base_acc, folder)
        unstructured(copy.deepcopy(cnn), x_train, y_train, x_test, y_test, base_acc, args)
        structured(cnn, x_train, y_train, x_test, y_test, base_acc, args, float_disk, folder)
        distillation(cnn, x_train, y_train, x_test, y_test, args)
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
