"""Knowledge distillation: a small student learns from a large teacher's soft predictions.

The teacher's logits divided by a temperature T > 1 give a softened distribution p_T that says
which wrong classes look alike; the student matches it with its own softened log-probabilities
(the KL divergence), alongside the usual cross-entropy on the true labels:

    loss = alpha * T**2 * KL(p_T || softmax(student / T))  +  (1 - alpha) * cross_entropy(student, y)

The T**2 keeps the soft term's gradient the same size whatever T is (the softened gradients
shrink as 1 / T**2; Hinton et al., 2015). The teacher is data here: no gradient reaches it.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

import tinytorch_core as tt
from tinytorch_core import Tensor
from tinytorch_core.checks import array_of, shape_of

__all__ = ["distillation_loss"]


def distillation_loss(student_logits, teacher_logits, target, temperature=4.0, alpha=0.9):
    """The distillation loss above, averaged over the batch. ``student_logits`` and
    ``teacher_logits`` are (N, C); ``target`` holds N integer classes. An empty batch gives NaN
    (the mean of nothing, as ``cross_entropy`` gives) with a zero gradient."""
    _check(student_logits, teacher_logits, temperature, alpha)
    t = float(temperature)
    dtype = array_of(student_logits).dtype  # the student's: Tensor() alone would make float32
    teacher_probs, teacher_entropy_term = _soft_targets(teacher_logits, t)
    # in float64 whatever the student's dtype: T**2 magnifies the rounding of a KL that shrinks as
    # 1 / T**2 (in float32 the soft term was 0 at T = 1e4), and logits / T stays finite for tiny T
    student_log_probs = tt.ops.log_softmax(student_logits.to(np.float64) / t, axis=-1)
    # KL(p || q) = sum p log p - sum p log q; a class the teacher rules out (p = 0) adds nothing
    cross = (teacher_probs * student_log_probs).sum(axis=-1).sum()
    n = len(teacher_probs)
    kl_sum = teacher_entropy_term - cross
    soft = (kl_sum * (t * t / n) if n else kl_sum * float("nan")).to(dtype)
    hard = tt.ops.cross_entropy(student_logits, target)
    return soft * alpha + hard * (1.0 - alpha)


def _soft_targets(teacher_logits, t: float):
    """The teacher's softened probabilities (float64, no gradient) and ``sum p log p`` over the
    batch, with 0 log 0 = 0; a NaN or infinite teacher gives NaN. Computed by ops, not NumPy on
    the teacher's array, so that a compiled training step computes them anew from each batch."""
    with tt.no_grad():
        teacher = tt.as_tensor(array_of(teacher_logits) if not isinstance(teacher_logits, Tensor) else teacher_logits)
        log_probs = tt.ops.log_softmax(teacher.to(np.float64) / t, axis=-1)
        probs = tt.ops.exp(log_probs)
        entropy_term = tt.ops.where(probs == 0, 0.0, probs * log_probs).sum()  # 0 log 0 = 0; NaN stays NaN
    return probs, entropy_term


def _check(student_logits, teacher_logits, temperature, alpha) -> None:
    where = "distillation_loss"
    student, teacher = shape_of(student_logits), shape_of(teacher_logits)
    if len(student) != 2 or student != teacher or student[1] == 0:
        raise ValueError(f"{where}: student and teacher logits must both be (N, C) with C >= 1 classes, got "
                         f"{student} and {teacher}")
    if not isinstance(student_logits, Tensor) or array_of(student_logits).dtype.kind != "f":
        raise TypeError(f"{where}: student_logits must be a float Tensor (the student's output), got "
                        f"{type(student_logits).__name__}")
    if array_of(teacher_logits).dtype.kind != "f":
        raise TypeError(f"{where}: teacher_logits must be float, got dtype {array_of(teacher_logits).dtype}")
    for name, value in (("temperature", temperature), ("alpha", alpha)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{where}: {name} must be a number, got {value!r}")
    if not 0 < temperature < math.inf:
        raise ValueError(f"{where}: temperature must be a positive finite number, got {temperature!r}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"{where}: alpha (the soft loss's weight) must be in [0, 1], got {alpha!r}")
