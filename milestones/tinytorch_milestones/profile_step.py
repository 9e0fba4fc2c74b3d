"""``tinytorch milestones profile NAME``: where a training step of a milestone's model spends its
time, op by op and module by module (needs the profiling stage).

The step is the milestone's own: its model, first batch, loss and optimizer (each milestone
module's ``experiment(options)``). One step runs untimed first, so the profile shows steps of
training, not first-call costs (caches, imports, allocations).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tinytorch_core import StageUnavailableError

from .gradient_flow import as_arrays, to_tensors
from .runner import DEFAULT_SEED, RunOptions, lock_state, ordered_milestones

SORT_KEYS = ("self_time", "total_time", "calls", "flops", "memory", "name")


def setup(parser: argparse.ArgumentParser, seed_option, output_file_option, input_directory_option,
          integer_option) -> None:
    """The options of ``milestones profile`` (the option types come from the milestones CLI)."""
    parser.add_argument("names", nargs=1, metavar="NAME", help="the milestone whose training step to profile")
    parser.add_argument("--seed", type=seed_option, default=DEFAULT_SEED, help="seed of every random source")
    parser.add_argument("--trace", metavar="PATH", type=output_file_option("--trace", regular_only=True),
                        help="also write a Chrome/Perfetto trace (Trace Event JSON) to PATH")
    parser.add_argument("--sort", choices=SORT_KEYS, default="self_time", help="order of the table (default self_time)")
    parser.add_argument("--rows", type=integer_option("--rows", 1), default=20, help="rows of the table (default 20)")
    parser.add_argument("--steps", type=integer_option("--steps", 1, 100), default=3,
                        help="training steps to profile, 1 to 100 (default 3: one step's timings are noisy)")
    images = parser.add_mutually_exclusive_group()
    images.add_argument("--mnist-dir", metavar="DIR", type=input_directory_option("--mnist-dir"),
                        help="MLP and CNN read MNIST from the IDX files in DIR instead of the bundled digits")
    images.add_argument("--cifar-dir", metavar="DIR", type=input_directory_option("--cifar-dir"),
                        help="MLP and CNN read CIFAR-10 from its binary files in DIR")


def run(args, runtime) -> int:
    from rich.markup import escape

    from .report import make_console

    console = make_console()
    name = args.names[0]
    milestone = {m.name: m for m in ordered_milestones(runtime)}.get(name)
    module = _milestone_modules().get(name)
    if milestone is None or module is None:
        console.print(f"[bold red]unknown milestone {escape(name)!r}[/]; profilable: "
                      f"{escape(', '.join(_milestone_modules()))}")
        return 2
    reason, install = lock_state(milestone, runtime)
    if reason:
        console.print(f"{name} is locked: {reason}; install with: {install}", markup=False)
        return 1
    try:
        profiler = runtime.namespace("profiler")
        profile, record = profiler.profile, profiler.record
    except StageUnavailableError as exc:
        console.print(f"tinytorch milestones profile: {exc}", markup=False)
        return 1
    experiment = module.experiment(RunOptions(seed=args.seed, mnist_dir=args.mnist_dir, cifar_dir=args.cifar_dir,
                                              runtime=runtime))
    step = training_step(experiment, record)
    step()  # warm-up
    with profile() as prof:
        for _ in range(args.steps):
            step()
    console.print(f"{args.steps} training step(s) of {experiment.label}, same batch: {experiment.architecture}",
                  markup=False)
    print(prof.table(sort_by=args.sort, row_limit=args.rows))  # rendered tables: printed as they are
    print(prof.by_module())
    if args.trace:
        Path(args.trace).parent.mkdir(parents=True, exist_ok=True)  # as --json does: the check allowed new folders
        prof.export_chrome_trace(args.trace)
        console.print(f"trace written to {args.trace} (open it in https://ui.perfetto.dev or chrome://tracing)",
                      markup=False)
    return 0


def training_step(experiment, record):
    """One optimizer step of ``experiment`` on its first batch, the optimizer's parts as named ranges."""
    tensors = to_tensors(as_arrays(next(iter(experiment.batches))))
    model, optimizer = experiment.model, experiment.optimizer
    model.train()

    def step():
        with record("optimizer.zero_grad"):
            optimizer.zero_grad()
        loss = experiment.loss_fn(model, *tensors)
        loss.backward()
        with record("optimizer.step"):
            optimizer.step()
        return loss

    return step


def _milestone_modules() -> dict:
    from .plugin import MILESTONES

    return {module.NAME: module for module, _ in MILESTONES if hasattr(module, "experiment")}
