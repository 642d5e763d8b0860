"""Hook specifications and the plugin manager.

Every plugin, built-in or third-party, is found through the `stackhop` entry-point group, so a
built-in has no privilege a plugin lacks. Entry points are read on first use, never at
`import stackhop`. Two plugins offering an adapter, builder or materializer under one name is an
error naming both distributions, unless one of the classes says `override = True`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import pluggy

from stackhop.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

    from stackhop.core.adapter import Adapter
    from stackhop.core.ir import Pipeline
    from stackhop.core.materializers import Materializer
    from stackhop.core.stack import Stack
    from stackhop.core.wiring import Wiring

hookspec = pluggy.HookspecMarker("stackhop")
hookimpl = pluggy.HookimplMarker("stackhop")

BUILTIN_PLUGINS = {
    "local": "stackhop.adapters.local.plugin",
    "kubernetes": "stackhop.adapters.kubernetes.plugin",
    "sagemaker": "stackhop.adapters.sagemaker.plugin",
    "vertex": "stackhop.adapters.vertex.plugin",
    "kfp": "stackhop.adapters.kfp.plugin",
    "images": "stackhop.plugins.images",
    "materializers": "stackhop.plugins.materializers",
}
"""What stackhop's own entry points name; used as they are only when stackhop runs uninstalled."""

BUILTIN_STACK = "local"
"""The stack every project has without a stackhop.yaml: the built-in local adapter, under its own name."""


class StackhopSpec:
    @hookspec
    def stackhop_adapters(self) -> list[type["Adapter"]]:  # type: ignore[empty-body]
        """Return adapter classes this plugin provides."""

    @hookspec
    def stackhop_builders(self) -> list[type[Any]]:  # type: ignore[empty-body]
        """Return image builder classes this plugin provides (`stackhop.images.builder.Builder` subclasses)."""

    @hookspec(firstresult=True)
    def stackhop_prepare_images(self, ir: "Pipeline", stack: "Stack", root: "Path | None", build: bool
                                ) -> "tuple[Pipeline, list[str]] | None":
        """Return the IR with every step's final image reference, and warnings; `build` builds what is missing first."""

    @hookspec
    def stackhop_explain_images(self, ir: "Pipeline", stack: "Stack", root: "Path | None"
                                ) -> dict[str, list[str]]:  # type: ignore[empty-body]
        """Return, per step, which image it runs in and why, for `stackhop compile --explain`."""

    @hookspec
    def stackhop_materializers(self) -> list[type["Materializer"]]:  # type: ignore[empty-body]
        """Return materializer classes this plugin provides."""

    @hookspec
    def stackhop_wirings(self) -> list[type["Wiring"]]:  # type: ignore[empty-body]
        """Return the wiring classes this plugin's compiled commands name after `--wiring` (see stackhop.core.wiring)."""

    @hookspec(firstresult=True)
    def stackhop_emulation_runtime(self) -> Any:
        """Return `start(compiled, request) -> BackendRef`, which runs a compiled document on this machine."""


@dataclass(frozen=True)
class Source:
    distribution: str
    entry_point: str

    def __str__(self) -> str:
        return f"{self.distribution} (entry point {self.entry_point})"


_sources: dict[str, Source] = {}


@cache
def plugin_manager() -> pluggy.PluginManager:
    import importlib
    from importlib.metadata import entry_points

    pm = pluggy.PluginManager("stackhop")
    pm.add_hookspecs(StackhopSpec)
    _sources.clear()
    found = list(entry_points(group="stackhop"))
    if not any((ep.dist.name if ep.dist else "") == "stackhop" for ep in found):
        for name, module in BUILTIN_PLUGINS.items():  # a source checkout that was never installed
            pm.register(importlib.import_module(module), name=f"stackhop:{name}")
            _sources[f"stackhop:{name}"] = Source("stackhop", module)
    for ep in sorted(found, key=lambda e: ((e.dist.name if e.dist else "") != "stackhop", e.name)):
        dist = ep.dist.name if ep.dist else "an unknown distribution"
        key = f"{dist}:{ep.name}"
        if key in _sources:
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            raise ConfigError(
                f"plugin {ep.name!r} ({ep.value}) from {dist} failed to import: {exc}; "
                "fix or uninstall the package that provides it."
            ) from None
        if pm.is_registered(plugin):
            continue
        pm.register(plugin, name=key)
        _sources[key] = Source(dist, ep.value)
    return pm


