"""`stackhop build` end to end: rendered Dockerfile -> buildah -> a real registry -> digest -> pinned compile.

The parent image is made here (static busybox plus a `python` stand-in that records the pip
calls the rendered Dockerfile makes), because no public registry is reachable from CI; every
other part is real: Debian's buildah builds the rendered Dockerfile, Debian's docker-registry
(CNCF distribution) stores it, and the digest comes back through the OCI distribution API.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import stackhop
from stackhop.cli.main import main
from stackhop.core.stack import Stack, StackConfig
from stackhop.images.builders.buildah import BuildahBuilder
from stackhop.images.reference import parse_reference
from stackhop.images.spec import BuildSpec
from stackhop.testing.registry import LocalRegistry

PYTHON_STANDIN = b"#!/bin/sh\nmkdir -p /var/log && echo \"python $*\" >> /var/log/python-calls.log\n"

PIPELINE = """
from stackhop import ImageSettings, pipeline, step

@step
def prepare() -> int:
    return 1

@step
def train(x: int) -> int:
    return x

@pipeline(image=ImageSettings(parent_image="{base}", requirements=["numpy==2.1.0"], environment={{"MODE": "ci"}}))
def shipped():
    x = prepare()
    train(x=x.output).set_image(ImageSettings(requirements=["scipy==1.14.1"]))
