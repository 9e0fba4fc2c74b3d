"""``DistributedDataParallel``: the same model on every rank, each rank a slice of the batch,
the gradients averaged over the ranks during backward.

Why this equals training on the whole batch: the loss is a mean over the batch, so the gradient
of the global batch of B samples is the mean of the ranks' gradients, each a mean over B / N.
Every rank then applies the same averaged gradient to the same parameters and stays identical.

The life of one training step:

1. construction: rank 0's parameters and buffers are broadcast, so every rank starts equal;
   the parameters are grouped into buckets (``buckets.py``) and each gets a grad hook;
2. backward: when a parameter's gradient is final (core's post-accumulate-grad hook), its
   bucket counts it; a bucket whose gradients are all final starts a non-blocking all-reduce
   (``Iallreduce``) while backward goes on through the earlier layers: the overlap;
3. end of backward (core's ``queue_callback``): wait for every bucket, divide by the world
   size, and store the averages as the parameters' ``.grad``; a parameter no rank's backward
   reached keeps ``.grad = None``, as in training without DDP (an optimizer then leaves it be).

A parameter frozen or unfrozen after wrapping is seen at the next forward: the buckets are built
again from the parameters that require grad (every rank does the same, so they stay in step).

Buckets start strictly in index order: MPI requires every rank to issue its collectives in the
same order, and the order in which gradients become final is then irrelevant.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass

import numpy as np

from tinytorch_core import Module, as_tensor
from tinytorch_core.checks import positive_int
from tinytorch_core.engine import queue_callback

from .buckets import assign_buckets, flatten_gradients, unflatten_into_gradients
from .collectives import broadcast_, same_on_every_rank
from .world import DistributedError, init

DEFAULT_BUCKET_SIZE = 1 << 20  # bytes; PyTorch's default is 25 MiB for models thousands of times larger


@dataclass
class _PassState:
    """What changes from one backward pass to the next. It lives in this plain object, not in
    attributes of the Module: core counts a changed Module attribute as a changed setting, and a
    compiled step (``tt.compile``) would then record itself again at every step."""

    synchronizing: bool = True  # False inside no_sync()
    running: bool = False  # a backward pass has started reducing and not yet finished
    launched: int = 0  # buckets whose all-reduce has started in this pass


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training: call it like the module; ``backward`` then
    leaves every rank with the gradient averaged over all ranks.

    ``bucket_size``: bytes of gradient per all-reduce. ``world``: the ranks to train with
    (default: ``init()``, every process of the job)."""

    def __init__(self, module: Module, bucket_size: int = DEFAULT_BUCKET_SIZE, world=None):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected a Module to wrap, got {type(module).__name__}")
        self.module = module
        self.world = world if world is not None else init()
        self.bucket_size = positive_int(bucket_size, "bucket_size (bytes)", "DistributedDataParallel")
        self._broadcast_initial_state()
        self._pass = _PassState()
        self._hooked: set = set()  # ids of the parameters that carry this wrapper's grad hook
        self._assign_buckets(self._trained_parameters())

    def _trained_parameters(self) -> list:
        return [p for p in self.module.parameters() if p.requires_grad]

    def _assign_buckets(self, trained: list) -> None:
        """Buckets over the parameters that require grad, each with the grad hook."""
        self.buckets = assign_buckets(trained, self.bucket_size)
        self._bucket_of = {p: bucket for bucket in self.buckets for p in bucket.parameters}
        for parameter in trained:
            if id(parameter) not in self._hooked:
                self._hooked.add(id(parameter))
                parameter.register_post_accumulate_grad_hook(self._gradient_ready)

    def forward(self, *args, **kwargs):
        if self._pass.running:
            raise DistributedError(
                "DistributedDataParallel: the previous backward pass raised while its gradients were being "
                "all-reduced; the ranks are out of step. Restart the job"
            )
        trained = self._trained_parameters()
        if [id(p) for p in trained] != [id(p) for bucket in self.buckets for p in bucket.parameters]:
            self._assign_buckets(trained)  # a parameter was frozen or unfrozen since: reduce what trains now
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Inside the block, backward accumulates gradients locally and sends nothing; the first
        backward after it all-reduces everything accumulated (gradient accumulation)."""
        previous, self._pass.synchronizing = self._pass.synchronizing, False
        try:
            yield
        finally:
            self._pass.synchronizing = previous

    # ---- step 1: every rank starts from rank 0's weights -----------------------------------------
    def _broadcast_initial_state(self) -> None:
        named = list(itertools.chain(self.module.named_parameters(), self.module.named_buffers()))
        layout = [(name, tensor.data.shape, tensor.data.dtype.str) for name, tensor in named]
        if self.world.size > 1 and not same_on_every_rank(self.world, repr(layout), "DistributedDataParallel"):
            raise ValueError(
                f"DistributedDataParallel: the ranks' models differ (names, shapes or dtypes of their parameters and "
                f"buffers); this rank's: {', '.join(f'{n} {s}' for n, s, _ in layout[:8])}"
                f"{' ...' if len(layout) > 8 else ''}. Build the same model on every rank")
        for name, tensor in named:
            broadcast_(tensor.data, f"the initial value of {name}")

    # ---- step 2: a gradient is final --------------------------------------------------------------
    def _gradient_ready(self, parameter) -> None:
        if not self._pass.synchronizing or parameter not in self._bucket_of:  # frozen since it was hooked
            return
        if not self._pass.running:
            self._start_pass()
        self._bucket_of[parameter].waiting -= 1
        self._launch_ready_buckets()

    def _start_pass(self) -> None:
        self._pass.running, self._pass.launched = True, 0
        for bucket in self.buckets:
            bucket.waiting, bucket.request, bucket.result = len(bucket.parameters), None, None
        queue_callback(self._finish_pass)

    def _launch_ready_buckets(self) -> None:
        """Start the all-reduce of every ready bucket, in index order (the same on every rank)."""
        while self._pass.launched < len(self.buckets) and self.buckets[self._pass.launched].waiting == 0:
            self._launch(self.buckets[self._pass.launched])
        for bucket in self.buckets[: self._pass.launched]:
            bucket.request.Test()  # MPI moves messages along only when called: let it, while backward runs

    def _launch(self, bucket) -> None:
        send = flatten_gradients(bucket)
        bucket.result = np.empty_like(send)
        bucket.request = self.world.comm.Iallreduce(send, bucket.result)  # the sum over ranks
        self._pass.launched += 1

    # ---- step 3: the end of backward --------------------------------------------------------------
    def _finish_pass(self) -> None:
        """Start what is left (buckets holding a parameter this rank's forward did not use: its
        gradient counts as zeros), wait for all, and store the averages as ``.grad``."""
        while self._pass.launched < len(self.buckets):
            self._launch(self.buckets[self._pass.launched])
        for bucket in self.buckets:
            self.world.wait(bucket.request, f"the all-reduce of gradient bucket {bucket.index}")
            averaged = bucket.result / np.asarray(self.world.size, bucket.dtype)
            for parameter, grad in zip(bucket.parameters, unflatten_into_gradients(bucket, averaged)):
                parameter.grad = None if grad is None else as_tensor(grad)  # None: no rank reached it
            bucket.request = bucket.result = None
        self._pass.running = False
