"""The kaniko builder: its Job renders strictly-valid and deterministic, and it builds through a cluster.

The cluster is FakeKubernetes (the official client over real HTTP; its kubelet runs the
container's command as a local process). `/kaniko/executor` is mapped to a small script that
reads the uploaded context back from the Cloud Storage emulator, as kaniko would, and logs what
kaniko logs, and writes the digest to `--digest-file=/dev/termination-log` as kaniko does. The
fake kubelet maps the container's terminationMessagePath to a file of its own and reports it as
`state.terminated.message`, so the builder reads the digest the way it does on a real cluster
(kaniko's "Pushed ...@sha256" log line, its fallback, is checked on its own).
"""

from __future__ import annotations

import copy
import hashlib
import sys
import textwrap
from pathlib import Path

import pytest

from stackhop.core.artifacts import ArtifactStore
from stackhop.core.stack import Stack, StackConfig
from stackhop.images.builders.kaniko import (
    KANIKO_IMAGE,
    KanikoBuilder,
    KanikoSettings,
    digest_from_logs,
    digest_from_pod,
    job_name,
    kaniko_job,
    validate_job,
)
from stackhop.images.errors import ImageError
from stackhop.images.spec import BuildSpec
from stackhop.testing.kubernetes import FakeKubernetes

TAG = "h-" + "ab12" * 8
FAKE_EXECUTOR = '''
    """Stands in for /kaniko/executor: fetch the gs:// context like kaniko, then log like kaniko."""
    import gzip, hashlib, io, os, sys, tarfile, urllib.parse, urllib.request

    args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
    bucket, _, obj = args["context"].removeprefix("gs://").partition("/")
    url = f"{os.environ['STORAGE_EMULATOR_HOST']}/storage/v1/b/{bucket}/o/{urllib.parse.quote(obj, safe='')}?alt=media"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    data = opener.open(url, timeout=10).read()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        dockerfile = tar.extractfile(args["dockerfile"]).read().decode()
        names = tar.getnames()
    print(f"INFO[0000] Retrieving image manifest python:3.11-slim", flush=True)
    print(f"INFO[0000] context files: {sorted(names)}", flush=True)
    print(f"INFO[0000] args: {sys.argv[1:]}", flush=True)
    if "exit 3" in dockerfile:
        print("INFO[0001] RUN exit 3", flush=True)
        print("error building image: error building stage: failed to execute command: exit status 3", flush=True)
        sys.exit(1)
    digest = "sha256:" + hashlib.sha256(args["destination"].encode() + data).hexdigest()
    repo = args["destination"].rsplit(":", 1)[0]
    print(f"INFO[0002] Pushing image to {args['destination']}", flush=True)
    with open(args["digest-file"], "w") as f:  # no "Pushed" log line: the termination message must carry it
        f.write(digest)
'''


def spec(dockerfile: str = "FROM python:3.11-slim\nCOPY app.py /app/app.py\n", **kw: object) -> BuildSpec:
    fields: dict[str, object] = dict(
        name="training-pipeline",
        repository="registry.example.com/ml/training-pipeline",
        tag=TAG,
        dockerfile=dockerfile,
        context=(("app.py", b"print('hi')\n"),),
        platform="linux/arm64",
        build_args=(("PIP_INDEX_URL", "https://pypi.example.com/simple"), ("EXTRA", "a b $c")),
    )
    fields.update(kw)
    return BuildSpec(**fields)  # type: ignore[arg-type]


def stack(tmp_path: Path, root: str) -> Stack:
    return Stack("k8s", StackConfig(artifact_root=root), tmp_path, "test")


CONTEXT_URI = "gs://stackhop/art/_stackhop/build-contexts/0123.tar.gz"


