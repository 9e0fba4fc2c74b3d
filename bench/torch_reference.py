"""The benchmark workloads W1..W8 in PyTorch (CPU), for comparison only.

PyTorch is optional and never a dependency: import this file only after ``import torch``
has worked (``bench/run.py`` checks; the tests skip without it).  The models mirror
``bench/numpy_reference.py`` exactly: same architectures, same parameter names (so the
reference's parameter dict loads with ``load_state_dict(strict=True)``), same losses and
the same plain-SGD learning rates.  The dtype of the model follows the parameters it is
built for: float32 for the benchmarks, float64 for the equality tests.

Thread count: PyTorch's default (``torch.get_num_threads()``) unless the caller sets it;
``bench/run.py --torch-threads N`` does.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["build", "load_params", "make_optimizer", "step", "to_tensors"]


def _load_reference():
    name = "tinytorch_bench_numpy_reference"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("numpy_reference.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


_ref = _load_reference()


class MLP(nn.Module):
    """Linear layers named ``names`` with ReLU in between; head ``bce`` (sigmoid + BCE),
    ``ce`` (cross-entropy) or ``mse``."""

    def __init__(self, sizes, names, loss: str):
        super().__init__()
        self.names = tuple(names)
        for name, fan_in, fan_out in zip(names, sizes[:-1], sizes[1:]):
            self.add_module(name, nn.Linear(fan_in, fan_out))
        self.loss_kind = loss

    def forward(self, x):
        layers = [getattr(self, n) for n in self.names]
        for layer in layers[:-1]:
            x = F.relu(layer(x))
        x = layers[-1](x)
        return torch.sigmoid(x) if self.loss_kind == "bce" else x

    def loss(self, x, y):
        out = self(x)
        if self.loss_kind == "bce":
            return F.binary_cross_entropy(out, y)
        if self.loss_kind == "ce":
            return F.cross_entropy(out, y)
        return F.mse_loss(out, y)


class CNN(nn.Module):
    """conv1-ReLU-MaxPool2d(2)-conv2-ReLU-MaxPool2d(2)-Flatten-fc, cross-entropy."""

    def __init__(self, in_channels, convs, flat_features: int, n_classes: int):
        super().__init__()
        self.names = []
        channels = in_channels
        for name, out_channels, kernel, padding in convs:
            self.add_module(name, nn.Conv2d(channels, out_channels, kernel, padding=padding))
            self.names.append(name)
            channels = out_channels
        self.fc = nn.Linear(flat_features, n_classes)

    def forward(self, x):
        for name in self.names:
            x = F.max_pool2d(F.relu(getattr(self, name)(x)), 2)
        return self.fc(torch.flatten(x, 1))

    def loss(self, x, y):
        return F.cross_entropy(self(x), y)


class _Table(nn.Module):
    """A bare ``weight`` (positions, embed) so the key reads ``pos_emb.weight``."""

    def __init__(self, rows: int, cols: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(rows, cols))


class MultiHeadAttention(nn.Module):
    def __init__(self, embed: int, heads: int, causal: bool):
        super().__init__()
        self.heads, self.causal = heads, causal
        self.q_proj = nn.Linear(embed, embed)
        self.k_proj = nn.Linear(embed, embed)
        self.v_proj = nn.Linear(embed, embed)
        self.out_proj = nn.Linear(embed, embed)

    def forward(self, x):
        b, t, e = x.shape
        h = self.heads

        def split(a):
            return a.view(b, t, h, e // h).transpose(1, 2)

        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        o = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        return self.out_proj(o.transpose(1, 2).reshape(b, t, e))


class FeedForward(nn.Module):
    def __init__(self, embed: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(embed, hidden)
        self.fc2 = nn.Linear(hidden, embed)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, embed: int, heads: int, hidden: int, causal: bool):
        super().__init__()
        self.ln1 = nn.LayerNorm(embed, eps=1e-5)
        self.attn = MultiHeadAttention(embed, heads, causal)
        self.ln2 = nn.LayerNorm(embed, eps=1e-5)
        self.ff = FeedForward(embed, hidden)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.ff(self.ln2(x))


class Transformer(nn.Module):
    """Token + learned positional embedding, pre-norm blocks, final LayerNorm, Linear head."""

    def __init__(self, vocab, seq_len, embed, heads, n_blocks, ffn, causal):
        super().__init__()
        self.vocab = vocab
        self.tok_emb = nn.Embedding(vocab, embed)
        self.pos_emb = _Table(seq_len, embed)
        self.blocks = nn.ModuleList(Block(embed, heads, ffn, causal) for _ in range(n_blocks))
        self.ln_f = nn.LayerNorm(embed, eps=1e-5)
        self.head = nn.Linear(embed, vocab)

    def forward(self, tokens):
        t = tokens.shape[1]
        x = self.tok_emb(tokens) + self.pos_emb.weight[:t]
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))

    def loss(self, tokens, targets):
        return F.cross_entropy(self(tokens).reshape(-1, self.vocab), targets.reshape(-1))


def build(workload_id: str, dtype=np.float32) -> nn.Module:
    """The workload's model (parameters still at PyTorch's init; call ``load_params``)."""
    m = _ref.WORKLOADS[workload_id].model
    if isinstance(m, _ref.MLP):
        model = MLP(m.sizes, m.names, m.loss)
    elif isinstance(m, _ref.CNN):
        model = CNN(m.in_shape[0], m.convs, m.flat_features, m.n_classes)
    else:
        model = Transformer(m.vocab, m.seq_len, m.embed, m.heads, m.n_blocks, m.ffn, m.causal)
    return model.to(torch.float64 if np.dtype(dtype) == np.float64 else torch.float32)


def load_params(model: nn.Module, params: dict) -> None:
    """Copy the reference's parameter arrays in (strict: same names and shapes)."""
    dtype = next(model.parameters()).dtype
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)).to(dtype) for k, v in params.items()}, strict=True)


def make_optimizer(model: nn.Module, lr: float):
    """Plain SGD, PyTorch's default implementation choice (foreach on CPU when available)."""
    return torch.optim.SGD(model.parameters(), lr=lr)


def to_tensors(x: np.ndarray, y: np.ndarray):
    """The batch as tensors of the arrays' own dtypes (copies, so NumPy buffers stay untouched)."""
    return torch.from_numpy(np.array(x)), torch.from_numpy(np.array(y))


def step(model, optimizer, x, y) -> float:
    """forward + loss + backward + SGD update + zero_grad; returns the pre-update loss."""
    loss = model.loss(x, y)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()

