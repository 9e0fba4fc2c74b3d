"""MLPerf 2018: measure a trained model, then make it smaller and faster, with every effect asserted.

The digits CNN (the CNN milestone's, when it ran in the same verify; else trained here) is
profiled, quantized to INT8, pruned, pruned and quantized; a small GPT generates with and
without its key/value cache; the training step is also compiled (the acceleration stage, which
generation builds on). Each technique's size, latency and accuracy stand side by side with the float32
baseline in one table (the "Olympics" table), and each claim is a check.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile

import numpy as np

from tinytorch_core import StageUnavailableError, Tensor, no_grad

from . import cnn
from .common import chunked_loss, class_accuracy, generator, seed_of
from .datasets import load_digits
from .harness import Bars, Check, Experiment, epochs_of, run_experiment
from .mlp import cross_entropy, standardized
from .runner import MilestoneOutcome

NAME, YEAR, TITLE = "mlperf", 2018, "MLPerf"
DESCRIPTION = (
    "Measure, then optimize, and prove each effect: profile a CNN training step (FLOPs match the model "
    "summary); INT8 quantization (within 0.5 points, 4x smaller weights, no slower); 80 % pruning "
    "(within 1 point); pruning + INT8 (8x smaller, within 1.5 points); a KV cache (same greedy tokens, "
    "10x faster); a compiled training step (bitwise-equal losses, faster)."
)
LATENCY_BATCH, FINETUNE_EPOCHS, FINETUNE_LR, BATCH = 256, 3, 2e-3, 32
NOISE = 0.10  # INT8 and float32 run the same float32 GEMMs: their times differ by less than this run to run
GPT_SIZE = dict(embed_dim=128, num_heads=4, num_layers=1, ff_dim=512)
GPT_CONTEXT, GPT_PROMPT, GPT_NEW, GPT_VOCAB = 512, 448, 64, 50


class _Bench:
    """The data, the trained CNN and the float32 baseline every technique is measured against."""

    def __init__(self, options, tt):
        options = dataclasses.replace(options, mnist_dir=None, cifar_dir=None)  # the digits, whatever verify reads
        data = load_digits()
        self.tt, self.seed, self.progress = tt, options.seed, options.progress
        x_train, x_test = standardized(data)
        self.x_train, self.x_test = x_train[:, None], x_test[:, None]
        self.y_train, self.y_test = data.y_train, data.y_test
        self.parts = []
        self.model = options.shared.get(cnn.trained_model_key(options))
        if self.model is None:  # run alone: train the CNN milestone's model here
            experiment = cnn.experiment(options, data)
            self.parts.append(run_experiment(experiment, options.progress))
            self.model = experiment.model
        self.model.eval()
        self.accuracy = self.accuracy_of(self.model)
        self.figures, self.checks = [], []

    def accuracy_of(self, model) -> float:
        x = self.x_test
        with no_grad():
            logits = np.concatenate([model(Tensor(x[i:i + 512])).data for i in range(0, len(x), 512)])
        return 100.0 * float(np.mean(logits.argmax(axis=1) == self.y_test))

    def finetune(self, model, salt: int):
        """``FINETUNE_EPOCHS`` epochs of the milestone's loss at a lower learning rate."""
        tt = self.tt
        criterion = tt.nn.CrossEntropyLoss(label_smoothing=0.1)
        loader = tt.data.DataLoader(tt.data.TensorDataset(self.x_train, self.y_train), batch_size=BATCH,
                                    shuffle=True, generator=self.seed + salt)
        optimizer = tt.optim.Adam(model.parameters(), lr=FINETUNE_LR)
        model.train()
        for _ in range(FINETUNE_EPOCHS):
            for xb, yb in loader:
                optimizer.zero_grad()
                criterion(model(xb), yb).backward()
                optimizer.step()
        return model.eval()

    def latency(self, candidate, min_time: float = 0.1) -> tuple[float, float, tuple]:
        """(candidate ms, baseline ms, 95 % interval of their ratio) for one batch, interleaved."""
        batch = Tensor(self.x_test[:LATENCY_BATCH])
        with no_grad():
            result = self.tt.profiler.compare(lambda: self.model(batch), lambda: candidate(batch), warmup=1,
                                              min_time=min_time, min_runs=4, labels=("float32", "candidate"))
        return 1e3 * result.b.median, 1e3 * result.a.median, result.ci95

    def disk_bytes(self, model, folder: str, name: str) -> int:
        path = os.path.join(folder, name)
        self.tt.io.save(model.state_dict(), path)
        return os.path.getsize(path)

    def figure(self, technique: str, size: int | None, latency_ms: float | None, accuracy: float | None, note=""):
        self.figures.append({"technique": technique, "size_bytes": size, "latency_ms": latency_ms,
                             "accuracy_pct": accuracy, "note": note})

    def check(self, name: str, passed: bool, detail: str) -> None:
        self.checks.append(Check(name, bool(passed), detail))


