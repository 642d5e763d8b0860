"""Build an official-client ApiClient from stack settings; the kubernetes SDK is imported here only."""

from __future__ import annotations

import os
from typing import Any

from stackhop.adapters.kubernetes.settings import KubernetesSettings
from stackhop.errors import ConfigError


def api_client(settings: KubernetesSettings) -> Any:
    try:
        from kubernetes import client, config
    except ImportError:
        raise ConfigError(
            "the Kubernetes adapter needs the official client; install it with `pip install 'stackhop[kubernetes]'`."
        ) from None
    if settings.in_cluster or (os.environ.get("KUBERNETES_SERVICE_HOST") and not settings.kubeconfig
                               and not os.environ.get("KUBECONFIG")):
        config.load_incluster_config()
        return client.ApiClient()
    cfg = client.Configuration()
    try:
        config.load_kube_config(config_file=settings.kubeconfig, context=settings.context, client_configuration=cfg)
    except (config.ConfigException, FileNotFoundError, TypeError) as exc:
        where = settings.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise ConfigError(
            f"cannot load kubeconfig {where!r} (context {settings.context or 'current'}): {exc}; "
            "set settings.kubeconfig/context on the stack or export KUBECONFIG."
        ) from None
    return client.ApiClient(cfg)


def api_message(exc: Any) -> str:
    """The server's own sentence from an ApiException's Status body."""
    import json

    try:
        body = json.loads(exc.body)
        return str(body.get("message") or body)
    except (TypeError, ValueError, AttributeError):
        return str(getattr(exc, "reason", exc))
