"""TinyGPT 2020: a GPT learns real English text, CPython's own documentation.

The corpus ships with every Python: the documentation topics of the ``pydoc_data`` package (about
465 KB of English, 103 distinct characters), read in sorted topic order. The last 10 % is held out.
The bar is relative to the simplest model of the text, a unigram model (each character's
frequency in the training text): the GPT's loss on the held-out text must be at most 60 % of
the unigram model's there, and still falling when training stops. An extended milestone: it
trains for a couple of minutes, so ``verify`` runs it only with ``--all``.
"""

from __future__ import annotations

import numpy as np

from .common import generator, seed_of
from .datasets import pydoc_topics
from .harness import Bars, Check, Experiment, run_experiment
from .runner import MilestoneOutcome
from .transformer import key_bias_names, mean_loss, sequence_loss

NAME, YEAR, TITLE = "tinygpt", 2020, "TinyGPT"
DESCRIPTION = (
    "Radford et al.'s GPT, small: a causal character-level GPT trained on CPython's documentation "
    "topics (pydoc_data, shipped with Python) reaches a held-out loss of at most 60 % of a unigram "
    "model's, still falling at the end, and writes a sample of 300 characters."
)

CONTEXT, BATCH, STEPS, LR, EVAL_EVERY = 64, 32, 500, 3e-3, 100
GPT_SIZE = dict(embed_dim=96, num_heads=4, num_layers=3, ff_dim=384)
HELD_OUT = 0.10  # the last tenth of the text
RATIO_BAR = 0.60  # held-out loss / unigram held-out loss
BARS = Bars(metric_max=RATIO_BAR)
EXTENDED = True  # minutes of training: verify runs it with --all
SAMPLE_PROMPT, SAMPLE_LENGTH = "The ", 300


def unigram_loss(train_ids: np.ndarray, held_out_ids: np.ndarray, vocab_size: int) -> float:
    """Cross-entropy (nats per character) on ``held_out_ids`` of the characters' frequencies in
    ``train_ids`` (add-one smoothed, so an unseen character costs a finite amount)."""
    counts = np.bincount(train_ids, minlength=vocab_size) + 1.0
    return float(-np.log(counts[held_out_ids] / counts.sum()).mean())


def windows(ids: np.ndarray, context: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping (input, next-character target) windows covering ``ids``."""
    starts = np.arange(0, len(ids) - context - 1, context)[:, None] + np.arange(context)
    return ids[starts], ids[starts + 1]


def experiment(options) -> Experiment:
    """The GPT, the corpus and its training (``run`` trains it; ``milestones profile`` profiles a step)."""
    return _setup(options)[0]


def _setup(options):
    tt = options.symbols()
    text = pydoc_topics()
    tokenizer = tt.text.CharTokenizer.from_text(text)  # the alphabet of the whole text; the rest is learned
    ids = np.asarray(tokenizer.encode(text), dtype=np.int64)
    split = int(len(ids) * (1 - HELD_OUT))
    train_ids, held_ids = ids[:split], ids[split:]
    unigram = unigram_loss(train_ids, held_ids, tokenizer.vocab_size)
    x_held, y_held = windows(held_ids, CONTEXT)
    x_fixed, y_fixed = windows(train_ids[:len(held_ids)], CONTEXT)  # a fixed training sample
    rng = generator(options.seed, YEAR)
    model = tt.nn.GPT(tokenizer.vocab_size, CONTEXT, causal=True, generator=seed_of(rng), **GPT_SIZE)
    loss_fn = sequence_loss(tt)
    batch_rng = np.random.default_rng(seed_of(rng))

    def batches():
        offsets = np.arange(CONTEXT)
        for _ in range(STEPS):
            starts = batch_rng.integers(0, len(train_ids) - CONTEXT - 1, size=BATCH)[:, None]
            yield train_ids[starts + offsets], train_ids[starts + offsets + 1]

    experiment = Experiment(
        label="char GPT, CPython docs",
        architecture=(f"GPT(causal=True): {GPT_SIZE['num_layers']} pre-norm blocks, d={GPT_SIZE['embed_dim']}, "
                      f"{GPT_SIZE['num_heads']} heads, ff {GPT_SIZE['ff_dim']}, context {CONTEXT}; cross-entropy; "
                      f"Adam lr {LR:g}; {STEPS} steps of {BATCH} windows"),
        model=model,
        optimizer=tt.optim.Adam(model.parameters(), lr=LR),
        loss_fn=loss_fn,
        batches=batches(),
        steps=STEPS,
        evaluate=lambda m: mean_loss(m, loss_fn, x_held, y_held) / unigram,
        train_loss=lambda m: mean_loss(m, loss_fn, x_fixed, y_fixed),
        bars=BARS,
        metric_name="held-out loss / unigram",
        eval_every=EVAL_EVERY,
        declared_zero=key_bias_names(model),
        seed=options.seed,
    )
    corpus = (f"CPython's pydoc_data topics: {len(text):,} characters, {tokenizer.vocab_size} distinct; "
              f"last {HELD_OUT:.0%} held out; unigram held-out loss {unigram:.3f} nats/char")
    return experiment, tokenizer, corpus, rng


def run(options) -> MilestoneOutcome:
    experiment, tokenizer, corpus, rng = _setup(options)
    part = run_experiment(experiment, options.progress)
    curve = part.curves["metric"]
    falling = len(curve) >= 2 and curve[-1] < curve[-2]
    check = Check("held-out loss still falling at the end", falling,
                  f"last two evaluations {curve[-2]:.4f} -> {curve[-1]:.4f} (x unigram)" if len(curve) >= 2 else
                  "fewer than two evaluations")
    sample = _sample(experiment.model, tokenizer, seed_of(rng))
    return MilestoneOutcome(parts=[part], checks=[check], data=corpus, samples=[sample])


def _sample(model, tokenizer, seed: int) -> str:
    """300 characters after the prompt. The sample is longer than the context, so each step sees
    the last ``CONTEXT`` characters: ``GPT.generate`` slides that window (the generation stage's
    KV cache does not slide, by design)."""
    prompt = np.asarray(tokenizer.encode(SAMPLE_PROMPT), dtype=np.int64)
    return tokenizer.decode(model.generate(prompt, SAMPLE_LENGTH, temperature=0.8, top_k=10, generator=seed))
