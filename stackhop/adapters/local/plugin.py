"""Registers the local adapter through the same hook third-party adapters use."""

from __future__ import annotations

from stackhop.core.plugins import hookimpl


@hookimpl
def stackhop_adapters() -> list[type]:
    from stackhop.adapters.local.adapter import LocalAdapter

    return [LocalAdapter]


@hookimpl
def stackhop_emulation_runtime() -> object:
    """Emulated runs are local runs whose attempts start the compiled document's commands."""
    from stackhop.adapters.local.adapter import start_emulation

    return start_emulation
