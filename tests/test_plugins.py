"""Specifications of third-party adapters and backend capabilities.

An adapter package registers through the `stackhop` entry-point group, exactly as the built-in
local adapter does. Here a fake distribution, `fakecloud`, is put on sys.path: a module with an
Adapter subclass and a `fakecloud-0.1.dist-info/` whose entry_points.txt names it.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from stackhop.core import plugins
from stackhop.core.api import compile
from stackhop.errors import CapabilityError, ConfigError

FAKEPLUGIN = '''
    """A third-party adapter: compiles to one JSON file; talks to no real backend."""

    from stackhop.core.adapter import Adapter, Capability, Compiled
    from stackhop.core.plugins import hookimpl


    class FakeCloud(Adapter):
        name = "fakecloud"
        capabilities = frozenset({Capability.RESOURCE_OPS, Capability.GPU})

        def compile(self, ir):
            return Compiled(self.name, {"fakecloud.json": ir.to_json().encode()})

        # These tests only compile; a call to anything else is itself a test failure.
        def submit(self, compiled, request):
            raise AssertionError("fakecloud only compiles in these tests")

        status = logs = cancel = artifacts = submit


    @hookimpl
    def stackhop_adapters():
        return [FakeCloud]
'''


def install_distribution(site: Path, dist: str, modules: dict[str, str], entry_points: str) -> None:
    """Write a minimal installed distribution (module files + dist-info) into `site`."""
    site.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        (site / f"{name}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)


@pytest.fixture
def fresh_plugins():
    """Entry points are read once per process; re-read them for this test and after it."""
    plugins.plugin_manager.cache_clear()
    yield
    plugins.plugin_manager.cache_clear()


@pytest.fixture
def fakecloud(tmp_path, monkeypatch, fresh_plugins):
    site = tmp_path / "site-packages"
    install_distribution(site, "fakecloud", {"fakeplugin": FAKEPLUGIN}, "[stackhop]\nfakecloud = fakeplugin\n")
    monkeypatch.delitem(sys.modules, "fakeplugin", raising=False)
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("fakeplugin", None)


SIMPLE = """
    from stackhop import pipeline, step

    @step
    def hello() -> str:
        return "hi"

    @pipeline
    def simple():
        hello()
"""

RESOURCE_OP = """
    from stackhop import pipeline, resource_op

    @pipeline
    def with_job():
        resource_op(
            "launch-job",
            {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "train"}},
            success_condition="status.succeeded > 0",
        )
