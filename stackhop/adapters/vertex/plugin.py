"""Registers the adapter through the same hook third-party adapters use."""

from __future__ import annotations

from stackhop.core.plugins import hookimpl


@hookimpl
def stackhop_adapters() -> list[type]:
    from stackhop.adapters.vertex.adapter import VertexAdapter

    return [VertexAdapter]


@hookimpl
def stackhop_wirings() -> list[type]:
    from stackhop.adapters.pipelinespec.runtime import PipelineSpecWiring

    return [PipelineSpecWiring]
