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


def validate_manifest(doc: dict[str, Any], step: str, version: str = DEFAULT_VERSION) -> None:
    import jsonschema

    validator = _validator(doc["kind"], doc["apiVersion"], version)
    if validator is None:
        return
    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    if error is not None:
        field = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise PipelineDefinitionError(
            f"step {step!r}: the {doc['kind']} manifest is invalid for Kubernetes {version} at {field}: "
            f"{error.message}; fix that field."
        )
