"""The PipelineJobs service: the job store, its request rules, and the states tests script.

Called from the HTTP server's thread and from the test's thread (`set_state`, `set_task`), so
every method takes the one lock. Jobs are kept as canonical REST JSON (enum names); every change
is re-rendered through the aiplatform protos so a stored job is always a valid message.
"""

from __future__ import annotations

import copy
import itertools
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from . import listing, rules, wire
from .errors import ApiError, failed_precondition, invalid, not_found
from .spec import check_pipeline_spec, task_index

PIPELINE_STATES = (
    "PIPELINE_STATE_QUEUED",
    "PIPELINE_STATE_PENDING",
    "PIPELINE_STATE_RUNNING",
    "PIPELINE_STATE_SUCCEEDED",
    "PIPELINE_STATE_FAILED",
    "PIPELINE_STATE_CANCELLING",
    "PIPELINE_STATE_CANCELLED",
    "PIPELINE_STATE_PAUSED",
)
TASK_STATES = (
    "PENDING",
    "RUNNING",
    "SUCCEEDED",
    "CANCEL_PENDING",
    "CANCELLING",
    "CANCELLED",
    "FAILED",
    "SKIPPED",
    "NOT_TRIGGERED",
)
FINISHED = frozenset({"PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED"})
TASK_FINISHED = frozenset({"SUCCEEDED", "CANCELLED", "FAILED", "SKIPPED", "NOT_TRIGGERED"})
CODE_CANCELLED = 1  # google.rpc.Code
CODE_FAILED_PRECONDITION = 9


@dataclass
class _Job:
    data: dict[str, Any]
    cancel_polls_left: int | None = None  # set while a cancel requested through the API is in flight


