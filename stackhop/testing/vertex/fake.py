"""`FakeVertex`: the PipelineJobs stand-in on a loopback port, and the test-facing API.

The aiohttp server runs on its own event loop in a daemon thread, so tests can drive the real,
blocking `google.cloud.aiplatform` client from the main thread over a real socket.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from .server import Request, VertexServer
from .service import PipelineService
from stackhop.testing.loopback import AsyncioServer, StandIn

if TYPE_CHECKING:
    import pytest

__all__ = ["FakeVertex"]


class FakeVertex(StandIn):
    """A strict stand-in for Vertex AI Pipelines' v1 REST API (PipelineJobs), on 127.0.0.1.

    Usage::

        with FakeVertex(project="test-project", location="us-central1") as fake:
            fake.patch_client(monkeypatch)
            aiplatform.init(project="test-project", location="us-central1",
                            credentials=AnonymousCredentials(), api_endpoint=fake.endpoint,
                            api_transport="rest")
            ...

    Jobs are named with `project_number` (as the service does); requests may address the
    project by id or number. Nothing changes by itself except a requested cancel; tests script
    the rest with `set_state` and `set_task`.
    """

    def __init__(
        self, project: str = "test-project", location: str = "us-central1", *, project_number: str = "123456789012"
    ) -> None:
        if not project_number.isdigit():
            raise ValueError("project_number must be digits, as Google Cloud project numbers are")
        super().__init__()
        self._service = PipelineService(project, project_number, location)
        self._requests: list[Request] = []
        self._server = AsyncioServer("FakeVertex", self._app, thread_name="fake-vertex")

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> "FakeVertex":
        """Start serving (idempotent); `with FakeVertex(...)` does this for you."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Close every connection, stop the loop and join its thread."""
        self._server.stop()

    async def _app(self) -> web.Application:
        return VertexServer(self._service, self._requests, self._report).app()

    # -- connecting ----------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """"http://127.0.0.1:PORT": give it to aiplatform as api_endpoint, with api_transport="rest"."""
        return self._server.url

    @property
    def project(self) -> str:
        return self._service.project

    @property
    def project_number(self) -> str:
        return self._service.project_number

    @property
    def location(self) -> str:
        return self._service.location

    def patch_client(self, monkeypatch: "pytest.MonkeyPatch", *, poll_interval: float = 0.01) -> None:
        """Make `google.cloud.aiplatform` usable against this stand-in for one test.

        `PipelineJob.submit` first gets or creates the pipeline root's bucket through Cloud
        Storage (`gcs_utils.create_gcs_bucket_for_pipeline_artifacts_if_it_does_not_exist`),
        which would reach storage.googleapis.com: it is replaced by a no-op. `PipelineJob.wait`
        polls every `pipeline_jobs._JOB_WAIT_TIME` (5 s): it becomes `poll_interval`. The
        attributes of aiplatform's global config are restored at teardown, so the
        `aiplatform.init(api_endpoint=...)` a test makes after this call does not outlive it.
        """
        from google.cloud.aiplatform import initializer, pipeline_jobs
        from google.cloud.aiplatform.utils import gcs_utils

        def no_bucket(output_artifacts_gcs_dir: str | None = None, **_: Any) -> str | None:
            return output_artifacts_gcs_dir

        monkeypatch.setattr(gcs_utils, "create_gcs_bucket_for_pipeline_artifacts_if_it_does_not_exist", no_bucket)
        monkeypatch.setattr(pipeline_jobs, "_JOB_WAIT_TIME", poll_interval)
        config = initializer.global_config
        for name, value in list(vars(config).items()):
            monkeypatch.setattr(config, name, value)

    # -- inspecting ----------------------------------------------------------------------------

    @property
    def jobs(self) -> dict[str, dict[str, Any]]:
        """job id -> the stored PipelineJob as REST JSON (camelCase, enums by name); a snapshot."""
        return self._service.jobs()

    @property
    def requests(self) -> list[Request]:
        """(method, path without query, parsed JSON body or None) of every request, in order."""
        return list(self._requests)

    # -- scripting -----------------------------------------------------------------------------

    @property
    def cancel_after_polls(self) -> int:
        """After a cancel, how many GETs report PIPELINE_STATE_CANCELLING before CANCELLED."""
        return self._service.cancel_after_polls

    @cancel_after_polls.setter
    def cancel_after_polls(self, polls: int) -> None:
        if isinstance(polls, bool) or not isinstance(polls, int) or polls < 0:
            raise ValueError("cancel_after_polls must be a non-negative integer")
        self._service.cancel_after_polls = polls

    def set_state(self, job_id: str, state: str, error_message: str | None = None) -> None:
        """Move a job to `state` (a PipelineState name) as the service's own scheduler would.

        RUNNING sets startTime; SUCCEEDED, FAILED and CANCELLED set endTime; FAILED sets
        `error` (code 9, `error_message` or a message naming the FAILED tasks) and CANCELLED sets
        it with code 1. Setting a state ends a cancel sequence in flight.
        """
        self._service.set_state(job_id, state, error_message)

    def set_task(
        self,
        job_id: str,
        task_name: str,
        state: str,
        *,
        outputs: dict[str, list[str]] | None = None,
        error_message: str | None = None,
        task_id: int | None = None,
        parent_task_id: int | None = None,
    ) -> dict[str, Any]:
        """Add or update the jobDetail.taskDetails entry of `task_name`; returns it as REST JSON.

        `task_name` must be a task of the job's pipelineSpec (root DAG or any sub-DAG), or the
        pipeline's name for the root DAG's own entry. `outputs` maps declared output artifacts
        to URIs (reported with the declared schemaTitle). Entries get task ids 1, 2, ... unless
        `task_id` is given (needed to tell apart two entries of one name); `parent_task_id`
        defaults to the entry of the task running the enclosing DAG, when there is one.
        """
        return self._service.set_task(job_id, task_name, state, outputs, error_message, task_id, parent_task_id)
