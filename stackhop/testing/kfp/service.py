"""The API's semantics: experiments, runs and their states, independent of HTTP.

Modelled on ml-pipeline 2.x in single-user mode: a "Default" experiment exists from the start
and takes runs created without an experiment; a run is stored PENDING with its pipeline spec,
runtime config and service account ("pipeline-runner" unless given) and stays as it is until a
test scripts it, except that a terminated run goes CANCELING, then CANCELED after a set number
of reads. Everything is kept as the JSON the API returns, so what a test inspects is what
`kfp_server_api` deserialises. Not thread-safe: `FakeKFP` calls it from its server loop only.
"""

from __future__ import annotations

import copy
import time
import uuid
from typing import Any, Callable, Mapping

from . import errors
from .listing import Listing, list_page
from .messages import EPOCH, message_fields, rfc3339, seconds
from .validation import PipelineSource, check_parameters, check_pipeline_source

__all__ = ["RUNTIME_STATES", "FINAL_STATES", "Service"]

#: V2beta1RuntimeState names.
RUNTIME_STATES = (
    "RUNTIME_STATE_UNSPECIFIED",
    "PENDING",
    "RUNNING",
    "SUCCEEDED",
    "SKIPPED",
    "FAILED",
    "CANCELING",
    "CANCELED",
    "PAUSED",
)
FINAL_STATES = frozenset({"SUCCEEDED", "SKIPPED", "FAILED", "CANCELED"})
# The states TerminateRun moves to CANCELING (run_store.go); from any other it answers 400.
_TERMINABLE = frozenset({"RUNTIME_STATE_UNSPECIFIED", "PENDING", "RUNNING", "PAUSED"})
_IN_FLIGHT = frozenset({"RUNTIME_STATE_UNSPECIFIED", "PENDING", "RUNNING", "PAUSED", "CANCELING"})
DEFAULT_SERVICE_ACCOUNT = "pipeline-runner"
# google.rpc code reported with a scripted failure (the server has no code of its own for it).
_FAILURE_CODE = 2

_RUN_FIELDS = frozenset(
    {
        "experiment_id",
        "run_id",
        "display_name",
        "storage_state",
        "description",
        "pipeline_version_id",
        "pipeline_spec",
        "pipeline_version_reference",
        "runtime_config",
        "service_account",
        "created_at",
        "scheduled_at",
        "finished_at",
        "state",
        "error",
        "run_details",
        "recurring_run_id",
        "state_history",
        "plugins_input",
        "plugins_output",
    }
)
_UNMODELLED_RUN_FIELDS = ("pipeline_version_id", "pipeline_version_reference", "recurring_run_id", "plugins_input")
_RUNTIME_CONFIG_FIELDS = frozenset({"parameters", "pipeline_root"})
_EXPERIMENT_FIELDS = frozenset(
    {"experiment_id", "display_name", "description", "created_at", "namespace", "storage_state", "last_run_created_at"}
)
_TASK_ORDER = (
    "run_id",
    "task_id",
    "display_name",
    "create_time",
    "start_time",
    "end_time",
    "state",
    "error",
    "outputs",
    "state_history",
)


def _text(name: str) -> Callable[[Mapping[str, Any]], Any]:
    return lambda item: item.get(name, "")


def _time(name: str) -> Callable[[Mapping[str, Any]], Any]:
    return lambda item: seconds(item.get(name, EPOCH))


RUN_LISTING = Listing(
    type_name="Run",
    fields={
        "run_id": _text("run_id"),
        "id": _text("run_id"),
        "display_name": _text("display_name"),
        "name": _text("display_name"),
        "description": _text("description"),
        "experiment_id": _text("experiment_id"),
        "namespace": lambda item: "",
        "state": lambda item: item.get("state", "RUNTIME_STATE_UNSPECIFIED"),
        "storage_state": _text("storage_state"),
        "recurring_run_id": _text("recurring_run_id"),
        "created_at": _time("created_at"),
        "scheduled_at": _time("scheduled_at"),
        "finished_at": _time("finished_at"),
    },
    default_sort="created_at",
    key="run_id",
    unmodelled=frozenset({"status", "state_history", "runtime_details"}),
)
EXPERIMENT_LISTING = Listing(
    type_name="Experiment",
    fields={
        "experiment_id": _text("experiment_id"),
        "id": _text("experiment_id"),
        "display_name": _text("display_name"),
        "name": _text("display_name"),
        "description": _text("description"),
        "namespace": _text("namespace"),
        "storage_state": _text("storage_state"),
        "created_at": _time("created_at"),
        "last_run_created_at": _time("last_run_created_at"),
    },
    default_sort="created_at",
    key="experiment_id",
)


