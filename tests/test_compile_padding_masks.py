"""A compiled GPT step follows each batch's key padding mask: the mask is built by tensor ops,
so replays recompute it (it was NumPy, a constant of the recording, and a later batch with other
padding attended to its padding)."""

from __future__ import annotations

import numpy as np

import tinytorch_core as tt


def test_a_compiled_step_follows_a_changing_key_padding_mask():
    batch, length, vocab = 2, 6, 12
    rng = np.random.default_rng(0)
    ids = [np.arange(batch * length).reshape(batch, length) % vocab] + [rng.integers(0, vocab, (batch, length))
                                                                        for _ in range(3)]
    pads = [np.zeros((batch, length), bool) for _ in range(4)]  # no padding while recording
    pads[2][0, 3:] = True
    pads[3][1, 4:] = True
    results = []
    for compiled in (False, True):
        model = tt.nn.GPT(vocab, 16, embed_dim=8, num_heads=2, num_layers=1, ff_dim=16, generator=0)
        optimizer = tt.optim.SGD(model.parameters(), lr=0.1)

        def step(x, y, padding):
            logits = model(x, key_padding_mask=padding)
            loss = tt.nn.CrossEntropyLoss()(logits.reshape(-1, vocab), y.reshape(-1))
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            return loss.item()

        step = tt.compile(step) if compiled else step
        results.append([step(tt.tensor(i), tt.tensor(i[:, ::-1].copy()), p) for i, p in zip(ids, pads)])
    assert results[0] == results[1]
    assert step.replays == 2
