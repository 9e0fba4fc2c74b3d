"""The GPT model: exact gradients, one visit per graph node, learning, generation, errors."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from tinytorch_core import ModuleList, no_grad
from tinytorch_core.testing import central_difference
from tinytorch_attention import GPT
from tinytorch_embeddings import CharTokenizer, Embedding, LearnedPositionalEmbedding
from tinytorch_nn.functional import cross_entropy
from tinytorch_nn.optim import Adam


def lm_loss(model, batch):
    logits = model(batch[:, :-1])
    return cross_entropy(logits.reshape(-1, model.vocab_size), batch[:, 1:].reshape(-1))


def test_structure_and_state_dict_keys():
    model = GPT(vocab_size=11, max_len=8, embed_dim=16, num_heads=2, num_layers=2, ff_dim=32, generator=0)
    assert isinstance(model.tok_emb, Embedding) and isinstance(model.pos_emb, LearnedPositionalEmbedding)
    assert isinstance(model.blocks, ModuleList) and len(model.blocks) == 2
    keys = list(model.state_dict())
    assert keys[:4] == ["tok_emb.weight", "pos_emb.weight", "blocks.0.ln1.weight", "blocks.0.ln1.bias"]
    for key in ("blocks.0.attn.q_proj.weight", "blocks.1.attn.k_proj.bias", "blocks.1.ff.fc1.weight"):
        assert key in keys
    assert keys[-4:] == ["ln_f.weight", "ln_f.bias", "head.weight", "head.bias"]
    assert model.head.weight.shape == (11, 16) and model.head.bias.shape == (11,)
    assert abs(model.tok_emb.weight.data.std() - 0.02) < 0.005  # GPT-2 initialisation
    out = model(np.zeros((3, 8), dtype=np.int64))
    assert out.shape == (3, 8, 11) and out.dtype == np.float32


def test_two_block_gpt_loss_gradient_matches_finite_differences_for_every_parameter():
    model = GPT(7, 6, 8, 2, 2, 12, generator=0).to(np.float64)
    rng = np.random.default_rng(1)
    with no_grad():  # move the layer norms and biases off their initial ones / zeros
        for _, p in model.named_parameters():
            p.add_(rng.standard_normal(p.shape) * 0.1)
    batch = rng.integers(0, 7, size=(2, 6))
    lm_loss(model, batch).backward()

    def loss_value():
        with no_grad():
            return lm_loss(model, batch).item()

    eps = 1e-6
    checked = 0
    for name, param in model.named_parameters():
        flat = param.data.reshape(-1)
        analytic = param.grad.data.reshape(-1)
        for j in rng.choice(flat.size, size=min(3, flat.size), replace=False):
            numeric = central_difference(loss_value, flat, j, eps)
            assert analytic[j] == pytest.approx(numeric, rel=1e-5, abs=1e-8), f"{name}[{j}]"
            checked += 1
    assert checked >= 3 * 30


def count_graph_nodes(root):
    seen, stack = set(), [root.grad_fn]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(p.grad_fn for p in node.inputs if p is not None and p.grad_fn is not None)
    return len(seen)


def backward_visits(num_layers, monkeypatch):
    model = GPT(9, 5, 8, 2, num_layers, 16, generator=0)
    batch = np.random.default_rng(2).integers(0, 9, size=(2, 6))
    loss = lm_loss(model, batch)
    nodes = count_graph_nodes(loss)
    visits, keep_alive = Counter(), []
    classes, stack, seen = set(), [loss.grad_fn], set()
    while stack:  # every Function class in the graph
        node = stack.pop()
        if id(node) not in seen:
            seen.add(id(node))
            classes.add(type(node))
            stack.extend(p.grad_fn for p in node.inputs if p is not None and p.grad_fn is not None)
    for cls in classes:  # count each node's backward call through the public Function contract
        original = cls.backward

        def counting(ctx, *grads, _original=original):
            visits[id(ctx)] += 1
            keep_alive.append(ctx)  # ids stay unique while the nodes live
            return _original(ctx, *grads)

        monkeypatch.setattr(cls, "backward", staticmethod(counting))
    loss.backward()
    monkeypatch.undo()
    return nodes, visits


def test_six_block_backward_visits_every_node_once_and_grows_linearly(monkeypatch):
    sizes = {}
    for layers in (1, 2, 6):
        nodes, visits = backward_visits(layers, monkeypatch)
        assert len(visits) == nodes  # every node of the graph ran its backward ...
        assert set(visits.values()) == {1}  # ... exactly once
        sizes[layers] = nodes
    per_block = sizes[2] - sizes[1]
    assert per_block > 0
    assert sizes[6] == sizes[1] + 5 * per_block  # linear in depth


def tiny_corpus():
    text = "hello tinytorch! " * 12
    tok = CharTokenizer.from_text(text)
    return text, tok, sliding_window_view(tok.encode(text), 9)


def test_tiny_gpt_learns_a_repeated_text_and_generates_it():
    text, tok, windows = tiny_corpus()
    model = GPT(tok.vocab_size, 8, 32, 2, 1, 64, generator=0)
    optimizer = Adam(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(80):
        loss = lm_loss(model, windows[rng.integers(0, len(windows), 16)])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] > 2.0  # about log(vocab_size) at the start
    assert np.mean(losses[-10:]) < 0.25
    greedy = model.generate(tok.encode("hello ti"), 20, temperature=0)
    assert tok.decode(greedy) == text[:28]


def test_generate_is_reproducible_with_a_seed_and_respects_top_k():
    model = GPT(13, 6, 16, 2, 1, 32, generator=1)
    prompt = np.array([3, 1, 4])
    first = model.generate(prompt, 10, temperature=1.5, generator=5)
    assert first.shape == (13,) and first.dtype == np.int64
    np.testing.assert_array_equal(first[:3], prompt)
    np.testing.assert_array_equal(model.generate(prompt, 10, temperature=1.5, generator=5), first)
    others = [model.generate(prompt, 10, temperature=1.5, generator=s) for s in range(6, 10)]
    assert any(not np.array_equal(o, first) for o in others)
    # top_k=1 and temperature 0 are both greedy; batched prompts keep their batch axis
    batch = np.array([[3, 1, 4], [2, 7, 1]])
    np.testing.assert_array_equal(model.generate(batch, 8, top_k=1, generator=0), model.generate(batch, 8, temperature=0))
    # with top_k=2 every sampled token is one of the two most likely after its context
    sampled = model.generate(prompt, 1, top_k=2, generator=3)
    with no_grad():
        logits = model(prompt[None]).data[0, -1]
    assert sampled[-1] in np.argsort(logits)[-2:]
    assert model.training  # generate restores the mode it found


def test_generate_crops_the_context_to_max_len():
    model = GPT(5, 4, 8, 2, 1, 16, generator=2)
    long_prompt = np.array([1, 2, 3, 4, 0, 1, 2])  # longer than max_len
    out = model.generate(long_prompt, 3, temperature=0)
    assert out.shape == (10,)
    with no_grad():
        first = int(model(long_prompt[None, -4:]).data[0, -1].argmax())
    assert out[7] == first


def test_gpt_errors():
    model = GPT(10, 4, 8, 2, 1, 16, generator=3)
    with pytest.raises(TypeError, match="must be integers.*float"):
        model(np.array([[1.0, 2.0]]))
    with pytest.raises(IndexError, match=r"index 10 .*size 10"):
        model(np.array([[1, 10]]))
    with pytest.raises(ValueError, match="sequence length 5 exceeds max_len 4"):
        model(np.zeros((1, 5), dtype=np.int64))
    with pytest.raises(ValueError, match=r"\(batch, seq_len\)"):
        model(np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="not divisible"):
        GPT(10, 4, 9, 2, 1, 16)
    with pytest.raises(ValueError, match="temperature"):
        model.generate([1], 2, temperature=-1.0)
    with pytest.raises(ValueError, match="top_k"):
        model.generate([1], 2, top_k=0)
    with pytest.raises(IndexError, match="index 12"):
        model.generate([12], 2)
