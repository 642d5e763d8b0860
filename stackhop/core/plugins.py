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


def _collect(groups: list[list[type]]) -> dict[str, type]:
    """name -> class over every plugin's answer; the first registration of a name wins."""
    found: dict[str, type] = {}
    for group in groups:
        for cls in group:
            found.setdefault(cls.name, cls)  # type: ignore[attr-defined]
    return found


def _lookup(table: dict[str, type], name: str, kind: str, where: str) -> type:
    if name not in table:
        near = difflib.get_close_matches(name, list(table), n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise ConfigError(
            f"{where}: {kind} {name!r} is not installed; installed {kind}s are {', '.join(sorted(table))}.{hint}"
        )
    return table[name]


def adapters() -> dict[str, type["Adapter"]]:
    return _collect(plugin_manager().hook.stackhop_adapters())


def adapter_class(name: str, *, where: str) -> type["Adapter"]:
    return _lookup(adapters(), name, "adapter", where)


def builders() -> dict[str, type["Builder"]]:
    return _collect(plugin_manager().hook.stackhop_builders())


def builder_class(name: str, *, where: str) -> type["Builder"]:
    return _lookup(builders(), name, "image builder", where)