"""

def test_builtin_local_is_registered_through_the_plugin_manager(project, fresh_plugins):
    assert "local" in plugins.adapters()


def test_an_entry_point_adapter_is_discovered_next_to_local(project, fakecloud):
    found = plugins.adapters()
    assert {"local", "fakecloud"} <= set(found)
    assert found["fakecloud"].name == "fakecloud"
    assert found["fakecloud"].__module__ == "fakeplugin"


def test_a_stack_naming_the_plugin_adapter_compiles_with_it(project, fakecloud, write_config, write_pipeline):
    module = write_pipeline(SIMPLE)
    write_config(
        """\
        stacks:
          cloud:
            adapter: fakecloud
        """
    )
    compiled = compile(module.simple, "cloud")
    assert compiled.adapter == "fakecloud"
    assert list(compiled.files) == ["fakecloud.json"]
    assert b'"name":"simple"' in compiled.files["fakecloud.json"]


def test_a_resource_op_on_local_is_a_capability_error_naming_step_feature_and_capable_adapter(
    project, fakecloud, write_pipeline
):
    module = write_pipeline(RESOURCE_OP)
    with pytest.raises(CapabilityError) as err:
        compile(module.with_job, "local")
    message = str(err.value)
    assert "'launch-job'" in message
    assert "resource_ops" in message
    assert "fakecloud" in message  # where the user could run it instead


def test_a_resource_op_compiles_on_an_adapter_that_supports_it(project, fakecloud, write_config, write_pipeline):
    module = write_pipeline(RESOURCE_OP)
    write_config("stacks:\n  cloud:\n    adapter: fakecloud\n")
    assert compile(module.with_job, "cloud").adapter == "fakecloud"


def test_node_selectors_on_local_only_warn(project, fresh_plugins, write_config, write_pipeline):
    module = write_pipeline(SIMPLE)
    write_config(
        """\
        stacks:
          pinned:
            adapter: local
            overrides:
              all_steps:
                node_selector: {pool: highmem}
        """
    )
    compiled = compile(module.simple, "pinned")
    assert compiled.adapter == "local"
    warnings = [n for n in compiled.notes if "node_selectors" in n]
    assert len(warnings) == 1
    assert "hello" in warnings[0] and "'pinned'" in warnings[0]


def test_a_broken_entry_point_is_a_config_error_naming_the_plugin(project, tmp_path, monkeypatch, fresh_plugins):
    site = tmp_path / "broken-site"
    install_distribution(
        site, "brokencloud",
        {"brokencloud_plugin": "raise ImportError('brokencloud needs libcloud>=9, which is not installed')\n"},
        "[stackhop]\nbrokencloud = brokencloud_plugin\n",
    )
    monkeypatch.delitem(sys.modules, "brokencloud_plugin", raising=False)
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(ConfigError) as err:
        plugins.adapters()
    message = str(err.value)
    assert "'brokencloud'" in message
    assert "libcloud>=9" in message  # the underlying reason is kept


IMPOSTOR = '''
    from stackhop.adapters.local.adapter import LocalAdapter
    from stackhop.core.materializers import Materializer
    from stackhop.core.plugins import hookimpl

    OVERRIDE = {override}

    class FasterLocal(LocalAdapter):
        override = OVERRIDE

    class NumpyAsText(Materializer):
        name = "numpy"
        types = ("numpy.ndarray",)
        override = OVERRIDE

    @hookimpl
    def stackhop_adapters():
        return [FasterLocal]

    @hookimpl
    def stackhop_materializers():
        return [NumpyAsText]
'''


@pytest.fixture
def impostor(tmp_path, monkeypatch, fresh_plugins):
    def install(override: bool) -> None:
        site = tmp_path / f"impostor-{override}"
        install_distribution(site, "acme-stackhop", {"acme_plugin": IMPOSTOR.format(override=override)},
                             "[stackhop]\nacme = acme_plugin\n")
        monkeypatch.delitem(sys.modules, "acme_plugin", raising=False)
        monkeypatch.syspath_prepend(str(site))

    yield install
    sys.modules.pop("acme_plugin", None)


@pytest.mark.parametrize("kind,lookup", [("adapter", plugins.adapters), ("materializer", plugins.materializer_classes)])
def test_a_plugin_reusing_a_built_in_name_is_an_error_naming_both_distributions(impostor, kind, lookup) -> None:
    impostor(override=False)

    with pytest.raises(ConfigError) as err:
        lookup()

    name = "local" if kind == "adapter" else "numpy"
    builtin = "stackhop.adapters.local.plugin" if kind == "adapter" else "stackhop.plugins.materializers"
    assert str(err.value).startswith(
        f"{kind} {name!r} is provided by both stackhop (entry point {builtin}) and acme-stackhop (entry point acme_plugin); "
        "uninstall one, or set `override = True` on one of the classes")


def test_a_plugin_class_that_says_override_replaces_the_built_in(impostor) -> None:
    impostor(override=True)

    assert plugins.adapters()["local"].__name__ == "FasterLocal"
    assert plugins.materializer_classes()["numpy"].__name__ == "NumpyAsText"


def test_built_ins_are_found_through_stackhops_own_entry_points(fresh_plugins) -> None:
    from importlib.metadata import entry_points

    ours = {ep.name: ep.value for ep in entry_points(group="stackhop") if ep.dist and ep.dist.name == "stackhop"}

    assert ours == plugins.BUILTIN_PLUGINS
    assert plugins.provider(plugins.adapters()["kubernetes"]) == "stackhop (entry point stackhop.adapters.kubernetes.plugin)"
