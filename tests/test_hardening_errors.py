"""The error table of ``docs/errors.md``, verified, and what each op does with an empty batch.

``docs/errors.md`` is the single source of the error types and message excerpts: every row whose
test is ``test_error_table[<id>]`` is triggered here and must raise exactly the documented class
with the documented excerpt in its message. Rows backed by tests elsewhere must name a test that
exists, and their excerpt must still be in the framework's source. Every trigger here has a row.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Tensor

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "errors.md"
SOURCES = [REPO / "tinytorch_core", *sorted((REPO / "plugins").glob("*/tinytorch_*")), REPO / "milestones" / "tinytorch_milestones"]

f32 = np.float32


def zeros(*shape, dtype=f32):
    return Tensor(np.zeros(shape), dtype=dtype)


def ones(*shape, dtype=f32):
    return Tensor(np.ones(shape), dtype=dtype)


# ---- the table -------------------------------------------------------------------------------------
def doc_rows() -> list[dict]:
    """Rows of every table in docs/errors.md whose last cell names a test."""
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|") or "::" not in line:
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        ticks = [re.findall(r"`([^`]*)`", c) for c in cells]
        rows.append({"cells": cells, "ticks": ticks, "test": ticks[-1][0] if ticks[-1] else cells[-1]})
    return rows


def error_rows() -> dict[str, dict]:
    """``id -> {type, excerpt}`` for the rows backed by ``test_error_table`` below."""
    table = {}
    for row in doc_rows():
        match = re.fullmatch(r"tests/test_hardening_errors\.py::test_error_table\[([\w-]+)\]", row["test"])
        if match and len(row["cells"]) == 4:
            table[match.group(1)] = {"type": row["ticks"][1][0], "excerpt": row["ticks"][2][0]}
    return table


def _linear():
    return tt.nn.Linear(4, 3, generator=0)


def _mha():
    return tt.nn.MultiHeadAttention(8, 2, generator=0)


def _gpt():
    return tt.nn.GPT(10, 8, embed_dim=8, num_heads=2, num_layers=1, ff_dim=16, generator=0)


TRIGGERS = {
    # wrong shapes
    "matmul-shapes": lambda: ones(2, 3) @ ones(4, 5),
    "broadcast-shapes": lambda: ones(2, 3) + ones(4),
    "reshape-size": lambda: ones(2, 3).reshape(4),
    "linear-features": lambda: _linear()(zeros(2, 5)),
    "conv-channels": lambda: tt.nn.Conv2d(3, 8, 3, generator=0)(zeros(2, 1, 8, 8)),
    "conv-rank": lambda: tt.nn.Conv2d(3, 8, 3, generator=0)(zeros(8, 8)),
    "conv-too-small": lambda: tt.nn.Conv2d(3, 8, 3, generator=0)(zeros(1, 3, 2, 2)),
    "attention-embed": lambda: _mha()(zeros(2, 3, 6)),
    "attention-qk": lambda: tt.ops.scaled_dot_product_attention(zeros(2, 3, 4), zeros(2, 3, 5), zeros(2, 3, 5)),
    "attention-mask": lambda: _mha()(zeros(2, 3, 8), mask=np.ones((2, 2), bool)),
    "mse-shapes": lambda: tt.nn.MSELoss()(zeros(3, 1), zeros(3)),
    "ce-target-shape": lambda: tt.nn.CrossEntropyLoss()(zeros(3, 4), np.zeros((3, 1), np.int64)),
    # wrong dtypes
    "embedding-float": lambda: tt.nn.Embedding(10, 4, generator=0)(np.array([1.5, 2.0])),
    "ce-float-target": lambda: tt.nn.CrossEntropyLoss()(zeros(3, 4), np.array([0.0, 1.0, 2.0], f32)),
    "where-condition": lambda: tt.where(ones(3), ones(3), 0.0),
    "int-requires-grad": lambda: Tensor(np.arange(3), requires_grad=True),
    "decode-float": lambda: tt.text.CharTokenizer.from_text("abc").decode(np.array([0.0, 1.0])),
    # a model and its input on different dtypes
    "dtype-linear": lambda: _linear()(zeros(2, 4, dtype=np.float64)),
    "dtype-linear-int": lambda: _linear()(Tensor(np.ones((2, 4), np.int64))),
    "dtype-model-float64": lambda: _linear().to(np.float64)(zeros(2, 4)),
    "dtype-conv": lambda: tt.nn.Conv2d(1, 2, 3, generator=0)(zeros(1, 1, 5, 5, dtype=np.float64)),
    "dtype-batchnorm": lambda: tt.nn.BatchNorm2d(2)(zeros(2, 2, 3, 3, dtype=np.float64)),
    "dtype-positional": lambda: tt.nn.LearnedPositionalEmbedding(8, 4, generator=0)(zeros(1, 3, 4, dtype=np.float64)),
    "dtype-layernorm": lambda: tt.nn.LayerNorm(4)(zeros(2, 4, dtype=np.float64)),
    "dtype-attention": lambda: _mha()(zeros(1, 3, 8, dtype=np.float64)),
    "dtype-attention-key": lambda: _mha()(zeros(1, 3, 8), zeros(1, 3, 8, dtype=np.float64)),
    "dtype-feedforward": lambda: tt.nn.FeedForward(8, 16, generator=0)(zeros(1, 3, 8, dtype=np.float64)),
    "dtype-block": lambda: tt.nn.TransformerBlock(8, 2, 16, generator=0)(zeros(1, 3, 8, dtype=np.float64)),
    # out-of-range indices
    "embedding-range": lambda: tt.nn.Embedding(10, 4, generator=0)(np.array([[1, 2], [10, 0]])),
    "ce-class-range": lambda: tt.nn.CrossEntropyLoss()(zeros(3, 4), np.array([0, 4, 2])),
    "gpt-token-range": lambda: _gpt()(np.array([[1, 12]])),
    "gpt-too-long": lambda: _gpt()(np.zeros((1, 9), np.int64)),
    "getitem-range": lambda: ones(4)[7],
    "decode-range": lambda: tt.text.CharTokenizer.from_text("abc").decode([0, 3]),
    "encode-unknown": lambda: tt.text.CharTokenizer.from_text("abc").encode("abz"),
    # empty batches and reductions over nothing
    "batchnorm-empty": lambda: tt.nn.BatchNorm2d(1)(zeros(0, 1, 4, 4)),
    "attention-no-keys": lambda: _mha()(zeros(2, 0, 8)),
    "gpt-empty-sequence": lambda: _gpt()(np.zeros((2, 0), np.int64)),
    "max-empty": lambda: zeros(0, 3).max(),
    "var-too-few": lambda: ones(1).var(ddof=1),
    "tokenizer-empty-text": lambda: tt.text.CharTokenizer.from_text(""),
}


def test_every_trigger_has_a_documented_row_and_every_row_a_trigger():
    documented = error_rows()
    assert sorted(set(TRIGGERS) - set(documented)) == [], "triggers without a row in docs/errors.md"
    assert sorted(set(documented) - set(TRIGGERS)) == [], "rows in docs/errors.md without a trigger"


@pytest.mark.parametrize("case", sorted(TRIGGERS))
def test_error_table(case):
    row = error_rows()[case]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an error, never a warning first
        with pytest.raises(Exception) as info:
            TRIGGERS[case]()
    assert type(info.value).__name__ == row["type"], f"{case}: raised {type(info.value).__name__}: {info.value}"
    assert row["excerpt"] in str(info.value), f"{case}: message was: {info.value}"


def _source_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for root in SOURCES for p in root.rglob("*.py"))


def test_rows_backed_elsewhere_name_existing_tests_and_current_messages():
    source = _source_text()
    checked = 0
    for row in doc_rows():
        path, _, name = row["test"].partition("::")
        if path == "tests/test_hardening_errors.py":
            continue
        function = name.split("[")[0]
        test_file = REPO / path
        assert test_file.is_file(), f"{row['test']}: no such file"
        assert re.search(rf"^def {re.escape(function)}\(", test_file.read_text(encoding="utf-8"), re.M), \
            f"{row['test']}: no such test"
        if len(row["cells"]) == 4:  # an error row: its excerpt is a literal part of some message
            excerpt = row["ticks"][2][0]
            assert excerpt in source, f"{row['test']}: excerpt {excerpt!r} is no longer in the framework's messages"
        checked += 1
    assert checked >= 10


# ---- errors raised by NumPy inside an op, and reductions over nothing ----------------------------------------
def test_numpy_errors_inside_a_forward_name_the_op():
    with pytest.raises(ValueError) as info:
        ones(2, 3) + ones(4)
    assert "core::add" in " ".join(getattr(info.value, "__notes__", [])) + str(info.value)


def test_mean_over_zero_elements_is_a_clear_error():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="core::mean"):
            zeros(0, 4).mean()


# ---- empty batches: a well-defined result, never a warning ------------------------------------------------
def _params_grads_zero(module):
    for name, p in module.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name
        assert not np.any(p.grad.data), name


def _layer_case(make_module, x, expected_shape):
    def run():
        module = make_module()
        inp = Tensor(x.data, requires_grad=True) if isinstance(x, Tensor) else x  # a float input gets a gradient too
        out = module(inp)
        assert out.shape == expected_shape and out.dtype == f32
        out.sum().backward()  # the sum over nothing is 0, so every gradient is 0
        _params_grads_zero(module)
        if isinstance(inp, Tensor):
            assert inp.grad.shape == inp.shape

    return run


def _loss_case(make_criterion, logits, target, expected):
    def run():
        x = Tensor(logits, requires_grad=True)
        loss = make_criterion()(x, target)
        if np.isnan(expected):
            assert np.isnan(loss.item())
        else:
            assert loss.item() == expected
        loss.backward()
        assert x.grad.shape == x.shape and not np.any(x.grad.data)

    return run


def _sum_of_nothing():
    x = Tensor(np.zeros((0, 3)), requires_grad=True)
    total = x.sum()
    assert total.item() == 0.0
    total.backward()
    assert x.grad.shape == (0, 3)


nn = tt.nn
no_rows, no_classes = np.zeros((0, 4), f32), np.zeros(0, np.int64)
EMPTY = {
    "linear": _layer_case(lambda: nn.Linear(4, 3, generator=0), zeros(0, 4), (0, 3)),
    "conv2d": _layer_case(lambda: nn.Conv2d(2, 3, 3, generator=0), zeros(0, 2, 5, 5), (0, 3, 3, 3)),
    "maxpool2d": _layer_case(lambda: nn.MaxPool2d(2), zeros(0, 2, 4, 4), (0, 2, 2, 2)),
    "avgpool2d": _layer_case(lambda: nn.AvgPool2d(2), zeros(0, 2, 4, 4), (0, 2, 2, 2)),
    "flatten": _layer_case(lambda: nn.Flatten(), zeros(0, 2, 4, 4), (0, 32)),
    "batchnorm2d-eval": _layer_case(lambda: nn.BatchNorm2d(2).eval(), zeros(0, 2, 3, 3), (0, 2, 3, 3)),
    "embedding": _layer_case(lambda: nn.Embedding(10, 4, generator=0), np.zeros((0, 5), np.int64), (0, 5, 4)),
    "layernorm": _layer_case(lambda: nn.LayerNorm(4), zeros(0, 3, 4), (0, 3, 4)),
    "attention": _layer_case(lambda: nn.MultiHeadAttention(8, 2, generator=0), zeros(0, 3, 8), (0, 3, 8)),
    "gpt": _layer_case(lambda: nn.GPT(10, 8, 8, 2, 1, 16, generator=0), np.zeros((0, 8), np.int64), (0, 8, 10)),
    "softmax": _layer_case(lambda: nn.Softmax(), zeros(0, 5), (0, 5)),
    "cross-entropy-mean": _loss_case(lambda: nn.CrossEntropyLoss(), no_rows, no_classes, np.nan),
    "cross-entropy-sum": _loss_case(lambda: nn.CrossEntropyLoss(reduction="sum"), no_rows, no_classes, 0.0),
    "cross-entropy-all-ignored": _loss_case(
        lambda: nn.CrossEntropyLoss(ignore_index=-1), np.zeros((2, 4), f32), np.array([-1, -1]), np.nan
    ),
    "nll-mean": _loss_case(lambda: nn.NLLLoss(), no_rows, no_classes, np.nan),
    "mse-mean": _loss_case(lambda: nn.MSELoss(), no_rows, np.zeros((0, 4), f32), np.nan),
    "bce-with-logits-mean": _loss_case(lambda: nn.BCEWithLogitsLoss(), no_rows, np.zeros((0, 4), f32), np.nan),
    "sum": _sum_of_nothing,
}


def test_every_empty_batch_case_has_a_documented_row():
    documented = set()
    for row in doc_rows():
        match = re.fullmatch(r"tests/test_hardening_errors\.py::test_empty_batch\[([\w-]+)\]", row["test"])
        if match:
            documented.add(match.group(1))
    assert documented == set(EMPTY)


@pytest.mark.parametrize("case", sorted(EMPTY))
def test_empty_batch(case):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice", no "invalid value"
        EMPTY[case]()
