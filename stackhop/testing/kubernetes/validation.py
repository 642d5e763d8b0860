"""Validation of every write: the official OpenAPI schemas, then the server's semantic rules.

Schema checks come from `kubernetes-validate` (strict, so unknown fields are errors) pinned to
the version the fake pretends to be; custom resources are checked against their CRD's
openAPIV3Schema. On top of that come the rules real API servers enforce in code (names,
labels, quantities, Job and Pod rules, immutable fields). Any problem is a 422 naming the
field, so a manifest the fake accepts is one a real cluster would accept too.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
from typing import Any

import jsonschema
import kubernetes_validate

from . import names
from .errors import (
    Cause,
    duplicate,
    forbidden_field,
    invalid,
    invalid_value,
    not_supported,
    required,
    too_long,
)
from .resources import CONFIG_MAP, CRD, EVENT, JOB, NAMESPACE, POD, ROLE, ROLE_BINDING, SECRET, ResourceType
from .workloads import ValidationContext, validate_job, validate_labels, validate_pod

__all__ = ["Validator", "parse_version", "supported_versions"]

_MAX_ANNOTATIONS_BYTES = 256 * 1024
_MAX_DATA_BYTES = 1024 * 1024
_RBAC_GROUP = "rbac.authorization.k8s.io"


def supported_versions() -> list[str]:
    """Kubernetes minor versions the installed kubernetes-validate has schemas for."""
    return [v.rsplit(".", 1)[0] for v in kubernetes_validate.utils.all_versions()]


def parse_version(version: str) -> tuple[int, int]:
    match = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?", version)
    if not match:
        raise ValueError(f"version must look like '1.37', got {version!r}")
    parsed = (int(match[1]), int(match[2]))
    if f"{parsed[0]}.{parsed[1]}" not in supported_versions():
        raise ValueError(
            f"Kubernetes {version} is not supported: kubernetes-validate has schemas for {', '.join(supported_versions())}"
        )
    return parsed


def _field_path(parts: Any) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _schema_cause(error: jsonschema.ValidationError) -> Cause:
    path = _field_path(error.absolute_path)
    if error.validator == "additionalProperties":
        unexpected = re.findall(r"'([^']+)'", error.message.split("(", 1)[-1])
        name = unexpected[0] if unexpected else "?"
        field = f"{path}.{name}" if path else name
        return Cause(field, "FieldValueInvalid", f'unknown field "{field}"')
    if error.validator == "required":
        return Cause(path, "FieldValueRequired", f"Required value: {error.message}")
    return Cause(path, "FieldValueInvalid", f"Invalid value: {error.message}")


def _crd_json_schema(schema: Any) -> Any:
    """Turn a structural OpenAPI v3 schema into JSON Schema that rejects unknown fields."""
    if isinstance(schema, list):
        return [_crd_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key.startswith("x-kubernetes-") or key in ("nullable", "description", "example", "externalDocs"):
            continue
        if key == "properties":
            out[key] = {name: _crd_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = _crd_json_schema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = _crd_json_schema(value)
        else:
            out[key] = value
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    preserves = schema.get("x-kubernetes-preserve-unknown-fields") is True
    if out.get("type") == "object" and "additionalProperties" not in schema and not preserves:
        out["additionalProperties"] = False
    return out


class Validator:
    """Validates objects for one Kubernetes version; raises ApiError(422) listing the causes."""

    def __init__(self, version: str) -> None:
        self.version_tuple = parse_version(version)
        self.version = f"{self.version_tuple[0]}.{self.version_tuple[1]}"
        self.context = ValidationContext(self.version_tuple)
        self._crd_validators: dict[str, jsonschema.protocols.Validator] = {}

    # -- entry point ----------------------------------------------------------------------

    def validate(
        self, rtype: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None = None, *, status_only: bool = False
    ) -> None:
        causes = self.schema_causes(rtype, obj)
        if not causes:
            causes = self._metadata_causes(rtype, obj, old)
            if not status_only:
                causes += self._kind_causes(rtype, obj, old)
        if causes:
            raise invalid(rtype.kind, rtype.group, obj.get("metadata", {}).get("name", ""), causes)

    def schema_causes(self, rtype: ResourceType, obj: dict[str, Any]) -> list[Cause]:
        if rtype.builtin:
            try:
                kubernetes_validate.validate(obj, self.version, strict=True)
            except kubernetes_validate.ValidationError as error:
                return [_schema_cause(error)]
            return []
        # Custom resources: ObjectMeta is checked against the official schema too (via a
        # metadata-only ConfigMap), the rest against the CRD's openAPIV3Schema.
        try:
            kubernetes_validate.validate(
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj.get("metadata") or {}},
                self.version,
                strict=True,
            )
        except kubernetes_validate.ValidationError as error:
            return [_schema_cause(error)]
        if rtype.schema is None:
            return []
        validator = self._crd_validator(rtype)
        body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
        errors = sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))
        return [_schema_cause(e) for e in errors]

    def _crd_validator(self, rtype: ResourceType) -> jsonschema.protocols.Validator:
        key = json.dumps([rtype.api_version, rtype.kind, rtype.schema], sort_keys=True)
        if key not in self._crd_validators:
            schema = copy.deepcopy(rtype.schema) or {}
            for reserved in ("apiVersion", "kind", "metadata"):
                (schema.get("properties") or {}).pop(reserved, None)
            self._crd_validators[key] = jsonschema.Draft4Validator(_crd_json_schema(schema))
        return self._crd_validators[key]

    # -- metadata -------------------------------------------------------------------------

    def _metadata_causes(self, rtype: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
        meta = obj.get("metadata") or {}
        causes: list[Cause] = []
        name = meta.get("name") or ""
        if not name:
            causes.append(required("metadata.name", "name or generateName is required"))
        elif rtype == NAMESPACE:
            causes += [invalid_value("metadata.name", name, p) for p in names.dns1123_label(name)]
        elif rtype in (ROLE, ROLE_BINDING):
            causes += [invalid_value("metadata.name", name, p) for p in names.path_segment_name(name)]
        elif rtype == CRD:
            spec = obj.get("spec") or {}
            expected = f"{(spec.get('names') or {}).get('plural', '')}.{spec.get('group', '')}"
            if name != expected:
                causes.append(invalid_value("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
        else:
            causes += [invalid_value("metadata.name", name, p) for p in names.dns1123_subdomain(name)]
        namespace = meta.get("namespace")
        if rtype.namespaced and namespace:
            causes += [invalid_value("metadata.namespace", namespace, p) for p in names.dns1123_label(namespace)]
        elif not rtype.namespaced and namespace:
            causes.append(forbidden_field("metadata.namespace", "not allowed on this type"))
        causes += validate_labels(meta.get("labels"), "metadata.labels")
        annotations = meta.get("annotations") or {}
        for key in annotations:
            causes += [invalid_value("metadata.annotations", key, p) for p in names.qualified_name(key)]
        if sum(len(k) + len(str(v)) for k, v in annotations.items()) > _MAX_ANNOTATIONS_BYTES:
            causes.append(too_long("metadata.annotations", _MAX_ANNOTATIONS_BYTES))
        controllers = 0
        for i, ref in enumerate(meta.get("ownerReferences") or []):
            for key in ("apiVersion", "kind", "name", "uid"):
                if not ref.get(key):
                    causes.append(required(f"metadata.ownerReferences[{i}].{key}"))
            controllers += bool(ref.get("controller"))
        if controllers > 1:
            causes.append(
                invalid_value("metadata.ownerReferences", "", "Only one reference can have Controller set to true")
            )
        for i, finalizer in enumerate(meta.get("finalizers") or []):
            causes += [
                invalid_value(f"metadata.finalizers[{i}]", finalizer, p) for p in names.qualified_name(finalizer)
            ]
        if old is not None and (old.get("metadata") or {}).get("deletionTimestamp"):
            new_finalizers = set(meta.get("finalizers") or []) - set(old["metadata"].get("finalizers") or [])
            if new_finalizers:
                causes.append(
                    forbidden_field(
                        "metadata.finalizers",
                        f"no new finalizers can be added if the object is being deleted, found new finalizers {sorted(new_finalizers)}",
                    )
                )
        return causes

    # -- per kind -------------------------------------------------------------------------

    def _kind_causes(self, rtype: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
        if rtype == POD:
            return validate_pod(obj, old, self.context)
        if rtype == JOB:
            return validate_job(obj, old, self.context)
        if rtype == CONFIG_MAP:
            return _validate_config_map(obj, old)
        if rtype == SECRET:
            return _validate_secret(obj, old)
        if rtype == ROLE:
            return _validate_role(obj)
        if rtype == ROLE_BINDING:
            return _validate_role_binding(obj, old)
        if rtype == CRD:
            return _validate_crd(obj, old)
        if rtype == EVENT:
            return _validate_event(obj)
        return []


def _validate_data_keys(obj: dict[str, Any], fields: tuple[str, ...]) -> list[Cause]:
    causes: list[Cause] = []
    seen: set[str] = set()
    for field in fields:
        for key in obj.get(field) or {}:
            causes += [invalid_value(f"{field}[{key}]", key, p) for p in names.config_key(key)]
            if key in seen:
                causes.append(duplicate(f"{field}[{key}]", key))
            seen.add(key)
    return causes


def _immutable_data(obj: dict[str, Any], old: dict[str, Any] | None, fields: tuple[str, ...]) -> list[Cause]:
    if old is None or not old.get("immutable"):
        return []
    causes = []
    if not obj.get("immutable"):
        causes.append(forbidden_field("immutable", "field is immutable when `immutable` is set"))
    for field in fields:
        if (obj.get(field) or {}) != (old.get(field) or {}):
            causes.append(forbidden_field(field, "field is immutable when `immutable` is set"))
    return causes


def _validate_config_map(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    causes = _validate_data_keys(obj, ("data", "binaryData"))
    size = sum(len(k) + len(v) for k, v in (obj.get("data") or {}).items())
    size += sum(len(k) + len(v) for k, v in (obj.get("binaryData") or {}).items())
    if size > _MAX_DATA_BYTES:
        causes.append(too_long("", _MAX_DATA_BYTES))
    return causes + _immutable_data(obj, old, ("data", "binaryData"))


_SECRET_REQUIRED_KEYS = {
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
}


def _validate_secret(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    causes = _validate_data_keys(obj, ("data",))
    size = 0
    for key, value in (obj.get("data") or {}).items():
        try:
            size += len(key) + len(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError, TypeError):
            causes.append(invalid_value(f"data[{key}]", "<value omitted>", "must be base64 encoded"))
    if size > _MAX_DATA_BYTES:
        causes.append(too_long("data", _MAX_DATA_BYTES))
    secret_type = obj.get("type", "Opaque")
    for key in _SECRET_REQUIRED_KEYS.get(secret_type, ()):
        if key not in (obj.get("data") or {}):
            causes.append(required(f"data[{key}]"))
    if secret_type == "kubernetes.io/service-account-token":
        if not ((obj["metadata"].get("annotations") or {}).get("kubernetes.io/service-account.name")):
            causes.append(required("metadata.annotations[kubernetes.io/service-account.name]"))
    if old is not None and old.get("type", "Opaque") != secret_type:
        causes.append(invalid_value("type", secret_type, "field is immutable"))
    return causes + _immutable_data(obj, old, ("data",))


def _validate_role(obj: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    for i, rule in enumerate(obj.get("rules") or []):
        path = f"rules[{i}]"
        if not rule.get("verbs"):
            causes.append(required(f"{path}.verbs", "verbs must contain at least one value"))
        if rule.get("nonResourceURLs"):
            causes.append(
                invalid_value(
                    f"{path}.nonResourceURLs",
                    rule["nonResourceURLs"],
                    "namespaced rules cannot apply to non-resource URLs",
                )
            )
        if rule.get("resources") and not rule.get("apiGroups"):
            causes.append(required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
        if not rule.get("resources") and not rule.get("nonResourceURLs"):
            causes.append(required(f"{path}.resources", "resource rules must supply at least one resource"))
    return causes


def _validate_role_binding(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    causes: list[Cause] = []
    ref = obj.get("roleRef") or {}
    if ref.get("apiGroup") != _RBAC_GROUP:
        causes.append(not_supported("roleRef.apiGroup", ref.get("apiGroup", ""), [_RBAC_GROUP]))
    if ref.get("kind") not in ("Role", "ClusterRole"):
        causes.append(not_supported("roleRef.kind", ref.get("kind", ""), ["Role", "ClusterRole"]))
    if not ref.get("name"):
        causes.append(required("roleRef.name"))
    for i, subject in enumerate(obj.get("subjects") or []):
        path = f"subjects[{i}]"
        kind = subject.get("kind")
        if not subject.get("name"):
            causes.append(required(f"{path}.name"))
        if kind == "ServiceAccount":
            if subject.get("apiGroup"):
                causes.append(not_supported(f"{path}.apiGroup", subject["apiGroup"], [""]))
            for problem in names.dns1123_subdomain(subject.get("name", "")) if subject.get("name") else []:
                causes.append(invalid_value(f"{path}.name", subject["name"], problem))
        elif kind in ("User", "Group"):
            if subject.get("apiGroup") != _RBAC_GROUP:
                causes.append(not_supported(f"{path}.apiGroup", subject.get("apiGroup", ""), [_RBAC_GROUP]))
        else:
            causes.append(not_supported(f"{path}.kind", kind, ["ServiceAccount", "User", "Group"]))
    if old is not None and old.get("roleRef") != obj.get("roleRef"):
        causes.append(invalid_value("roleRef", ref, "cannot change roleRef"))
    return causes


def _validate_crd(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes: list[Cause] = []
    group = spec.get("group", "")
    if not group:
        causes.append(required("spec.group"))
    elif "." not in group:
        causes.append(invalid_value("spec.group", group, "should be a domain with at least one dot"))
    else:
        causes += [invalid_value("spec.group", group, p) for p in names.dns1123_subdomain(group)]
    crd_names = spec.get("names") or {}
    for key in ("plural", "singular"):
        value = crd_names.get(key, "")
        if not value:
            causes.append(required(f"spec.names.{key}"))
        causes += [invalid_value(f"spec.names.{key}", value, p) for p in names.dns1123_label(value)] if value else []
    if not crd_names.get("kind"):
        causes.append(required("spec.names.kind"))
    scope = spec.get("scope")
    if scope not in ("Namespaced", "Cluster"):
        causes.append(not_supported("spec.scope", scope, ["Cluster", "Namespaced"]))
    versions = spec.get("versions") or []
    if not versions:
        causes.append(required("spec.versions", "must have exactly one version marked as storage version"))
    seen: set[str] = set()
    for i, version in enumerate(versions):
        path = f"spec.versions[{i}]"
        name = version.get("name", "")
        causes += [invalid_value(f"{path}.name", name, p) for p in names.dns1123_label(name)]
        if name in seen:
            causes.append(duplicate(f"{path}.name", name))
        seen.add(name)
        if not (version.get("schema") or {}).get("openAPIV3Schema"):
            causes.append(required(f"{path}.schema.openAPIV3Schema", "schemas are required"))
    if versions and sum(bool(v.get("storage")) for v in versions) != 1:
        causes.append(invalid_value("spec.versions", "", "must have exactly one version marked as storage version"))
    if old is not None:
        old_spec = old.get("spec") or {}
        for key in ("group", "scope"):
            if old_spec.get(key) != spec.get(key):
                causes.append(invalid_value(f"spec.{key}", spec.get(key), "field is immutable"))
    return causes


def _validate_event(obj: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    involved = obj.get("involvedObject") or {}
    namespace = obj["metadata"].get("namespace")
    if involved.get("namespace") and involved["namespace"] != namespace:
        causes.append(
            invalid_value("involvedObject.namespace", involved["namespace"], "does not match event.namespace")
        )
    if obj.get("type") and obj["type"] not in ("Normal", "Warning"):
        causes.append(not_supported("type", obj["type"], ["Normal", "Warning"]))
    return causes
