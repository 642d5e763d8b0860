"""Registers the toyflow adapter through stackhop's entry-point group."""

from __future__ import annotations

from stackhop.core.plugins import hookimpl


@hookimpl
def stackhop_adapters() -> list[type]:
    from toyflow.adapter import ToyflowAdapter

    return [ToyflowAdapter]
