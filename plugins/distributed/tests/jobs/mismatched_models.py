"""Each rank builds a different model (a rank-dependent width) and wraps it for data parallelism."""

import sys

import tinytorch_core as tt

tt.distributed.init(timeout=10)
rank = tt.distributed.get_rank()
model = tt.nn.Linear(3, 4 if rank == 0 else 5, generator=0)
try:
    tt.distributed.DistributedDataParallel(model)
except ValueError as exc:
    sys.stderr.write(f"rank {rank}: {exc}\n")  # stderr: only rank 0's stdout is shown
