"""The API verbs (create, get, list, replace, patch, delete, deletecollection) over the store.

This is the request-independent core of the server: what gets defaulted, validated, rejected
and stored, in the same order a real API server does it (type checks -> defaulting -> validation
-> admission -> storage), with the same error for each failure. HTTP parsing lives in
server.py; controllers call in here too, so their writes obey the same rules as clients'.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import json
import random
from dataclasses import dataclass
from typing import Any

import yaml

from . import errors, names
from .clock import rfc3339
from .defaults import apply_defaults, drop_disabled_fields, generate_job_selector
from .errors import ApiError
from .lifecycle import POLICIES, Lifecycle
from .patch import (
    PatchError,
    apply_configuration,
    json_patch,
    merge_patch,
    record_managed_fields,
    strategic_merge_patch,
)
from .resources import CRD, JOB, NAMESPACE, POD, SERVICE_ACCOUNT, Registry, ResourceType, crd_types
from .selectors import FieldSelector, LabelSelector, SelectorError
from .store import Store, WatchEvent
from .validation import Validator

__all__ = ["Api", "WriteOptions", "ListOptions", "DeleteOptions", "PATCH_TYPES", "SYSTEM_NAMESPACES"]

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH)
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_SERVER_METADATA = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "managedFields",
)


@dataclass(frozen=True)
class WriteOptions:
    dry_run: bool = False
    field_manager: str | None = None
    user_agent: str = ""

    @property
    def manager(self) -> str:
        """Like upstream: the fieldManager, else the user agent's program name."""
        if self.field_manager:
            return self.field_manager
        return self.user_agent.split("/", 1)[0] or "unknown"


@dataclass(frozen=True)
class ListOptions:
    label_selector: str | None = None
    field_selector: str | None = None
    limit: int | None = None
    continue_token: str | None = None


@dataclass(frozen=True)
class DeleteOptions:
    propagation_policy: str | None = None
    grace_period_seconds: int | None = None
    preconditions: dict[str, Any] | None = None
    dry_run: bool = False


