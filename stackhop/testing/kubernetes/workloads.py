"""Semantic validation of Pods and Jobs: the rules the OpenAPI schemas cannot express.

These are the checks that make a real cluster answer 422 to a manifest that is well-formed
JSON: container names, resource quantities and their request/limit relations, extended
resources (GPUs) as whole numbers with request == limit, env var names, restartPolicy rules for
Jobs, podFailurePolicy shape, and which fields an update may change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from . import names
from .errors import (
    Cause,
    duplicate,
    forbidden_field,
    invalid_value,
    not_found_field,
    not_supported,
    required,
)
from .quantity import QuantityError, parse_quantity
from .selectors import LabelSelector, SelectorError
from .defaults import CONTROLLER_UID_LABELS, JOB_NAME_LABELS

__all__ = ["ValidationContext", "validate_pod", "validate_job", "validate_pod_spec", "validate_labels"]

_STANDARD_CONTAINER_RESOURCES = {"cpu", "memory", "ephemeral-storage"}
_FIELD_REF_PATHS = {
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
}
_RESOURCE_FIELD_REFS = {
    f"{kind}.{resource}" for kind in ("limits", "requests") for resource in ("cpu", "memory", "ephemeral-storage")
}
_POD_MUTABLE_SPEC_MESSAGE = (
    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)


@dataclass(frozen=True)
class ValidationContext:
    """The Kubernetes minor version whose rules apply (some rules changed between releases)."""

    version: tuple[int, int]

    @property
    def relaxed_env_names(self) -> bool:
        return self.version >= (1, 32)


def validate_labels(labels: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for key, value in (labels or {}).items():
        for problem in names.qualified_name(key):
            causes.append(invalid_value(path, key, problem))
        if not isinstance(value, str):
            continue
        for problem in names.label_value(value):
            causes.append(invalid_value(f"{path}", value, problem))
    return causes


def _non_negative(spec: dict[str, Any], key: str, path: str) -> list[Cause]:
    value = spec.get(key)
    if isinstance(value, int) and value < 0:
        return [invalid_value(f"{path}.{key}", value, "must be greater than or equal to 0")]
    return []


# -- resources ----------------------------------------------------------------------------


def _is_extended(name: str) -> bool:
    """Extended resources (e.g. nvidia.com/gpu) cannot be overcommitted and are whole units."""
    domain = name.split("/", 1)[0]
    return (
        "/" in name
        and not (domain == "kubernetes.io" or domain.endswith(".kubernetes.io"))
        and not name.startswith("requests.")
    )


def _resource_name_problem(name: str) -> str | None:
    if name in _STANDARD_CONTAINER_RESOURCES:
        return None
    if name.startswith("hugepages-"):
        try:
            parse_quantity(name[len("hugepages-") :])
            return None
        except QuantityError:
            return "must be a standard resource type or fully qualified"
    if "/" not in name:
        return "must be a standard resource type or fully qualified"
    if names.qualified_name(name):
        return "; ".join(names.qualified_name(name))
    if not _is_extended(name):
        return "must be a standard resource for containers"
    return None


def _quantities(entries: Any, path: str, causes: list[Cause]) -> dict[str, tuple[Any, Decimal]]:
    parsed: dict[str, tuple[Any, Decimal]] = {}
    for name, raw in (entries or {}).items():
        field = f"{path}[{name}]"
        problem = _resource_name_problem(name)
        if problem:
            causes.append(invalid_value(field, name, problem))
            continue
        try:
            value = parse_quantity(raw)
        except QuantityError as exc:
            causes.append(invalid_value(field, raw, str(exc)))
            continue
        if value < 0:
            causes.append(invalid_value(field, raw, "must be greater than or equal to 0"))
            continue
        if _is_extended(name) and value != value.to_integral_value():
            causes.append(invalid_value(field, raw, "must be an integer"))
            continue
        parsed[name] = (raw, value)
    return parsed


def validate_resources(resources: Any, path: str) -> list[Cause]:
    """Quantities parse, requests <= limits, extended resources: integer and request == limit."""
    causes: list[Cause] = []
    if not isinstance(resources, dict):
        return causes
    limits = _quantities(resources.get("limits"), f"{path}.limits", causes)
    requests = _quantities(resources.get("requests"), f"{path}.requests", causes)
    for name, (raw_request, request) in requests.items():
        non_overcommit = _is_extended(name) or name.startswith("hugepages-")
        if name in limits:
            raw_limit, limit = limits[name]
            if non_overcommit and request != limit:
                causes.append(
                    invalid_value(
                        f"{path}.requests[{name}]", raw_request, f"must be equal to {name} limit of {raw_limit}"
                    )
                )
            elif request > limit:
                causes.append(
                    invalid_value(
                        f"{path}.requests", raw_request, f"must be less than or equal to {name} limit of {raw_limit}"
                    )
                )
        elif non_overcommit:
            causes.append(required(f"{path}.limits", "Limit must be set for non overcommitable resources"))
    return causes


# -- containers ---------------------------------------------------------------------------


def _validate_env(container: dict[str, Any], path: str, ctx: ValidationContext) -> list[Cause]:
    causes: list[Cause] = []
    for i, env in enumerate(container.get("env") or []):
        field = f"{path}.env[{i}]"
        name = env.get("name", "")
        if not name:
            causes.append(required(f"{field}.name"))
        for problem in names.env_var_name(name, ctx.relaxed_env_names) if name else []:
            causes.append(invalid_value(f"{field}.name", name, problem))
        source = env.get("valueFrom")
        if source is None:
            continue
        if env.get("value"):
            causes.append(invalid_value(f"{field}.valueFrom", "", "may not be specified when `value` is not empty"))
        kinds = [
            k
            for k in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef", "fileKeyRef")
            if source.get(k) is not None
        ]
        if not kinds:
            causes.append(
                invalid_value(
                    f"{field}.valueFrom",
                    "",
                    "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
                )
            )
        elif len(kinds) > 1:
            causes.append(
                invalid_value(f"{field}.valueFrom", "", "may not have more than one field specified at a time")
            )
        for ref_kind in ("secretKeyRef", "configMapKeyRef"):
            ref = source.get(ref_kind)
            if ref is None:
                continue
            ref_path = f"{field}.valueFrom.{ref_kind}"
            if not ref.get("name"):
                causes.append(required(f"{ref_path}.name"))
            key = ref.get("key", "")
            if not key:
                causes.append(required(f"{ref_path}.key"))
            for problem in names.config_key(key) if key else []:
                causes.append(invalid_value(f"{ref_path}.key", key, problem))
        field_ref = source.get("fieldRef")
        if field_ref is not None:
            field_path = field_ref.get("fieldPath", "")
            ref_path = f"{field}.valueFrom.fieldRef.fieldPath"
            subscript = re.fullmatch(r"metadata\.(labels|annotations)\['([^']*)'\]", field_path)
            if not field_path:
                causes.append(required(ref_path))
            elif subscript:
                for problem in names.qualified_name(subscript[2]):
                    causes.append(invalid_value(ref_path, field_path, problem))
            elif field_path not in _FIELD_REF_PATHS and field_path not in ("metadata.labels", "metadata.annotations"):
                causes.append(not_supported(ref_path, field_path, sorted(_FIELD_REF_PATHS)))
        resource_ref = source.get("resourceFieldRef")
        if resource_ref is not None and resource_ref.get("resource") not in _RESOURCE_FIELD_REFS:
            causes.append(
                not_supported(
                    f"{field}.valueFrom.resourceFieldRef.resource",
                    resource_ref.get("resource"),
                    sorted(_RESOURCE_FIELD_REFS),
                )
            )
    for i, source in enumerate(container.get("envFrom") or []):
        field = f"{path}.envFrom[{i}]"
        refs = [k for k in ("configMapRef", "secretRef") if source.get(k) is not None]
        if len(refs) != 1:
            causes.append(invalid_value(field, "", "must specify one of: `configMapRef` or `secretRef`"))
        prefix = source.get("prefix")
        for problem in names.env_var_name(prefix, ctx.relaxed_env_names) if prefix else []:
            causes.append(invalid_value(f"{field}.prefix", prefix, problem))
    return causes


def _validate_container(
    container: dict[str, Any], path: str, volumes: set[str], ctx: ValidationContext, init: bool
) -> list[Cause]:
    causes: list[Cause] = []
    if not container.get("image"):
        causes.append(required(f"{path}.image"))
    policy = container.get("imagePullPolicy")
    if policy is not None and policy not in ("Always", "IfNotPresent", "Never"):
        causes.append(not_supported(f"{path}.imagePullPolicy", policy, ["Always", "IfNotPresent", "Never"]))
    for i, port in enumerate(container.get("ports") or []):
        number = port.get("containerPort")
        if isinstance(number, int) and not 1 <= number <= 65535:
            causes.append(
                invalid_value(f"{path}.ports[{i}].containerPort", number, "must be between 1 and 65535, inclusive")
            )
    causes += _validate_env(container, path, ctx)
    causes += validate_resources(container.get("resources"), f"{path}.resources")
    mount_paths: set[str] = set()
    for i, mount in enumerate(container.get("volumeMounts") or []):
        field = f"{path}.volumeMounts[{i}]"
        if mount.get("name") not in volumes:
            causes.append(not_found_field(f"{field}.name", mount.get("name", "")))
        mount_path = mount.get("mountPath", "")
        if not mount_path:
            causes.append(required(f"{field}.mountPath"))
        elif mount_path in mount_paths:
            causes.append(invalid_value(f"{field}.mountPath", mount_path, "must be unique"))
        mount_paths.add(mount_path)
    restart = container.get("restartPolicy")
    if restart is not None:
        if not init:
            causes.append(forbidden_field(f"{path}.restartPolicy", "may not be set for non-init containers"))
        elif restart != "Always":
            causes.append(not_supported(f"{path}.restartPolicy", restart, ["Always"]))
    return causes


def validate_pod_spec(spec: dict[str, Any], path: str, ctx: ValidationContext) -> list[Cause]:
    """Everything in a PodSpec the schema does not check (used for Pods and pod templates)."""
    causes: list[Cause] = []
    volumes: set[str] = set()
    for i, volume in enumerate(spec.get("volumes") or []):
        field = f"{path}.volumes[{i}]"
        name = volume.get("name", "")
        for problem in names.dns1123_label(name):
            causes.append(invalid_value(f"{field}.name", name, problem))
        if name in volumes:
            causes.append(duplicate(f"{field}.name", name))
        volumes.add(name)
        sources = [k for k in volume if k != "name"]
        if not sources:
            causes.append(required(field, "must specify a volume type"))
        elif len(sources) > 1:
            causes.append(forbidden_field(f"{field}.{sources[1]}", "may not specify more than 1 volume type"))
    containers = spec.get("containers") or []
    if not containers:
        causes.append(required(f"{path}.containers"))
    seen: set[str] = set()
    for group, init in (("initContainers", True), ("containers", False)):
        for i, container in enumerate(spec.get(group) or []):
            field = f"{path}.{group}[{i}]"
            name = container.get("name", "")
            if not name:
                causes.append(required(f"{field}.name"))
            for problem in names.dns1123_label(name) if name else []:
                causes.append(invalid_value(f"{field}.name", name, problem))
            if name in seen:
                causes.append(duplicate(f"{field}.name", name))
            seen.add(name)
            causes += _validate_container(container, field, volumes, ctx, init)
    restart = spec.get("restartPolicy")
    if restart is not None and restart not in ("Always", "OnFailure", "Never"):
        causes.append(not_supported(f"{path}.restartPolicy", restart, ["Always", "OnFailure", "Never"]))
    dns = spec.get("dnsPolicy")
    if dns is not None and dns not in ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"):
        causes.append(
            not_supported(f"{path}.dnsPolicy", dns, ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"])
        )
    deadline = spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int) and not 1 <= deadline <= 2147483647:
        causes.append(
            invalid_value(f"{path}.activeDeadlineSeconds", deadline, "must be between 1 and 2147483647, inclusive")
        )
    account = spec.get("serviceAccountName")
    for problem in names.dns1123_subdomain(account) if account else []:
        causes.append(invalid_value(f"{path}.serviceAccountName", account, problem))
    causes += validate_labels(spec.get("nodeSelector"), f"{path}.nodeSelector")
    return causes


def _spec_without_mutable_fields(spec: dict[str, Any]) -> dict[str, Any]:
    masked = dict(spec)
    for key in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds"):
        masked.pop(key, None)
    for group in ("containers", "initContainers"):
        masked[group] = [{k: v for k, v in c.items() if k != "image"} for c in spec.get(group) or []]
    return masked


def validate_pod(pod: dict[str, Any], old: dict[str, Any] | None, ctx: ValidationContext) -> list[Cause]:
    spec = pod.get("spec") or {}
    causes = validate_pod_spec(spec, "spec", ctx)
    if old is not None and _spec_without_mutable_fields(spec) != _spec_without_mutable_fields(old.get("spec") or {}):
        causes.append(forbidden_field("spec", _POD_MUTABLE_SPEC_MESSAGE))
    return causes


# -- jobs ---------------------------------------------------------------------------------


def _validate_pod_failure_policy(spec: dict[str, Any], container_names: set[str]) -> list[Cause]:
    policy = spec.get("podFailurePolicy")
    if policy is None:
        return []
    causes: list[Cause] = []
    restart = ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy")
    if restart != "Never":
        causes.append(
            invalid_value(
                "spec.template.spec.restartPolicy",
                restart,
                'only "Never" is supported when podFailurePolicy is specified',
            )
        )
    rules = policy.get("rules") or []
    if len(rules) > 20:
        causes.append(
            Cause(
                "spec.podFailurePolicy.rules",
                "FieldValueTooMany",
                f"Too many: {len(rules)}: must have at most 20 items",
            )
        )
    for i, rule in enumerate(rules):
        path = f"spec.podFailurePolicy.rules[{i}]"
        action = rule.get("action")
        if action not in ("Count", "FailIndex", "FailJob", "Ignore"):
            causes.append(not_supported(f"{path}.action", action, ["Count", "FailIndex", "FailJob", "Ignore"]))
        elif action == "FailIndex" and spec.get("backoffLimitPerIndex") is None:
            causes.append(invalid_value(f"{path}.action", action, "requires the backoffLimitPerIndex to be set"))
        on_codes, on_conditions = rule.get("onExitCodes"), rule.get("onPodConditions")
        if on_codes is not None and on_conditions is not None:
            causes.append(invalid_value(path, "", "specifying both OnExitCodes and OnPodConditions is not supported"))
        elif on_codes is None and on_conditions is None:
            causes.append(invalid_value(path, "", "specifying one of OnExitCodes and OnPodConditions is required"))
        if on_codes is not None:
            codes_path = f"{path}.onExitCodes"
            operator = on_codes.get("operator")
            if operator not in ("In", "NotIn"):
                causes.append(not_supported(f"{codes_path}.operator", operator, ["In", "NotIn"]))
            container = on_codes.get("containerName")
            if container is not None and container not in container_names:
                causes.append(
                    invalid_value(
                        f"{codes_path}.containerName",
                        container,
                        "must be one of the container or initContainer names in the pod template",
                    )
                )
            values = on_codes.get("values") or []
            if not values:
                causes.append(required(f"{codes_path}.values", "at least one value is required"))
            elif len(values) > 255:
                causes.append(
                    Cause(
                        f"{codes_path}.values",
                        "FieldValueTooMany",
                        f"Too many: {len(values)}: must have at most 255 items",
                    )
                )
            seen: set[int] = set()
            for j, value in enumerate(values):
                if operator == "In" and value == 0:
                    causes.append(
                        invalid_value(f"{codes_path}.values[{j}]", value, "must not be 0 for the In operator")
                    )
                if value in seen:
                    causes.append(duplicate(f"{codes_path}.values[{j}]", value))
                seen.add(value)
            if any(a > b for a, b in zip(values, values[1:])):
                causes.append(invalid_value(f"{codes_path}.values", values, "must be ordered"))
        for j, condition in enumerate(on_conditions or []):
            cond_path = f"{path}.onPodConditions[{j}]"
            for problem in names.qualified_name(condition.get("type", "")):
                causes.append(invalid_value(f"{cond_path}.type", condition.get("type", ""), problem))
            if condition.get("status") not in ("True", "False", "Unknown"):
                causes.append(
                    not_supported(f"{cond_path}.status", condition.get("status"), ["True", "False", "Unknown"])
                )
    return causes


def _validate_job_selector(job: dict[str, Any]) -> list[Cause]:
    spec, meta = job["spec"], job["metadata"]
    selector = spec.get("selector")
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if not selector:
        return [required("spec.selector")]
    causes: list[Cause] = []
    if spec.get("manualSelector") is not True:
        uid = meta.get("uid", "")
        expected = {CONTROLLER_UID_LABELS[0]: uid}
        if selector.get("matchLabels") != expected or selector.get("matchExpressions"):
            causes.append(invalid_value("spec.selector", selector, "`selector` not auto-generated"))
        for key in JOB_NAME_LABELS:
            if template_labels.get(key) != meta.get("name"):
                causes.append(
                    invalid_value(
                        f"spec.template.metadata.labels[{key}]",
                        template_labels.get(key),
                        f"must be '{meta.get('name')}'",
                    )
                )
        for key in CONTROLLER_UID_LABELS:
            if template_labels.get(key) != uid:
                causes.append(
                    invalid_value(f"spec.template.metadata.labels[{key}]", template_labels.get(key), f"must be '{uid}'")
                )
    try:
        matches = LabelSelector.from_object(selector).matches(template_labels)
    except SelectorError as exc:
        return causes + [invalid_value("spec.selector", selector, str(exc))]
    if not matches:
        causes.append(
            invalid_value(
                "spec.template.metadata.labels", template_labels, "`selector` does not match template `labels`"
            )
        )
    return causes


_IMMUTABLE_JOB_FIELDS = (
    "selector",
    "template",
    "completions",
    "completionMode",
    "podFailurePolicy",
    "manualSelector",
    "backoffLimitPerIndex",
    "managedBy",
)


def validate_job(job: dict[str, Any], old: dict[str, Any] | None, ctx: ValidationContext) -> list[Cause]:
    spec = job.get("spec") or {}
    meta = job["metadata"]
    causes: list[Cause] = []
    name = meta.get("name", "")
    if len(name) > names.LABEL_VALUE_MAX:
        causes.append(
            invalid_value(
                "metadata.name",
                name,
                f"must be no more than {names.LABEL_VALUE_MAX} characters (it becomes the job-name label of its pods)",
            )
        )
    template = spec.get("template") or {}
    pod_spec = template.get("spec") or {}
    causes += validate_labels((template.get("metadata") or {}).get("labels"), "spec.template.metadata.labels")
    causes += validate_pod_spec(pod_spec, "spec.template.spec", ctx)
    restart = pod_spec.get("restartPolicy")
    if restart not in ("OnFailure", "Never"):
        causes.append(not_supported("spec.template.spec.restartPolicy", restart, ["OnFailure", "Never"]))
    for key in ("parallelism", "completions", "backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished"):
        causes += _non_negative(spec, key, "spec")
    mode = spec.get("completionMode", "NonIndexed")
    if mode not in ("NonIndexed", "Indexed"):
        causes.append(not_supported("spec.completionMode", mode, ["NonIndexed", "Indexed"]))
    elif mode == "Indexed":
        causes.append(invalid_value("spec.completionMode", mode, "Indexed Jobs are not modelled by FakeKubernetes"))
    for key in ("backoffLimitPerIndex", "maxFailedIndexes", "successPolicy"):
        if spec.get(key) is not None and mode != "Indexed":
            causes.append(invalid_value(f"spec.{key}", spec[key], "requires indexed completion mode"))
    replacement = spec.get("podReplacementPolicy")
    if replacement is not None:
        allowed = ["Failed"] if spec.get("podFailurePolicy") else ["Failed", "TerminatingOrFailed"]
        if replacement not in allowed:
            causes.append(not_supported("spec.podReplacementPolicy", replacement, allowed))
    container_names = {
        c.get("name") for c in (pod_spec.get("containers") or []) + (pod_spec.get("initContainers") or [])
    }
    causes += _validate_pod_failure_policy(spec, {n for n in container_names if n})
    causes += _validate_job_selector(job)
    if old is not None:
        old_spec = old.get("spec") or {}
        for key in _IMMUTABLE_JOB_FIELDS:
            if spec.get(key) != old_spec.get(key):
                causes.append(invalid_value(f"spec.{key}", spec.get(key), "field is immutable"))
    return causes
