"""Builders: buildah for real (vfs + chroot, images pushed to a local registry), docker without a daemon.

The base image is made here, not pulled: `FROM scratch` plus Debian's static busybox, whose
own `--install` gives it a /bin/sh, so RUN lines work with no network. buildah's storage is
a temporary --root/--runroot for the session, never /var/lib/containers.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import sys
from pathlib import Path
from typing import Iterator

import pytest

from stackhop.core.stack import Stack, StackConfig
from stackhop.images.builders.buildah import BuildahBuilder, from_images
from stackhop.images.builders.docker import DockerBuilder
from stackhop.images.errors import ImageError
from stackhop.images.spec import BuildSpec
from stackhop.testing.registry import LocalRegistry

SKIP_HINT = "install with apt-get install buildah docker-registry busybox-static"
BUSYBOX = "/bin/busybox"
STACK = Stack(name="test", config=StackConfig(), project_dir=Path("."), source="built-in")
DIGEST = "sha256:" + "b" * 64


def one_sentence(message: str) -> None:
    assert "\n" not in message and message.endswith(".") and "; " in message, message


def _static_elf(path: str) -> bool:
    """True for a 64-bit ELF with no PT_INTERP header: it runs in an empty image."""
    with open(path, "rb") as f:
        header = f.read(64)
        if header[:5] != b"\x7fELF\x02":
            return False
        phoff, = struct.unpack_from("<Q", header, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", header, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != 3 for i in range(phnum))


def _needs_tools() -> None:
    missing = [tool for tool in ("buildah",) if shutil.which(tool) is None]
    if LocalRegistry.unavailable():
        missing.append("docker-registry")
    if not (os.path.exists(BUSYBOX) and _static_elf(BUSYBOX)):
        missing.append("a static /bin/busybox")
    if missing:
        pytest.skip(f"no {', '.join(missing)}; {SKIP_HINT}")


@pytest.fixture(scope="module")
def registry() -> Iterator[LocalRegistry]:
    _needs_tools()
    with LocalRegistry() as reg:
        yield reg


@pytest.fixture(scope="module")
def buildah(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuildahBuilder]:
    _needs_tools()
    storage = tmp_path_factory.mktemp("buildah")
    settings = BuildahBuilder.Settings(root=str(storage / "root"), runroot=str(storage / "runroot"))
    yield BuildahBuilder(settings, STACK)
    shutil.rmtree(storage, ignore_errors=True)


@pytest.fixture(scope="module")
def base_image(buildah: BuildahBuilder, registry: LocalRegistry) -> str:
    """`FROM scratch` + static busybox as /bin/busybox, its applets (sh among them) linked into /bin."""
    spec = BuildSpec(
        name="busybox-base", repository=f"{registry.host}/test/base", tag="h-base",
        dockerfile=('FROM scratch\nCOPY --chmod=755 busybox /bin/busybox\n'
                    'RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin"]\n'),
        context=(("busybox", Path(BUSYBOX).read_bytes()),))
    buildah.build(spec, lambda line: None)
    return spec.reference


def test_buildah_builds_and_pushes_and_returns_the_registry_digest(
        buildah: BuildahBuilder, registry: LocalRegistry, base_image: str, tmp_path: Path) -> None:
    # Storage of its own, so the base is pulled from the loopback registry over plain http.
    fresh = BuildahBuilder(buildah.Settings(root=str(tmp_path / "root"), runroot=str(tmp_path / "runroot")), STACK)
    spec = BuildSpec(
        name="training-pipeline", repository=f"{registry.host}/ml/training-pipeline", tag="h-1",
        dockerfile=(f"FROM {base_image}\nARG GREETING\nCOPY step.txt /app/step.txt\n"
                    'RUN echo "$GREETING from $(cat /app/step.txt)" > /app/out && cat /app/out\n'),
        context=(("step.txt", b"train_model"),), build_args=(("GREETING", "hello"),))
    lines: list[str] = []
    try:
        digest = fresh.build(spec, lines.append)
    finally:
        shutil.rmtree(tmp_path / "root", ignore_errors=True)  # vfs copies every layer: free them now
    assert digest == registry.registry().manifest_digest("ml/training-pipeline", "h-1")
    assert "hello from train_model" in lines  # RUN output is streamed, line by line
    assert any(line.startswith("STEP ") for line in lines)
    assert f"Trying to pull {base_image}..." in lines  # over plain http, as --tls-verify=false allows
    # The pushed image (OCI, gzip layers) copies within the registry to the same digest.
    assert registry.registry().copy(spec.reference, "mirror/training-pipeline") == digest


def test_a_failing_run_names_the_image_and_the_last_line(
        buildah: BuildahBuilder, registry: LocalRegistry, base_image: str) -> None:
    spec = BuildSpec(name="broken", repository=f"{registry.host}/ml/broken", tag="h-2",
                     dockerfile=f"FROM {base_image}\nRUN echo boom-marker; exit 3\n")
    lines: list[str] = []
    with pytest.raises(ImageError) as info:
        buildah.build(spec, lines.append)
    message = str(info.value)
    one_sentence(message)
    assert message.startswith(f"Could not build the image broken ({spec.reference}): ")
    assert 'RUN echo boom-marker; exit 3' in message and "exit status 3" in message
    assert "boom-marker" in lines
    assert not registry.registry().exists("ml/broken:h-2")


def test_buildah_argv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    builder = BuildahBuilder(BuildahBuilder.Settings(root="/r", extra_args=["--format", "docker"]), STACK)
    spec = BuildSpec(name="x", repository="127.0.0.1:5000/ml/x", tag="h-1", platform="linux/arm64",
                     dockerfile="FROM localhost:5000/base:1 AS b\nFROM b\n", build_args=(("A", "1"),))
    assert builder.bud_argv(spec, tmp_path) == [
        "buildah", "--storage-driver", "vfs", "--root", "/r", "bud", "--isolation", "chroot", "--layers=false",
        "-f", f"{tmp_path}/Dockerfile", "-t", "127.0.0.1:5000/ml/x:h-1", "--platform", "linux/arm64",
        "--build-arg", "A=1", "--tls-verify=false", "--format", "docker", str(tmp_path)]
    assert builder.push_argv(spec, tmp_path / "d") == [
        "buildah", "--storage-driver", "vfs", "--root", "/r", "push", "--digestfile", f"{tmp_path}/d",
        "--tls-verify=false", "127.0.0.1:5000/ml/x:h-1", "docker://127.0.0.1:5000/ml/x:h-1"]
    # A remote registry and a Docker Hub base keep TLS verification; an auth file is passed on.
    monkeypatch.setenv("REGISTRY_AUTH_FILE", "/auth.json")
    remote = BuildSpec(name="x", repository="ghcr.io/org/x", tag="h-1", dockerfile="FROM python:3.11-slim\n")
    assert "--tls-verify=false" not in builder.bud_argv(remote, tmp_path)
    assert builder.push_argv(remote, tmp_path / "d")[-4:] == [
        "--authfile", "/auth.json", "ghcr.io/org/x:h-1", "docker://ghcr.io/org/x:h-1"]
    strict = BuildahBuilder(BuildahBuilder.Settings(tls_verify=True), STACK)
    assert "--tls-verify=false" not in strict.push_argv(spec, tmp_path / "d")


def test_from_images() -> None:
    dockerfile = ("# FROM comment\nFROM --platform=$BUILDPLATFORM python:3.11 AS build\nRUN x\n"
                  "from build\nFROM scratch\nFROM ${BASE}\nFROM 127.0.0.1:5000/base:1\n")
    assert from_images(dockerfile) == ["python:3.11", "127.0.0.1:5000/base:1"]


def test_buildah_unavailable_names_the_binary() -> None:
    builder = BuildahBuilder(BuildahBuilder.Settings(binary="/nonexistent/buildah"), STACK)
    reason = builder.unavailable()
    assert reason is not None and "/nonexistent/buildah is not installed" in reason
    assert BuildahBuilder.Settings.model_fields["storage_driver"].default == "vfs"
    with pytest.raises(Exception):
        BuildahBuilder.Settings(unknown_key=1)  # type: ignore[call-arg]


# ---------------------------------------------------------------------------- docker


def _fake_docker(tmp_path: Path, script: str) -> str:
    """A `docker` CLI stand-in that records its argv (one JSON line per call) and runs `script`."""
    path = tmp_path / "docker"
    path.write_text(f"#!{sys.executable}\nimport json, sys\n"
                    f"open({str(tmp_path / 'calls.jsonl')!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
                    f"{script}\n")
    path.chmod(0o755)
    return str(path)


def _calls(tmp_path: Path) -> list[list[str]]:
    return [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]


def test_docker_unavailable_without_binary() -> None:
    reason = DockerBuilder(DockerBuilder.Settings(binary="/nonexistent/docker"), STACK).unavailable()
    assert reason is not None and "/nonexistent/docker is not installed" in reason and "buildah" in reason


def test_docker_unavailable_without_daemon(tmp_path: Path) -> None:
    binary = _fake_docker(tmp_path, "print('Client: Docker Engine', file=sys.stderr)\n"
                                    "print('Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                                    "Is the docker daemon running?', file=sys.stderr)\nsys.exit(1)")
    reason = DockerBuilder(DockerBuilder.Settings(binary=binary), STACK).unavailable()
    assert reason is not None
    one_sentence(reason)
    assert reason.startswith("The Docker daemon is not reachable (Cannot connect to the Docker daemon at unix:///var/run/docker.sock); start it")
    assert _calls(tmp_path) == [["info", "--format", "{{.ServerVersion}}"]]


def test_docker_unavailable_on_this_machine() -> None:
    """With the real CLI: no daemon runs on test machines, so the reason must say so (or name the binary)."""
    builder = DockerBuilder(DockerBuilder.Settings(), STACK)
    reason = builder.unavailable()
    if reason is None:
        pytest.skip("a Docker daemon is running here")
    assert "not installed" in reason or "daemon" in reason


def test_docker_argv(tmp_path: Path) -> None:
    builder = DockerBuilder(DockerBuilder.Settings(extra_args=["--pull"]), STACK)
    spec = BuildSpec(name="x", repository="127.0.0.1:5000/ml/x", tag="h-1", dockerfile="FROM scratch\n",
                     platform="linux/amd64", build_args=(("A", "1"), ("B", "two words")))
    assert builder.build_argv(spec, tmp_path) == [
        "docker", "build", "-f", f"{tmp_path}/Dockerfile", "-t", "127.0.0.1:5000/ml/x:h-1",
        "--platform", "linux/amd64", "--build-arg", "A=1", "--build-arg", "B=two words", "--pull", str(tmp_path)]
    assert builder.push_argv(spec) == ["docker", "push", "127.0.0.1:5000/ml/x:h-1"]
    assert builder.inspect_argv(spec) == ["docker", "image", "inspect", "--format", "{{json .RepoDigests}}",
                                          "127.0.0.1:5000/ml/x:h-1"]


def test_docker_build_reads_the_digest_from_push_then_inspect(tmp_path: Path) -> None:
    spec = BuildSpec(name="x", repository="127.0.0.1:5000/ml/x", tag="h-1", dockerfile="FROM scratch\n")
    binary = _fake_docker(tmp_path, f"if sys.argv[1] == 'push': print('h-1: digest: {DIGEST} size: 528')")
    builder = DockerBuilder(DockerBuilder.Settings(binary=binary), STACK)
    lines: list[str] = []
    assert builder.build(spec, lines.append) == DIGEST
    assert [call[0] for call in _calls(tmp_path)] == ["build", "push"]
    assert lines == [f"h-1: digest: {DIGEST} size: 528"]

    (tmp_path / "calls.jsonl").unlink()
    other = "sha256:" + "c" * 64
    binary = _fake_docker(tmp_path, "if sys.argv[1] == 'image': print(json.dumps("
                                    f"['ghcr.io/o/x@{other}', '127.0.0.1:5000/ml/x@{DIGEST}']))")
    builder = DockerBuilder(DockerBuilder.Settings(binary=binary), STACK)
    assert builder.build(spec, lambda line: None) == DIGEST
    assert [call[0] for call in _calls(tmp_path)] == ["build", "push", "image"]


def test_docker_build_failure_is_one_sentence(tmp_path: Path) -> None:
    spec = BuildSpec(name="x", repository="127.0.0.1:5000/ml/x", tag="h-1", dockerfile="FROM scratch\n")
    binary = _fake_docker(tmp_path, "print('step 1'); print('ERROR: failed to solve: no such file'); sys.exit(1)")
    with pytest.raises(ImageError) as info:
        DockerBuilder(DockerBuilder.Settings(binary=binary), STACK).build(spec, lambda line: None)
    one_sentence(str(info.value))
    assert "Could not build the image x (127.0.0.1:5000/ml/x:h-1): ERROR: failed to solve: no such file;" in str(info.value)
