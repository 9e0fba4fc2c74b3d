"""Knowledge distillation: a small student learns from a large teacher's soft predictions.

The teacher's logits divided by a temperature T > 1 give a softened distribution p_T that says
which wrong classes look alike; the student matches it with its own softened log-probabilities
(the KL divergence), alongside the usual cross-entropy on the true labels:

    loss = alpha * T**2 * KL(p_T || softmax(student / T))  +  (1 - alpha) * cross_entropy(student, y)

The T**2 keeps the soft term's gradient the same size whatever T is (the softened gradients
shrink as 1 / T**2; Hinton et al., 2015). The teacher is data here: no gradient reaches it.
"""

from __future__ import annotations

import numbers

import numpy as np

import tinytorch_core as tt
from tinytorch_core import Tensor
from tinytorch_core.checks import array_of, shape_of

__all__ = ["distillation_loss"]


def distillation_loss(student_logits, teacher_logits, target, temperature=4.0, alpha=0.9):
    """The distillation loss above, averaged over the batch. ``student_logits`` and
    ``teacher_logits`` are (N, C); ``target`` holds N integer classes."""
    _check(student_logits, teacher_logits, temperature, alpha)
    t = float(temperature)
    teacher = array_of(teacher_logits).astype(array_of(student_logits).dtype) / t
    teacher_log_probs = teacher - _logsumexp(teacher)  # stable log-softmax of plain data
    dtype = teacher.dtype  # the student's: Tensor() alone would make float32
    teacher_probs = Tensor(np.exp(teacher_log_probs), dtype=dtype)
    teacher_log_probs = Tensor(teacher_log_probs, dtype=dtype)
    student_log_probs = tt.ops.log_softmax(student_logits / t, axis=-1)
    per_row = (teacher_probs * (teacher_log_probs - student_log_probs)).sum(axis=-1)
    soft = per_row.mean() * (t * t)
    hard = tt.ops.cross_entropy(student_logits, target)
    return soft * alpha + hard * (1.0 - alpha)


def _logsumexp(logits):
    top = logits.max(axis=-1, keepdims=True)
    return top + np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))


def _check(student_logits, teacher_logits, temperature, alpha) -> None:
    where = "distillation_loss"
    student, teacher = shape_of(student_logits), shape_of(teacher_logits)
    if len(student) != 2 or student != teacher:
        raise ValueError(f"{where}: student and teacher logits must both be (N, C), got {student} and {teacher}")
    if not isinstance(student_logits, Tensor) or array_of(student_logits).dtype.kind != "f":
        raise TypeError(f"{where}: student_logits must be a float Tensor (the student's output), got "
                        f"{type(student_logits).__name__}")
    if array_of(teacher_logits).dtype.kind != "f":
        raise TypeError(f"{where}: teacher_logits must be float, got dtype {array_of(teacher_logits).dtype}")
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not temperature > 0:
        raise ValueError(f"{where}: temperature must be a positive number, got {temperature!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"{where}: alpha (the soft loss's weight) must be in [0, 1], got {alpha!r}")
