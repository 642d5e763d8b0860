"""`FakeKFP`: the stand-in API server in a background thread, and the test-facing API.

The HTTP server and all state live on one asyncio loop in a daemon thread, so a test can drive
the real, blocking `kfp.Client` from its own thread against a real socket. Every helper here
runs on that loop (or directly once the server has stopped), so reads and scripted moves never
race a request.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, TypeVar

from aiohttp import web

from .server import ApiServer
from .service import Service
from stackhop.testing.loopback import AsyncioServer, StandIn

__all__ = ["FakeKFP"]

_T = TypeVar("_T")


class FakeKFP(StandIn):
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
        super().__init__()
        self._service = Service()
        self._requests: list[tuple[str, str, Any]] = []
        self._server = AsyncioServer("FakeKFP", self._app, thread_name="fake-kfp", timeout=10)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> "FakeKFP":
        """Start serving on 127.0.0.1 and a free port (idempotent)."""
        if not self._server.running:
            self._check_dependencies()
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and join the server thread; the state stays readable."""
        self._server.stop()

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

    async def _app(self) -> web.Application:
        return ApiServer(self._service, self._requests, self._report).app()

    def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run `fn` on the server loop while it serves (directly once stopped) and return its result."""
        return self._server.call(fn, *args) if self._server.running else fn(*args)

    # -- connecting ----------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """Base URL for `kfp.Client(host=...)`, e.g. "http://127.0.0.1:PORT"."""
        return self._server.url

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
        task_id: str | None = None,
    ) -> dict[str, Any]:
        """Add or update the run's task detail for a task of its pipeline; returns the entry.

        `display_name` must be a task of the run's pipeline spec (a key of `dag.tasks` of root or
        of any sub-DAG, e.g. "condition-1"). `outputs` maps output artifact names the task's
        component declares to URIs: each URI becomes an artifact id listed in the task's
        `outputs[name].artifact_ids`, resolvable through `artifacts` / `output_uris`. A task in a
        ParallelFor runs once per iteration, each a detail of its own with one display name: give
        `task_id` to add or update one of them (without it, the first detail of that name).
        """
        return self._call(self._service.set_task, run_id, display_name, state, outputs, error_message, task_id)
