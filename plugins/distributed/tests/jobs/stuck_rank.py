"""A job in which rank 1 never reaches the barrier (it is stuck): rank 0's barrier times out
(TINYTORCH_DISTRIBUTED_TIMEOUT) and ends the job instead of waiting forever."""

import time

import tinytorch_core as tt

job = tt.distributed.init()
if job.rank == 1:
    time.sleep(60)
tt.distributed.barrier()