def run(options) -> MilestoneOutcome:
    tt = options.symbols()
    bench = _Bench(options, tt)
    with tempfile.TemporaryDirectory() as folder:
        float_disk = bench.disk_bytes(bench.model, folder, "float32.safetensors")
        base_ms = bench.latency(bench.model)[1]
        bench.figure("float32 (baseline)", float_disk, base_ms, bench.accuracy)
        profile_step(bench)
        quantization(bench, folder, float_disk)
        unstructured_pruning(bench)
        pruning_and_int8(bench, folder, float_disk)
    kv_cache(bench)
    compiled_step(bench)
    return MilestoneOutcome(parts=bench.parts, checks=bench.checks, figures=bench.figures, headline=len(bench.parts) - 1,
                            data=f"bundled digits: {len(bench.x_train)} train / {len(bench.x_test)} test images")


def profile_step(bench: _Bench) -> None:
    """One training step under the profiler: its costliest op, and its forward FLOPs against the
    model summary's."""
    tt, model = bench.tt, bench.model
    x, y = Tensor(bench.x_train[:BATCH]), Tensor(bench.y_train[:BATCH])
    model.train()
    with tt.profiler.profile() as prof:
        tt.ops.cross_entropy(model(x), y).backward()  # the loss outside any module: the model's ops are in modules
    model.eval()
    model.zero_grad()
    ops = [r for r in prof.key_averages() if r.kind in ("forward", "backward")]
    costliest = max(ops, key=lambda r: r.self_ns)
    step_forward = sum(e.flops or 0 for e in prof.events if e.kind == "forward" and e.module)
    summary = tt.profiler.summary(model, x)
    bench.check("a profiled training step names its costliest op", costliest.self_ns > 0,
                f"{costliest.name} ({costliest.kind}): {100 * costliest.self_ns / prof.wall_ns:.0f} % of the step")
    bench.check("the step's forward FLOPs equal the model summary's", step_forward == summary.flops,
                f"profile {step_forward:,} vs summary {summary.flops:,} FLOPs (batch {BATCH})")


def quantization(bench: _Bench, folder: str, float_disk: int) -> None:
    C = bench.tt.compression
    calibration = bench.tt.data.DataLoader(bench.tt.data.TensorDataset(bench.x_train, bench.y_train), batch_size=128)
    int8 = C.quantize(bench.model, calibration, num_batches=8)
    accuracy = bench.accuracy_of(int8)
    weights_f32 = sum(a.nbytes for name, a in bench.model.state_dict().items() if name.endswith("weight"))
    weights_int8 = C.model_size(int8).by_dtype.get("int8", 0)
    int8_ms, base_ms, (low, high) = bench.latency(int8, min_time=0.5)  # judged: more runs
    bench.figure("INT8 (post-training)", bench.disk_bytes(int8, folder, "int8.safetensors"), int8_ms, accuracy,
                 f"INT8 / float32 time {int8_ms / base_ms:.3f} (95 % CI {low:.3f} to {high:.3f})")
    bench.check("INT8 accuracy within 0.5 points of float32", accuracy >= bench.accuracy - 0.5,
                f"{accuracy:.2f} % vs {bench.accuracy:.2f} %")
    bench.check("INT8 weights at least 4x smaller", weights_int8 and weights_f32 >= 4 * weights_int8,
                f"{weights_f32:,} -> {weights_int8:,} bytes ({weights_f32 / max(weights_int8, 1):.2f}x)")
    bench.check(f"INT8 inference no slower than float32 (batch of 256; within the {NOISE:.0%} noise of a 2-core machine)",
                int8_ms <= (1 + NOISE) * base_ms,
                f"INT8 / float32 = {int8_ms / base_ms:.3f} (medians), 95 % interval {low:.3f} to {high:.3f}")