def test_the_job_is_strictly_valid_deterministic_and_says_what_kaniko_needs() -> None:
    settings = KanikoSettings(
        namespace="builds",
        service_account="kaniko",
        docker_config_secret="regcred",
        insecure_registries=["registry.internal:5000"],
        resources={"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}},
        env={"AWS_REGION": "eu-west-1"},
    )
    doc = kaniko_job(spec(), settings, CONTEXT_URI)
    assert doc == kaniko_job(spec(), settings, CONTEXT_URI)
    validate_job(doc, spec())

    assert doc["metadata"]["name"] == job_name(spec()) == f"kaniko-{TAG}-" + hashlib.sha256(
        b"registry.example.com/ml/training-pipeline").hexdigest()[:8]
    assert len(doc["metadata"]["name"]) <= 63
    pod = doc["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == KANIKO_IMAGE and KANIKO_IMAGE.endswith(":v1.24.0")
    assert container["command"] == ["/kaniko/executor"]
    assert container["args"] == [
        f"--context={CONTEXT_URI}",
        "--dockerfile=Dockerfile",
        f"--destination=registry.example.com/ml/training-pipeline:{TAG}",
        "--digest-file=/dev/termination-log",
        "--reproducible",
        "--custom-platform=linux/arm64",
        "--build-arg=PIP_INDEX_URL=https://pypi.example.com/simple",
        "--build-arg=EXTRA=a b $c",
        "--insecure-registry=registry.internal:5000",
    ]
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["volumeMounts"] == [{"name": "docker-config", "mountPath": "/kaniko/.docker", "readOnly": True}]
    assert pod["volumes"][0]["secret"] == {
        "secretName": "regcred", "items": [{"key": ".dockerconfigjson", "path": "config.json"}]}
    assert pod["serviceAccountName"] == "kaniko" and pod["restartPolicy"] == "Never"
    assert doc["spec"]["backoffLimit"] == 0 and doc["spec"]["activeDeadlineSeconds"] == 3600

    other = kaniko_job(spec(repository="registry.example.com/ml/other"), settings, CONTEXT_URI)
    assert other["metadata"]["name"] != doc["metadata"]["name"], "same content, other repository: another Job"

    broken = copy.deepcopy(doc)
    broken["spec"]["template"]["spec"]["containers"][0]["bogus"] = True
    with pytest.raises(ImageError, match=r"kaniko Job for image .* is not a valid Kubernetes object .*bogus"):
        validate_job(broken, spec())


def test_settings_refuse_unknown_keys_and_bad_names() -> None:
    with pytest.raises(ValueError):
        KanikoSettings(docker_config_json="{...}")  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        KanikoSettings(namespace="Not_A_Namespace")


def test_the_digest_is_read_from_the_termination_message_or_kanikos_log() -> None:
    digest = "sha256:" + "5" * 64
    pod = {"status": {"containerStatuses": [{"name": "kaniko", "state": {"terminated": {
        "exitCode": 0, "reason": "Completed", "message": digest + "\n"}}}]}}
    assert digest_from_pod(pod) == digest
    assert digest_from_pod({"status": {"containerStatuses": [{"name": "kaniko", "state": {"terminated": {}}}]}}) is None
    log = f"INFO[0001] Pushing image to r/x:1\nINFO[0002] Pushed r/x@{digest}\n"
    assert digest_from_logs(log) == digest
    assert digest_from_logs("INFO Retrieving image manifest python@sha256:" + "1" * 64) is None


def test_a_local_artifact_root_is_refused_in_one_sentence(tmp_path: Path) -> None:
    builder = KanikoBuilder(KanikoSettings(), stack(tmp_path, str(tmp_path / "art")))
    with pytest.raises(ImageError, match=r"^The kaniko builder cannot build image .* set the stack's artifact_root to a s3:// or gs:// URI\.$"):
        builder.build(spec(), print)


@pytest.fixture
def kube(tmp_path: Path, gcs):
    script = tmp_path / "fake_executor.py"
    script.write_text(textwrap.dedent(FAKE_EXECUTOR))
    with FakeKubernetes(version="1.37", time_scale=0.05, command_map={"/kaniko/executor": [sys.executable, str(script)]},
                        pod_env=gcs.env()) as fake:
        yield fake


def builder_for(kube: FakeKubernetes, tmp_path: Path, **settings: object) -> KanikoBuilder:
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
    values = {"kubeconfig": str(kubeconfig), "namespace": "default", "poll_seconds": 0.05, **settings}
    return KanikoBuilder(KanikoSettings(**values), stack(tmp_path, "gs://stackhop/art"))  # type: ignore[arg-type]


def test_the_builder_runs_a_job_waits_and_returns_the_pushed_digest(kube: FakeKubernetes, tmp_path: Path) -> None:
    the_spec = spec()
    messages: list[str] = []
    digest = builder_for(kube, tmp_path).build(the_spec, messages.append)

    data = the_spec.context_tar()
    uri = f"gs://stackhop/art/_stackhop/build-contexts/{hashlib.sha256(data).hexdigest()}.tar.gz"
    assert ArtifactStore("gs://stackhop").read_bytes(uri) == data
    assert digest == "sha256:" + hashlib.sha256(the_spec.reference.encode() + data).hexdigest()

    (job,) = kube.objects("Job", "default")
    assert job["metadata"]["name"] == job_name(the_spec)
    assert any(c["type"] == "Complete" and c["status"] == "True" for c in job["status"]["conditions"])
    (pod,) = kube.objects("Pod", "default")
    assert pod["spec"]["containers"][0]["args"][0] == f"--context={uri}"
    assert any("created kaniko Job" in m for m in messages)

    # The same image again: the context is not uploaded twice and the finished Job is adopted.
    again: list[str] = []
    assert builder_for(kube, tmp_path).build(the_spec, again.append) == digest
    assert any("already at" in m for m in again) and any("already exists" in m for m in again)
    assert len(kube.objects("Job", "default")) == 1


def test_a_failing_build_names_the_job_and_quotes_the_last_log_lines(kube: FakeKubernetes, tmp_path: Path) -> None:
    failing = spec(dockerfile="FROM python:3.11-slim\nRUN exit 3\n")
    with pytest.raises(ImageError) as info:
        builder_for(kube, tmp_path, log_lines=3).build(failing, lambda _: None)
    message = str(info.value)
    assert message.startswith(f"kaniko Job default/{job_name(failing)} failed to build image {failing.reference} (")
    assert "exit code 1" in message and "failed to execute command: exit status 3" in message
    assert "Retrieving image manifest" not in message, "only the last log_lines lines are quoted"
    assert message.endswith("; fix the Dockerfile or the builder_settings and build again.")
    assert "\n" not in message

    # Building it again deletes the failed Job and runs a new one.
    with pytest.raises(ImageError, match="failed to build image"):
        builder_for(kube, tmp_path, log_lines=3).build(failing, lambda _: None)
    posts = [r for r in kube.requests if r[0] == "POST" and r[1].endswith("/jobs")]
    assert len(posts) == 3, "create, conflict, create again"
