"""The core ops of PyTorch's names on bad input (a clear error naming the op, what it expected
and what came; never NumPy's wraparound of a negative index into a wrong answer) and with
in-place writes (the pieces of ``split``/``chunk``/``unbind``/``narrow`` and ``expand`` are views
whose writes the graph follows)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import GraphError, Tensor
from tinytorch_core.testing import gradcheck


def t64(a, requires_grad=False):
    return Tensor(np.asarray(a, np.float64), requires_grad=requires_grad, dtype=np.float64)


x34 = t64(np.arange(12.0).reshape(3, 4))
ints = Tensor(np.array([1, 2, 3]))

BAD = {  # case: (call, error class, excerpt)
    "gather-out-of-range": (lambda: x34.gather(1, Tensor(np.array([[0, 4]]))), IndexError,
                            "core::gather: index 4 is out of range for axis 1 of size 4"),
    "gather-negative": (lambda: x34.gather(1, Tensor(np.array([[0, -1]]))), IndexError,
                        "index -1 is out of range for axis 1 of size 4 (expected every index in [0, 4))"),
    "gather-float-index": (lambda: x34.gather(0, Tensor(np.array([[0.0]]))), TypeError,
                           "core::gather: index must hold integers, got float32"),
    "gather-rank": (lambda: x34.gather(1, Tensor(np.array([0, 1]))), ValueError,
                    "index must have as many dimensions as the input (2)"),
    "gather-too-large": (lambda: x34.gather(1, Tensor(np.zeros((4, 1), np.int64))), ValueError,
                         "is larger than the input (3, 4) along axis 0"),
    "gather-dim": (lambda: x34.gather(2, Tensor(np.zeros((1, 1), np.int64))), ValueError,
                   "gather: axis 2 is out of range"),
    "index-select-negative": (lambda: x34.index_select(0, Tensor(np.array([-1]))), IndexError,
                              "core::index_select: index -1 is out of range for axis 0 of size 3"),
    "index-select-too-large": (lambda: x34.index_select(1, [0, 9]), IndexError, "index 9 is out of range"),
    "index-select-2d": (lambda: x34.index_select(1, Tensor(np.zeros((1, 1), np.int64))), ValueError,
                        "index must be a 1-D list of positions, got shape (1, 1)"),
    "index-select-bool": (lambda: x34.index_select(1, Tensor(np.array([True]))), TypeError,
                          "index must hold integers, got bool"),
    "masked-fill-float-mask": (lambda: x34.masked_fill(x34 * 1.0, 0.0), TypeError,
                               "masked_fill: the mask must be a bool tensor, got float64"),
    "masked-fill-value-shape": (lambda: x34.masked_fill(x34 > 1, Tensor(np.ones(2))), ValueError,
                                "value must be a number or a 0-d tensor, got shape (2,)"),
    "masked-fill-fraction-into-int": (lambda: ints.masked_fill(ints > 1, 1.5), TypeError,
                                      "the value 1.5 cannot fill a int64 tensor"),
    "masked-fill-shapes": (lambda: x34.masked_fill(Tensor(np.ones(3, bool)), 0.0), ValueError,
                           "masked_fill: a mask of shape (3,) does not broadcast with the tensor's shape (3, 4)"),
    "tril-vector": (lambda: tt.tril(t64([1.0, 2.0])), ValueError,
                    "core::tril: expected a matrix or a batch of matrices, got shape (2,)"),
    "triu-float-diagonal": (lambda: x34.triu(0.5), TypeError, "diagonal must be an int, got 0.5"),
    "flip-repeated": (lambda: x34.flip(0, -2), ValueError, "flip: repeated axis"),
    "roll-mismatch": (lambda: x34.roll((1, 2), 0), ValueError, "roll: shifts and dims must have one length"),
    "roll-0d-dim": (lambda: t64(1.0).roll(1, 0), ValueError, "roll: a 0-d tensor has no dimension to roll along"),
    "roll-float-shift": (lambda: x34.roll(1.5), TypeError, "roll: shifts must be ints, got 1.5"),
    "repeat-too-few": (lambda: x34.repeat(2), ValueError, "repeat: 1 size(s) for a tensor of 2 dimensions"),
    "repeat-negative": (lambda: x34.repeat(2, -1), ValueError, "repeat: each size must be an int >= 0, got -1"),
    "expand-leading-minus-one": (lambda: x34.expand(-1, 3, 4), ValueError, "-1 keeps an existing size"),
    "expand-grow-an-axis": (lambda: x34.expand(3, 5), ValueError,
                            "a tensor of shape (3, 4) cannot be expanded to (3, 5): only axes of size 1 grow"),
    "expand-too-few": (lambda: x34.expand(4), ValueError, "expand: 1 size(s) for a tensor of 2 dimensions"),
    "split-sections-sum": (lambda: x34.split([1, 1]), ValueError,
                           "split: sections [1, 1] add up to 2, but axis 0 has size 3"),
    "split-size-zero": (lambda: x34.split(0), ValueError, "split: split_size 0 cannot cut axis 0 of size 3"),
    "split-0d": (lambda: t64(1.0).split(1), ValueError, "split: expected a tensor with at least one dimension"),
    "chunk-zero": (lambda: x34.chunk(0), ValueError, "chunk: chunks must be an int >= 1, got 0"),
    "chunk-bool": (lambda: x34.chunk(True), TypeError, "chunk: chunks must be an int, got True"),
    "unbind-dim": (lambda: x34.unbind(2), ValueError, "unbind: axis 2 is out of range"),
    "narrow-start": (lambda: x34.narrow(1, 5, 0), IndexError, "narrow: start 5 is out of range for axis 1 of size 4"),
    "narrow-length": (lambda: x34.narrow(1, 2, 3), ValueError, "narrow: start (2) + length (3) exceeds axis 1"),
    "cumsum-no-dim": (lambda: tt.cumsum(x34, None), TypeError, "cumsum: axis must be an int"),
    "logsumexp-no-dim": (lambda: tt.logsumexp(x34, None), TypeError, "logsumexp: dim is required"),
    "logsumexp-int": (lambda: ints.logsumexp(0), TypeError, "core::logsumexp: expected a floating-point tensor"),
    "norm-p": (lambda: x34.norm(0.5), ValueError, "norm: p must be 'fro', inf or a number >= 1, got 0.5"),
    "norm-nuc": (lambda: x34.norm("nuc"), ValueError, "norm: p must be 'fro', inf or a number >= 1, got 'nuc'"),
    "norm-int": (lambda: ints.norm(), TypeError, "core::norm: expected a floating-point tensor, got int64"),
    "norm-inf-empty": (lambda: t64(np.zeros((2, 0))).norm(math.inf, 1), ValueError, "the inf-norm over an empty axis"),
    "sin-int": (lambda: ints.sin(), TypeError, "core::sin: expected a floating-point tensor, got int64"),
    "rsqrt-int": (lambda: tt.rsqrt(ints), TypeError, "core::rsqrt: expected a floating-point tensor"),
    "floor-bool": (lambda: Tensor(np.array([True])).floor(), TypeError, "core::floor: expected a number tensor"),
    "round-int-decimals": (lambda: ints.round(decimals=1), TypeError, "decimals=1 needs a floating-point tensor"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_a_clear_error(case):
    call, error, excerpt = BAD[case]
    with pytest.raises(error) as info:
        call()
    said = " ".join([str(info.value), *getattr(info.value, "__notes__", [])])
    assert excerpt in said, said


def test_an_index_changed_after_the_forward_does_not_change_the_gradient():
    index = np.array([[0, 0], [1, 3]])
    x = t64(np.ones((2, 4)), requires_grad=True)
    out = x.gather(1, index)
    index[:] = 2  # the op keeps its own copy, as GetItem does
    out.sum().backward()
    assert x.grad.tolist() == [[2.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0]]


def test_a_mask_changed_in_place_after_masked_fill_is_refused_at_backward():
    mask = Tensor(np.array([True, False]))
    x = t64([1.0, 2.0], requires_grad=True)
    out = x.masked_fill(mask, 0.0)
    mask[0] = False
    with pytest.raises(GraphError, match="modified in place"):
        out.sum().backward()


# ---- views and in-place writes -------------------------------------------------------------------------
def test_pieces_are_views_that_writes_go_through_both_ways():
    x = t64(np.arange(6.0))
    first, second = x.split(3)
    first[0] = 10.0  # into a piece: the tensor sees it
    x[5] = 50.0  # into the tensor: the piece sees it
    assert x.tolist() == [10.0, 1.0, 2.0, 3.0, 4.0, 50.0] and second.tolist() == [3.0, 4.0, 50.0]
    row = x.reshape(2, 3).unbind(0)[1]
    row += 1.0
    assert x.tolist() == [10.0, 1.0, 2.0, 4.0, 5.0, 51.0]


def test_a_recorded_write_into_a_piece_reaches_the_gradient_of_the_tensor_it_was_cut_from():
    def write_into_piece(w, v):
        x = w * 1.0
        first, _ = x.chunk(2)
        first[1:2] = v  # x[1] now comes from v
        return x * t64([1.0, 2.0, 3.0, 4.0])

    assert gradcheck(write_into_piece, np.arange(4.0), np.array([10.0]))
    w, v = t64(np.arange(4.0), requires_grad=True), t64([10.0], requires_grad=True)
    write_into_piece(w, v).sum().backward()
    assert w.grad.tolist() == [1.0, 0.0, 3.0, 4.0] and v.grad.tolist() == [2.0]


def test_a_recorded_write_into_the_tensor_reaches_its_pieces_and_expanded_views():
    def pieces_after_a_write(w, v):
        x = w * 1.0
        pieces, wide = x.unbind(0), x.expand(2, 3)
        x[0:1] = v  # each piece and the expanded view read v now, and their gradients go to v
        return pieces[0] * 5.0, pieces[2] * 7.0, wide * 2.0

    assert gradcheck(pieces_after_a_write, np.arange(3.0), np.array([9.0]))
    w, v = t64(np.arange(3.0), requires_grad=True), t64([9.0], requires_grad=True)
    first, last, wide = pieces_after_a_write(w, v)
    assert first.item() == 45.0 and wide.data[:, 0].tolist() == [18.0, 18.0]
    (first + last + wide.sum()).backward()
    assert w.grad.tolist() == [0.0, 4.0, 11.0] and v.grad.tolist() == [9.0]


def test_an_expanded_view_refuses_writes_as_pytorch_does():
    wide = t64([1.0, 2.0]).expand(3, 2)
    with pytest.raises(ValueError, match="read-only"):
        wide[0] = 5.0
    w = t64([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match="the tensor is read-only.* clone\\(\\) it first"):
        (w * 1.0).expand(3, 2)[0] = w
    assert np.shares_memory(wide.data, wide.data.base)


def test_copies_are_not_views_and_int_outputs_carry_no_gradient():
    x = t64(np.arange(4.0), requires_grad=True)
    for copy in (x.flip(0), x.roll(1), x.repeat(2), x.reshape(2, 2).tril(), x.gather(0, [1]), x.index_select(0, [1])):
        assert not np.shares_memory(copy.data, x.data)
    assert x.isnan().requires_grad is False and tt.cumsum(Tensor(np.arange(3)), 0).requires_grad is False


def test_pieces_backpropagated_one_by_one_need_retain_graph_as_every_node_here():
    x = t64(np.arange(4.0), requires_grad=True)
    first, second = x.split(2)
    first.sum().backward(retain_graph=True)
    second.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0, 1.0]