def _page_response(kind: str, page: list[Mapping[str, Any]], total: int, token: str) -> dict[str, Any]:
    """A List response with its unpopulated fields left out, as the server sends it."""
    response: dict[str, Any] = {}
    if page:
        response[kind] = copy.deepcopy(page)
    if total:
        response["total_size"] = total
    if token:
        response["next_page_token"] = token
    return response


class Service:
    """Experiments and runs of one fake deployment, as stored JSON."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.experiments: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        #: artifact id -> {"artifact_id", "uri", "run_id", "task_id", "task_display_name", "output_name"}
        self.artifacts: dict[str, dict[str, Any]] = {}
        #: reads of a terminated run that still report CANCELING before it reports CANCELED
        self.terminate_after_polls = 1
        self._sources: dict[str, PipelineSource] = {}
        self._cancel_polls: dict[str, int] = {}
        self._next_artifact_id = 1
        self.default_experiment_id = self._insert_experiment(
            "Default", "All runs created without specifying an experiment will be grouped here."
        )

    def _now(self) -> str:
        return rfc3339(int(self._clock()))

    # -- healthz ---------------------------------------------------------------------------------

    @staticmethod
    def healthz() -> dict[str, Any]:
        """What /apis/v2beta1/healthz answers on a single-user deployment backed by MySQL."""
        return {"commit_sha": "unknown", "tag_name": "unknown", "multi_user": False, "pipeline_store": "database"}

    # -- experiments ---------------------------------------------------------------------------

    def _insert_experiment(self, name: str, description: str) -> str:
        experiment_id = str(uuid.uuid4())
        experiment: dict[str, Any] = {"experiment_id": experiment_id, "display_name": name}
        if description:
            experiment["description"] = description
        experiment.update(created_at=self._now(), storage_state="AVAILABLE", last_run_created_at=EPOCH)
        self.experiments[experiment_id] = experiment
        return experiment_id

    def create_experiment(self, body: Any) -> dict[str, Any]:
        fields = message_fields(body, _EXPERIMENT_FIELDS, "Experiment")
        name, description = fields.get("display_name", ""), fields.get("description", "")
        if not isinstance(name, str) or not name:
            raise errors.invalid("Experiment must have a non-empty name.")
        if not isinstance(description, str):
            raise errors.invalid("Experiment description must be a string.")
        # Single-user mode: the namespace is replaced by "" whatever the request says.
        if any(e["display_name"].casefold() == name.casefold() for e in self.experiments.values()):
            raise errors.already_exists(
                f"Failed to create a new experiment. The name {name} already exists. Please specify a new name."
            )
        return copy.deepcopy(self.experiments[self._insert_experiment(name, description)])

    def get_experiment(self, experiment_id: str) -> dict[str, Any]:
        return copy.deepcopy(self._experiment(experiment_id))

    def _experiment(self, experiment_id: str) -> dict[str, Any]:
        if experiment_id not in self.experiments:
            raise errors.not_found("Experiment", experiment_id)
        return self.experiments[experiment_id]

    def list_experiments(self, query: Mapping[str, str]) -> dict[str, Any]:
        page, total, token = list_page(list(self.experiments.values()), query, EXPERIMENT_LISTING)
        return _page_response("experiments", page, total, token)

    # -- runs ----------------------------------------------------------------------------------

    def create_run(self, body: Any) -> dict[str, Any]:
        fields = message_fields(body, _RUN_FIELDS, "Run")
        if "plugins_output" in fields:
            raise errors.invalid("plugins_output is server-owned and populated exclusively via plugin lifecycle hooks.")
        for name in _UNMODELLED_RUN_FIELDS:
            if fields.get(name):
                raise errors.unimplemented(f"FakeKFP does not model creating a run with {name}.")
        display_name = fields.get("display_name", "")
        if not isinstance(display_name, str) or not display_name:
            raise errors.invalid("The run name is empty. Please specify a valid name.")
        experiment_id = fields.get("experiment_id") or self.default_experiment_id
        experiment = self._experiment(str(experiment_id))
        if "pipeline_spec" not in fields:
            raise errors.invalid("Failed to fetch a template with an empty pipeline spec manifest.")
        source = check_pipeline_source(fields["pipeline_spec"])
        config = message_fields(fields.get("runtime_config"), _RUNTIME_CONFIG_FIELDS, "RuntimeConfig")
        parameters, pipeline_root = config.get("parameters", {}), config.get("pipeline_root", "")
        if not isinstance(parameters, dict) or not isinstance(pipeline_root, str):
            raise errors.invalid("runtime_config needs parameters as a JSON object and pipeline_root as a string.")
        check_parameters(source.spec, parameters)
        service_account = fields.get("service_account") or DEFAULT_SERVICE_ACCOUNT
        description = fields.get("description", "")
        if not isinstance(service_account, str) or not isinstance(description, str):
            raise errors.invalid("service_account and description must be strings.")

        now = self._now()
        run: dict[str, Any] = {
            "experiment_id": experiment["experiment_id"],
            "run_id": str(uuid.uuid4()),
            "display_name": display_name,
            "storage_state": "AVAILABLE",
        }
        if description:
            run["description"] = description
        run["pipeline_spec"] = copy.deepcopy(fields["pipeline_spec"])
        runtime_config = {k: v for k, v in (("parameters", parameters), ("pipeline_root", pipeline_root)) if v}
        if runtime_config:
            run["runtime_config"] = copy.deepcopy(runtime_config)
        run.update(
            service_account=service_account,
            created_at=now,
            scheduled_at=now,
            finished_at=EPOCH,
            state="PENDING",
            state_history=[{"update_time": now, "state": "PENDING"}],
        )
        self.runs[run["run_id"]] = run
        self._sources[run["run_id"]] = source
        experiment["last_run_created_at"] = now
        return copy.deepcopy(run)

    def _stored_run(self, run_id: str) -> dict[str, Any]:
        if run_id not in self.runs:
            raise errors.not_found("Run", run_id)
        return self.runs[run_id]

    def get_run(self, run_id: str) -> dict[str, Any]:
        """A read of the run; a terminated run counts it towards reaching CANCELED."""
        run = self._stored_run(run_id)
        if run_id in self._cancel_polls:
            if run.get("state") != "CANCELING":
                del self._cancel_polls[run_id]
            elif self._cancel_polls[run_id] > 0:
                self._cancel_polls[run_id] -= 1
            else:
                del self._cancel_polls[run_id]
                self._transition(run, "CANCELED")
        return copy.deepcopy(run)

    def list_runs(self, query: Mapping[str, str]) -> dict[str, Any]:
        runs = list(self.runs.values())
        experiment_id = query.get("experiment_id", "")
        if experiment_id:
            self._experiment(experiment_id)
            runs = [run for run in runs if run["experiment_id"] == experiment_id]
        page, total, token = list_page(runs, query, RUN_LISTING)
        return _page_response("runs", page, total, token)

    def terminate_run(self, run_id: str) -> dict[str, Any]:
        run = self._stored_run(run_id)
        if run.get("state", "RUNTIME_STATE_UNSPECIFIED") not in _TERMINABLE:
            raise errors.invalid(f"Failed to terminate a run {run_id}. Row not found.")
        self._transition(run, "CANCELING")
        self._cancel_polls[run_id] = self.terminate_after_polls
        return {}

    def retry_run(self, run_id: str) -> dict[str, Any]:
        """A FAILED or CANCELED run runs again (its workflow phase was Failed; KFP retries only those): RUNNING,
        its failed and cancelled tasks PENDING again, the rest as they were. Other states are refused as KFP's
        apiserver refuses them."""
        run = self._stored_run(run_id)
        state = run.get("state", "RUNTIME_STATE_UNSPECIFIED")
        if state not in ("FAILED", "CANCELED"):
            raise errors.invalid(f"Failed to retry run {run_id}: Workflow cannot be retried with status {state}.")
        self._cancel_polls.pop(run_id, None)
        self._transition(run, "RUNNING")
        run["finished_at"] = EPOCH
        now = self._now()
        for task in run.get("run_details", {}).get("task_details", []):
            if task.get("state") in ("FAILED", "CANCELED"):
                _update_task(task, "PENDING", now)
        return {}

    # -- scripting (the test plays the workflow controller and persistence agent) --------------

    def _scripted_run(self, run_id: str) -> dict[str, Any]:
        if run_id not in self.runs:
            raise ValueError(f"There is no run {run_id!r}.")
        return self.runs[run_id]

    @staticmethod
    def _check_state(state: str, error_message: str | None) -> None:
        if state not in RUNTIME_STATES:
            raise ValueError(f"{state!r} is not a V2beta1RuntimeState; use one of {', '.join(RUNTIME_STATES)}.")
        if error_message is not None and state != "FAILED":
            raise ValueError(f"An error_message only goes with state FAILED, not {state}.")

    def set_state(self, run_id: str, state: str, error_message: str | None = None) -> None:
        run = self._scripted_run(run_id)
        self._check_state(state, error_message)
        self._cancel_polls.pop(run_id, None)
        self._transition(run, state, error_message)

    def _transition(self, run: dict[str, Any], state: str, error_message: str | None = None) -> None:
        now = self._now()
        previous = run.get("state", "RUNTIME_STATE_UNSPECIFIED")
        if previous != state:
            entry: dict[str, Any] = {"update_time": now, "state": state}
            if error_message:
                entry["error"] = {"code": _FAILURE_CODE, "message": error_message}
            run["state_history"].append(entry)
        _set_state(run, state)
        if state in FINAL_STATES and previous not in FINAL_STATES:
            run["finished_at"] = now
        if error_message:
            run["error"] = {"code": _FAILURE_CODE, "message": error_message}
        elif state != "FAILED":
            run.pop("error", None)
        if state == "CANCELED":
            for task in run.get("run_details", {}).get("task_details", []):
                if task.get("state", "RUNTIME_STATE_UNSPECIFIED") in _IN_FLIGHT:
                    _update_task(task, "CANCELED", now)

    def set_task(
        self,
        run_id: str,
        display_name: str,
        state: str,
        outputs: Mapping[str, list[str]] | None = None,
        error_message: str | None = None,
        task_id: str | None = None,
    ) -> dict[str, Any]:
        run = self._scripted_run(run_id)
        source = self._sources[run_id]
        if display_name not in source.tasks:
            known = ", ".join(sorted(source.tasks))
            raise ValueError(f"{display_name!r} is not a task of run {run_id}'s pipeline; its tasks are {known}.")
        self._check_state(state, error_message)
        declared = source.output_artifacts(display_name)
        for name, uris in (outputs or {}).items():
            if name not in declared:
                listed = ", ".join(declared) or "none"
                raise ValueError(f"Task {display_name!r} has no output artifact {name!r}; it declares {listed}.")
            if isinstance(uris, str) or not all(isinstance(uri, str) and uri for uri in uris):
                raise ValueError(f"Output {name!r} of task {display_name!r} needs a list of non-empty URI strings.")

        now = self._now()
        details = run.setdefault("run_details", {}).setdefault("task_details", [])
        if task_id is not None:
            index = next((i for i, t in enumerate(details) if t["task_id"] == task_id), None)
            if index is not None and details[index]["display_name"] != display_name:
                raise ValueError(f"Task id {task_id!r} already belongs to task {details[index]['display_name']!r}.")
        else:
            index = next((i for i, t in enumerate(details) if t["display_name"] == display_name), None)
        if index is None:
            task: dict[str, Any] = {
                "run_id": run_id,
                "task_id": task_id or str(uuid.uuid4()),
                "display_name": display_name,
                "create_time": now,
                "start_time": EPOCH,
                "end_time": EPOCH,
                "state_history": [],
            }
            details.append(task)
            index = len(details) - 1
        task = details[index]
        _update_task(task, state, now)
        if error_message:
            task["error"] = {"code": _FAILURE_CODE, "message": error_message}
        for name, uris in (outputs or {}).items():
            ids = [self._record_artifact(uri, run_id, task, name) for uri in uris]
            task.setdefault("outputs", {})[name] = {"artifact_ids": ids}
        details[index] = {key: task[key] for key in _TASK_ORDER if key in task}
        return copy.deepcopy(details[index])

    def _record_artifact(self, uri: str, run_id: str, task: Mapping[str, Any], output_name: str) -> str:
        artifact_id = str(self._next_artifact_id)
        self._next_artifact_id += 1
        self.artifacts[artifact_id] = {
            "artifact_id": artifact_id,
            "uri": uri,
            "run_id": run_id,
            "task_id": task["task_id"],
            "task_display_name": task["display_name"],
            "output_name": output_name,
        }
        return artifact_id

    def output_uris(self, run_id: str, display_name: str) -> dict[str, list[str]]:
        """A task's reported outputs as URIs, looked up through `artifacts` as a client would in MLMD."""
        run = self._scripted_run(run_id)
        for task in run.get("run_details", {}).get("task_details", []):
            if task["display_name"] == display_name:
                return {
                    name: [self.artifacts[i]["uri"] for i in listed["artifact_ids"]]
                    for name, listed in task.get("outputs", {}).items()
                }
        raise ValueError(f"Run {run_id} has no reported task {display_name!r}.")


def _set_state(item: dict[str, Any], state: str) -> None:
    """The unspecified state is the enum's zero value, which the server leaves out."""
    if state == "RUNTIME_STATE_UNSPECIFIED":
        item.pop("state", None)
    else:
        item["state"] = state


def _update_task(task: dict[str, Any], state: str, now: str) -> None:
    if task.get("state", "RUNTIME_STATE_UNSPECIFIED") != state:
        task["state_history"].append({"update_time": now, "state": state})
    _set_state(task, state)
    if state not in ("RUNTIME_STATE_UNSPECIFIED", "PENDING") and task["start_time"] == EPOCH:
        task["start_time"] = now
    if state in FINAL_STATES and task["end_time"] == EPOCH:
        task["end_time"] = now
