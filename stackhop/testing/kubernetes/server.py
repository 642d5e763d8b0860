"""The HTTP face of the fake: routing, query parameters, bodies, watch and log streams.

Plain aiohttp speaking the API server's JSON dialect, so the official `kubernetes` client (and
anything else that speaks HTTP) can be pointed at it unchanged: the same URL layout, status
codes, `Status` error bodies, Retry-After and Warning headers, newline-delimited watch events
(including the ERROR/410 event for a too-old resourceVersion) and chunked log following.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

import yaml
from aiohttp import web

from . import discovery, errors, names
from .api import Api, DeleteOptions, ListOptions, WriteOptions
from .errors import ApiError
from .injection import ApiErrorInjector
from .logs import LogStore
from .resources import POD, Registry, ResourceType
from .selectors import FieldSelector, LabelSelector
from .store import ExpiredError, Store, WatchEvent

__all__ = ["ApiServer"]

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}
_JSON_TYPES = ("application/json",)
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
_FIELD_VALIDATION = ("Ignore", "Warn", "Strict")


def _bool(query: Any, key: str) -> bool:
    value = query.get(key)
    if value is None or value == "":
        return False
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise errors.bad_request(f'invalid boolean value for {key}: "{value}"')


def _int(query: Any, key: str, minimum: int | None = None) -> int | None:
    value = query.get(key)
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise errors.bad_request(f'{key}: Invalid value: "{value}": must be an integer') from None
    if minimum is not None and number < minimum:
        raise errors.bad_request(f"{key}: Invalid value: {number}: must be greater than or equal to {minimum}")
    return number


def _dry_run(query: Any) -> bool:
    values = query.getall("dryRun", [])
    for value in values:
        if value != "All":
            raise errors.bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
    return bool(values)


def _media_type(request: web.Request) -> str | None:
    header = request.headers.get("Content-Type")
    if header is None:
        return None
    return header.split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class _Target:
    rtype: ResourceType
    namespace: str | None  # None: cluster-scoped resource, or all namespaces
    name: str | None
    subresource: str | None


class ApiServer:
    """Routes requests to the Api and streams watches and logs."""

    def __init__(
        self,
        api: Api,
        store: Store,
        registry: Registry,
        logs: LogStore,
        injector: ApiErrorInjector,
        version: tuple[int, int],
        requests: list[tuple[str, str, str]],
        report_error: Callable[[BaseException], None],
    ) -> None:
        self.api = api
        self.store = store
        self.registry = registry
        self.logs = logs
        self.injector = injector
        self.version = version
        self.requests = requests
        self.report_error = report_error
        self.server_address = ""
        self._closing = asyncio.Event()
        self._watch_queues: set[asyncio.Queue[WatchEvent | None]] = set()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    async def close_streams(self) -> None:
        """End open watches and log follows so the HTTP server can shut down promptly."""
        self._closing.set()
        for queue in list(self._watch_queues):
            queue.put_nowait(None)

    # -- plumbing ----------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        self.requests.append((request.method, request.path, request.query_string))
        injected = self.injector.take(request.method, request.path_qs)
        if injected is not None:
            return self._error(errors.injected(injected))
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except ApiError as exc:
            return self._error(exc)
        except (web.HTTPException, asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as exc:  # a bug in the fake: answer like an API server would, and report it
            self.report_error(exc)
            return self._error(errors.internal_error(f"{type(exc).__name__}: {exc}"))

    @staticmethod
    def _error(error: ApiError) -> web.Response:
        return web.json_response(error.status(), status=error.code, headers=error.headers)

    @staticmethod
    def _json(body: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
        response = web.json_response(body, status=status)
        for warning in warnings or []:
            response.headers.add("Warning", f'299 - "{warning}"')
        return response

    async def _body(self, request: web.Request) -> Any:
        """A POST/PUT body: JSON (also when there is no Content-Type, as real servers tolerate) or YAML."""
        media = _media_type(request)
        raw = await request.read()
        if media is not None and media not in _JSON_TYPES + _YAML_TYPES:
            raise errors.unsupported_media_type(media, _JSON_TYPES + _YAML_TYPES)
        if not raw.strip():
            raise errors.bad_request("the body of the request was empty")
        try:
            return yaml.safe_load(raw) if media in _YAML_TYPES else json.loads(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise errors.bad_request(f"the body of the request could not be decoded: {exc}") from None

    def _write_options(self, request: web.Request) -> WriteOptions:
        query = request.query
        validation = query.get("fieldValidation")
        if validation and validation not in _FIELD_VALIDATION:
            raise errors.bad_request(
                f'fieldValidation: Unsupported value: "{validation}": supported values: "Ignore", "Warn", "Strict"'
            )
        manager = query.get("fieldManager")
        if manager is not None and len(manager) > 128:
            raise errors.bad_request("fieldManager: Too long: may not be more than 128 bytes")
        return WriteOptions(_dry_run(query), manager, request.headers.get("User-Agent", ""))

    # -- routing -----------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if not parts:
            return self._json({"paths": ["/api", "/api/v1", "/apis", "/version", "/healthz", "/livez", "/readyz"]})
        if parts[0] in ("version", "healthz", "livez", "readyz") and len(parts) == 1:
            self._only_get(request)
            if parts[0] == "version":
                return self._json(discovery.version_info(self.version))
            return web.Response(text="ok")
        if parts[0] == "api":
            if len(parts) == 1:
                self._only_get(request)
                return self._json(discovery.api_versions(self.server_address))
            if parts[1] != "v1":
                raise errors.path_not_found()
            if len(parts) == 2:
                self._only_get(request)
                return self._json(discovery.resource_list(self.registry, "", "v1"))
            return await self._resource(request, self._target("", "v1", parts[2:]))
        if parts[0] == "apis":
            if len(parts) == 1:
                self._only_get(request)
                return self._json(discovery.group_list(self.registry))
            if len(parts) == 2:
                self._only_get(request)
                group = discovery.api_group(self.registry, parts[1])
                if group is None:
                    raise errors.path_not_found()
                return self._json(group)
            if len(parts) == 3:
                self._only_get(request)
                resources = discovery.resource_list(self.registry, parts[1], parts[2])
                if resources is None:
                    raise errors.path_not_found()
                return self._json(resources)
            return await self._resource(request, self._target(parts[1], parts[2], parts[3:]))
        raise errors.path_not_found()

    @staticmethod
    def _only_get(request: web.Request) -> None:
        if request.method != "GET":
            raise errors.method_not_allowed()

    def _target(self, group: str, version: str, rest: list[str]) -> _Target:
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] in self.registry.namespaced_plurals(group, version):
            namespace, rest = rest[1], rest[2:]
        if len(rest) > 3:
            raise errors.path_not_found()
        rtype = self.registry.resolve(group, version, rest[0])
        if rtype is None:
            raise errors.path_not_found()
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        if rtype.namespaced and namespace is None and name is not None:
            raise errors.path_not_found()
        return _Target(rtype, namespace, name, subresource)

    async def _resource(self, request: web.Request, target: _Target) -> web.StreamResponse:
        rtype, method, query = target.rtype, request.method, request.query
        namespace = target.namespace or ""
        if target.namespace is not None and not names.dns1123_label(target.namespace):
            self.api.ensure_namespace(target.namespace)  # every namespace exists implicitly
        if target.name is None:
            if method == "GET":
                if _bool(query, "watch"):
                    return await self._watch(request, target)
                return self._json(self.api.list_objects(rtype, target.namespace, self._list_options(query)))
            if method == "POST" and (target.namespace is not None or not rtype.namespaced):
                body = await self._body(request)
                return self._json(self.api.create(rtype, namespace, body, self._write_options(request)), status=201)
            if (
                method == "DELETE"
                and "deletecollection" in rtype.verbs
                and (target.namespace is not None or not rtype.namespaced)
            ):
                options = await self._delete_options(request)
                return self._json(
                    self.api.delete_collection(rtype, target.namespace, self._list_options(query), options)
                )
            raise errors.method_not_allowed()
        if target.subresource is None:
            if method == "GET":
                return self._json(self.api.get(rtype, namespace, target.name))
            if method == "PUT":
                body = await self._body(request)
                return self._json(self.api.replace(rtype, namespace, target.name, body, self._write_options(request)))
            if method == "PATCH":
                return await self._patch(request, target, None)
            if method == "DELETE":
                body, warnings = self.api.delete(rtype, namespace, target.name, await self._delete_options(request))
                return self._json(body, warnings=warnings)
            raise errors.method_not_allowed()
        if target.subresource == "status" and rtype.status_subresource:
            if method == "GET":
                return self._json(self.api.get(rtype, namespace, target.name))
            if method == "PUT":
                body = await self._body(request)
                return self._json(
                    self.api.replace(rtype, namespace, target.name, body, self._write_options(request), "status")
                )
            if method == "PATCH":
                return await self._patch(request, target, "status")
            raise errors.method_not_allowed()
        if target.subresource == "log" and rtype.log_subresource:
            self._only_get(request)
            return await self._log(request, namespace, target.name)
        raise errors.path_not_found()

    async def _patch(self, request: web.Request, target: _Target, subresource: str | None) -> web.Response:
        assert target.name is not None
        raw = await request.read()
        obj, created = self.api.patch(
            target.rtype,
            target.namespace or "",
            target.name,
            _media_type(request) or "",
            raw,
            self._write_options(request),
            subresource,
        )
        return self._json(obj, status=201 if created else 200)

    @staticmethod
    def _list_options(query: Any) -> ListOptions:
        return ListOptions(
            query.get("labelSelector"),
            query.get("fieldSelector"),
            _int(query, "limit", 0),
            query.get("continue") or None,
        )

    async def _delete_options(self, request: web.Request) -> DeleteOptions:
        query = request.query
        body: dict[str, Any] = {}
        raw = await request.read()
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError as exc:
                raise errors.bad_request(f"the body of the request could not be decoded: {exc}") from None
            if not isinstance(body, dict):
                raise errors.bad_request("DeleteOptions must be a JSON object")
        policy = query.get("propagationPolicy") or body.get("propagationPolicy")
        orphan = query.get("orphanDependents")
        orphan_flag = _bool(query, "orphanDependents") if orphan is not None else body.get("orphanDependents")
        if policy is None and orphan_flag is not None:
            policy = "Orphan" if orphan_flag else "Background"
        grace = _int(query, "gracePeriodSeconds")
        if grace is None and body.get("gracePeriodSeconds") is not None:
            grace = int(body["gracePeriodSeconds"])
        dry_run = _dry_run(query) or "All" in (body.get("dryRun") or [])
        return DeleteOptions(policy, grace, body.get("preconditions"), dry_run)

    # -- watch -------------------------------------------------------------------------------

    def _translate(
        self, event: WatchEvent, target: _Target, labels: LabelSelector, fields: FieldSelector
    ) -> tuple[str, dict[str, Any]] | None:
        """The event as this watcher sees it: objects entering or leaving its selection become ADDED/DELETED."""
        if event.resource != target.rtype.key:
            return None
        if target.namespace is not None and event.object["metadata"].get("namespace") != target.namespace:
            return None

        def selected(obj: dict[str, Any] | None) -> bool:
            return obj is not None and labels.matches(obj["metadata"].get("labels")) and fields.matches(obj)

        now = selected(event.object)
        if event.type == "MODIFIED":
            before = selected(event.previous)
            kind = {(True, True): "MODIFIED", (False, True): "ADDED", (True, False): "DELETED"}.get((before, now))
        else:
            kind = event.type if now else None
        if kind is None:
            return None
        return kind, self.api.present(target.rtype, event.object)

    async def _watch(self, request: web.Request, target: _Target) -> web.StreamResponse:
        query = request.query
        labels, fields = self.api.selectors(target.rtype, query.get("labelSelector"), query.get("fieldSelector"))
        timeout = _int(query, "timeoutSeconds", 0)
        send_initial = _bool(query, "sendInitialEvents")
        bookmarks = _bool(query, "allowWatchBookmarks")
        requested = query.get("resourceVersion") or ""
        backlog: list[tuple[str, dict[str, Any]]] = []
        expired: ExpiredError | None = None
        if requested in ("", "0") or send_initial:
            for obj in self.store.objects(target.rtype.key, target.namespace):
                if labels.matches(obj["metadata"].get("labels")) and fields.matches(obj):
                    backlog.append(("ADDED", self.api.present(target.rtype, obj)))
        else:
            try:
                since = int(requested)
            except ValueError:
                raise errors.bad_request(
                    f'resourceVersion: Invalid value: "{requested}": invalid resource version'
                ) from None
            try:
                for event in self.store.events_after(since):
                    translated = self._translate(event, target, labels, fields)
                    if translated is not None:
                        backlog.append(translated)
            except ExpiredError as exc:
                expired = exc
        start_version = self.store.resource_version
        # Subscribing in the same loop step as reading the backlog: no event is missed or repeated.
        queue: asyncio.Queue[WatchEvent | None] = asyncio.Queue()
        self.store.subscribe(queue.put_nowait)
        self._watch_queues.add(queue)
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            if expired is not None:
                status = errors.expired(str(expired)).status()
                await self._send(response, "ERROR", status)
                return response
            for kind, obj in backlog:
                await self._send(response, kind, obj)
            if send_initial and bookmarks:
                marker = {
                    "apiVersion": target.rtype.api_version,
                    "kind": target.rtype.kind,
                    "metadata": {
                        "resourceVersion": str(start_version),
                        "annotations": {"k8s.io/initial-events-end": "true"},
                    },
                }
                await self._send(response, "BOOKMARK", marker)
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._closing.is_set():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                try:
                    live = await asyncio.wait_for(queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
                if live is None:
                    break
                translated = self._translate(live, target, labels, fields)
                if translated is not None:
                    await self._send(response, *translated)
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            self.store.unsubscribe(queue.put_nowait)
            self._watch_queues.discard(queue)
        return response

    @staticmethod
    async def _send(response: web.StreamResponse, kind: str, obj: dict[str, Any]) -> None:
        await response.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")

    # -- logs --------------------------------------------------------------------------------

    async def _log(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        query = request.query
        pod = self.api.get_or_404(POD, namespace, name)
        spec, status = pod.get("spec") or {}, pod.get("status") or {}
        containers = [c["name"] for c in spec.get("containers") or []]
        init_containers = [c["name"] for c in spec.get("initContainers") or []]
        container = query.get("container")
        if not container:
            if len(containers) != 1:
                message = f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
                if init_containers:
                    message += f" or one of the init containers: [{' '.join(init_containers)}]"
                raise errors.bad_request(message)
            container = containers[0]
        elif container not in containers + init_containers:
            raise errors.bad_request(f"container {container} is not valid for pod {name}")
        previous = _bool(query, "previous")
        follow = _bool(query, "follow") and not previous
        tail = _int(query, "tailLines", 0)
        limit = _int(query, "limitBytes", 1)
        timestamps = _bool(query, "timestamps")
        since = self._since(query)
        uid = pod["metadata"]["uid"]
        log = self.logs.previous(uid, container) if previous else self.logs.current(uid, container)
        if log is None:
            if previous:
                raise errors.bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
            statuses = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
            waiting = (
                next(((s.get("state") or {}).get("waiting") for s in statuses if s.get("name") == container), None)
                or {}
            )
            reason = waiting.get("reason", "ContainerCreating")
            if reason in ("ErrImagePull", "ImagePullBackOff"):
                reason = "trying and failing to pull image"
            raise errors.bad_request(f'container "{container}" in pod "{name}" is waiting to start: {reason}')
        if not follow:
            body = log.render(tail_lines=tail, since=since, timestamps=timestamps)
            return web.Response(body=body[:limit] if limit else body, content_type="text/plain")
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        sent, position, first = 0, 0, True
        try:
            while True:
                # Take the change signal, the new lines and the finished flag in one step (no await
                # in between), so nothing written meanwhile can be missed.
                changed = log.changed()
                if first:
                    chunk = log.render(tail_lines=tail, since=since, timestamps=timestamps)
                    first = False
                else:
                    chunk = log.render(position, since=since, timestamps=timestamps)
                position = len(log.lines)
                finished = log.finished
                if limit is not None:
                    chunk = chunk[: limit - sent]
                if chunk:
                    await response.write(chunk)
                    sent += len(chunk)
                if finished or self._closing.is_set() or (limit is not None and sent >= limit):
                    break
                waiters = [asyncio.ensure_future(changed.wait()), asyncio.ensure_future(self._closing.wait())]
                try:
                    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waiters:
                        waiter.cancel()
            await response.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass
        return response

    @staticmethod
    def _since(query: Any) -> float | None:
        seconds = _int(query, "sinceSeconds", 1)
        if seconds is not None:
            return time.time() - seconds
        text = query.get("sinceTime")
        if not text:
            return None
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise errors.bad_request(f'sinceTime: Invalid value: "{text}": must be RFC3339') from None
