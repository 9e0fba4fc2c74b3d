"""Transformer 2017: attention routes information by position (sequence reversal) and a small
GPT learns the Zen of Python character by character."""

from __future__ import annotations

import numpy as np

from tinytorch_core import Tensor, no_grad

from .common import generator, seed_of
from .datasets import ReversalTask, zen_of_python
from .harness import Bars, Experiment, run_experiment
from .runner import MilestoneOutcome

NAME, YEAR, TITLE = "transformer", 2017, "Transformer"
DESCRIPTION = (
    "Vaswani et al.: attention is all you need. A 2-block transformer (non-causal) reverses random "
    "token sequences, which needs attention to move each token to its mirrored position (held-out "
    "token accuracy >= 99 %); a causal character-level GPT learns the Zen of Python (loss halves) "
    "and writes a sample."
)

# sequence reversal: every position must fetch the token at its mirrored position
REVERSAL_VOCAB, REVERSAL_LEN, REVERSAL_TEST = 10, 8, 1000
REVERSAL = dict(embed_dim=32, num_heads=4, num_layers=2, ff_dim=64)
REVERSAL_STEPS, REVERSAL_BATCH, REVERSAL_LR = 70, 64, 3e-3
REVERSAL_BARS = Bars(loss_drop_min=0.95, metric_min=0.99)

# character-level GPT on the Zen of Python
ZEN_CONTEXT, ZEN_STEPS, ZEN_BATCH, ZEN_LR = 32, 100, 16, 3e-3
ZEN = dict(embed_dim=48, num_heads=4, num_layers=2, ff_dim=96)
ZEN_BARS = Bars(loss_drop_min=0.50)
SAMPLE_PROMPT, SAMPLE_LENGTH = "Beautiful is", 160


def key_bias_names(model) -> dict:
    """Attention key-projection biases: softmax over keys is invariant to adding q . b_k to every
    score of a query, so their gradient is mathematically zero. Declared, and checked to be zero."""
    return {name: None for name, _ in model.named_parameters() if name.endswith("attn.k_proj.bias")}


def sequence_loss(tt):
    criterion = tt.nn.CrossEntropyLoss()

    def loss_fn(model, x, y):
        logits = model(x)
        batch, length, vocab = logits.shape
        return criterion(logits.reshape(batch * length, vocab), y.reshape(batch * length))

    return loss_fn


def token_accuracy(model, x: np.ndarray, y: np.ndarray, chunk: int = 500) -> float:
    hits = 0
    with no_grad():
        for i in range(0, len(x), chunk):
            logits = model(Tensor(x[i:i + chunk])).data
            hits += int(np.sum(logits.argmax(axis=-1) == y[i:i + chunk]))
    return hits / y.size


def mean_loss(model, loss_fn, x: np.ndarray, y: np.ndarray, chunk: int = 500) -> float:
    total = 0.0
    with no_grad():
        for i in range(0, len(x), chunk):
            total += float(loss_fn(model, Tensor(x[i:i + chunk]), Tensor(y[i:i + chunk])).item()) * len(x[i:i + chunk])
    return total / len(x)


def experiment(options) -> Experiment:
    """The sequence-reversal transformer, its data and its training (``milestones profile``
    profiles one step of it)."""
    tt = options.symbols()
    rng = generator(options.seed, YEAR)
    task = ReversalTask(REVERSAL_VOCAB, REVERSAL_LEN, REVERSAL_TEST, seed=seed_of(rng))
    x_fixed, y_fixed = task.batch(512)  # a fixed training sample: the loss before and after
    model = tt.nn.GPT(REVERSAL_VOCAB, REVERSAL_LEN, causal=False, generator=seed_of(rng), **REVERSAL)
    loss_fn = sequence_loss(tt)
    batches = (task.batch(REVERSAL_BATCH) for _ in range(REVERSAL_STEPS))
    return Experiment(
        label="sequence reversal",
        architecture=(f"GPT(causal=False): {REVERSAL['num_layers']} pre-norm blocks, d={REVERSAL['embed_dim']}, "
                      f"{REVERSAL['num_heads']} heads, ff {REVERSAL['ff_dim']}; cross-entropy; Adam lr {REVERSAL_LR:g}; "
                      f"{REVERSAL_STEPS} steps of {REVERSAL_BATCH} fresh sequences"),
        model=model,
        optimizer=tt.optim.Adam(model.parameters(), lr=REVERSAL_LR),
        loss_fn=loss_fn,
        batches=batches,
        steps=REVERSAL_STEPS,
        evaluate=lambda m: token_accuracy(m, task.x_test, task.y_test),
        train_loss=lambda m: mean_loss(m, loss_fn, x_fixed, y_fixed),
        bars=REVERSAL_BARS,
        metric_name="held-out token acc",
        eval_every=50,
        declared_zero=key_bias_names(model),
        seed=options.seed,
    )