_provided: dict[int, Source] = {}


def provider(cls: type) -> str:
    """Which distribution offers a plugin class ("stackhop (entry point ...)")."""
    source = _provided.get(id(cls))
    return str(source) if source else f"module {cls.__module__}"


def _collect(hook: str, kind: str) -> dict[str, type]:
    """name -> class over every plugin's answer; a name offered twice must be resolved with `override`."""
    pm = plugin_manager()
    tables = pm.__dict__.setdefault("_stackhop_tables", {})
    if hook not in tables:
        tables[hook] = _offers(pm, hook, kind)
    return tables[hook]


def _offers(pm: pluggy.PluginManager, hook: str, kind: str) -> dict[str, type]:
    offers: dict[str, list[tuple[type, Source]]] = {}
    for impl in getattr(pm.hook, hook).get_hookimpls():
        source = _sources.get(impl.plugin_name, Source(impl.plugin_name, impl.plugin_name))
        for cls in impl.function() or []:
            _provided[id(cls)] = source
            offers.setdefault(cls.name, []).append((cls, source))  # type: ignore[attr-defined]
    return {name: _pick(kind, name, choices) for name, choices in offers.items()}


def _pick(kind: str, name: str, choices: list[tuple[type, Source]]) -> type:
    distinct = list({id(c): (c, s) for c, s in choices}.values())
    if len(distinct) == 1:
        return distinct[0][0]
    overriding = [(c, s) for c, s in distinct if getattr(c, "override", False)]
    if len(overriding) == 1:
        return overriding[0][0]
    (a, sa), (b, sb) = distinct[0], distinct[1]
    fix = (f"set `override = True` on one of the classes ({a.__module__}.{a.__qualname__} or "
           f"{b.__module__}.{b.__qualname__})") if not overriding else "leave `override = True` on only one of them"
    raise ConfigError(
        f"{kind} {name!r} is provided by both {sa} and {sb}; uninstall one, or {fix} to choose which one runs."
    )


def _lookup(table: dict[str, type], name: str, kind: str, where: str) -> type:
    if name not in table:
        near = difflib.get_close_matches(name, list(table), n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise ConfigError(
            f"{where}: {kind} {name!r} is not installed; installed {kind}s are {', '.join(sorted(table))}.{hint}"
        )
    return table[name]


def adapters() -> dict[str, type["Adapter"]]:
    return _collect("stackhop_adapters", "adapter")


def adapter_class(name: str, *, where: str) -> type["Adapter"]:
    return _lookup(adapters(), name, "adapter", where)


def builders() -> dict[str, type[Any]]:
    return _collect("stackhop_builders", "image builder")


def builder_class(name: str, *, where: str) -> type[Any]:
    return _lookup(builders(), name, "image builder", where)


def wirings() -> dict[str, type["Wiring"]]:
    return _collect("stackhop_wirings", "wiring")


def wiring_class(name: str, *, where: str) -> type["Wiring"]:
    return _lookup(wirings(), name, "wiring", where)


def materializer_classes(*, include_registered: bool = True) -> dict[str, type["Materializer"]]:
    """Plugins' materializers, and (unless told not to) those registered with `@materializer`."""
    table: dict[str, Any] = dict(_collect("stackhop_materializers", "materializer"))
    if include_registered:
        from stackhop.core.materializers import user_registered

        table.update(user_registered())
    return table


def emulation_runtime() -> Any:
    """The installed runtime for `--emulate` (the local adapter provides it)."""
    runtime = plugin_manager().hook.stackhop_emulation_runtime()
    if runtime is None:
        raise ConfigError("no installed plugin runs emulated documents; reinstall stackhop, whose local adapter does.")
    return runtime
