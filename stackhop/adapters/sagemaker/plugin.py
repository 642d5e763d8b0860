"""Registers the SageMaker adapter through the same hook third-party adapters use."""

from __future__ import annotations

from stackhop.core.plugins import hookimpl


@hookimpl
def stackhop_adapters() -> list[type]:
    from stackhop.adapters.sagemaker.adapter import SageMakerAdapter

    return [SageMakerAdapter]


@hookimpl
def stackhop_wirings() -> list[type]:
    from stackhop.adapters.sagemaker.runtime import SageMakerWiring

    return [SageMakerWiring]
