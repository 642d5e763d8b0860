"""The HTTP face of the stand-in: routes of aiplatform v1 PipelineJobs, JSON in and out.

Every request is recorded (method, path, parsed body) before it is answered. Errors are the
google.rpc.Status JSON body Google APIs return over REST; routes of the v1 API that are not
modelled answer 501 UNIMPLEMENTED so a test fails at once and says why.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from aiohttp import web

from . import wire
from .errors import ApiError, invalid, not_found
from .service import PipelineService

_LOCATION = re.compile(r"^/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/(?P<rest>.+)$")
_ID = r"(?P<id>[^/:]+)"
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"^pipelineJobs$"), "create"),
    ("GET", re.compile(r"^pipelineJobs$"), "list"),
    ("GET", re.compile(rf"^pipelineJobs/{_ID}$"), "get"),
    ("POST", re.compile(rf"^pipelineJobs/{_ID}:cancel$"), "cancel"),
    ("DELETE", re.compile(rf"^pipelineJobs/{_ID}$"), "delete"),
    ("GET", re.compile(rf"^operations/{_ID}$"), "operation"),
]

Request = tuple[str, str, Any]


class VertexServer:
    """Dispatches requests to the service; `report` receives the stand-in's own failures."""

    def __init__(self, service: PipelineService, requests: list[Request], report: Callable[[BaseException], None]) -> None:
        self._service = service
        self._requests = requests
        self._report = report

    def app(self) -> web.Application:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            self._requests.append((request.method, request.path, None))
            return _error(invalid("Invalid JSON payload received: the body is not JSON."))
        self._requests.append((request.method, request.path, body))
        try:
            answer = self._dispatch(request, body)
        except ApiError as exc:
            return _error(exc)
        except Exception as exc:  # a bug in the stand-in: answer 500 and make the test fail
            self._report(exc)
            return _error(ApiError("INTERNAL", f"FakeVertex failed: {exc!r}"))
        return web.json_response(answer)

    def _dispatch(self, request: web.Request, body: Any) -> dict[str, Any]:
        match = _LOCATION.match(request.path)
        if match is None:
            if request.path.startswith("/v1/"):
                raise ApiError("UNIMPLEMENTED", f"FakeVertex does not model {request.method} {request.path}.")
            raise not_found(f"The requested URL {request.path} was not found on this server.")
        for method, pattern, action in _ROUTES:
            route = pattern.match(match["rest"])
            if route is not None and method == request.method:
                break
        else:
            raise ApiError("UNIMPLEMENTED", f"FakeVertex does not model {request.method} {request.path}.")
        service = self._service
        service.check_parent(match["project"], match["location"])
        enums_as_ints = "enum-encoding=int" in request.query.get("$alt", "")
        job_id = route.groupdict().get("id")
        if action == "create":
            job = service.create(request.query.get("pipelineJobId"), body)
            return wire.render(job, enums_as_ints=enums_as_ints)
        if action == "get":
            assert job_id is not None
            return wire.render(service.get(job_id), enums_as_ints=enums_as_ints)
        if action == "list":
            answer = service.list(dict(request.query))
            answer["pipelineJobs"] = [
                wire.render(job, enums_as_ints=enums_as_ints) for job in answer.get("pipelineJobs", [])
            ]
            return {k: v for k, v in answer.items() if v}
        assert job_id is not None
        if action == "cancel":
            return service.cancel(job_id)
        if action == "delete":
            return service.delete(job_id)
        return service.operation(job_id)


def _error(exc: ApiError) -> web.Response:
    return web.json_response(exc.body(), status=exc.http_status)
