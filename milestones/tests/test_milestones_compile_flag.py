"""``milestones verify --compile``: refused, with the install command, without the acceleration stage."""

from types import SimpleNamespace

from tinytorch_core import MissingStageError
from tinytorch_milestones.cli import _refusal


class _RuntimeWithoutAcceleration:
    def resolve(self, namespace, name):
        raise MissingStageError(f"{namespace}.{name} needs stage 'acceleration': pip install ./plugins/acceleration")


def test_compile_without_the_acceleration_stage_is_refused_before_training():
    args = SimpleNamespace(compile=True, plot=None, json=None)
    refusal = _refusal(args, {}, [], _RuntimeWithoutAcceleration())
    assert refusal.startswith("--compile needs the acceleration stage") and "pip install" in refusal


def test_without_the_flag_nothing_is_asked_of_the_stage():
    args = SimpleNamespace(compile=False, plot=None, json=None)
    assert _refusal(args, {}, [], _RuntimeWithoutAcceleration()) == ""
