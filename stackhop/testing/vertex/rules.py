"""Field rules of CreatePipelineJob besides the spec itself: id, names, labels, identity, runtime config.

Each check returns the problems it finds as sentences (empty when the value is acceptable), so a
refused create can name every problem at once.
"""

from __future__ import annotations

import re
from typing import Any

JOB_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,127}$")
DISPLAY_NAME_MAX = 128
LABELS_MAX = 64
LABEL_LENGTH_MAX = 63
SERVICE_ACCOUNT = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
# A Compute Engine network named by project *number*, with an RFC 1035 network name.
NETWORK = re.compile(r"^projects/[0-9]+/global/networks/[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
GCS_URI = re.compile(r"^gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](/.*)?$")

# Pre-2.1 specs declare `type` (PrimitiveType) instead of `parameterType`.
_LEGACY_TYPES = {"INT": "NUMBER_INTEGER", "DOUBLE": "NUMBER_DOUBLE", "STRING": "STRING"}
_LEGACY_VALUE_FIELDS = {"NUMBER_INTEGER": "intValue", "NUMBER_DOUBLE": "doubleValue", "STRING": "stringValue"}


def check_job_id(job_id: str) -> list[str]:
    if JOB_ID.match(job_id):
        return []
    return [
        f"pipelineJobId {job_id!r} must be 1-128 characters of lowercase letters, digits and hyphens, "
        "starting with a letter or digit."
    ]


def check_display_name(name: str) -> list[str]:
    if len(name) > DISPLAY_NAME_MAX:
        return [f"displayName is {len(name)} characters long; the limit is {DISPLAY_NAME_MAX}."]
    return []


def _label_char(char: str) -> bool:
    """Lowercase (or caseless international) letters, digits, '_' and '-'."""
    return char in "_-" or char.isdigit() or (char.isalpha() and not char.isupper())


def check_labels(labels: dict[str, str]) -> list[str]:
    problems = []
    if len(labels) > LABELS_MAX:
        problems.append(f"labels has {len(labels)} entries; at most {LABELS_MAX} are allowed.")
    for key, value in labels.items():
        if not key or len(key) > LABEL_LENGTH_MAX:
            problems.append(f"Label key {key!r} must be 1-{LABEL_LENGTH_MAX} characters long.")
        elif not (key[0].isalpha() and not key[0].isupper()):
            problems.append(f"Label key {key!r} must start with a lowercase letter.")
        elif not all(_label_char(c) for c in key):
            problems.append(f"Label key {key!r} may only contain lowercase letters, digits, '_' and '-'.")
        if len(value) > LABEL_LENGTH_MAX:
            problems.append(f"Label value {value!r} of key {key!r} is longer than {LABEL_LENGTH_MAX} characters.")
        elif not all(_label_char(c) for c in value):
            problems.append(
                f"Label value {value!r} of key {key!r} may only contain lowercase letters, digits, '_' and '-'."
            )
    return problems


def check_service_account(account: str) -> list[str]:
    if SERVICE_ACCOUNT.match(account):
        return []
    return [f"serviceAccount {account!r} is not a service account email address."]


def check_network(network: str) -> list[str]:
    if NETWORK.match(network):
        return []
    return [f"network {network!r} must have the form projects/{{project number}}/global/networks/{{network name}}."]


# -- runtime config ---------------------------------------------------------------------------------


def _value_matches(parameter_type: str, value: Any) -> bool:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if parameter_type == "NUMBER_INTEGER":
        return number and float(value).is_integer()
    if parameter_type == "NUMBER_DOUBLE":
        return number
    if parameter_type == "STRING":
        return isinstance(value, str)
    if parameter_type == "BOOLEAN":
        return isinstance(value, bool)
    if parameter_type == "LIST":
        return isinstance(value, list)
    if parameter_type in ("STRUCT", "TASK_FINAL_STATUS"):
        return isinstance(value, dict)
    return True  # an unspecified type constrains nothing


def _declared_type(definition: dict[str, Any]) -> str:
    return definition.get("parameterType") or _LEGACY_TYPES.get(definition.get("type", ""), "")


def check_runtime_config(config: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    """runtimeConfig against the (already valid) spec's root inputs and pipeline root."""
    problems = []
    root_dir = config.get("gcsOutputDirectory")
    default_root = spec.get("defaultPipelineRoot")
    if not root_dir and not default_root:
        problems.append(
            "runtimeConfig.gcsOutputDirectory is required because pipelineSpec has no defaultPipelineRoot."
        )
    for field, value in (("runtimeConfig.gcsOutputDirectory", root_dir), ("pipelineSpec.defaultPipelineRoot", default_root)):
        if value and not GCS_URI.match(value):
            problems.append(f"{field} {value!r} must be a Cloud Storage URI (gs://bucket/path).")

    inputs = spec.get("root", {}).get("inputDefinitions", {})
    declared: dict[str, dict[str, Any]] = inputs.get("parameters", {})
    values: dict[str, Any] = config.get("parameterValues", {})
    legacy: dict[str, dict[str, Any]] = config.get("parameters", {})
    for name in sorted(values.keys() & legacy.keys()):
        problems.append(f"Parameter {name!r} is given in both runtimeConfig.parameterValues and runtimeConfig.parameters.")
    for name, value in values.items():
        if name not in declared:
            problems.append(f"runtimeConfig.parameterValues names {name!r}, which the pipeline does not declare as an input.")
            continue
        expected = _declared_type(declared[name])
        if not _value_matches(expected, value):
            problems.append(f"Parameter {name!r} is declared {expected} but was given {value!r}.")
    for name, value in legacy.items():
        if name not in declared:
            problems.append(f"runtimeConfig.parameters names {name!r}, which the pipeline does not declare as an input.")
            continue
        expected = _declared_type(declared[name])
        field = _LEGACY_VALUE_FIELDS.get(expected)
        if field is None or set(value) != {field}:
            problems.append(f"Parameter {name!r} is declared {expected} and cannot be given as {value!r}.")
    for name, definition in declared.items():
        required = "parameterType" in definition and not definition.get("isOptional") and "defaultValue" not in definition
        if required and name not in values and name not in legacy:
            problems.append(f"Parameter {name!r} is required (it has no default) but was not given.")

    declared_artifacts: dict[str, dict[str, Any]] = inputs.get("artifacts", {})
    artifacts: dict[str, Any] = config.get("inputArtifacts", {})
    for name in artifacts:
        if name not in declared_artifacts:
            problems.append(f"runtimeConfig.inputArtifacts names {name!r}, which the pipeline does not declare as an input.")
    for name, definition in declared_artifacts.items():
        if not definition.get("isOptional") and name not in artifacts:
            problems.append(f"Input artifact {name!r} is required but runtimeConfig.inputArtifacts does not give it.")
    return problems
