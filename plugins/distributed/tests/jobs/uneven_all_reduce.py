"""Each rank passes a different shape to all_reduce (an uneven last batch's per-sample losses)."""

import sys

import numpy as np

import tinytorch_core as tt

tt.distributed.init(timeout=10)
rank = tt.distributed.get_rank()
values = np.arange(3.0) if rank == 0 else np.arange(5.0)
try:
    tt.distributed.all_reduce(values, op="sum")
except ValueError as exc:
    sys.stderr.write(f"rank {rank}: {exc}\n")  # stderr: only rank 0's stdout is shown
else:
    sys.stderr.write(f"rank {rank}: reduced without an error\n")
