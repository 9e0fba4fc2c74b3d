"""The stage catalog is the single source of truth: installed plugins agree with it."""

import importlib.metadata as metadata
import re

import pytest

from tinytorch_core import catalog, default_runtime
from tinytorch_core.testing import assert_registers_catalog


def test_stage_orders_are_unique_and_prerequisites_come_earlier():
    orders = [s.order for s in catalog.STAGES]
    assert orders == sorted(set(orders))
    for stage in catalog.STAGES:
        for required in stage.requires:
            assert catalog.stage(required).order < stage.order


def test_install_commands_include_every_prerequisite_in_order():
    assert catalog.install_command("core") == "pip install ."
    assert catalog.install_command("attention") == "pip install . ./plugins/nn ./plugins/embeddings ./plugins/attention"
    assert catalog.install_command("milestones") == "pip install . ./milestones"


def test_no_symbol_is_introduced_by_two_stages():
    for namespace in catalog.NAMESPACES:
        names = catalog.names_in(namespace)
        assert len(names) == len(set(names)), namespace


LOADED = [s for s in catalog.STAGES if default_runtime().stage_status(s.name)[0] == "loaded"]


@pytest.mark.parametrize("stage", LOADED, ids=lambda s: s.name)
def test_each_installed_stage_registers_exactly_its_catalog_symbols(stage):
    assert_registers_catalog(stage.name)


@pytest.mark.parametrize("stage", [s for s in catalog.STAGES if s.name != "core"], ids=lambda s: s.name)
def test_declared_package_dependencies_match_the_catalog(stage):
    try:
        requirements = metadata.requires(stage.distribution) or []
    except metadata.PackageNotFoundError:
        pytest.skip(f"{stage.distribution} is not installed in this environment")
    declared = {
        re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0] for r in requirements if r.startswith("tinytorch-")
    }
    assert declared == {catalog.stage(r).distribution for r in stage.requires}


def test_the_catalog_check_fails_for_a_stage_that_registers_too_little():
    from tinytorch_core import Module
    from tinytorch_core.host.runtime import Runtime
    from tinytorch_core.testing import FakeEntryPoint, plugin_module

    partial_nn = plugin_module(
        "partial_nn",
        tinytorch_declare_stage=lambda declare: declare("nn"),
        tinytorch_register_symbols=lambda registry: registry.layer("Linear", Module),
    )
    runtime = Runtime([FakeEntryPoint("nn", partial_nn, distribution="tinytorch-nn")], environ={})
    with pytest.raises(AssertionError, match=r"missing .*'ops': \[.*'linear'"):
        assert_registers_catalog("nn", runtime)


def test_the_catalog_names_the_commands_and_milestones_each_package_registers():
    """The catalog reserves these names for their package (a squatter is refused), so it must
    list exactly what each package registers."""
    from tinytorch_core.host.runtime import LOADED

    runtime = default_runtime()
    runtime.load()
    checked = 0
    for package in catalog.PACKAGES:
        registered = runtime.plugins.get(package.name)
        if registered is None or registered.status != LOADED:
            continue
        checked += 1
        assert sorted(c.name for c in registered.registered.commands) == sorted(package.commands), package.name
        assert sorted(m.name for m in registered.registered.milestones) == sorted(package.milestones), package.name
    assert checked >= 2  # core and nn at least
