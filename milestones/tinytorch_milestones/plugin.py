"""pluggy hooks of the milestone suite: the milestones and the ``tinytorch milestones`` command.

Nothing here imports a later stage: each milestone resolves the layers it needs through the
registry when it runs, so a milestone whose stages are missing reports itself locked.
"""

from __future__ import annotations

from tinytorch_core import Milestone, hookimpl

from . import cli, cnn, grade, mlp, mlperf, perceptron, skeleton, tinygpt, transformer, xor

#: (module, stages it needs); the catalog adds their prerequisites
MILESTONES = (
    (perceptron, ("nn",)),
    (xor, ("nn",)),
    (mlp, ("nn",)),
    (cnn, ("spatial",)),
    (transformer, ("attention",)),
    (mlperf, ("spatial", "profiling", "compression", "generation")),
    (tinygpt, ("attention",)),
)


@hookimpl
def tinytorch_register_milestones(register):
    for order, (module, requires) in enumerate(MILESTONES):
        register(Milestone(
            name=module.NAME,
            year=module.YEAR,
            title=module.TITLE,
            requires=requires,
            run=module.run,
            description=module.DESCRIPTION,
            order=order,
            extended=getattr(module, "EXTENDED", False),
        ))


@hookimpl
def tinytorch_cli_commands(commands):
    commands.add(
        "milestones",
        help="the milestone suite: list | run NAME | verify [NAMES...] | profile NAME",
        setup=cli.setup,
        run=cli.run,
    )
    commands.add(
        "implement",
        help="write a skeleton of a curriculum stage for you to implement: every op and layer as a stub",
        setup=skeleton.setup,
        run=skeleton.run,
    )
    commands.add(
        "grade",
        help="run a stage's conformance suite against whatever provides it; a score per symbol",
        setup=grade.setup,
        run=grade.run,
    )
