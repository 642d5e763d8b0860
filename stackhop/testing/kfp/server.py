"""The HTTP face of the stand-in: the v2beta1 routes `kfp.Client` calls, in the gateway's dialect.

One catch-all aiohttp handler matches the raw path against the served routes (a path
parameter ends at `/` or `:`, so `runs/{run_id}:terminate` works as in grpc-gateway), records the
request, and renders the service's answer or error as the real server would: JSON with proto
field names, `google.rpc.Status` error bodies. Any other method or path under /apis/ is 501
(Unimplemented) saying the stand-in does not model it, so a test fails at once and clearly
rather than on a 404 the real server would not give; anything else is 404 "Not Found".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import unquote

from aiohttp import web

from . import errors
from .service import Service

__all__ = ["ApiServer"]

_ID = r"(?P<id>[^/:]+)"


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    handle: Callable[[Service, str, Any, Any], Any]  # (service, path id, query, body) -> JSON


def _route(method: str, path: str, handle: Callable[[Service, str, Any, Any], Any]) -> _Route:
    return _Route(method, re.compile(path + r"\Z"), handle)


_ROUTES = (
    _route("GET", r"/apis/v2beta1/healthz", lambda s, i, q, b: s.healthz()),
    _route("GET", r"/apis/v2beta1/experiments", lambda s, i, q, b: s.list_experiments(q)),
    _route("POST", r"/apis/v2beta1/experiments", lambda s, i, q, b: s.create_experiment(b)),
    _route("GET", rf"/apis/v2beta1/experiments/{_ID}", lambda s, i, q, b: s.get_experiment(i)),
    _route("GET", r"/apis/v2beta1/runs", lambda s, i, q, b: s.list_runs(q)),
    _route("POST", r"/apis/v2beta1/runs", lambda s, i, q, b: s.create_run(b)),
    _route("GET", rf"/apis/v2beta1/runs/{_ID}", lambda s, i, q, b: s.get_run(i)),
    _route("POST", rf"/apis/v2beta1/runs/{_ID}:terminate", lambda s, i, q, b: s.terminate_run(i)),
    _route("POST", rf"/apis/v2beta1/runs/{_ID}:retry", lambda s, i, q, b: s.retry_run(i)),
)


class ApiServer:
    """Routes requests to a `Service`; `requests` records (method, path, parsed JSON body or None)."""

    def __init__(
        self, service: Service, requests: list[tuple[str, str, Any]], report: Callable[[BaseException], None]
    ) -> None:
        self.service = service
        self.requests = requests
        self._report = report

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    async def _dispatch(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body: Any = None
        body_error: str | None = None
        if raw.strip():
            try:
                body = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                body_error = f"The request body is not valid JSON: {exc}."
        self.requests.append((request.method, request.path, body))
        try:
            route, identifier = self._match(request.method, request.raw_path.split("?", 1)[0])
            if body_error is not None:
                raise errors.invalid(body_error)
            result = route.handle(self.service, identifier, request.query, body)
        except errors.ApiError as exc:
            return self._json(exc.body(), exc.http_status)
        except Exception as exc:  # a bug in the stand-in: answer as the server would, and report it
            self._report(exc)
            failure = errors.internal(f"FakeKFP failed: {exc}")
            return self._json(failure.body(), failure.http_status)
        return self._json(result, 200)

    @staticmethod
    def _match(method: str, raw_path: str) -> tuple[_Route, str]:
        for route in _ROUTES:
            match = route.pattern.match(raw_path)
            if match is not None and route.method == method:
                return route, unquote(match.groupdict().get("id") or "")
        if raw_path.startswith("/apis/"):
            raise errors.unimplemented(f"FakeKFP does not model {method} {unquote(raw_path)}.")
        raise errors.ApiError(errors.NOT_FOUND, "Not Found")

    @staticmethod
    def _json(document: Any, status: int) -> web.Response:
        return web.Response(status=status, text=json.dumps(document), content_type="application/json")