def zen_part(options, tt):
    rng = generator(options.seed, YEAR + 1)
    text = zen_of_python()
    # built here; from here on only the Tokenizer protocol of stage embeddings (encode, decode,
    # vocab_size), so tt.text.BPETokenizer.train(text, vocab_size) fits in its place
    tokenizer = tt.text.CharTokenizer.from_text(text)
    ids = np.asarray(tokenizer.encode(text), dtype=np.int64)
    starts = np.arange(0, len(ids) - ZEN_CONTEXT, 4)  # fixed windows: the loss before and after
    x_fixed = np.stack([ids[s:s + ZEN_CONTEXT] for s in starts])
    y_fixed = np.stack([ids[s + 1:s + ZEN_CONTEXT + 1] for s in starts])
    model = tt.nn.GPT(tokenizer.vocab_size, ZEN_CONTEXT, causal=True, generator=seed_of(rng), **ZEN)
    loss_fn = sequence_loss(tt)
    batch_rng = np.random.default_rng(seed_of(rng))

    def batches():
        offsets = np.arange(ZEN_CONTEXT)
        for _ in range(ZEN_STEPS):
            s = batch_rng.integers(0, len(ids) - ZEN_CONTEXT, size=ZEN_BATCH)[:, None]
            yield ids[s + offsets], ids[s + offsets + 1]

    part = run_experiment(Experiment(
        label="char GPT, Zen of Python",
        architecture=(f"GPT(causal=True): {ZEN['num_layers']} pre-norm blocks, d={ZEN['embed_dim']}, "
                      f"{ZEN['num_heads']} heads, ff {ZEN['ff_dim']}, context {ZEN_CONTEXT}; cross-entropy; "
                      f"Adam lr {ZEN_LR:g}; {ZEN_STEPS} steps of {ZEN_BATCH} windows"),
        model=model,
        optimizer=tt.optim.Adam(model.parameters(), lr=ZEN_LR),
        loss_fn=loss_fn,
        batches=batches(),
        steps=ZEN_STEPS,
        evaluate=lambda m: token_accuracy(m, x_fixed, y_fixed),
        train_loss=lambda m: mean_loss(m, loss_fn, x_fixed, y_fixed),
        bars=ZEN_BARS,
        metric_name="next-char acc (text)",
        eval_every=100,
        declared_zero=key_bias_names(model),
        seed=options.seed,
    ), options.progress)
    prompt = tokenizer.encode(SAMPLE_PROMPT)
    generated = model.generate(prompt, SAMPLE_LENGTH, temperature=0.8, top_k=10, generator=seed_of(rng))
    sample = tokenizer.decode(generated)
    part.notes.append(f"{len(text)} characters, vocabulary of {tokenizer.vocab_size}")
    return part, sample


def run(options) -> MilestoneOutcome:
    tt = options.symbols()
    reversal = run_experiment(experiment(options), options.progress)
    zen, sample = zen_part(options, tt)
    return MilestoneOutcome(
        parts=[reversal, zen],
        data=(f"reversal of {REVERSAL_LEN}-token sequences over {REVERSAL_VOCAB} symbols "
              f"({REVERSAL_TEST} held out); the Zen of Python (CPython's `this` module)"),
        samples=[sample],
        headline=0,
    )
