"""Reaching an object store: fail in seconds with one sentence, not minutes of retries and a traceback.

fsspec's S3 and GCS filesystems retry a refused connection or a DNS failure for tens of seconds
and then raise whatever the SDK below raised. Before the first remote call to a store, this
module checks what it can check cheaply (credentials for GCS, a TCP connection to the endpoint),
and afterwards it turns the SDKs' errors into an `ArtifactError` naming the stack, the URI and
the fix. The SDKs are never imported here: errors are recognised by their class names.
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Iterator
from urllib.parse import urlparse

from stackhop.errors import ArtifactError

CONNECT_TIMEOUT = 3.0
_checked: set[tuple[str, str]] = set()
_stacks: dict[str, str] = {}


def remember_stack(root: str, stack: str) -> None:
    """Let errors about URIs below `root` name the stack they belong to."""
    _stacks[root.rstrip("/")] = stack


def who(uri: str) -> str:
    roots = [r for r in _stacks if uri == r or uri.startswith(r + "/")]
    return f"stack {_stacks[max(roots, key=len)]!r}: " if roots else ""


def _bucket(uri: str) -> str:
    return urlparse(uri).netloc


def endpoint(scheme: str) -> str:
    """The URL the store's SDK will talk to, honouring the emulator variables the SDKs honour."""
    if scheme == "s3":
        custom = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if custom:
            return custom
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        return f"https://s3.{region}.amazonaws.com" if region else "https://s3.amazonaws.com"
    if scheme in ("gs", "gcs"):
        host = os.environ.get("STORAGE_EMULATOR_HOST")
        if host:
            return host if "://" in host else "http://" + host
        return "https://storage.googleapis.com"
    return ""


def _local_hint(scheme: str) -> str:
    if scheme == "s3":
        return ("or, for a local S3 (`--emulate` uses the stack's store as it is), set AWS_ENDPOINT_URL_S3 to it, "
                "for example `moto_server` on http://127.0.0.1:5000")
    return "or, for a local Cloud Storage (`--emulate` uses the stack's store as it is), set STORAGE_EMULATOR_HOST to it"


def _credentials_fix(scheme: str) -> str:
    if scheme == "s3":
        return ("set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or run `aws configure`), "
                + _local_hint(scheme))
    return ("run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS, "
            + _local_hint(scheme))


def _uses_proxy() -> bool:
    return any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"))


def preflight(scheme: str, uri: str) -> None:
    """Until it first succeeds, per process and endpoint: credentials GCS would otherwise retry without, and a reachable endpoint."""
    url = endpoint(scheme)
    if not url:
        return
    key = (scheme, url)
    if key in _checked:
        return
    problem = _problem(scheme, url)
    if problem:  # not remembered: the next call looks again, once credentials or the endpoint are there
        raise ArtifactError(f"{who(uri)}cannot use {uri}: {problem}.")
    _checked.add(key)


def _problem(scheme: str, url: str) -> str | None:
    if scheme in ("gs", "gcs") and not os.environ.get("STORAGE_EMULATOR_HOST"):
        try:
            import google.auth
            from google.auth.exceptions import DefaultCredentialsError
        except ImportError:
            return None  # the filesystem's own import error says what to install
        try:
            google.auth.default()
        except DefaultCredentialsError:
            return "no Google Cloud credentials were found; " + _credentials_fix(scheme)
    if _uses_proxy():
        return None  # the proxy decides what is reachable
    parsed = urlparse(url)
    host, port = parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return f"the endpoint {url} cannot be reached ({reason}); check the network, " + (
            "or the endpoint variable that points there" if "amazonaws.com" not in url and "googleapis.com" not in url
            else _local_hint(scheme))
    return None


def _names(exc: BaseException) -> set[str]:
    return {c.__name__ for c in type(exc).__mro__}


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return str(getattr(exc, "code", "") or "")


def describe(exc: BaseException, scheme: str, uri: str) -> str | None:
    """One sentence for an SDK error about `uri`, or None when it is not an access problem."""
    names, code = _names(exc), _code(exc)
    bucket = _bucket(uri)
    if names & {"NoCredentialsError", "PartialCredentialsError", "DefaultCredentialsError", "RefreshError"}:
        return f"no usable credentials were found ({exc}); " + _credentials_fix(scheme)
    if names & {"EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError", "ServerTimeoutError",
                "ConnectionRefusedError", "gaierror", "TimeoutError"}:
        return f"the endpoint {endpoint(scheme)} cannot be reached ({exc}); check the network, " + _local_hint(scheme)
    if code in ("NoSuchBucket",) or "NoSuchBucket" in str(exc) or "bucket does not exist" in str(exc).lower():
        return f"bucket {bucket!r} does not exist; create it, or point the stack's artifact_root at one that does"
    if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken") or (
            isinstance(exc, PermissionError)):
        return (f"these credentials may not access bucket {bucket!r} ({code or type(exc).__name__}); use credentials "
                "that may, or another artifact_root")
    return None


@contextlib.contextmanager
def access(scheme: str, uri: str) -> Iterator[None]:
    """Around every remote call: access problems become one sentence; a missing object stays FileNotFoundError."""
    try:
        yield
    except ArtifactError:
        raise
    except FileNotFoundError as exc:
        if "bucket" in str(exc).lower() and "NoSuchKey" not in str(exc):
            raise ArtifactError(f"{who(uri)}cannot use {uri}: bucket {_bucket(uri)!r} does not exist; create it, or "
                                "point the stack's artifact_root at one that does.") from None
        raise
    except Exception as exc:
        sentence = describe(exc, scheme, uri)
        if sentence is None:
            raise
        raise ArtifactError(f"{who(uri)}cannot use {uri}: {sentence}.") from None