def unstructured_pruning(bench: _Bench) -> None:
    """80 % of the weights (the smallest, over all layers) set to zero and kept there, then the
    survivors fine-tuned: a trained part of its own, whose bar is the float32 accuracy less 1 point."""
    tt, C = bench.tt, bench.tt.compression
    pruned = C.prune_global_unstructured(bench.model, 0.8)
    loader = tt.data.DataLoader(tt.data.TensorDataset(bench.x_train, bench.y_train), batch_size=BATCH, shuffle=True,
                                generator=bench.seed + 1)
    loss_fn = cross_entropy(tt, label_smoothing=0.1)
    part = run_experiment(Experiment(
        label="80 % pruned CNN, fine-tuned",
        architecture=f"global magnitude pruning to 80 % (masks kept); Adam lr {FINETUNE_LR:g}; {FINETUNE_EPOCHS} epochs",
        model=pruned,
        optimizer=tt.optim.Adam(pruned.parameters(), lr=FINETUNE_LR),
        loss_fn=loss_fn,
        batches=epochs_of(loader, FINETUNE_EPOCHS),
        steps=FINETUNE_EPOCHS * len(loader),
        evaluate=lambda m: class_accuracy(m, bench.x_test, bench.y_test, chunk=512),
        train_loss=lambda m: chunked_loss(m, loss_fn, bench.x_train, bench.y_train, chunk=512),
        bars=Bars(metric_min=(bench.accuracy - 1.0) / 100),
        metric_name="test acc",
        seed=bench.seed,
    ), bench.progress)
    bench.parts.append(part)
    sparsity = C.sparsity(pruned)
    bench.figure("80 % pruned, fine-tuned", None, None, 100 * part.metric, f"sparsity {100 * sparsity:.1f} % (dense storage)")
    bench.check("80 % of the weights stay zero through fine-tuning", sparsity >= 0.799, f"sparsity {100 * sparsity:.1f} %")


def pruning_and_int8(bench: _Bench, folder: str, float_disk: int) -> None:
    """Half of each layer's channels removed (a smaller dense model), fine-tuned, then INT8."""
    C = bench.tt.compression
    smaller = bench.finetune(C.prune_channels(bench.model, 0.5), salt=2)
    small_ms, _, _ = bench.latency(smaller)
    bench.figure("50 % of channels pruned, fine-tuned", bench.disk_bytes(smaller, folder, "pruned.safetensors"),
                 small_ms, bench.accuracy_of(smaller))
    calibration = bench.tt.data.DataLoader(bench.tt.data.TensorDataset(bench.x_train, bench.y_train), batch_size=128)
    both = C.quantize(smaller, calibration, num_batches=8)
    both_disk, accuracy = bench.disk_bytes(both, folder, "pruned_int8.safetensors"), bench.accuracy_of(both)
    both_ms, _, _ = bench.latency(both)
    bench.figure("channel pruning + INT8", both_disk, both_ms, accuracy)
    bench.check("pruning + INT8 at least 8x smaller on disk, within 1.5 points",
                float_disk >= 8 * both_disk and accuracy >= bench.accuracy - 1.5,
                f"{float_disk:,} -> {both_disk:,} bytes ({float_disk / both_disk:.1f}x), {accuracy:.2f} % vs "
                f"{bench.accuracy:.2f} %")