def _ident(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj["metadata"]
    return meta.get("namespace") or "", meta["name"]


def _without_volatile(obj: dict[str, Any]) -> dict[str, Any]:
    trimmed = copy.deepcopy(obj)
    trimmed.get("metadata", {}).pop("resourceVersion", None)
    trimmed.get("metadata", {}).pop("managedFields", None)
    return trimmed


def _spec_view(rtype: ResourceType, obj: dict[str, Any]) -> Any:
    """The part of an object whose changes bump metadata.generation."""
    if rtype.builtin:
        return obj.get("spec")
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class Api:
    """Verbs over the store for every registered resource type."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        validator: Validator,
        lifecycle: Lifecycle,
        loop: asyncio.AbstractEventLoop,
        seed: int = 0,
    ) -> None:
        self.store = store
        self.registry = registry
        self.validator = validator
        self.lifecycle = lifecycle
        self._loop = loop
        self._rng = random.Random(seed)
        self._applied: dict[tuple[str, str, str | None], dict[str, Any]] = {}
        store.subscribe(self._on_event)
        for name in SYSTEM_NAMESPACES:
            self.ensure_namespace(name)

    # -- presentation ------------------------------------------------------------------------

    @staticmethod
    def present(rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """The object as served at rtype's version: apiVersion and kind first."""
        body = {"apiVersion": rtype.api_version, "kind": rtype.kind}
        body.update({k: v for k, v in obj.items() if k not in ("apiVersion", "kind")})
        return body

    def _list_item(self, rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        # Typed lists of built-in kinds carry no apiVersion/kind per item; custom resources do.
        if rtype.builtin:
            return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
        return self.present(rtype, obj)

    # -- namespaces --------------------------------------------------------------------------

    def ensure_namespace(self, name: str) -> None:
        """Namespaces exist implicitly: materialize one (with its default ServiceAccount) on first use."""
        if self.store.get(NAMESPACE.key, "", name) is not None:
            return
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        self._stamp_new(NAMESPACE, namespace)
        apply_defaults(NAMESPACE, namespace)
        self.store.create(NAMESPACE.key, namespace)
        self._after_create(NAMESPACE, namespace)

    def _ensure_default_service_account(self, namespace: str) -> None:
        if self.store.get(SERVICE_ACCOUNT.key, namespace, "default") is None:
            account = {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "default", "namespace": namespace},
            }
            self._stamp_new(SERVICE_ACCOUNT, account)
            self.store.create(SERVICE_ACCOUNT.key, account)

    def _check_namespace_open(self, rtype: ResourceType, namespace: str, name: str) -> None:
        existing = self.store.get(NAMESPACE.key, "", namespace)
        if existing is not None and existing["metadata"].get("deletionTimestamp"):
            raise errors.forbidden(
                rtype.plural,
                rtype.group,
                name,
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )

    # -- helpers -----------------------------------------------------------------------------

    def _check_type_meta(self, rtype: ResourceType, obj: Any) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise errors.bad_request(f"the body of the request must be a JSON object describing a {rtype.kind}")
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if api_version and api_version != rtype.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version ({rtype.api_version})"
            )
        if kind and kind != rtype.kind:
            raise errors.bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rtype.kind})")
        obj["apiVersion"], obj["kind"] = rtype.api_version, rtype.kind
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be a JSON object")
        return obj

    def _stamp_new(self, rtype: ResourceType, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        meta["uid"] = self.store.new_uid()
        meta["creationTimestamp"] = rfc3339()
        if rtype.tracks_generation:
            meta["generation"] = 1

    def _generate_name(self, rtype: ResourceType, namespace: str, prefix: str) -> str:
        prefix = prefix[:58]  # like upstream, so prefix + 5 random characters stays within 63
        while True:
            name = prefix + "".join(self._rng.choice(_NAME_ALPHABET) for _ in range(5))
            if self.store.get(rtype.key, namespace, name) is None:
                return name

    def get_or_404(self, rtype: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        if rtype == NAMESPACE and not names.dns1123_label(name):
            self.ensure_namespace(name)
        obj = self.store.get(rtype.key, namespace, name)
        if obj is None:
            raise errors.not_found(rtype.plural, rtype.group, name)
        return obj

    def _on_event(self, event: WatchEvent) -> None:
        if event.resource != CRD.key:
            return
        crd = event.object
        spec = crd.get("spec") or {}
        key = (spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))
        self.registry.remove_key(key)
        if event.type == "DELETED":
            for obj in self.store.objects(key):
                self.store.remove(key, *_ident(obj))
            return
        for rtype in crd_types(crd):
            self.registry.add(rtype)
        conditions = (crd.get("status") or {}).get("conditions") or []
        if not any(c.get("type") == "Established" for c in conditions):
            self._loop.call_soon(self._establish, crd["metadata"]["name"])

    def _establish(self, name: str) -> None:
        crd = self.store.get(CRD.key, "", name)
        if crd is None:
            return
        now = rfc3339()
        storage = [v["name"] for v in crd["spec"].get("versions") or [] if v.get("storage")]
        crd["status"] = {
            "acceptedNames": crd["spec"]["names"],
            "conditions": [
                {
                    "type": "NamesAccepted",
                    "status": "True",
                    "lastTransitionTime": now,
                    "reason": "NoConflicts",
                    "message": "no conflicts found",
                },
                {
                    "type": "Established",
                    "status": "True",
                    "lastTransitionTime": now,
                    "reason": "InitialNamesAccepted",
                    "message": "the initial names have been accepted",
                },
            ],
            "storedVersions": storage,
        }
        self.store.update(CRD.key, crd)

    def _after_create(self, rtype: ResourceType, obj: dict[str, Any]) -> None:
        if rtype == NAMESPACE:
            self._ensure_default_service_account(obj["metadata"]["name"])

    # -- create ------------------------------------------------------------------------------

    def create(
        self, rtype: ResourceType, namespace: str, body: Any, opts: WriteOptions, *, operation: str = "Update"
    ) -> dict[str, Any]:
        obj = self._check_type_meta(rtype, copy.deepcopy(body))
        source = copy.deepcopy(obj)
        meta = obj["metadata"]
        if rtype.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if meta.get("resourceVersion"):
            raise errors.bad_request("resourceVersion should not be set on objects to be created")
        for key in _SERVER_METADATA:
            meta.pop(key, None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = self._generate_name(rtype, namespace, meta["generateName"])
        self._stamp_new(rtype, obj)
        if rtype.status_subresource:
            obj.pop("status", None)
        apply_defaults(rtype, obj)
        if self.validator.version_tuple < (1, 29):
            drop_disabled_fields(rtype, obj)
        if rtype == JOB and meta.get("name"):
            generate_job_selector(obj)
        self.validator.validate(rtype, obj)
        name = meta["name"]
        if rtype.namespaced:
            self._check_namespace_open(rtype, namespace, name)
        if self.store.get(rtype.key, namespace if rtype.namespaced else "", name) is not None:
            raise errors.already_exists(rtype.plural, rtype.group, name)
        if rtype == POD:
            self._admit_pod(obj)
        record_managed_fields(obj, opts.manager, operation, source, rfc3339())
        if opts.dry_run:
            return self.present(rtype, obj)
        if rtype.namespaced:
            self.ensure_namespace(namespace)
        stored = self.store.create(rtype.key, obj)
        self._after_create(rtype, stored)
        if operation == "Apply":
            self._applied[(stored["metadata"]["uid"], opts.manager, None)] = source
        return self.present(rtype, stored)

    def create_for_controller(self, rtype: ResourceType, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """What controllers use to create objects: the same path and rules as any client."""
        return self.create(rtype, namespace, body, WriteOptions(field_manager="kube-controller-manager"))

    def _admit_pod(self, pod: dict[str, Any]) -> None:
        """The ServiceAccount admission plugin: the pod's service account must exist."""
        meta = pod["metadata"]
        account = pod["spec"].get("serviceAccountName", "default")
        if account == "default" or self.store.get(SERVICE_ACCOUNT.key, meta["namespace"], account) is not None:
            return
        raise errors.forbidden(
            "pods",
            "",
            meta["name"],
            f'error looking up service account {meta["namespace"]}/{account}: serviceaccount "{account}" not found',
        )

    # -- read --------------------------------------------------------------------------------

    def get(self, rtype: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        return self.present(rtype, self.get_or_404(rtype, namespace, name))

    def list_objects(self, rtype: ResourceType, namespace: str | None, opts: ListOptions) -> dict[str, Any]:
        labels, fields = self.selectors(rtype, opts.label_selector, opts.field_selector)
        resource_version = self.store.resource_version
        start_after: tuple[str, str] | None = None
        if opts.continue_token:
            resource_version, start_after = self._decode_continue(opts.continue_token)
            if self.store.is_compacted(resource_version):
                raise errors.expired(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new "
                    "list without the continue parameter."
                )
        items = [
            obj
            for obj in self.store.objects(rtype.key, namespace)
            if labels.matches(obj["metadata"].get("labels")) and fields.matches(obj)
        ]
        if start_after is not None:
            items = [obj for obj in items if _ident(obj) > start_after]
        list_meta: dict[str, Any] = {"resourceVersion": str(resource_version)}
        if opts.limit and len(items) > opts.limit:
            remaining = len(items) - opts.limit
            items = items[: opts.limit]
            list_meta["continue"] = self._encode_continue(resource_version, _ident(items[-1]))
            if not labels and not fields:
                list_meta["remainingItemCount"] = remaining
        return {
            "apiVersion": rtype.api_version,
            "kind": rtype.list_kind,
            "metadata": list_meta,
            "items": [self._list_item(rtype, obj) for obj in items],
        }

    @staticmethod
    def selectors(
        rtype: ResourceType, label_selector: str | None, field_selector: str | None
    ) -> tuple[LabelSelector, FieldSelector]:
        try:
            return LabelSelector.parse(label_selector), FieldSelector.parse(field_selector, rtype.kind)
        except SelectorError as exc:
            raise errors.bad_request(str(exc)) from None

    @staticmethod
    def _encode_continue(resource_version: int, after: tuple[str, str]) -> str:
        raw = json.dumps({"v": "meta.k8s.io/v1", "rv": resource_version, "start": list(after)})
        return base64.urlsafe_b64encode(raw.encode()).decode()

    @staticmethod
    def _decode_continue(token: str) -> tuple[int, tuple[str, str]]:
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode()))
            return int(data["rv"]), (str(data["start"][0]), str(data["start"][1]))
        except (ValueError, KeyError, IndexError, TypeError, binascii.Error):
            raise errors.bad_request(
                "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
            ) from None

    # -- update ------------------------------------------------------------------------------

    def replace(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        opts: WriteOptions,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        obj = self._check_type_meta(rtype, copy.deepcopy(body))
        source = copy.deepcopy(obj)
        meta = obj["metadata"]
        if meta.get("name") != name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name', '')}) does not match the name on the URL ({name})"
            )
        if rtype.namespaced and meta.get("namespace") and meta["namespace"] != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        current = self.get_or_404(rtype, namespace, name)
        wanted = meta.get("resourceVersion")
        if not wanted and not rtype.builtin:
            raise errors.invalid(
                rtype.kind,
                rtype.group,
                name,
                [errors.invalid_value("metadata.resourceVersion", "0x0", "must be specified for an update")],
            )
        self._check_preconditions(rtype, current, wanted, meta.get("uid"))
        return self._update(rtype, current, obj, opts, subresource, "Update", source)

    def _check_preconditions(
        self, rtype: ResourceType, current: dict[str, Any], resource_version: str | None, uid: str | None
    ) -> None:
        name = current["metadata"]["name"]
        if uid and uid != current["metadata"]["uid"]:
            raise errors.conflict(
                rtype.plural,
                rtype.group,
                name,
                f"Precondition failed: UID in precondition: {uid}, UID in object meta: {current['metadata']['uid']}",
            )
        if resource_version and resource_version != current["metadata"]["resourceVersion"]:
            raise errors.conflict(
                rtype.plural,
                rtype.group,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            )

    def _update(
        self,
        rtype: ResourceType,
        current: dict[str, Any],
        incoming: dict[str, Any],
        opts: WriteOptions,
        subresource: str | None,
        operation: str,
        source: dict[str, Any],
    ) -> dict[str, Any]:
        if subresource == "status":
            new = copy.deepcopy(current)
            if "status" in incoming:
                new["status"] = incoming["status"]
            else:
                new.pop("status", None)
        else:
            new = copy.deepcopy(incoming)
            meta = new["metadata"]
            for key in _SERVER_METADATA + ("name", "namespace", "generateName"):
                if key in current["metadata"]:
                    meta[key] = copy.deepcopy(current["metadata"][key])
                else:
                    meta.pop(key, None)
            if rtype.status_subresource:
                if "status" in current:
                    new["status"] = copy.deepcopy(current["status"])
                else:
                    new.pop("status", None)
            apply_defaults(rtype, new)
        new["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        self.validator.validate(rtype, new, old=current, status_only=subresource == "status")
        if rtype.tracks_generation and subresource != "status" and _spec_view(rtype, new) != _spec_view(rtype, current):
            new["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
        if _without_volatile(new) == _without_volatile(current):
            return self.present(rtype, current)  # a no-op write changes nothing, not even resourceVersion
        record_managed_fields(new, opts.manager, operation, source, rfc3339(), subresource)
        if opts.dry_run:
            return self.present(rtype, new)
        return self.present(rtype, self.store.update(rtype.key, new))

    # -- patch -------------------------------------------------------------------------------

    def patch(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        raw: bytes,
        opts: WriteOptions,
        subresource: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Apply a patch; returns (object, created) — server-side apply may create."""
        accepted = PATCH_TYPES if rtype.builtin else (JSON_PATCH, MERGE_PATCH, APPLY_PATCH)
        if content_type not in accepted:
            raise errors.unsupported_media_type(content_type, accepted)
        try:
            document = yaml.safe_load(raw) if content_type == APPLY_PATCH else json.loads(raw or b"null")
        except (ValueError, yaml.YAMLError) as exc:
            raise errors.bad_request(f"error decoding patch: {exc}") from None
        if content_type == APPLY_PATCH:
            return self._apply(rtype, namespace, name, document, opts, subresource)
        current = self.get_or_404(rtype, namespace, name)
        view = self.present(rtype, current)
        try:
            if content_type == MERGE_PATCH:
                if not isinstance(document, dict):
                    raise PatchError("a merge patch must be a JSON object", 400)
                patched = merge_patch(view, document)
            elif content_type == STRATEGIC_PATCH:
                patched = strategic_merge_patch(view, document)
            else:
                patched = json_patch(view, document)
        except PatchError as exc:
            if exc.code == 400:
                raise errors.bad_request(str(exc)) from None
            raise errors.invalid(
                rtype.kind,
                rtype.group,
                name,
                [
                    errors.Cause(
                        "",
                        "FieldValueInvalid",
                        f"the server rejected our request due to an error in our request: {exc}",
                    )
                ],
            ) from None
        source = document if isinstance(document, dict) else patched
        return self._patched(rtype, current, patched, opts, subresource, "Update", source), False

    def _patched(
        self,
        rtype: ResourceType,
        current: dict[str, Any],
        patched: Any,
        opts: WriteOptions,
        subresource: str | None,
        operation: str,
        source: dict[str, Any],
    ) -> dict[str, Any]:
        obj = self._check_type_meta(rtype, patched)
        meta = obj["metadata"]
        name = current["metadata"]["name"]
        if meta.get("name") != name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name', '')}) does not match the name on the URL ({name})"
            )
        if rtype.namespaced and meta.get("namespace") != current["metadata"].get("namespace"):
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        self._check_preconditions(rtype, current, meta.get("resourceVersion"), meta.get("uid"))
        return self._update(rtype, current, obj, opts, subresource, operation, source)

    def _apply(
        self, rtype: ResourceType, namespace: str, name: str, document: Any, opts: WriteOptions, subresource: str | None
    ) -> tuple[dict[str, Any], bool]:
        if not opts.field_manager:
            raise errors.bad_request("PATCH requests of type application/apply-patch+yaml require a fieldManager")
        if not isinstance(document, dict):
            raise errors.bad_request("an apply configuration must be a YAML or JSON object")
        for field in ("apiVersion", "kind"):
            if not document.get(field):
                raise errors.bad_request(f"{field} must be set in an apply configuration")
        if (document.get("metadata") or {}).get("name") != name:
            raise errors.bad_request(
                f"the name of the object ({(document.get('metadata') or {}).get('name', '')}) does not match the name on the URL ({name})"
            )
        current = self.store.get(rtype.key, namespace if rtype.namespaced else "", name)
        if current is None:
            if subresource:
                raise errors.not_found(rtype.plural, rtype.group, name)
            return self.create(rtype, namespace, document, opts, operation="Apply"), True
        key = (current["metadata"]["uid"], opts.manager, subresource)
        patched = apply_configuration(self.present(rtype, current), document, self._applied.get(key))
        result = self._patched(rtype, current, patched, opts, subresource, "Apply", document)
        if not opts.dry_run:
            self._applied[key] = copy.deepcopy(document)
        return result, False

    # -- delete ------------------------------------------------------------------------------

    def delete(
        self, rtype: ResourceType, namespace: str, name: str, opts: DeleteOptions
    ) -> tuple[dict[str, Any], list[str]]:
        """Delete one object; returns (response body, Warning headers)."""
        current = self.get_or_404(rtype, namespace, name)
        if rtype == NAMESPACE and name in ("default", "kube-system", "kube-public"):
            raise errors.forbidden(rtype.plural, rtype.group, name, "this namespace may not be deleted")
        preconditions = opts.preconditions or {}
        self._check_preconditions(rtype, current, preconditions.get("resourceVersion"), preconditions.get("uid"))
        if opts.propagation_policy is not None and opts.propagation_policy not in POLICIES:
            raise errors.bad_request(
                f'propagationPolicy: Unsupported value: "{opts.propagation_policy}": supported values: "Foreground", "Background", "Orphan"'
            )
        warnings = []
        if rtype == JOB and opts.propagation_policy is None:
            warnings.append(
                "child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them"
            )
        obj, gone = self.lifecycle.delete(
            rtype, current, opts.propagation_policy, opts.grace_period_seconds, opts.dry_run
        )
        if gone and rtype.builtin and rtype != POD:
            return self._success_status(rtype, current), warnings
        return self.present(rtype, obj), warnings

    @staticmethod
    def _success_status(rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        details: dict[str, Any] = {"name": obj["metadata"]["name"], "kind": rtype.plural, "uid": obj["metadata"]["uid"]}
        if rtype.group:
            details["group"] = rtype.group
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    def delete_collection(
        self, rtype: ResourceType, namespace: str | None, list_opts: ListOptions, opts: DeleteOptions
    ) -> dict[str, Any]:
        if opts.propagation_policy is not None and opts.propagation_policy not in POLICIES:
            raise errors.bad_request(f'propagationPolicy: Unsupported value: "{opts.propagation_policy}"')
        labels, fields = self.selectors(rtype, list_opts.label_selector, list_opts.field_selector)
        deleted = []
        for obj in self.store.objects(rtype.key, namespace):
            if labels.matches(obj["metadata"].get("labels")) and fields.matches(obj):
                result, _ = self.lifecycle.delete(
                    rtype, obj, opts.propagation_policy, opts.grace_period_seconds, opts.dry_run
                )
                deleted.append(self._list_item(rtype, result))
        return {
            "apiVersion": rtype.api_version,
            "kind": rtype.list_kind,
            "metadata": {"resourceVersion": str(self.store.resource_version)},
            "items": deleted,
        }

    # -- test helpers ------------------------------------------------------------------------

    def set_status(self, rtype: ResourceType, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        current = self.store.get(rtype.key, namespace, name)
        if current is None:
            raise LookupError(f"{rtype.kind} {namespace + '/' if namespace else ''}{name} does not exist")
        current["status"] = copy.deepcopy(status)
        try:
            self.validator.validate(rtype, current, status_only=True)
        except ApiError as exc:
            raise ValueError(exc.message) from None
        return self.present(rtype, self.store.update(rtype.key, current))
