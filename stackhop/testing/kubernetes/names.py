"""Syntax rules for names, label keys and values, env var names and config keys.

The JSON schemas only say "string"; the API server additionally enforces these grammars and
rejects objects a real cluster would never store (the most common cause of 422s from a real
cluster). The messages follow the upstream wording so error output reads the same.
"""

from __future__ import annotations

import re

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
LABEL_VALUE_MAX = 63
QUALIFIED_NAME_MAX = 63

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_C_IDENTIFIER_ENV = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")

_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_QUALIFIED_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
_ENV_STRICT_MSG = (
    "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and "
    "must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for "
    "validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"
)
_ENV_RELAXED_MSG = "a valid environment variable name must consist only of printable ASCII characters other than '='"
_CONFIG_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
    "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)


def _too_long(limit: int) -> str:
    return f"must be no more than {limit} characters"


def dns1123_label(value: str) -> list[str]:
    """Problems with `value` as an RFC 1123 label (namespace, container and volume names)."""
    errors = []
    if len(value) > DNS1123_LABEL_MAX:
        errors.append(_too_long(DNS1123_LABEL_MAX))
    if not _DNS1123_LABEL.fullmatch(value):
        errors.append(_LABEL_MSG)
    return errors


def dns1123_subdomain(value: str) -> list[str]:
    """Problems with `value` as an RFC 1123 subdomain (most object names)."""
    errors = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        errors.append(_too_long(DNS1123_SUBDOMAIN_MAX))
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        errors.append(_SUBDOMAIN_MSG)
    return errors


def path_segment_name(value: str) -> list[str]:
    """Problems with `value` as a name that only has to be a safe URL path segment (RBAC objects)."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


def qualified_name(value: str) -> list[str]:
    """Problems with `value` as a label/annotation key: an optional DNS subdomain prefix, '/', a name."""
    errors = []
    prefix, slash, name = value.rpartition("/")
    if slash:
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            errors.extend("prefix part " + e for e in dns1123_subdomain(prefix))
    if not name:
        errors.append("name part must be non-empty")
    else:
        if len(name) > QUALIFIED_NAME_MAX:
            errors.append("name part " + _too_long(QUALIFIED_NAME_MAX))
        if not _QUALIFIED_NAME.fullmatch(name):
            errors.append(_QUALIFIED_MSG)
    if value.count("/") > 1:
        errors.append("a qualified name must have at most one '/'")
    return errors


def label_value(value: str) -> list[str]:
    """Problems with `value` as a label value (at most 63 characters, may be empty)."""
    errors = []
    if len(value) > LABEL_VALUE_MAX:
        errors.append(_too_long(LABEL_VALUE_MAX))
    if value and not _QUALIFIED_NAME.fullmatch(value):
        errors.append(_LABEL_VALUE_MSG)
    return errors


def env_var_name(value: str, relaxed: bool) -> list[str]:
    """Problems with `value` as an env var name.

    Kubernetes 1.32 turned on RelaxedEnvironmentVariableValidation (any printable ASCII but '=');
    older servers require a C-identifier-like name.
    """
    if relaxed:
        if not value or "=" in value or any(not 32 <= ord(c) <= 126 for c in value):
            return [_ENV_RELAXED_MSG]
        return []
    return [] if _C_IDENTIFIER_ENV.fullmatch(value) else [_ENV_STRICT_MSG]


def config_key(value: str) -> list[str]:
    """Problems with `value` as a ConfigMap/Secret key (also used for secretKeyRef.key)."""
    errors = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        errors.append(_too_long(DNS1123_SUBDOMAIN_MAX))
    if not _CONFIG_KEY.fullmatch(value):
        errors.append(_CONFIG_KEY_MSG)
    if value in (".", ".."):
        errors.append(f"must not be '{value}'")
    elif value.startswith(".."):
        errors.append("must not start with '..'")
    return errors