class PipelineService:
    """PipelineJobs of one project and location, as the v1 REST API serves them."""

    def __init__(self, project: str, project_number: str, location: str) -> None:
        self.project = project
        self.project_number = project_number
        self.location = location
        self.cancel_after_polls = 1
        self._lock = threading.RLock()
        self._jobs: dict[str, _Job] = {}
        self._operations: dict[str, dict[str, Any]] = {}
        self._task_ids = itertools.count(1)
        self._artifact_ids = itertools.count(1)
        self._operation_ids = itertools.count(1)
        self._job_fields = _top_level_fields()

    # -- addressing ---------------------------------------------------------------------------

    def check_parent(self, project: str, location: str) -> None:
        """The path's project (id or number) and location must be this fake's."""
        if project not in (self.project, self.project_number):
            raise ApiError("PERMISSION_DENIED", f"Permission denied on project {project!r} (or it does not exist).")
        if location != self.location:
            raise invalid(f"Location {location!r} does not match this endpoint's location {self.location!r}.")

    def _name(self, job_id: str) -> str:
        return f"projects/{self.project_number}/locations/{self.location}/pipelineJobs/{job_id}"

    def _require(self, job_id: str) -> _Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise not_found(f"PipelineJob {self._name(job_id)} does not exist.")
        return job

    # -- API methods --------------------------------------------------------------------------

    def create(self, job_id: str | None, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise invalid("The request body must be a PipelineJob JSON object.")
        job = wire.parse_pipeline_job({k: v for k, v in body.items() if k not in wire.OUTPUT_ONLY})
        problems: list[str] = []
        if job_id is not None:
            problems += rules.check_job_id(job_id)
        problems += rules.check_display_name(job.get("displayName", ""))
        spec = job.get("pipelineSpec")
        if spec is None:
            problems.append("pipelineSpec is required.")
        else:
            spec_problems = check_pipeline_spec(spec)
            problems += spec_problems
            if not spec_problems:
                problems += rules.check_runtime_config(job.get("runtimeConfig", {}), spec)
        problems += rules.check_labels(job.get("labels", {}))
        if "serviceAccount" in job:
            problems += rules.check_service_account(job["serviceAccount"])
        if "network" in job:
            problems += rules.check_network(job["network"])
        if problems:
            raise invalid(" ".join(problems))
        with self._lock:
            if job_id is None:
                job_id = self._generated_id(spec["pipelineInfo"]["name"])
            if job_id in self._jobs:
                raise ApiError("ALREADY_EXISTS", f"PipelineJob {self._name(job_id)} already exists.")
            stamp = wire.now()
            job.update(name=self._name(job_id), state="PIPELINE_STATE_PENDING", createTime=stamp, updateTime=stamp)
            self._jobs[job_id] = _Job(wire.normalized(job))
            return copy.deepcopy(self._jobs[job_id].data)

    def get(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            job = self._require(job_id)
            if job.cancel_polls_left is not None:
                if job.cancel_polls_left > 0:
                    job.cancel_polls_left -= 1
                else:
                    self._finish_cancel(job)
            return copy.deepcopy(job.data)

    def list(self, query: dict[str, str]) -> dict[str, Any]:
        predicate = listing.parse_filter(query.get("filter", ""))
        with self._lock:
            jobs = [copy.deepcopy(job.data) for job in self._jobs.values()]
        selected = listing.order([job for job in jobs if predicate(job)], query.get("orderBy", ""))
        chunk, token = listing.page(
            selected,
            query.get("pageSize"),
            query.get("pageToken"),
            f"{query.get('filter', '')}\n{query.get('orderBy', '')}",
        )
        if query.get("readMask"):
            chunk = [listing.apply_read_mask(job, query["readMask"], self._job_fields) for job in chunk]
        answer: dict[str, Any] = {}
        if chunk:
            answer["pipelineJobs"] = chunk
        if token:
            answer["nextPageToken"] = token
        return answer

    def cancel(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            job = self._require(job_id)
            state = job.data["state"]
            if state == "PIPELINE_STATE_CANCELLING":
                return {}
            if state in FINISHED:
                raise failed_precondition(
                    f"PipelineJob {self._name(job_id)} is in state {state} and can no longer be cancelled."
                )
            self._transition(job, "PIPELINE_STATE_CANCELLING", None)
            for task in job.data.get("jobDetail", {}).get("taskDetails", []):
                if task.get("state") in ("PENDING", "RUNNING", "CANCEL_PENDING"):
                    self._task_transition(task, "CANCELLING", None)
            job.data = wire.normalized(job.data)
            job.cancel_polls_left = self.cancel_after_polls
            return {}

    def delete(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            job = self._require(job_id)
            state = job.data["state"]
            if state not in FINISHED:
                raise failed_precondition(
                    f"PipelineJob {self._name(job_id)} is in state {state}; only a finished job can be deleted."
                )
            del self._jobs[job_id]
            stamp = wire.now()
            name = f"projects/{self.project_number}/locations/{self.location}/operations/{next(self._operation_ids)}"
            operation = {
                "name": name,
                "metadata": {
                    "@type": "type.googleapis.com/google.cloud.aiplatform.v1.DeleteOperationMetadata",
                    "genericMetadata": {"createTime": stamp, "updateTime": stamp},
                },
                "done": True,
                "response": {"@type": "type.googleapis.com/google.protobuf.Empty"},
            }
            self._operations[name.rsplit("/", 1)[-1]] = operation
            return copy.deepcopy(operation)

    def operation(self, operation_id: str) -> dict[str, Any]:
        with self._lock:
            operation = self._operations.get(operation_id)
            if operation is None:
                raise not_found(f"Operation {operation_id!r} does not exist.")
            return copy.deepcopy(operation)

    # -- what tests read and script -----------------------------------------------------------

    def jobs(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {job_id: copy.deepcopy(job.data) for job_id, job in self._jobs.items()}

    def set_state(self, job_id: str, state: str, error_message: str | None) -> None:
        if state not in PIPELINE_STATES:
            raise ValueError(f"{state!r} is not a PipelineState; use one of {', '.join(PIPELINE_STATES)}.")
        if error_message is not None and state not in ("PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED"):
            raise ValueError("error_message only applies to PIPELINE_STATE_FAILED or PIPELINE_STATE_CANCELLED.")
        with self._lock:
            job = self._scripted(job_id)
            job.cancel_polls_left = None
            self._transition(job, state, error_message)
            job.data = wire.normalized(job.data)

    def set_task(
        self,
        job_id: str,
        task_name: str,
        state: str,
        outputs: dict[str, list[str]] | None,
        error_message: str | None,
        task_id: int | None,
        parent_task_id: int | None,
    ) -> dict[str, Any]:
        if state not in TASK_STATES:
            raise ValueError(f"{state!r} is not a PipelineTaskDetail.State; use one of {', '.join(TASK_STATES)}.")
        with self._lock:
            job = self._scripted(job_id)
            spec = job.data["pipelineSpec"]
            infos = task_index(spec).get(task_name)
            if not infos:
                known = ", ".join(sorted(task_index(spec)))
                raise ValueError(f"{task_name!r} is not a task of job {job_id!r}'s pipelineSpec; its tasks are: {known}.")
            details: list[dict[str, Any]] = job.data.setdefault("jobDetail", {}).setdefault("taskDetails", [])
            entry = self._task_entry(details, job_id, task_name, task_id)
            if outputs:
                entry.setdefault("outputs", {}).update(self._artifacts(infos, spec, task_name, outputs))
            if parent_task_id is not None:
                entry["parentTaskId"] = str(parent_task_id)
            elif "parentTaskId" not in entry and infos[0].parent_task is not None:
                parent = next((d for d in details if d["taskName"] == infos[0].parent_task and d is not entry), None)
                if parent is not None:
                    entry["parentTaskId"] = parent["taskId"]
            self._task_transition(entry, state, error_message)
            job.data["updateTime"] = wire.now()
            job.data = wire.normalized(job.data)
            return copy.deepcopy(next(d for d in job.data["jobDetail"]["taskDetails"] if d["taskId"] == entry["taskId"]))

    def _scripted(self, job_id: str) -> _Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise KeyError(f"no PipelineJob {job_id!r}; created jobs: {', '.join(self._jobs) or 'none'}")
        return job

    def _task_entry(
        self, details: list[dict[str, Any]], job_id: str, task_name: str, task_id: int | None
    ) -> dict[str, Any]:
        if task_id is not None:
            same_id = [d for d in details if d["taskId"] == str(task_id)]
            if same_id and same_id[0]["taskName"] != task_name:
                raise ValueError(f"task id {task_id} already belongs to task {same_id[0]['taskName']!r} of job {job_id!r}.")
            if same_id:
                return same_id[0]
        else:
            named = [d for d in details if d["taskName"] == task_name]
            if len(named) > 1:
                raise ValueError(f"job {job_id!r} has {len(named)} entries for task {task_name!r}; pass task_id to pick one.")
            if named:
                return named[0]
        entry = {"taskId": str(task_id if task_id is not None else next(self._task_ids)), "taskName": task_name, "createTime": wire.now()}
        details.append(entry)
        return entry

    def _artifacts(
        self, infos: list[Any], spec: dict[str, Any], task_name: str, outputs: dict[str, list[str]]
    ) -> dict[str, Any]:
        declared: dict[str, tuple[str, str]] = {}
        for info in infos:
            declared.update(info.output_artifacts(spec))
        result = {}
        stamp = wire.now()
        for output, uris in outputs.items():
            if output not in declared:
                names = ", ".join(sorted(declared)) or "none"
                raise ValueError(f"task {task_name!r} declares no output artifact {output!r}; it declares: {names}.")
            if isinstance(uris, str) or not all(isinstance(uri, str) for uri in uris):
                raise ValueError(f"outputs[{output!r}] must be a list of artifact URIs.")
            title, version = declared[output]
            result[output] = {
                "artifacts": [
                    {
                        "name": f"projects/{self.project_number}/locations/{self.location}/metadataStores/default"
                        f"/artifacts/{next(self._artifact_ids)}",
                        "displayName": output,
                        "uri": uri,
                        "state": "LIVE",
                        "schemaTitle": title,
                        "schemaVersion": version,
                        "createTime": stamp,
                        "updateTime": stamp,
                    }
                    for uri in uris
                ]
            }
        return result

    # -- state changes ------------------------------------------------------------------------

    def _transition(self, job: _Job, state: str, error_message: str | None) -> None:
        data = job.data
        stamp = wire.now()
        data["state"] = state
        data["updateTime"] = stamp
        if state == "PIPELINE_STATE_RUNNING":
            data.setdefault("startTime", stamp)
        if state in FINISHED:
            data.setdefault("endTime", stamp)
        else:
            data.pop("endTime", None)
        if state == "PIPELINE_STATE_FAILED":
            data["error"] = {"code": CODE_FAILED_PRECONDITION, "message": error_message or self._failure_message(data)}
        elif state == "PIPELINE_STATE_CANCELLED":
            data["error"] = {"code": CODE_CANCELLED, "message": error_message or "The pipeline run was cancelled."}
        else:
            data.pop("error", None)

    @staticmethod
    def _failure_message(data: dict[str, Any]) -> str:
        failed = [t["taskName"] for t in data.get("jobDetail", {}).get("taskDetails", []) if t.get("state") == "FAILED"]
        if failed:
            return f"The DAG failed because some tasks failed. The failed tasks are: [{', '.join(failed)}]."
        return "The pipeline run failed."

    def _finish_cancel(self, job: _Job) -> None:
        job.cancel_polls_left = None
        self._transition(job, "PIPELINE_STATE_CANCELLED", None)
        for task in job.data.get("jobDetail", {}).get("taskDetails", []):
            if task.get("state") not in TASK_FINISHED:
                self._task_transition(task, "CANCELLED", None)
        job.data = wire.normalized(job.data)

    @staticmethod
    def _task_transition(task: dict[str, Any], state: str, error_message: str | None) -> None:
        stamp = wire.now()
        if state == "RUNNING":
            task.setdefault("startTime", stamp)
        if state in TASK_FINISHED:
            task.setdefault("endTime", stamp)
        else:
            task.pop("endTime", None)
        if error_message is not None or state == "FAILED":
            code = CODE_CANCELLED if state == "CANCELLED" else CODE_FAILED_PRECONDITION
            task["error"] = {"code": code, "message": error_message or f"Task {task['taskName']} failed."}
        else:
            task.pop("error", None)
        if task.get("state") != state:
            status: dict[str, Any] = {"updateTime": stamp, "state": state}
            if "error" in task:
                status["error"] = task["error"]
            task.setdefault("pipelineTaskStatus", []).append(status)
        task["state"] = state

    def _generated_id(self, pipeline_name: str) -> str:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
        candidate = f"{pipeline_name}-{stamp}"[:128]
        suffix = itertools.count(1)
        while candidate in self._jobs:
            candidate = f"{pipeline_name}-{stamp}-{next(suffix)}"[:128]
        return candidate


def _top_level_fields() -> set[str]:
    from google.cloud.aiplatform_v1.types import pipeline_job

    return {field.json_name for field in pipeline_job.PipelineJob.pb().DESCRIPTOR.fields}
