"""JSON as the API server reads and writes its messages (protojson through grpc-gateway).

Requests may name fields in proto (snake_case) or JSON (lowerCamel) form, `null` means unset,
and an unknown field is an error. Responses use proto names and leave out unpopulated fields,
except timestamps the server always sets: an unset one is the Unix epoch.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from . import errors

__all__ = ["EPOCH", "rfc3339", "seconds", "snake_case", "message_fields"]

#: How the server renders a timestamp it has not set (`timestamppb.New(time.Unix(0, 0))`).
EPOCH = "1970-01-01T00:00:00Z"


def rfc3339(unix: int) -> str:
    """A timestamp as the server renders it: UTC, whole seconds (it stores seconds)."""
    return datetime.fromtimestamp(unix, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def seconds(timestamp: str) -> int:
    """Unix seconds of an RFC 3339 timestamp (as the server compares them: whole seconds)."""
    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp())


def snake_case(name: str) -> str:
    """The proto field name for a JSON name (`experimentId` -> `experiment_id`)."""
    return re.sub(r"[A-Z]", lambda match: "_" + match.group(0).lower(), name)


def message_fields(body: Any, allowed: frozenset[str], message: str) -> dict[str, Any]:
    """A request message's set fields by proto name; unknown fields are refused as protojson does."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise errors.invalid(f"A {message} must be a JSON object.")
    fields: dict[str, Any] = {}
    for key, value in body.items():
        name = snake_case(key)
        if name not in allowed:
            raise errors.invalid(f'unknown field "{key}" in {message}.')
        if value is not None:
            fields[name] = value
    return fields
