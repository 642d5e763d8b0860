"""Server-side defaulting, as the real API server applies it before validation and storage.

Clients read back what the server stored, not what they sent: a Job template with no
restartPolicy becomes `Always` (and is then rejected), a pod with only GPU limits gets equal
requests, a Job gets a generated selector and labels. Modelling these keeps the adapter honest
about fields it never set.
"""

from __future__ import annotations

import base64
from typing import Any

from .resources import CRD, JOB, NAMESPACE, POD, ROLE_BINDING, SECRET, ResourceType

__all__ = ["apply_defaults", "default_pod_spec", "drop_disabled_fields", "generate_job_selector", "JOB_NAME_LABELS", "CONTROLLER_UID_LABELS"]

JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")
CONTROLLER_UID_LABELS = ("batch.kubernetes.io/controller-uid", "controller-uid")


def apply_defaults(rtype: ResourceType, obj: dict[str, Any]) -> None:
    """Fill defaults in place for the kinds that have them."""
    if rtype == POD:
        _default_pod(obj)
    elif rtype == JOB:
        _default_job(obj)
    elif rtype == SECRET:
        _default_secret(obj)
    elif rtype == NAMESPACE:
        _default_namespace(obj)
    elif rtype == CRD:
        _default_crd(obj)
    elif rtype == ROLE_BINDING:
        for subject in obj.get("subjects") or []:
            if not subject.get("apiGroup"):
                subject["apiGroup"] = "" if subject.get("kind") == "ServiceAccount" else "rbac.authorization.k8s.io"


def drop_disabled_fields(rtype: ResourceType, obj: dict[str, Any]) -> None:
    """Before 1.29 the SidecarContainers gate is off by default, and the API server drops an init container's
    `restartPolicy` without an error: the container then runs as an ordinary init container."""
    spec = obj.get("spec") or {}
    if rtype == JOB:
        spec = (spec.get("template") or {}).get("spec") or {}
    elif rtype != POD:
        return
    for container in spec.get("initContainers") or []:
        container.pop("restartPolicy", None)


def _image_pull_policy(image: str) -> str:
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last or last.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def _default_container(container: dict[str, Any]) -> None:
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    if "imagePullPolicy" not in container and isinstance(container.get("image"), str):
        container["imagePullPolicy"] = _image_pull_policy(container["image"])
    container.setdefault("resources", {})
    for port in container.get("ports") or []:
        port.setdefault("protocol", "TCP")
    for env in container.get("env") or []:
        field_ref = (env.get("valueFrom") or {}).get("fieldRef")
        if field_ref is not None:
            field_ref.setdefault("apiVersion", "v1")


def default_pod_spec(spec: dict[str, Any]) -> None:
    """PodSpec defaults, shared by Pods and pod templates (so a Job template gets them too)."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        _default_container(container)


def _default_pod(pod: dict[str, Any]) -> None:
    spec = pod.setdefault("spec", {})
    default_pod_spec(spec)
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    # Admission plugins (ServiceAccount, Priority, DefaultTolerationSeconds) add these to Pods only.
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec["serviceAccount"] = spec["serviceAccountName"]
    spec.setdefault("priority", 0)
    tolerations = spec.setdefault("tolerations", [])
    for taint in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if not any(t.get("key") == taint for t in tolerations):
            tolerations.append({"key": taint, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})
    # A limit without a request means request == limit (this is what makes GPU limits alone valid).
    for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        resources = container.setdefault("resources", {})
        limits = resources.get("limits") or {}
        if limits:
            requests = resources.setdefault("requests", {})
            for name, value in limits.items():
                requests.setdefault(name, value)


def _default_job(job: dict[str, Any]) -> None:
    spec = job.setdefault("spec", {})
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    policy = spec.get("podFailurePolicy")
    if policy:
        for rule in policy.get("rules") or []:
            for condition in rule.get("onPodConditions") or []:
                condition.setdefault("status", "True")
    spec.setdefault("podReplacementPolicy", "Failed" if policy else "TerminatingOrFailed")
    template = spec.setdefault("template", {})
    default_pod_spec(template.setdefault("spec", {}))


def generate_job_selector(job: dict[str, Any]) -> None:
    """What the Job strategy does on create: selector on the controller uid, labels on the template.

    Like upstream, a Job without labels of its own shares the (now extended) template labels,
    and labels the user already set are left for validation to judge.
    """
    meta = job["metadata"]
    spec = job["spec"]
    if spec.get("manualSelector") is True:
        return
    template_meta = spec["template"].setdefault("metadata", {})
    shares_labels = template_meta.get("labels") is not None and not meta.get("labels")
    labels = template_meta.setdefault("labels", {})
    for key in JOB_NAME_LABELS:
        labels.setdefault(key, meta["name"])
    for key in CONTROLLER_UID_LABELS:
        labels.setdefault(key, meta["uid"])
    selector = spec.setdefault("selector", {})
    selector.setdefault("matchLabels", {}).setdefault(CONTROLLER_UID_LABELS[0], meta["uid"])
    if shares_labels:
        meta["labels"] = dict(labels)


def _default_secret(secret: dict[str, Any]) -> None:
    secret.setdefault("type", "Opaque")
    string_data = secret.pop("stringData", None)
    if string_data:
        data = secret.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def _default_namespace(namespace: dict[str, Any]) -> None:
    meta = namespace["metadata"]
    meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
    namespace.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    namespace.setdefault("status", {}).setdefault("phase", "Active")


def _default_crd(crd: dict[str, Any]) -> None:
    spec = crd.setdefault("spec", {})
    names = spec.setdefault("names", {})
    if names.get("kind"):
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", names["kind"] + "List")
    spec.setdefault("conversion", {"strategy": "None"})
