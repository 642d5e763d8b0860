"""`FakeKubernetes`: the whole fake cluster in a background thread, and the test-facing API.

Everything (HTTP server, store, controllers, pod processes) runs on one asyncio loop in a
daemon thread, so tests can call the official, blocking `kubernetes` client from the main
thread against a real socket. The helpers here marshal onto that loop; none of them bypass
the API's rules except where a test must play the role of a controller (`set_status`).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
import weakref
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TypeVar

import yaml
from aiohttp import web

from .api import Api
from .clock import Clock
from .events import EventRecorder
from .injection import ApiErrorInjector, PodFailureInjector
from .jobs import JobController
from .kubelet import Kubelet
from .lifecycle import Lifecycle
from .logs import LogStore
from .resources import Registry
from .server import ApiServer
from .store import Store
from .validation import Validator, parse_version
from stackhop.testing.loopback import AsyncioServer, StandIn

__all__ = ["FakeKubernetes"]

_T = TypeVar("_T")


def _kill_process_groups(groups: set[int]) -> None:
    """Last resort at garbage collection/interpreter exit: no pod process may outlive the fake."""
    for pgid in list(groups):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    groups.clear()


class FakeKubernetes(StandIn):
    """A strict, in-process stand-in for a Kubernetes cluster, served over real HTTP.

    Usage::

        with FakeKubernetes(version="1.37", time_scale=0.1) as kube:
            batch = kubernetes.client.BatchV1Api(kube.api_client())
            ...

    `version` pins the schemas and behaviour (e.g. "1.30", "1.37"); `time_scale` multiplies every
    simulated delay (back-off, activeDeadlineSeconds, ttlSecondsAfterFinished, grace periods);
    `command_map` maps a container's `command[0]` to a local executable (a path, or an argv
    prefix), on top of the default mapping of `python`/`python3` to this interpreter.
    `pod_env` adds environment variables to every container (as a node-level default);
    `watch_history` is how many events a watch can resume from before answering 410 Expired.
    """

    def __init__(
        self,
        version: str = "1.37",
        time_scale: float = 1.0,
        command_map: Mapping[str, str | Sequence[str]] | None = None,
        *,
        pod_env: Mapping[str, str] | None = None,
        watch_history: int = 1000,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self._version = parse_version(version)
        self._clock = Clock(time_scale)
        if watch_history < 1:
            raise ValueError("watch_history must be at least 1")
        self._command_map: dict[str, str | Sequence[str]] = {"python": sys.executable, "python3": sys.executable}
        self._command_map.update(command_map or {})
        self._pod_env = dict(pod_env or {})
        self._watch_history = watch_history
        self._seed = seed
        self._requests: list[tuple[str, str, str]] = []
        self._pod_failures = PodFailureInjector()
        self._api_errors = ApiErrorInjector()
        self._http = AsyncioServer(
            "FakeKubernetes", self._startup, thread_name="fake-kubernetes", before_stop=self._shutdown,
            shutdown_timeout=2.0,
        )
        self._workdir: Path | None = None
        self._process_groups: set[int] = set()
        weakref.finalize(self, _kill_process_groups, self._process_groups)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> "FakeKubernetes":
        """Start serving (idempotent); `with FakeKubernetes(...)` does this for you."""
        if self._http.running:
            return self
        self._workdir = Path(tempfile.mkdtemp(prefix="fake-kubernetes-"))
        self._http.start()
        self._server.server_address = self._http.address
        return self

    def stop(self) -> None:
        """Stop serving, kill every pod process and remove the pods' scratch directories."""
        if not self._http.running:
            return
        try:
            self._http.stop()
        finally:
            _kill_process_groups(self._process_groups)
            if self._workdir is not None:
                shutil.rmtree(self._workdir, ignore_errors=True)

    async def _startup(self) -> web.Application:
        loop = asyncio.get_running_loop()
        assert self._workdir is not None
        self._store = Store(self._watch_history, report_error=self._report)
        self._registry = Registry()
        self._logs = LogStore()
        events = EventRecorder(self._store)
        self._kubelet = Kubelet(
            self._store,
            events,
            self._clock,
            self._command_map,
            self._pod_env,
            self._pod_failures,
            self._logs,
            self._workdir,
            self._report,
        )
        self._kubelet.process_groups = self._process_groups
        lifecycle = Lifecycle(self._store, self._registry, loop, self._kubelet.needs_grace)
        self._kubelet.on_pod_terminated = lifecycle.pod_terminated
        self._api = Api(
            self._store,
            self._registry,
            Validator(f"{self._version[0]}.{self._version[1]}"),
            lifecycle,
            loop,
            self._seed,
        )
        self._jobs = JobController(self._store, events, self._clock, self._version, self._report)
        self._jobs.api, self._jobs.lifecycle = self._api, lifecycle
        self._jobs.start()
        self._server = ApiServer(
            self._api,
            self._store,
            self._registry,
            self._logs,
            self._api_errors,
            self._version,
            self._requests,
            self._report,
        )
        return self._server.app()

    async def _shutdown(self) -> None:
        await self._server.close_streams()
        await self._jobs.stop()
        await self._kubelet.shutdown()

    def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run `fn` on the server loop (the store's only thread) and return its result."""
        return self._http.call(fn, *args)

    # -- connecting ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self._http.url

    def api_client(self) -> Any:
        """A `kubernetes.client.ApiClient` for this server (no authentication)."""
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        return client.ApiClient(configuration)

    def write_kubeconfig(self, path: str | os.PathLike[str], namespace: str = "default") -> Path:
        """Write a kubeconfig whose current context "fake" points at this server."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": namespace}}],
            "current-context": "fake",
            "preferences": {},
        }
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(config, sort_keys=False))
        return target

    # -- inspecting ----------------------------------------------------------------------------

    def objects(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Stored objects of `kind` ("Job", "Pod", or "Kind.group" for ambiguous custom kinds)."""

        def collect() -> list[dict[str, Any]]:
            types = self._registry.with_kind(kind)
            if not types:
                raise ValueError(f"no served kind {kind!r}")
            if len(types) > 1:
                options = ", ".join(f"{t.kind}.{t.group}" for t in types)
                raise ValueError(f"kind {kind!r} is ambiguous; use one of {options}")
            rtype = types[0]
            return [self._api.present(rtype, obj) for obj in self._store.objects(rtype.key, namespace)]

        return self._call(collect)

    @property
    def requests(self) -> list[tuple[str, str, str]]:
        """(method, path, query string) of every HTTP request received, in order."""
        return list(self._requests)

    # -- steering ------------------------------------------------------------------------------

    def inject_pod_failure(self, job_name_prefix: str, reason: str, count: int = 1) -> None:
        """Make the next `count` pods of Jobs whose name starts with the prefix fail with `reason`.

        ImagePullBackOff, ErrImagePull, InvalidImageName and CreateContainerConfigError leave the
        pod Pending with that waiting reason (its process never starts); OOMKilled starts the
        process and kills it (exit code 137, reason OOMKilled); Evicted starts it, then fails the
        pod with reason Evicted and a DisruptionTarget condition. Pods without a job-name label
        are matched by their own name.
        """
        self._pod_failures.add(job_name_prefix, reason, count)

    def inject_api_errors(
        self, status: int, count: int = 1, method: str | None = None, path_contains: str | None = None
    ) -> None:
        """Answer the next `count` matching requests with `status` (429 comes with Retry-After)."""
        self._api_errors.add(status, count, method, path_contains)

    def set_status(
        self, api_version: str, kind: str, namespace: str | None, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        """Replace an object's `.status` as its controller would (new resourceVersion, MODIFIED event)."""

        def update() -> dict[str, Any]:
            rtype = self._registry.for_api_version(api_version, kind)
            if rtype is None:
                raise ValueError(f"no served kind {kind!r} in {api_version!r}")
            return self._api.set_status(rtype, namespace or "" if rtype.namespaced else "", name, status)

        return self._call(update)
