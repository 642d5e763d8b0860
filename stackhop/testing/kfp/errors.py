"""API errors in the shape the KFP API server's HTTP gateway sends them.

KFP 2.x (ml-pipeline) serves REST through grpc-gateway v2, which renders every failed call as
a `google.rpc.Status` document — `{"code": <grpc code>, "message": ..., "details": [...]}` —
with the HTTP status derived from the gRPC code. The server's own errors (`util.UserError`)
carry one detail, a `google.rpc.Status` with the short external message. `kfp_server_api`
raises `ApiException(status=...)` with that body, so the status code and body are what an
adapter's error handling really meets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "ApiError",
    "INVALID_ARGUMENT",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "UNIMPLEMENTED",
    "INTERNAL",
    "invalid",
    "not_found",
    "already_exists",
    "unimplemented",
    "internal",
]

INVALID_ARGUMENT = 3
NOT_FOUND = 5
ALREADY_EXISTS = 6
UNIMPLEMENTED = 12
INTERNAL = 13

# grpc-gateway's HTTPStatusFromCode for the codes this stand-in answers with.
_HTTP_STATUS = {INVALID_ARGUMENT: 400, NOT_FOUND: 404, ALREADY_EXISTS: 409, UNIMPLEMENTED: 501, INTERNAL: 500}


@dataclass
class ApiError(Exception):
    """A failed call: `code` is the google.rpc code, `message` one sentence for people."""

    code: int
    message: str

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def http_status(self) -> int:
        return _HTTP_STATUS[self.code]

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "details": [{"@type": "type.googleapis.com/google.rpc.Status", "code": self.code, "message": self.message}],
        }


def invalid(message: str) -> ApiError:
    """A request the server refuses (HTTP 400, InvalidArgument)."""
    return ApiError(INVALID_ARGUMENT, message)


def not_found(kind: str, identifier: str) -> ApiError:
    """The server's ResourceNotFoundError wording: `Run <id> not found` (HTTP 404)."""
    return ApiError(NOT_FOUND, f"{kind} {identifier} not found")


def already_exists(message: str) -> ApiError:
    return ApiError(ALREADY_EXISTS, message)


def unimplemented(message: str) -> ApiError:
    """A route the gateway has but this stand-in does not model (HTTP 501, Unimplemented)."""
    return ApiError(UNIMPLEMENTED, message)


def internal(message: str) -> ApiError:
    return ApiError(INTERNAL, message)
