"""Strict OpenAPI validation of manifests, with each schema loaded once.

`kubernetes_validate.validate` re-reads and re-parses its JSON schema files on every call
(~10 ms each), which made a 1,000-step compile spend seconds reading the same files. This
builds one validator per (kind, apiVersion, Kubernetes version) from the same bundled schemas
and keeps it. kubernetes-validate is pinned in pyproject, so its file layout is stable.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from stackhop.errors import ConfigError, PipelineDefinitionError

DEFAULT_VERSION = "1.30"


@cache
def _validator(kind: str, api_version: str, version: str) -> Any:
    """None when the kind has no bundled schema (custom resources)."""
    try:
        import jsonschema
        from kubernetes_validate import utils
        from referencing import Registry, Resource
    except ImportError:
        raise ConfigError(
            "compiling for Kubernetes validates manifests with kubernetes-validate; "
            "install it with `pip install 'stackhop[kubernetes]'`."
        ) from None

    resolved = [v for v in utils.all_versions() if utils.major_minor(v) <= utils.major_minor(version)][-1]
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema_dir = f"kubernetes-json-schema/v{resolved}-local-strict"
    try:
        schema = utils.schema_contents(f"{schema_dir}/{kind.lower()}-{group_version}.json", version)
    except FileNotFoundError:
        return None
    definitions = utils.schema_contents(f"{schema_dir}/_definitions.json", version)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


Parametrised = dict[tuple[str | int, ...], tuple[str, str]]
_JSON_TYPES = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "array": "list", "object": "dict"}


def validate_manifest(doc: dict[str, Any], step: str, version: str = DEFAULT_VERSION,
                      parameters: Parametrised | None = None, pipeline: str | None = None) -> None:
    """Refuse what the API server would refuse. A field a pipeline parameter fills (`parameters`: path ->
    (parameter, type)) holds a stand-in here, so only its type is checked: the value comes with each run."""
    import jsonschema

    validator = _validator(doc["kind"], doc["apiVersion"], version)
    if validator is None:
        return
    parameters = parameters or {}
    errors = [e for e in validator.iter_errors(doc) if _counts(e, parameters)]
    error = jsonschema.exceptions.best_match(errors)
    if error is None:
        return
    from stackhop.core.ir import field_path

    field = field_path(list(error.absolute_path)) or "(top level)"
    where = (f"pipeline {pipeline!r}, " if pipeline else "") + f"step {step!r}"
    owner = parameters.get(tuple(error.absolute_path))
    if owner is not None:
        takes = " or ".join(sorted({_JSON_TYPES.get(t, t) for t in _types(error) if t != "null"})) or "another type"
        raise PipelineDefinitionError(
            f"{where}: the {doc['kind']} manifest's field {field} takes {takes} on Kubernetes {version}, but "
            f"pipeline parameter {owner[0]!r} is {owner[1]}; declare the parameter as {takes}."
        )
    raise PipelineDefinitionError(
        f"{where}: the {doc['kind']} manifest is invalid for Kubernetes {version} at {field}: "
        f"{error.message}; fix that field."
    )


def _counts(error: Any, parameters: Parametrised) -> bool:
    """False for a complaint about a stand-in's value (not its type) in a parametrised field."""
    path = tuple(error.absolute_path)
    inside = any(path[: len(p)] == p for p in parameters)
    return not inside or (path in parameters and _type_only(error))


def _type_only(error: Any) -> bool:
    if error.validator == "type":
        return True
    return error.validator in ("anyOf", "oneOf") and bool(error.context) and all(_type_only(c) for c in error.context)


def _types(error: Any) -> list[str]:
    if error.validator == "type":
        value = error.validator_value
        return [value] if isinstance(value, str) else list(value)
    return [t for c in error.context or () for t in _types(c)]
