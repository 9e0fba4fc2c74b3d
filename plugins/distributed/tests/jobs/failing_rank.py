"""A job in which rank 1 raises after a first all-reduce while rank 0 waits in a barrier:
the job must end at once, non-zero, with rank 1's error shown."""

import time

import tinytorch_core as tt

job = tt.distributed.init()
tt.distributed.all_reduce(1.0)
if job.rank == 1:
    raise ValueError("rank one ran out of luck")
tt.distributed.barrier()  # rank 0 would wait here forever without MPI_Abort
time.sleep(60)
