"""Registers the Kubernetes adapter through the same hook third-party adapters use."""

from __future__ import annotations

from stackhop.core.plugins import hookimpl


@hookimpl
def stackhop_adapters() -> list[type]:
    from stackhop.adapters.kubernetes.adapter import KubernetesAdapter

    return [KubernetesAdapter]
