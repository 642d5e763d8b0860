"""The Cloud Build builder against FakeCloudBuild (REST on loopback) and the Cloud Storage emulator.

The builder runs in a thread and polls while the test moves the build (QUEUED, WORKING, then
SUCCESS or FAILURE), so the waiting itself is exercised, not only the last answer.
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from stackhop.core.artifacts import ArtifactStore
from stackhop.core.stack import Stack, StackConfig
from stackhop.images.builders.cloudbuild import CloudBuildBuilder, CloudBuildSettings, cloudbuild_request, digest_from_build
from stackhop.images.errors import ImageError
from stackhop.images.spec import BuildSpec
from stackhop.testing.cloudbuild import FakeCloudBuild

PROJECT = "ml-project-1"
REPO = "europe-docker.pkg.dev/ml-project-1/images/train"
DIGEST = "sha256:" + "d1e5e1" * 10 + "abcd"
CONTEXT = "gs://stackhop/art/_stackhop/build-contexts/abc.tar.gz"


def spec(**kw: Any) -> BuildSpec:
    fields: dict[str, Any] = dict(
        name="train", repository=REPO, tag="h-" + "e" * 32, dockerfile="FROM python:3.11-slim\nCOPY app.py /app/\n",
        context=(("app.py", b"print(2)\n"),), platform="linux/amd64",
        build_args=(("PIP_INDEX_URL", "https://p/simple"), ("PRICE", "$5 and ${HOME}")),
    )
    fields.update(kw)
    return BuildSpec(**fields)


def settings(**kw: Any) -> CloudBuildSettings:
    return CloudBuildSettings(**{"project": PROJECT, "anonymous": True, "poll_seconds": 0.02, **kw})


def http(method: str, url: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw.startswith(b"{") else {}


@pytest.fixture
def cloudbuild(gcs):
    def object_exists(bucket: str, name: str) -> bool:
        status, _ = http("GET", f"{gcs.endpoint}/storage/v1/b/{bucket}/o/{urllib.parse.quote(name, safe='')}")
        return status == 200

    with FakeCloudBuild(projects=(PROJECT,), object_exists=object_exists) as fake:
        yield fake


def builder(tmp_path: Path, fake: FakeCloudBuild | None, root: str = "gs://stackhop/art", **kw: Any) -> CloudBuildBuilder:
    if fake is not None:
        kw.setdefault("api_endpoint", fake.url)
    return CloudBuildBuilder(settings(**kw), Stack("gcp", StackConfig(artifact_root=root), tmp_path, "test"))


def test_the_build_request_is_deterministic_and_escapes_substitutions() -> None:
    body = cloudbuild_request(spec(), settings(machine_type="E2_HIGHCPU_8", timeout_seconds=900), CONTEXT)
    assert body == cloudbuild_request(spec(), settings(machine_type="E2_HIGHCPU_8", timeout_seconds=900), CONTEXT)
    assert body["source"] == {"storageSource": {"bucket": "stackhop", "object": "art/_stackhop/build-contexts/abc.tar.gz"}}
    (step,) = body["steps"]
    assert step["name"] == "gcr.io/cloud-builders/docker"
    assert step["args"] == ["build", "--file", "Dockerfile", "--tag", spec().reference, "--platform", "linux/amd64",
                            "--build-arg", "PIP_INDEX_URL=https://p/simple", "--build-arg", "PRICE=$$5 and $${HOME}", "."]
    assert body["images"] == [spec().reference]
    assert body["timeout"] == "900s" and body["options"] == {"machineType": "E2_HIGHCPU_8"}
    assert "serviceAccount" not in body

    with_account = cloudbuild_request(spec(), settings(service_account="builder@ml-project-1.iam.gserviceaccount.com",
                                                       location="europe-west1", worker_pool="pool-a"), CONTEXT)
    assert with_account["serviceAccount"] == f"projects/{PROJECT}/serviceAccounts/builder@ml-project-1.iam.gserviceaccount.com"
    assert with_account["options"] == {"pool": {"name": f"projects/{PROJECT}/locations/europe-west1/workerPools/pool-a"},
                                       "logging": "CLOUD_LOGGING_ONLY"}
    with pytest.raises(ImageError, match=r"worker pool 'pool-a' from location 'global'; set builder_settings.location"):
        cloudbuild_request(spec(), settings(worker_pool="pool-a"), CONTEXT)
    with pytest.raises(ValueError):
        settings(machine_type="N2_STANDARD_4")


def test_the_digest_is_taken_from_results_images() -> None:
    build = {"results": {"images": [{"name": "other/img", "digest": "sha256:" + "1" * 64},
                                    {"name": spec().reference, "digest": DIGEST}]}}
    assert digest_from_build(build, spec().reference) == DIGEST
    assert digest_from_build({"results": {}}, spec().reference) is None


def test_the_stand_in_rejects_what_cloud_build_rejects(cloudbuild: FakeCloudBuild) -> None:
    url = f"{cloudbuild.url}/v1/projects/{PROJECT}/locations/global/builds"
    good = cloudbuild_request(spec(), settings(), CONTEXT)
    good["source"]["storageSource"]["object"] = "missing.tar.gz"
    status, body = http("POST", url, good)
    assert status == 400 and "No such object" in body["error"]["message"]

    cases: list[tuple[dict[str, Any], str]] = [
        ({"stepz": []}, 'Unknown name "stepz"'),
        ({"steps": []}, "at least one step"),
        ({"steps": [{"args": ["x"]}]}, "steps[0].name must be specified"),
        ({"steps": [{"name": "b", "args": ["$FOO"]}]}, 'key in the template "FOO"'),
        ({"images": ["Not A Reference"]}, "invalid image name"),
        ({"timeout": "10m"}, "google.protobuf.Duration"),
        ({"timeout": "90000s"}, "at most 86400s"),
        ({"options": {"machineType": "N2_STANDARD_4"}}, "build.options.machineType"),
        ({"serviceAccount": "projects/p/serviceAccounts/a@b"}, "CLOUD_LOGGING_ONLY / NONE"),
        ({"options": {"pool": {"name": "projects/p/locations/us-east1/workerPools/x"}}}, "not in location global"),
        ({"source": {"storageSource": {"bucket": "stackhop"}}}, "storageSource.object must be a non-empty string"),
    ]
    base = cloudbuild_request(spec(), settings(), CONTEXT)
    for change, expected in cases:
        status, body = http("POST", url, {**base, **change})
        assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT", change
        assert expected in body["error"]["message"], (change, body)
    status, body = http("POST", f"{cloudbuild.url}/v1/projects/someone-else/locations/global/builds", base)
    assert status == 403 and body["error"]["status"] == "PERMISSION_DENIED"
    assert cloudbuild.requests and not cloudbuild.errors


def test_operations_report_done_once_a_scripted_build_ends(cloudbuild: FakeCloudBuild, gcs) -> None:
    ArtifactStore("gs://stackhop").write_bytes(CONTEXT, b"tar")
    parent = f"{cloudbuild.url}/v1/projects/{PROJECT}/locations/global"
    status, operation = http("POST", f"{parent}/builds", cloudbuild_request(spec(), settings(), CONTEXT))
    assert status == 200 and operation["metadata"]["build"]["status"] == "QUEUED"
    assert operation["metadata"]["@type"].endswith("BuildOperationMetadata") and "done" not in operation
    build_id = operation["metadata"]["build"]["id"]
    cloudbuild.set_status(build_id, "WORKING")
    cloudbuild.finish(build_id, "SUCCESS", digest=DIGEST)
    _, done = http("GET", f"{cloudbuild.url}/v1/{operation['name']}")
    assert done["done"] is True and done["response"]["results"]["images"][0] == {
        "name": spec().reference, "digest": DIGEST, "pushTiming": done["response"]["results"]["images"][0]["pushTiming"]}
    with pytest.raises(ValueError, match="already ended"):
        cloudbuild.finish(build_id, "FAILURE")


def test_the_builder_uploads_creates_waits_and_returns_the_pushed_digest(cloudbuild: FakeCloudBuild, tmp_path) -> None:
    the_spec = spec()
    messages: list[str] = []
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(builder(tmp_path, cloudbuild, machine_type="E2_HIGHCPU_8").build, the_spec, messages.append)
        (build_id,) = cloudbuild.wait_for_builds(1)
        cloudbuild.set_status(build_id, "WORKING")
        polls = lambda: sum(1 for m, p, _ in cloudbuild.requests if m == "GET" and p.endswith(build_id))  # noqa: E731
        before = polls()
        while polls() < before + 2:  # the builder keeps polling a WORKING build
            assert not future.done()
            time.sleep(0.01)
        cloudbuild.finish(build_id, "SUCCESS", digest=DIGEST)
        assert future.result(timeout=10) == DIGEST

    data = the_spec.context_tar()
    obj = f"art/_stackhop/build-contexts/{hashlib.sha256(data).hexdigest()}.tar.gz"
    assert ArtifactStore("gs://stackhop").read_bytes(f"gs://stackhop/{obj}") == data
    build = cloudbuild.build(build_id)
    assert build["source"] == {"storageSource": {"bucket": "stackhop", "object": obj}}
    assert build["images"] == [the_spec.reference] and build["options"] == {"machineType": "E2_HIGHCPU_8"}
    posts = [p for m, p, _ in cloudbuild.requests if m == "POST"]
    assert posts == [f"/v1/projects/{PROJECT}/locations/global/builds"]
    assert any(f"started Cloud Build build {build_id}" in m for m in messages)


def test_a_failed_build_names_the_build_the_status_and_the_logs(cloudbuild: FakeCloudBuild, tmp_path) -> None:
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(builder(tmp_path, cloudbuild).build, spec(), lambda _: None)
        (build_id,) = cloudbuild.wait_for_builds(1)
        cloudbuild.finish(build_id, "FAILURE", detail='Build step 0 "gcr.io/cloud-builders/docker" failed: step exited with non-zero status: 1')
        with pytest.raises(ImageError) as info:
            future.result(timeout=10)
    message = str(info.value)
    assert message.startswith(f"Cloud Build build {build_id} for image {spec().reference} ended FAILURE (Build step 0")
    assert f"read its logs at https://console.cloud.google.com/cloud-build/builds;region=global/{build_id}" in message
    assert "\n" not in message


def test_a_refused_request_and_a_non_gcs_root_are_one_sentence_errors(cloudbuild: FakeCloudBuild, tmp_path) -> None:
    with pytest.raises(ImageError, match=r"^Cloud Build refused the build of image .* \(HTTP 403 PERMISSION_DENIED: .*\); check builder_settings \(project 'other-project'"):
        builder(tmp_path, cloudbuild, project="other-project").build(spec(), lambda _: None)
    with pytest.raises(ImageError, match=r"reads the build context from gs://, but stack 'gcp' has artifact_root 's3://b'"):
        builder(tmp_path, None, root="s3://b").build(spec(), lambda _: None)
