"""Per-op overhead of the engine: Function.apply (forward) and backward, over the raw NumPy call.

Run: uv run python bench/apply_overhead.py   (prints microseconds per op; not a test)
"""

from __future__ import annotations

import argparse
import timeit

import numpy as np

from tinytorch_core import Tensor, no_grad


def per_call_us(fn, number: int, repeat: int = 7) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=16, help="elements per small array")
    parser.add_argument("--number", type=int, default=20_000)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    a_np = rng.standard_normal(args.size).astype(np.float32)
    b_np = rng.standard_normal(args.size).astype(np.float32)
    a, b = Tensor(a_np), Tensor(b_np)
    a_req, b_req = Tensor(a_np, requires_grad=True), Tensor(b_np, requires_grad=True)
    g = np.ones_like(a_np)

    raw_mul = per_call_us(lambda: a_np * b_np, args.number)
    raw_exp = per_call_us(lambda: np.exp(a_np), args.number)
    with no_grad():
        nograd_mul = per_call_us(lambda: a * b, args.number)
    nograd_exp = per_call_us(lambda: a.exp(), args.number)
    record_mul = per_call_us(lambda: a_req * b_req, args.number)
    record_exp = per_call_us(lambda: a_req.exp(), args.number)

    def mul_fwd_bwd():
        (a_req * b_req).backward(g)

    def raw_mul_fwd_bwd():
        out = a_np * b_np
        return out, g * b_np, g * a_np

    both = per_call_us(mul_fwd_bwd, args.number // 4)
    raw_both = per_call_us(raw_mul_fwd_bwd, args.number)

    print(f"arrays of {args.size} float32 elements; best of 7, microseconds per op")
    print(f"{'case':46s} {'time':>8s} {'overhead':>9s}")
    rows = [
        ("mul, raw NumPy", raw_mul, 0.0),
        ("mul, Tensor, no recording (no_grad)", nograd_mul, nograd_mul - raw_mul),
        ("mul, Tensor, recording the graph", record_mul, record_mul - raw_mul),
        ("exp, raw NumPy", raw_exp, 0.0),
        ("exp, Tensor, inputs not requiring grad", nograd_exp, nograd_exp - raw_exp),
        ("exp, Tensor, recording the graph", record_exp, record_exp - raw_exp),
        ("mul forward+backward, raw NumPy (3 products)", raw_both, 0.0),
        ("mul forward+backward through the engine", both, both - raw_both),
    ]
    for name, t, over in rows:
        print(f"{name:46s} {t:8.2f} {over:9.2f}")


if __name__ == "__main__":
    main()
