"""`FakeKFP`: the stand-in API server in a background thread, and the test-facing API.

The HTTP server and all state live on one asyncio loop in a daemon thread, so a test can drive
the real, blocking `kfp.Client` from its own thread against a real socket. Every helper here
runs on that loop (or directly once the server has stopped), so reads and scripted moves never
race a request.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
import traceback
from types import TracebackType
from typing import Any, Callable, TypeVar

from aiohttp import web

from .server import ApiServer
from .service import Service
from stackhop.testing.loop import serve_forever, start_loopback_site

__all__ = ["FakeKFP"]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")


class FakeKFP:
    """A strict loopback stand-in for a self-hosted Kubeflow Pipelines API server (v2beta1 REST).

    Usage::

        with FakeKFP() as fake:
            client = kfp.Client(host=fake.host)
            run = client.create_run_from_pipeline_package("pipeline.yaml", arguments={...})
            fake.set_state(run.run_id, "RUNNING")

    Runs stay where they are until the test moves them (`set_state`, `set_task`); only a
    terminated run moves by itself: it reports CANCELING for `terminate_after_polls` reads
    (GET of the run), then CANCELED.
    """

    def __init__(self) -> None:
        self._service = Service()
        self._requests: list[tuple[str, str, Any]] = []
        self._errors: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._host: str | None = None
        self._startup_error: BaseException | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> "FakeKFP":
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        if exc_type is None and self._errors:
            raise RuntimeError("FakeKFP hit internal errors:\n" + "\n".join(self._errors))

    def start(self) -> "FakeKFP":
        """Start serving on 127.0.0.1 and a free port (idempotent)."""
        if self._thread is not None:
            return self
        self._check_dependencies()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name="fake-kfp", daemon=True)
        self._thread.start()
        ready.wait()
        if self._startup_error is not None:
            self._thread.join()
            self._thread = None
            raise RuntimeError("FakeKFP failed to start") from self._startup_error
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and join the server thread; the state stays readable."""
        if self._thread is None or self._loop is None:
            return
        loop, thread = self._loop, self._thread
        try:
            if self._runner is not None:
                asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            self._thread = None
            self._loop = None
            self._runner = None
            self._host = None

    @staticmethod
    def _check_dependencies() -> None:
        """Fail at start, in one sentence, rather than on the first create-run request."""
        try:
            from google.protobuf import json_format  # noqa: F401
            from kfp.pipeline_spec import pipeline_spec_pb2  # noqa: F401
        except ImportError as exc:
            raise RuntimeError(
                f"FakeKFP needs kfp-pipeline-spec (and protobuf) to check pipeline specs: {exc}."
            ) from exc

    def _serve(self, ready: threading.Event) -> None:
        serve_forever(self._startup, ready, on_loop=lambda loop: setattr(self, "_loop", loop),
                      on_error=lambda exc: setattr(self, "_startup_error", exc))

    async def _startup(self) -> None:
        server = ApiServer(self._service, self._requests, self._report)
        self._runner, self._host = await start_loopback_site(server.app())

    def _report(self, exc: BaseException) -> None:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        _log.error("FakeKFP internal error: %s", text)
        self._errors.append(text)

    def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run `fn` on the server loop while it serves (directly once stopped) and return its result."""
        loop = self._loop
        if loop is None:
            return fn(*args)

        async def run() -> _T:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=10)

    # -- connecting ----------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """Base URL for `kfp.Client(host=...)`, e.g. "http://127.0.0.1:PORT"."""
        if self._host is None:
            raise RuntimeError("FakeKFP is not running; use it as a context manager or call start()")
        return self._host

    # -- inspecting ----------------------------------------------------------------------------

    @property
    def runs(self) -> dict[str, dict[str, Any]]:
        """run_id -> the run as the API returns it (V2beta1Run JSON, proto field names); a copy."""
        return self._call(lambda: copy.deepcopy(self._service.runs))

    @property
    def experiments(self) -> dict[str, dict[str, Any]]:
        """experiment_id -> the experiment as the API returns it, "Default" included; a copy."""
        return self._call(lambda: copy.deepcopy(self._service.experiments))

    @property
    def artifacts(self) -> dict[str, dict[str, Any]]:
        """artifact id -> {"artifact_id", "uri", "run_id", "task_id", "task_display_name", "output_name"}.

        The ML Metadata side of task outputs: a task detail lists only artifact ids, and a real
        deployment resolves them to URIs in MLMD (gRPC), which this stand-in does not serve.
        """
        return self._call(lambda: copy.deepcopy(self._service.artifacts))

    @property
    def requests(self) -> list[tuple[str, str, Any]]:
        """(method, path without query, parsed JSON body or None) of every request, in order."""
        return self._call(lambda: copy.deepcopy(self._requests))

    @property
    def errors(self) -> list[str]:
        """Tracebacks of the stand-in's own failures (the context manager raises on them)."""
        return list(self._errors)

    def output_uris(self, run_id: str, display_name: str) -> dict[str, list[str]]:
        """A reported task's outputs as URIs (output name -> URIs), resolved through `artifacts`."""
        return self._call(self._service.output_uris, run_id, display_name)

    # -- steering ------------------------------------------------------------------------------

    @property
    def terminate_after_polls(self) -> int:
        """How many reads of a terminated run report CANCELING before it is CANCELED (default 1)."""
        return self._service.terminate_after_polls

    @terminate_after_polls.setter
    def terminate_after_polls(self, polls: int) -> None:
        if isinstance(polls, bool) or not isinstance(polls, int) or polls < 0:
            raise ValueError(f"terminate_after_polls must be a whole number of reads, got {polls!r}.")

        def assign() -> None:
            self._service.terminate_after_polls = polls

        self._call(assign)

    def set_state(self, run_id: str, state: str, error_message: str | None = None) -> None:
        """Move a run to a V2beta1RuntimeState as the persistence agent would report it.

        A final state (SUCCEEDED, SKIPPED, FAILED, CANCELED) sets finished_at; `error_message`
        (FAILED only) is reported in the run's `error`. CANCELED also cancels unfinished tasks.
        """
        self._call(self._service.set_state, run_id, state, error_message)

    def set_task(
        self,
        run_id: str,
        display_name: str,
        state: str,
        *,
        outputs: dict[str, list[str]] | None = None,
        error_message: str | None = None,
    ) -> dict[str, Any]:
        """Add or update the run's task detail for a task of its pipeline; returns the entry.

        `display_name` must be a task of the run's pipeline spec (a key of `dag.tasks` of root or
        of any sub-DAG, e.g. "condition-1"). `outputs` maps output artifact names the task's
        component declares to URIs: each URI becomes an artifact id listed in the task's
        `outputs[name].artifact_ids`, resolvable through `artifacts` / `output_uris`.
        """
        return self._call(self._service.set_task, run_id, display_name, state, outputs, error_message)