def kv_cache(bench: _Bench) -> None:
    """A small GPT, greedy, with and without the cache: the same tokens, and the time of each."""
    tt = bench.tt
    rng = generator(bench.seed, YEAR)
    gpt = tt.nn.GPT(GPT_VOCAB, GPT_CONTEXT, causal=True, generator=seed_of(rng), **GPT_SIZE)
    prompt = rng.integers(0, GPT_VOCAB, size=(1, GPT_PROMPT))
    runs = {}

    def generate(use_cache):
        runs[use_cache] = tt.generation.generate(gpt, prompt, GPT_NEW, temperature=0, use_cache=use_cache)

    # each generate call compiles its decode step anew (two recordings): every run is a cold one, as a
    # user's call is; 5 runs each, not 2, so that the median is not one noisy run in two (9.8x once)
    result = tt.profiler.compare(lambda: generate(False), lambda: generate(True), warmup=0, min_time=0, min_runs=5,
                                 labels=("uncached", "cached"))
    speedup = 1 / result.ratio
    bench.figure("KV cache (GPT generation)", None, 1e3 * result.b.median, None,
                 f"{GPT_NEW} tokens after {GPT_PROMPT}: {speedup:.1f}x faster than uncached")
    bench.check("greedy tokens identical with and without the KV cache", np.array_equal(runs[True], runs[False]),
                f"{GPT_NEW} tokens after a {GPT_PROMPT}-token prompt")
    bench.check("the KV cache makes generation at least 10x faster (median times)", speedup >= 10,
                f"{speedup:.1f}x (cached / uncached time {result.ratio:.3f}, 95 % interval {result.ci95[0]:.3f} to "
                f"{result.ci95[1]:.3f})")


def compiled_step(bench: _Bench) -> None:
    """With the acceleration stage: the training steps of the digits MLP (a model whose step is
    Python work more than arithmetic, where compiling pays) compiled and eager, from the same
    weights on the same batches: the losses bit for bit, and the time of a step."""
    tt = bench.tt
    try:
        compile_step = tt.acceleration.compile
    except StageUnavailableError:
        bench.figure("compiled training step (MLP)", None, None, None, "acceleration stage not installed")
        return
    features = bench.x_train[0].size
    models = [tt.nn.Sequential(tt.nn.Linear(features, 128, generator=bench.seed), tt.nn.ReLU(),
                               tt.nn.Linear(128, 10, generator=bench.seed + 1)) for _ in range(2)]
    optimizers = [tt.optim.SGD(m.parameters(), lr=0.05) for m in models]

    def train_step(model, optimizer, x, y):
        optimizer.zero_grad()
        loss = tt.ops.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    compiled = compile_step(train_step)
    flat = bench.x_train.reshape(len(bench.x_train), -1)
    steps = [(Tensor(flat[i:i + BATCH]), Tensor(bench.y_train[i:i + BATCH])) for i in range(0, 20 * BATCH, BATCH)]
    eager_losses = [float(train_step(models[0], optimizers[0], x, y).item()) for x, y in steps]
    compiled_losses = [float(compiled(models[1], optimizers[1], x, y).item()) for x, y in steps]
    x, y = steps[0]
    result = tt.profiler.compare(lambda: train_step(models[0], optimizers[0], x, y),
                                 lambda: compiled(models[1], optimizers[1], x, y), warmup=2, min_time=0.3, min_runs=20,
                                 labels=("eager", "compiled"))
    bench.figure("compiled training step (MLP)", None, 1e3 * result.b.median, None,
                 f"eager {1e3 * result.a.median:.3f} ms per step (batch {BATCH}): {1 / result.ratio:.2f}x faster")
    bench.check("a compiled training step gives the eager losses bit for bit", compiled_losses == eager_losses,
                f"{len(steps)} steps of the digits MLP, last loss {compiled_losses[-1]!r} vs {eager_losses[-1]!r}")
    bench.check("a compiled training step is faster than eager", result.b_is_faster is True,
                f"compiled / eager time {result.ratio:.3f} (95 % interval {result.ci95[0]:.3f} to {result.ci95[1]:.3f})")
