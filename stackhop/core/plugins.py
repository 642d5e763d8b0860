"""Hook specifications and the plugin manager.

Built-in adapters register through the same `stackhop` entry-point group third parties use,
so a built-in has no privileges a plugin lacks. Entry points are read on first use, never at
`import stackhop`.
"""

from __future__ import annotations

import difflib
from functools import cache
from typing import TYPE_CHECKING

import pluggy

from stackhop.errors import ConfigError

if TYPE_CHECKING:
    from stackhop.core.adapter import Adapter
    from stackhop.images.builder import Builder

hookspec = pluggy.HookspecMarker("stackhop")
hookimpl = pluggy.HookimplMarker("stackhop")

BUILTIN_PLUGINS = (
    "stackhop.adapters.local.plugin",
    "stackhop.adapters.kubernetes.plugin",
    "stackhop.adapters.sagemaker.plugin",
    "stackhop.adapters.vertex.plugin",
    "stackhop.adapters.kfp.plugin",
    "stackhop.images.plugin",
)


class StackhopSpec:
    @hookspec
    def stackhop_adapters(self) -> list[type["Adapter"]]:  # type: ignore[empty-body]
        """Return adapter classes this plugin provides."""

    @hookspec
    def stackhop_builders(self) -> list[type["Builder"]]:  # type: ignore[empty-body]
        """Return image builder classes this plugin provides."""


@cache
def plugin_manager() -> pluggy.PluginManager:
    import importlib

    pm = pluggy.PluginManager("stackhop")
    pm.add_hookspecs(StackhopSpec)
    for name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    from importlib.metadata import entry_points

    for ep in entry_points(group="stackhop"):
        if pm.has_plugin(ep.name) or ep.value in BUILTIN_PLUGINS:
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            raise ConfigError(
                f"plugin {ep.name!r} ({ep.value}) failed to import: {exc}; fix or uninstall the package that provides it."
            ) from None
        pm.register(plugin, name=ep.name)
    return pm


def adapters() -> dict[str, type["Adapter"]]:
    found: dict[str, type[Adapter]] = {}
    for group in plugin_manager().hook.stackhop_adapters():
        for cls in group:
            found.setdefault(cls.name, cls)
    return found


def adapter_class(name: str, *, where: str) -> type["Adapter"]:
    table = adapters()
    if name not in table:
        near = difflib.get_close_matches(name, list(table), n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise ConfigError(
            f"{where}: adapter {name!r} is not installed; installed adapters are {', '.join(sorted(table))}.{hint}"
        )
    return table[name]


def builders() -> dict[str, type["Builder"]]:
    found: dict[str, type[Builder]] = {}
    for group in plugin_manager().hook.stackhop_builders():
        for cls in group:
            found.setdefault(cls.name, cls)
    return found


def builder_class(name: str, *, where: str) -> type["Builder"]:
    table = builders()
    if name not in table:
        near = difflib.get_close_matches(name, list(table), n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise ConfigError(
            f"{where}: image builder {name!r} is not installed; installed builders are {', '.join(sorted(table))}.{hint}"
        )
    return table[name]
