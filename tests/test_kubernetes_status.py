"""How Job conditions and pod states map to stackhop's words (pure functions, no cluster)."""

from __future__ import annotations

import pytest

from stackhop.adapters.kubernetes.status import condition_holds, job_outcome, lookup


def job(*conditions: tuple[str, str, str], active: int = 0) -> dict:
    return {"metadata": {"name": "p-train-1a2b3c4d"},
            "status": {"active": active, "conditions": [
                {"type": t, "status": "True", "reason": r, "message": m} for t, r, m in conditions]}}


def pod(waiting: str | None = None, terminated: dict | None = None, **status: str) -> dict:
    state = {"waiting": {"reason": waiting, "message": "details"}} if waiting else {"terminated": terminated} if terminated else {"running": {}}
    return {"metadata": {"name": "p-train-1a2b3c4d-xyz12"}, "status": {"containerStatuses": [{"state": state}], **status}}


@pytest.mark.parametrize("condition", ["Complete", "SuccessCriteriaMet"])
def test_success_conditions_mean_succeeded(condition: str) -> None:
    outcome = job_outcome(job((condition, "CompletionsReached", "")), [])
    assert (outcome.state, outcome.native, outcome.exit_code) == ("succeeded", condition, 0)


@pytest.mark.parametrize("condition", ["Failed", "FailureTarget"])
def test_failure_conditions_mean_failed_with_kubernetes_reason_and_the_last_pods_exit(condition: str) -> None:
    oom = pod(terminated={"reason": "OOMKilled", "exitCode": 137, "finishedAt": "2026-11-22T10:00:00Z"})
    outcome = job_outcome(job((condition, "BackoffLimitExceeded", "Job has reached the specified backoff limit")), [oom])
    assert outcome.state == "failed" and outcome.native == "BackoffLimitExceeded" and outcome.exit_code == 137
    assert outcome.reason == ("Job p-train-1a2b3c4d failed: BackoffLimitExceeded (Job has reached the specified "
                              "backoff limit); last pod: OOMKilled, exit code 137")


def test_suspended_jobs_are_still_running_from_stackhops_view() -> None:
    assert job_outcome(job(("Suspended", "JobSuspended", "")), []).native == "Suspended"


@pytest.mark.parametrize("reason", ["ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CreateContainerConfigError"])
def test_pods_stuck_waiting_are_reported_with_their_reason(reason: str) -> None:
    outcome = job_outcome(job(active=1), [pod(waiting=reason)])
    assert outcome.state == "stuck" and outcome.waiting == reason
    assert outcome.reason == f"pod p-train-1a2b3c4d-xyz12 is {reason}: details"


def test_an_evicted_pod_is_named_when_the_job_fails() -> None:
    evicted = {"metadata": {"name": "x"}, "status": {"reason": "Evicted", "message": "low on memory"}}
    assert "Evicted: low on memory" in job_outcome(job(("Failed", "BackoffLimitExceeded", "")), [evicted]).reason


def test_an_active_job_is_running_and_a_new_one_pending() -> None:
    assert job_outcome(job(active=1), [pod()]).native == "Running"
    assert job_outcome(job(), []).native == "Pending"


def test_field_conditions_read_paths_and_compare_by_the_literals_type() -> None:
    obj = {"status": {"phase": "Running", "succeeded": 2, "conditions": [{"type": "Ready", "status": "True"}]}}
    assert lookup(obj, "status.conditions[0].type") == "Ready"
    assert lookup(obj, "status.missing.deeper") is None
    assert condition_holds(obj, "status.phase", "==", "Running")
    assert condition_holds(obj, "status.succeeded", ">", 1)
    assert not condition_holds(obj, "status.succeeded", ">", 2)
    assert not condition_holds(obj, "status.missing", "==", "x")
    assert condition_holds(obj, "status.conditions[0].status", "==", True)
