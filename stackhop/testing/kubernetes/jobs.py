"""The Job controller: pods for Jobs, retries, deadlines, podFailurePolicy, suspension, TTL.

Adapters decide success or failure from Job conditions, so the sequence matters as much as the
end state. Since Kubernetes 1.31 a Job first gets `SuccessCriteriaMet` / `FailureTarget` and only
once its pods are gone `Complete` / `Failed`, in separate updates; older versions (and this fake
when pinned to them) go straight to the terminal condition. Failed pods count against
`backoffLimit` unless a podFailurePolicy rule ignores them, replacements wait out the upstream
back-off (10 s doubling to 6 min, scaled by `time_scale`), and the Events match upstream's.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from .clock import Clock, rfc3339
from .errors import ApiError
from .events import EventRecorder
from .resources import JOB, POD
from .store import Store, WatchEvent

if TYPE_CHECKING:
    from .api import Api
    from .lifecycle import Lifecycle

__all__ = ["JobController"]

_MANAGER = "kubernetes.io/job-controller"
_BACKOFF_BASE, _BACKOFF_MAX = 10.0, 360.0
_CREATE_RETRY = 10.0


@dataclass
class _JobState:
    """What the controller remembers about a Job between syncs (upstream keeps this in memory too)."""

    counted: set[str] = field(default_factory=set)
    gone: dict[str, dict[str, Any]] = field(default_factory=dict)
    started_at: float | None = None
    backoff_failures: int = 0
    last_failure_at: float = 0.0
    finished_at: float | None = None
    timers: list[asyncio.TimerHandle] = field(default_factory=list)
    deadline_armed: bool = False
    ttl_armed: bool = False


def _controller_uid(obj: dict[str, Any]) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == "Job" and ref.get("apiVersion") == "batch/v1":
            return str(ref.get("uid", ""))
    return None


def _condition(conditions: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == kind and c.get("status") == "True"), None)


def _set_condition(conditions: list[dict[str, Any]], kind: str, status: str, reason: str, message: str) -> None:
    now = rfc3339()
    for condition in conditions:
        if condition.get("type") == kind:
            if condition.get("status") != status:
                condition["lastTransitionTime"] = now
            condition.update(status=status, reason=reason, message=message, lastProbeTime=now)
            return
    conditions.append(
        {
            "type": kind,
            "status": status,
            "lastProbeTime": now,
            "lastTransitionTime": now,
            "reason": reason,
            "message": message,
        }
    )


def _pod_is_ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


class JobController:
    """Reconciles every Job whenever it or one of its pods changes, or a timer fires."""

    def __init__(
        self,
        store: Store,
        events: EventRecorder,
        clock: Clock,
        version: tuple[int, int],
        report_error: Callable[[BaseException], None],
    ) -> None:
        self._store = store
        self._events = events
        self._clock = clock
        self._version = version
        self._report_error = report_error
        self.api: Api | None = None
        self.lifecycle: Lifecycle | None = None
        self._states: dict[str, _JobState] = {}
        self._dirty: dict[tuple[str, str], None] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        store.subscribe(self._on_event)

    # -- scheduling --------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="job-controller")

    async def stop(self) -> None:
        for state in self._states.values():
            for timer in state.timers:
                timer.cancel()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def _enqueue(self, namespace: str, name: str) -> None:
        self._dirty[(namespace, name)] = None
        self._wake.set()

    def _enqueue_later(self, state: _JobState, delay: float, namespace: str, name: str) -> None:
        loop = asyncio.get_running_loop()
        state.timers.append(loop.call_later(max(delay, 0.0), self._enqueue, namespace, name))

    def _on_event(self, event: WatchEvent) -> None:
        meta = event.object["metadata"]
        if event.resource == JOB.key:
            if event.type == "DELETED":
                state = self._states.pop(meta.get("uid", ""), None)
                for timer in state.timers if state else []:
                    timer.cancel()
            else:
                self._enqueue(meta["namespace"], meta["name"])
        elif event.resource == POD.key:
            owner = _controller_uid(event.object)
            if owner is None:
                return
            found = self._store.find_uid(owner)
            if found is None or found[0] != JOB.key:
                return
            if event.type == "DELETED":
                self._states.setdefault(owner, _JobState()).gone[meta["uid"]] = event.object
            self._enqueue(found[1]["metadata"]["namespace"], found[1]["metadata"]["name"])

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._dirty:
                key = next(iter(self._dirty))
                del self._dirty[key]
                try:
                    self._sync(*key)
                except Exception as exc:  # report and keep reconciling the other Jobs
                    self._report_error(exc)
                await asyncio.sleep(0)

    # -- reconciliation ----------------------------------------------------------------------

    def _sync(self, namespace: str, name: str) -> None:
        job = self._store.get(JOB.key, namespace, name)
        if job is None:
            return
        meta, spec = job["metadata"], job["spec"]
        if spec.get("managedBy", _MANAGER) != _MANAGER:
            return
        state = self._states.setdefault(meta["uid"], _JobState())
        original = copy.deepcopy(job.get("status") or {})
        status = job.setdefault("status", {})
        conditions: list[dict[str, Any]] = status.setdefault("conditions", [])
        if _condition(conditions, "Complete") or _condition(conditions, "Failed"):
            self._arm_ttl(job, state)
            return
        if meta.get("deletionTimestamp"):
            return
        now = self._clock.monotonic()
        pods = [p for p in self._store.objects(POD.key, namespace) if _controller_uid(p) == meta["uid"]]
        failure = self._count_finished(job, pods, state, now)
        active = [
            p
            for p in pods
            if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            and not p["metadata"].get("deletionTimestamp")
        ]
        terminating = [
            p
            for p in pods
            if p["metadata"].get("deletionTimestamp")
            and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ]

        if spec.get("suspend"):
            for pod in active:
                self._delete_pod(job, pod)
            active = []
            if not _condition(conditions, "Suspended"):
                _set_condition(conditions, "Suspended", "True", "JobSuspended", "Job suspended")
                self._event(job, "Suspended", "Job suspended")
            self._write(job, original, active, terminating)
            return
        if _condition(conditions, "Suspended"):
            _set_condition(conditions, "Suspended", "False", "JobResumed", "Job resumed")
            self._event(job, "Resumed", "Job resumed")
            status["startTime"] = rfc3339()
            state.started_at = now
            state.deadline_armed = False
        if not status.get("startTime"):
            status["startTime"] = rfc3339()
        if state.started_at is None:
            state.started_at = now

        target = _condition(conditions, "FailureTarget")
        criteria = _condition(conditions, "SuccessCriteriaMet")
        if target is None and criteria is None:
            newly = failure or self._failure_reason(job, active, state, now)
            if newly is not None:
                reason, message = newly
                self._event(job, reason, message, warning=True)
                if self._version >= (1, 31) or reason == "PodFailurePolicy":
                    _set_condition(conditions, "FailureTarget", "True", reason, message)
                else:
                    for pod in active:
                        self._delete_pod(job, pod)
                    active = []
                    _set_condition(conditions, "Failed", "True", reason, message)
                    state.finished_at = now
                self._write(job, original, active, terminating)
                return
            if self._succeeded(spec, status, active):
                if self._version >= (1, 31):
                    _set_condition(
                        conditions,
                        "SuccessCriteriaMet",
                        "True",
                        "CompletionsReached",
                        "Reached expected number of succeeded pods",
                    )
                else:
                    for pod in active:
                        self._delete_pod(job, pod)
                    active = []
                    self._complete(job, state, now)
                self._write(job, original, active, terminating)
                return
        else:
            # Terminal condition only once every pod is gone and counted: deleting pods here
            # triggers another sync (via their DELETED events) that finishes the Job.
            if active:
                for pod in active:
                    self._delete_pod(job, pod)
                terminating = [
                    p
                    for p in self._store.objects(POD.key, namespace)
                    if _controller_uid(p) == meta["uid"] and p["metadata"].get("deletionTimestamp")
                ]
            elif not terminating:
                if target is not None:
                    _set_condition(conditions, "Failed", "True", target["reason"], target["message"])
                    state.finished_at = now
                else:
                    self._complete(job, state, now)
            self._write(job, original, [], terminating)
            return

        active += self._create_pods(job, active, terminating, state, now)
        self._arm_deadline(job, state, now)
        self._write(job, original, active, terminating)

    def _count_finished(
        self, job: dict[str, Any], pods: list[dict[str, Any]], state: _JobState, now: float
    ) -> tuple[str, str] | None:
        """Fold newly finished (or vanished) pods into succeeded/failed; returns a FailJob verdict."""
        status = job["status"]
        present = {p["metadata"]["uid"] for p in pods}
        candidates = pods + [p for uid, p in state.gone.items() if uid not in present]
        verdict = None
        for pod in candidates:
            uid = pod["metadata"]["uid"]
            if uid in state.counted:
                continue
            phase = (pod.get("status") or {}).get("phase")
            vanished = uid in state.gone and uid not in present
            if phase == "Succeeded":
                status["succeeded"] = status.get("succeeded", 0) + 1
            elif phase == "Failed" or vanished:
                action, message = self._policy_action(job, pod) if phase == "Failed" else ("Count", "")
                if action != "Ignore":
                    status["failed"] = status.get("failed", 0) + 1
                if action == "FailJob" and verdict is None:
                    verdict = ("PodFailurePolicy", message)
                elif action == "Count":
                    state.backoff_failures += 1
                    state.last_failure_at = now
            else:
                continue
            state.counted.add(uid)
            state.gone.pop(uid, None)
        return verdict

    @staticmethod
    def _policy_action(job: dict[str, Any], pod: dict[str, Any]) -> tuple[str, str]:
        """Apply the Job's podFailurePolicy to a failed pod: (action, message for FailJob)."""
        policy = job["spec"].get("podFailurePolicy")
        if not policy:
            return "Count", ""
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        pod_status = pod.get("status") or {}
        statuses = (pod_status.get("initContainerStatuses") or []) + (pod_status.get("containerStatuses") or [])
        for index, rule in enumerate(policy.get("rules") or []):
            action = rule.get("action", "Count")
            on_codes = rule.get("onExitCodes")
            if on_codes is not None:
                for container in statuses:
                    if on_codes.get("containerName") and container.get("name") != on_codes["containerName"]:
                        continue
                    terminated = (container.get("state") or {}).get("terminated")
                    if not terminated or terminated.get("exitCode", 0) == 0:
                        continue
                    code = terminated["exitCode"]
                    values = on_codes.get("values") or []
                    if (code in values) == (on_codes.get("operator") == "In"):
                        return action, (
                            f"Container {container['name']} for pod {namespace}/{name} failed with exit code {code} "
                            f"matching {action} rule at index {index}"
                        )
            for wanted in rule.get("onPodConditions") or []:
                for condition in pod_status.get("conditions") or []:
                    if condition.get("type") == wanted.get("type") and condition.get("status") == wanted.get(
                        "status", "True"
                    ):
                        return (
                            action,
                            f"Pod {namespace}/{name} has condition {wanted['type']} matching {action} rule at index {index}",
                        )
        return "Count", ""

    def _failure_reason(
        self, job: dict[str, Any], active: list[dict[str, Any]], state: _JobState, now: float
    ) -> tuple[str, str] | None:
        spec, status = job["spec"], job["status"]
        restarts = 0
        if spec["template"]["spec"].get("restartPolicy") == "OnFailure":
            for pod in active:
                for container in (pod.get("status") or {}).get("containerStatuses") or []:
                    restarts += container.get("restartCount", 0)
        if status.get("failed", 0) + restarts > spec.get("backoffLimit", 6):
            return "BackoffLimitExceeded", "Job has reached the specified backoff limit"
        deadline = spec.get("activeDeadlineSeconds")
        # A timer may fire up to the loop's clock resolution early; a few ms of slack keeps one timer enough.
        if (
            deadline is not None
            and state.started_at is not None
            and now - state.started_at + 0.005 >= self._clock.scaled(deadline)
        ):
            return "DeadlineExceeded", "Job was active longer than specified deadline"
        return None

    @staticmethod
    def _succeeded(spec: dict[str, Any], status: dict[str, Any], active: list[dict[str, Any]]) -> bool:
        succeeded = status.get("succeeded", 0)
        completions = spec.get("completions")
        if completions is not None:
            return bool(succeeded >= completions)
        return bool(succeeded > 0 and not active)

    def _complete(self, job: dict[str, Any], state: _JobState, now: float) -> None:
        _set_condition(
            job["status"]["conditions"],
            "Complete",
            "True",
            "CompletionsReached",
            "Reached expected number of succeeded pods",
        )
        job["status"]["completionTime"] = rfc3339()
        state.finished_at = now
        self._event(job, "Completed", "Job completed")

    def _create_pods(
        self,
        job: dict[str, Any],
        active: list[dict[str, Any]],
        terminating: list[dict[str, Any]],
        state: _JobState,
        now: float,
    ) -> list[dict[str, Any]]:
        spec, status = job["spec"], job["status"]
        meta = job["metadata"]
        wanted = spec.get("parallelism", 1)
        completions = spec.get("completions")
        if completions is not None:
            wanted = min(wanted, completions - status.get("succeeded", 0))
        elif status.get("succeeded", 0) > 0:
            wanted = 0
        missing = wanted - len(active)
        if spec.get("podReplacementPolicy") == "Failed":
            missing -= len(terminating)
        if missing <= 0:
            return []
        if state.backoff_failures:
            delay = self._clock.scaled(min(_BACKOFF_BASE * 2 ** (state.backoff_failures - 1), _BACKOFF_MAX))
            ready_at = state.last_failure_at + delay
            if now < ready_at:
                self._enqueue_later(state, ready_at - now, meta["namespace"], meta["name"])
                return []
        assert self.api is not None
        created = []
        for _ in range(missing):
            try:
                pod = self.api.create_for_controller(POD, meta["namespace"], self._pod_from_template(job))
            except ApiError as exc:
                self._event(job, "FailedCreate", f"Error creating: {exc.message}", warning=True)
                self._enqueue_later(state, self._clock.scaled(_CREATE_RETRY), meta["namespace"], meta["name"])
                break
            self._event(job, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")
            created.append(pod)
        return created

    @staticmethod
    def _pod_from_template(job: dict[str, Any]) -> dict[str, Any]:
        meta = job["metadata"]
        template = copy.deepcopy(job["spec"]["template"])
        template_meta = template.get("metadata") or {}
        pod_meta: dict[str, Any] = {
            "generateName": f"{meta['name']}-",
            "namespace": meta["namespace"],
            "labels": template_meta.get("labels") or {},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        }
        if template_meta.get("annotations"):
            pod_meta["annotations"] = template_meta["annotations"]
        return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": template.get("spec") or {}}

    def _delete_pod(self, job: dict[str, Any], pod: dict[str, Any]) -> None:
        assert self.lifecycle is not None
        self.lifecycle.delete(POD, pod, "Background")
        self._event(job, "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}")

    def _arm_deadline(self, job: dict[str, Any], state: _JobState, now: float) -> None:
        deadline = job["spec"].get("activeDeadlineSeconds")
        if deadline is None or state.deadline_armed or state.started_at is None:
            return
        state.deadline_armed = True
        remaining = state.started_at + self._clock.scaled(deadline) - now
        self._enqueue_later(state, remaining, job["metadata"]["namespace"], job["metadata"]["name"])

    def _arm_ttl(self, job: dict[str, Any], state: _JobState) -> None:
        ttl = job["spec"].get("ttlSecondsAfterFinished")
        if ttl is None or state.ttl_armed:
            return
        state.ttl_armed = True
        if state.finished_at is None:
            state.finished_at = self._clock.monotonic()
        remaining = state.finished_at + self._clock.scaled(ttl) - self._clock.monotonic()
        loop = asyncio.get_running_loop()
        meta = job["metadata"]
        state.timers.append(
            loop.call_later(max(remaining, 0.0), self._expire, meta["namespace"], meta["name"], meta["uid"])
        )

    def _expire(self, namespace: str, name: str, uid: str) -> None:
        """ttlSecondsAfterFinished elapsed: delete the Job in the foreground, as the TTL controller does."""
        job = self._store.get(JOB.key, namespace, name)
        state = self._states.get(uid)
        if job is None or job["metadata"]["uid"] != uid or state is None:
            return
        ttl = job["spec"].get("ttlSecondsAfterFinished")
        if ttl is None:
            state.ttl_armed = False
            return
        remaining = (state.finished_at or 0.0) + self._clock.scaled(ttl) - self._clock.monotonic()
        if remaining > 0:
            state.timers.append(asyncio.get_running_loop().call_later(remaining, self._expire, namespace, name, uid))
            return
        assert self.lifecycle is not None
        self.lifecycle.delete(JOB, job, "Foreground")

    def _write(
        self,
        job: dict[str, Any],
        original: dict[str, Any],
        active: list[dict[str, Any]],
        terminating: list[dict[str, Any]],
    ) -> None:
        status = job["status"]
        status["active"] = len(active)
        status["ready"] = sum(1 for p in active if _pod_is_ready(p))
        status["terminating"] = len(terminating)
        status["uncountedTerminatedPods"] = {}
        for key in ("succeeded", "failed"):
            if not status.get(key):
                status.pop(key, None)
        if not status.get("active"):
            status.pop("active", None)
        if not status["conditions"]:
            del status["conditions"]
        if status != original:
            self._store.update(JOB.key, job)

    def _event(self, job: dict[str, Any], reason: str, message: str, warning: bool = False) -> None:
        self._events.record(job, "batch/v1", "Job", reason, message, warning=warning, component="job-controller")
