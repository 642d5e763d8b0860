"""How stackhop reaches a cluster; the kubernetes SDK is imported here only.

`load_api_client` is public because more than the adapter talks to the stack's cluster (the
kaniko builder runs its Jobs there): one rule for $KUBECONFIG, contexts and in-cluster
detection, so every caller connects to the same cluster.
"""

from __future__ import annotations

import os
from typing import Any

from stackhop.adapters.kubernetes.settings import KubernetesSettings
from stackhop.errors import ConfigError


class KubeconfigError(ConfigError):
    """A kubeconfig, or the context asked of it, does not load.

    `path`, `context` and `reason` let a caller that has its own settings name them in its own fix."""

    path: str = ""
    context: str | None = None
    reason: str = ""


def load_api_client(kubeconfig: str | None = None, context: str | None = None, *, in_cluster: bool = False) -> Any:
    """An official-client `ApiClient` for a kubeconfig file and context, or for the pod's service account.

    In a pod (KUBERNETES_SERVICE_HOST set) with no kubeconfig named, the service account is used,
    as `in_cluster=True` asks. Raises ConfigError when the client is not installed, and
    KubeconfigError when the kubeconfig does not load."""
    try:
        from kubernetes import client, config
    except ImportError:
        raise ConfigError(
            "the Kubernetes adapter needs the official client; install it with `pip install 'stackhop[kubernetes]'`."
        ) from None
    if in_cluster or (os.environ.get("KUBERNETES_SERVICE_HOST") and not kubeconfig and not os.environ.get("KUBECONFIG")):
        config.load_incluster_config()
        return client.ApiClient()
    cfg = client.Configuration()
    try:
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg)
    except (config.ConfigException, FileNotFoundError, TypeError) as exc:
        where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        error = KubeconfigError(
            f"cannot load kubeconfig {where!r} (context {context or 'current'}): {exc}; "
            "set settings.kubeconfig/context on the stack or export KUBECONFIG."
        )
        error.path, error.context, error.reason = where, context, str(exc)
        raise error from None
    return client.ApiClient(cfg)


def api_client(settings: KubernetesSettings) -> Any:
    """The client for a Kubernetes stack's settings."""
    return load_api_client(settings.kubeconfig, settings.context, in_cluster=settings.in_cluster)


def api_message(exc: Any) -> str:
    """The server's own sentence from an ApiException's Status body."""
    import json

    try:
        body = json.loads(exc.body)
        return str(body.get("message") or body)
    except (TypeError, ValueError, AttributeError):
        return str(getattr(exc, "reason", exc))