"""


@pytest.fixture(scope="module")
def registry():
    if shutil.which("buildah") is None or LocalRegistry.unavailable() or not Path("/bin/busybox").exists():
        pytest.skip("needs buildah, docker-registry and busybox-static; apt-get install buildah docker-registry busybox-static")
    with LocalRegistry() as reg:
        yield reg


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    root = tmp_path_factory.mktemp("buildah")
    yield {"root": str(root / "root"), "runroot": str(root / "runroot")}
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def base(registry, storage) -> str:
    spec = BuildSpec(
        name="base", repository=f"{registry.host}/test/python-standin", tag="1",
        dockerfile=("FROM scratch\nCOPY --chmod=755 busybox /bin/busybox\n"
                    'RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin"]\n'
                    "COPY --chmod=755 python /usr/local/bin/python\n"),
        context=(("busybox", Path("/bin/busybox").read_bytes()), ("python", PYTHON_STANDIN)))
    stack = Stack("t", StackConfig(), Path("."), "test")
    BuildahBuilder(BuildahBuilder.Settings(**storage), stack).build(spec, lambda line: None)
    return spec.reference


@pytest.fixture
def shipped(project, write_config, write_pipeline, registry, storage, base):
    write_config(f"""
        stacks:
          staging:
            adapter: kubernetes
            artifact_root: s3://ml/stackhop
            images:
              builder: buildah
              builder_settings: {json.dumps(storage)}
              registry: {registry.host}/ml
          prod:
            adapter: kubernetes
            artifact_root: s3://ml/stackhop
            images: {{registry: "{registry.host}/ml", require_digest: true}}
    """)
    (project / "shipped.py").write_text(PIPELINE.format(base=base))
    return write_pipeline((project / "shipped.py").read_text(), name="shipped").shipped


def build(capsys, *args: str) -> list[dict]:
    assert main(["build", "shipped.py", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)["images"]


def test_build_pushes_each_distinct_image_then_reuses_them_unchanged(shipped, registry, capsys) -> None:
    first = build(capsys, "--stack", "staging")
    assert sorted(o["result"] for o in first) == ["built", "built"]
    assert {tuple(o["steps"]) for o in first} == {("prepare",), ("train",)}
    for o in first:
        ref = parse_reference(o["reference"])
        assert registry.registry().manifest_digest(ref.repository, ref.tag) == o["digest"]

    again = build(capsys, "--stack", "staging")
    assert [o["result"] for o in again] == ["reused", "reused"]
    assert [o["digest"] for o in again] == [o["digest"] for o in first]


def test_compile_pins_what_build_recorded_and_prod_accepts_it(shipped, project, capsys) -> None:
    with pytest.raises(stackhop.StackhopError, match=r"is a tag, and stack 'prod' requires digests"):
        stackhop.compile(shipped, "prod")
    built = {o["steps"][0]: o for o in build(capsys, "--stack", "staging")}
    lock = json.loads((project / ".stackhop" / "images.lock.json").read_text())["images"]
    assert lock == {o["reference"]: o["digest"] for o in built.values()}

    manifests = stackhop.compile(shipped, "prod").files["kubernetes.yaml"].decode()
    repo = built["prepare"]["reference"].split(":h-")[0]
    assert f"image: {repo}@{built['prepare']['digest']}" in manifests
    assert f"image: {repo}@{built['train']['digest']}" in manifests


def test_the_rendered_dockerfile_ran_its_installs_in_order(shipped, registry, storage, capsys, tmp_path) -> None:
    (train,) = [o for o in build(capsys, "--stack", "staging") if o["steps"] == ["train"]]
    import subprocess

    def buildah(*args: str) -> str:
        argv = ["buildah", "--storage-driver", "vfs", "--root", storage["root"], "--runroot", storage["runroot"], *args]
        return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()

    container = buildah("from", "--tls-verify=false", "--pull-always", f"{train['reference']}")
    try:
        mount = Path(buildah("mount", container))
        calls = (mount / "var/log/python-calls.log").read_text().splitlines()
        assert (mount / "opt/stackhop/stackhop/entrypoint.py").exists()
    finally:
        buildah("rm", container)
    assert [c.split(" -r ")[-1] for c in calls] == ["/tmp/stackhop-req/step.txt", "/opt/stackhop/requirements.txt"]
    config = json.loads(buildah("inspect", "--type", "image", train["reference"]))["OCIv1"]["config"]
    assert config["User"] == "10001" and "MODE=ci" in config["Env"]


def test_dry_run_prints_the_plan_and_builds_nothing(shipped, registry, capsys) -> None:
    assert main(["build", "shipped.py", "--stack", "staging", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("FROM ") == 2 and "(steps: prepare;" in out and "(steps: train;" in out


def test_a_stack_without_a_builder_says_so_before_anything_runs(shipped, project, capsys) -> None:
    assert main(["build", "shipped.py", "--stack", "prod"]) == 2
    assert "stack 'prod' has no images.builder" in capsys.readouterr().err


def test_run_builds_missing_images_first_and_submits_them_by_digest(project, write_config, write_pipeline, registry,
                                                                     storage, base) -> None:
    from stackhop.testing.kubernetes import FakeKubernetes

    with FakeKubernetes(version="1.37") as kube:
        kube.write_kubeconfig(str(project / "kubeconfig"), namespace="ml")
        write_config(f"""
            stacks:
              k8s:
                adapter: kubernetes
                artifact_root: {project / "artifacts"}
                settings: {{kubeconfig: "{project / 'kubeconfig'}", namespace: ml}}
                images:
                  builder: buildah
                  builder_settings: {json.dumps(storage)}
                  registry: {registry.host}/ml
        """)
        (project / "shipped.py").write_text(PIPELINE.format(base=base))
        module = write_pipeline((project / "shipped.py").read_text(), name="shipped")
        handle = stackhop.run(module.shipped, "k8s", wait=False)
        import time

        deadline = time.time() + 30
        while not kube.objects("Job", "ml") and time.time() < deadline:  # the driver creates the first Job
            time.sleep(0.1)
        images = {c["image"] for job in kube.objects("Job", "ml") for c in job["spec"]["template"]["spec"]["containers"]}
        handle.cancel()
        lock = json.loads((project / ".stackhop" / "images.lock.json").read_text())["images"]
    assert images and all("@sha256:" in image for image in images)
    assert images <= {ref.split(":h-")[0] + "@" + digest for ref, digest in lock.items()}


def test_a_prebuilt_tag_is_resolved_to_its_digest_for_a_stack_that_requires_digests(project, write_config, write_pipeline,
                                                                                     registry, base, capsys) -> None:
    write_config(f"""
        stacks:
          prod:
            adapter: kubernetes
            artifact_root: s3://ml/stackhop
            images: {{require_digest: true}}
    """)
    module = write_pipeline(f"""
        from stackhop import pipeline, step

        @step
        def prepare() -> int:
            return 1

        @pipeline(image="{base}")
        def given():
            prepare()
    """, name="given")
    with pytest.raises(stackhop.StackhopError, match=r"step 'prepare': image '.*python-standin:1' is a tag"):
        stackhop.compile(module.given, "prod")
    assert main(["build", "given.py", "--stack", "prod", "--json"]) == 0
    (resolved,) = json.loads(capsys.readouterr().out)["images"]
    ref = parse_reference(base)
    assert resolved["result"] == "resolved"
    assert resolved["digest"] == registry.registry().manifest_digest(ref.repository, ref.tag)
    manifests = stackhop.compile(module.given, "prod").files["kubernetes.yaml"].decode()
    assert f"image: {registry.host}/test/python-standin@{resolved['digest']}" in manifests
