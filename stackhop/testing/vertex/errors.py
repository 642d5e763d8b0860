"""`ApiError`: a failure answered as the google.rpc.Status JSON body Google APIs return over REST."""

from __future__ import annotations

from typing import Any

# HTTP status for each canonical code the stand-in answers with (google.rpc.Code mapping).
_HTTP_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
}


class ApiError(Exception):
    """A request the service refuses; rendered as `{"error": {"code", "message", "status"}}`."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        if status not in _HTTP_STATUS:
            raise ValueError(f"unknown canonical status {status!r}")
        self.status = status
        self.message = message

    @property
    def http_status(self) -> int:
        return _HTTP_STATUS[self.status]

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.http_status, "message": self.message, "status": self.status}}


def invalid(message: str) -> ApiError:
    return ApiError("INVALID_ARGUMENT", message)


def not_found(message: str) -> ApiError:
    return ApiError("NOT_FOUND", message)


def failed_precondition(message: str) -> ApiError:
    return ApiError("FAILED_PRECONDITION", message)
