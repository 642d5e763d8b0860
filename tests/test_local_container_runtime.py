"""The local stack runs a container step in its own image when `settings.container_runtime` names docker or podman.

Most specs put a recording stand-in named `podman`/`docker` first on PATH: it keeps the argv it was
given and runs the command on this machine with the mounts mapped back to host paths, so each spec can
check the argv shape and that the data still flows. The last spec runs real podman on a busybox image
built from scratch, where there is no Python to run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import stackhop
from stackhop import RunStatus, StepStatus
from stackhop.errors import ConfigError

STANDIN = r'''#!{python}
import json, os, signal, subprocess, sys, time
log = os.environ["STANDIN_LOG"]
argv = sys.argv[1:]
with open(log, "a") as f:
    f.write(json.dumps([os.path.basename(sys.argv[0]), *argv]) + "\n")
if argv[0] in ("stop", "rm"):
    name = argv[-1]
    pidfile = os.path.join(os.path.dirname(log), name + ".pid")
    if os.path.exists(pidfile):
        os.killpg(int(open(pidfile).read()), signal.SIGKILL)
    sys.exit(0)
assert argv[0] == "run", argv
rest = argv[1:argv.index("--")]
image, *command = argv[argv.index("--") + 1:]
mounts, env, name = {{}}, {{"PATH": os.environ["PATH"]}}, None
i = 0
while i < len(rest):
    flag = rest[i]
    if flag == "--mount":
        fields = dict(p.split("=", 1) for p in rest[i + 1].split(",") if "=" in p)
        mounts[fields["target"]] = fields["source"]
    elif flag == "--env" and rest[i + 1] in os.environ:
        env[rest[i + 1]] = os.environ[rest[i + 1]]
    elif flag == "--name":
        name = rest[i + 1]
    i += 1 if flag in ("--rm", "--init") or flag.startswith("--userns") else 2
def host(arg):
    for target, source in sorted(mounts.items(), key=lambda m: -len(m[0])):
        arg = arg.replace(target, source)
    return arg
proc = subprocess.Popen([host(a) for a in command], env=env, start_new_session=True)
open(os.path.join(os.path.dirname(log), name + ".pid"), "w").write(str(proc.pid))
sys.exit(proc.wait())
'''

COUNT = '''
    from stackhop import Dataset, Input, InputPath, InputValue, Markdown, Output, OutputPath, container_step, pipeline, step

    @step
    def write_text(text: Output[Dataset]) -> None:
        with open(text.path, "w") as f:
            f.write("one pipeline definition many orchestrators kubernetes\\n")

    @step
    def summarize(report: Input[Markdown], count: int) -> str:
        return f"{count} long words: " + open(report.path).read().strip()

    @pipeline
    def counting(min_len: int = 8):
        text = write_text()
        counted = container_step(
            "count-words",
            image="localhost/busybox:stackhop-test",
            command=["sh", "-c", "tr ' ' '\\\\n' < $0 | awk -v n=$1 'length($0) >= n' | sort > $2; wc -l < $2 | tr -d ' ' > $3"],
            args=[InputPath("source"), InputValue("min_len"), OutputPath("report"), OutputPath("count")],
            inputs={"source": text.outputs["text"], "min_len": min_len},
            outputs={"report": Markdown, "count": int},
        )
        summarize(report=counted.outputs["report"], count=counted.outputs["count"])
'''

USER_COMMAND = ["sh", "-c", "tr ' ' '\\n' < $0 | awk -v n=$1 'length($0) >= n' | sort > $2; wc -l < $2 | tr -d ' ' > $3"]


def local_stack(write_config, **settings: object) -> None:
    import yaml

    write_config(yaml.safe_dump({"default_stack": "dev", "stacks": {"dev": {"adapter": "local", "settings": settings}}}))


@pytest.fixture
def standin(project: Path, monkeypatch: pytest.MonkeyPatch):
    """`podman` and `docker` stand-ins first on PATH; returns a reader of the argvs they were given."""
    bindir = project / "standin-bin"
    bindir.mkdir()
    for name in ("podman", "docker"):
        path = bindir / name
        path.write_text(STANDIN.format(python=sys.executable))
        path.chmod(0o755)
    log = project / "standin" / "calls.jsonl"
    log.parent.mkdir()
    monkeypatch.setenv("STANDIN_LOG", str(log))
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")

    def calls() -> list[list[str]]:
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return calls


def _runs(calls: list[list[str]]) -> list[list[str]]:
    return [c for c in calls if c[1] == "run"]


def _flag_values(argv: list[str], flag: str) -> list[str]:
    before = argv[:argv.index("--")]
    return [before[i + 1] for i, a in enumerate(before) if a == flag]


def test_a_container_step_runs_in_its_own_image_through_podman_and_its_outputs_flow_on(
        project: Path, write_pipeline, write_config, standin) -> None:
    local_stack(write_config, container_runtime="podman")
    handle = stackhop.run(write_pipeline(COUNT).counting)

    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    assert handle.artifact("summarize", "output").load() == "4 long words: definition\nkubernetes\norchestrators\npipeline"
    assert handle.steps()["count-words"].status == StepStatus.SUCCEEDED
    [argv] = _runs(standin())
    assert argv[:4] == ["podman", "run", "--rm", "--init"]
    assert argv[argv.index("--") + 1:] == ["localhost/busybox:stackhop-test", *USER_COMMAND,
                                           "/stackhop/inputs/source", "8", "/stackhop/outputs/report/data",
                                           "/stackhop/outputs/count/data"]
    mounts = _flag_values(argv, "--mount")
    assert [m.rsplit(",", 2)[1:] for m in mounts if "/stackhop/inputs/" in m] == [
        ["target=/stackhop/inputs/source", "readonly"]]
    assert sorted(m.split("target=")[1] for m in mounts if "/stackhop/outputs/" in m) == [
        "/stackhop/outputs/count", "/stackhop/outputs/report"]
    assert all(not m.endswith("readonly") for m in mounts if "/stackhop/outputs/" in m)
    user = ["--userns=keep-id"] if os.getuid() != 0 else ["--user", f"{os.getuid()}:{os.getgid()}"]
    assert all(u in argv for u in user)


def test_the_run_records_the_container_steps_outputs_like_a_python_steps(
        project: Path, write_pipeline, write_config, standin) -> None:
    local_stack(write_config, container_runtime="docker")
    handle = stackhop.run(write_pipeline(COUNT).counting)

    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    report = handle.artifact("count-words", "report")
    assert report.uri.startswith((project / ".stackhop/artifacts").as_uri())
    assert Path(report.uri.removeprefix("file://")).read_text() == "definition\nkubernetes\norchestrators\npipeline\n"
    assert handle.artifact("count-words", "count").load() == 4


def test_env_secrets_and_resources_become_runtime_flags_and_secret_values_stay_out_of_the_argv(
        project: Path, write_pipeline, write_config, standin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_TOKEN", "s3cr3t-value")
    write_config("""
        default_stack: dev
        stacks:
          dev:
            adapter: local
            settings: {container_runtime: docker, secrets: {api: {token: LOCAL_TOKEN}}}
    """)
    module = write_pipeline('''
        from stackhop import OutputPath, container_step, pipeline

        @pipeline
        def greeting():
            container_step("greet", image="busybox", command=["sh", "-c", 'echo "$GREETING ${#TOKEN}" > "$0"'],
                           args=[OutputPath("said")], outputs={"said": str}
                           ).set_env(GREETING="hello").set_secret_env("TOKEN", "api", "token"
                           ).set_resources(cpu="500m", memory="64Mi", memory_limit="128Mi")
    ''')
    handle = stackhop.run(module.greeting)

    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    assert handle.artifact("greet", "said").load() == "hello 12"
    [argv] = _runs(standin())
    assert _flag_values(argv, "--env") == ["GREETING", "TOKEN"]
    assert _flag_values(argv, "--cpus") == ["0.5"]
    assert _flag_values(argv, "--memory") == [str(128 * 2**20)]
    assert not any("s3cr3t-value" in a for a in argv)


def test_an_unknown_container_runtime_is_refused_naming_the_key_and_the_choices(project: Path, write_pipeline,
                                                                                 write_config) -> None:
    local_stack(write_config, container_runtime="lxc")
    with pytest.raises(ConfigError) as caught:
        stackhop.run(write_pipeline(COUNT).counting)

    message = str(caught.value)
    assert "settings.container_runtime" in message and "'lxc'" in message
    assert "use docker or podman" in message
    assert message.count(". ") == 0, "one sentence"


def test_a_runtime_missing_from_path_fails_the_run_before_any_step_runs(
        project: Path, write_pipeline, write_config, monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = project / "only-python"
    bindir.mkdir()
    (bindir / "python").symlink_to(sys.executable)
    monkeypatch.setenv("PATH", str(bindir))
    local_stack(write_config, container_runtime="podman")
    with pytest.raises(ConfigError, match=r"settings\.container_runtime is podman, which is not on PATH; install "
                                          r"podman or remove the setting"):
        stackhop.run(write_pipeline(COUNT).counting)

    assert not (project / ".stackhop" / "artifacts").exists() or not list((project / ".stackhop" / "artifacts").rglob("text"))


def test_a_pipeline_without_container_steps_runs_even_where_the_runtime_is_missing(
        project: Path, write_pipeline, write_config, monkeypatch: pytest.MonkeyPatch) -> None:
    local_stack(write_config, container_runtime="podman")
    module = write_pipeline('''
        from stackhop import pipeline, step

        @step
        def one() -> int:
            return 1

        @pipeline
        def plain():
            one()
    ''')
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable))
    assert stackhop.run(module.plain).status == RunStatus.SUCCEEDED


def test_cancelling_a_run_removes_its_running_container(project: Path, write_pipeline, write_config, standin) -> None:
    local_stack(write_config, container_runtime="podman", kill_grace_seconds=0.5)
    started = project / "started"
    module = write_pipeline(f'''
        from stackhop import container_step, pipeline

        @pipeline
        def waiting():
            container_step("wait", image="busybox", command=["sh", "-c", "touch {started}; sleep 60"]).set_caching(False)
    ''')
    handle = stackhop.run(module.waiting, wait=False)
    while not started.exists() and handle.status not in (RunStatus.FAILED, RunStatus.SUCCEEDED):
        time.sleep(0.05)
    handle.cancel()

    assert handle.wait(timeout=30) == RunStatus.CANCELLED
    name = _flag_values(_runs(standin())[0], "--name")[0]
    deadline = time.time() + 10  # the runner asks the runtime without waiting for its answer
    while ["podman", "stop", "--time", "1", name] not in standin() and time.time() < deadline:
        time.sleep(0.05)
    assert ["podman", "stop", "--time", "1", name] in standin()


def test_the_compile_note_says_where_container_steps_run(project: Path, write_pipeline, write_config) -> None:
    from stackhop.core.api import compile

    local_stack(write_config, container_runtime="podman")
    compiled = compile(write_pipeline(COUNT).counting)
    assert "container steps run in their own image through podman." in compiled.notes


# ----------------------------------------------------------------------------- real podman

def _podman_problem() -> str:
    """Why real podman cannot run a container on this machine, or '' when it can."""
    if shutil.which("podman") is None:
        return "podman is not installed (apt-get install podman runc)"
    if shutil.which("runc") is None:
        return "runc is not installed; crun refuses this machine's hybrid cgroup layout (apt-get install runc)"
    return ""


@pytest.fixture
def podman_image(project: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A busybox image built from scratch into storage of this test's own; no registry, no Python in it."""
    problem = _podman_problem()
    if problem:
        print(f"SKIP reason: {problem}")
        pytest.skip(problem)
    conf = project / "podman"
    conf.mkdir()
    (conf / "storage.conf").write_text(textwrap.dedent(f"""\
        [storage]
        driver = "vfs"
        graphroot = "{conf / 'root'}"
        runroot = "{conf / 'run'}"
    """))
    # Machine quirks, not stackhop's: crun rejects hybrid cgroups, and raising rlimits needs CAP_SYS_RESOURCE.
    (conf / "containers.conf").write_text(textwrap.dedent("""\
        [containers]
        default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]
        [engine]
        runtime = "runc"
    """))
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(conf / "storage.conf"))
    monkeypatch.setenv("CONTAINERS_CONF", str(conf / "containers.conf"))
    context = conf / "context"
    context.mkdir()
    shutil.copy("/usr/bin/busybox", context / "busybox")
    (context / "Containerfile").write_text('FROM scratch\nCOPY busybox /bin/busybox\n'
                                           'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n')
    tag = "localhost/busybox:stackhop-test"
    built = subprocess.run(["buildah", "bud", "--isolation", "chroot", "-t", tag, str(context)],
                           capture_output=True, text=True, timeout=180)
    assert built.returncode == 0, built.stderr
    probe = subprocess.run(["podman", "run", "--rm", tag, "true"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        reason = f"podman cannot run a container here: {probe.stderr.strip().splitlines()[-1:]}"
        print(f"SKIP reason: {reason}")
        pytest.skip(reason)
    return tag


def test_real_podman_runs_the_step_in_a_busybox_image_with_no_python_inside(
        project: Path, write_pipeline, write_config, podman_image: str) -> None:
    local_stack(write_config, container_runtime="podman")
    no_python = subprocess.run(["podman", "run", "--rm", podman_image, "sh", "-c", "command -v python3 python || echo none"],
                               capture_output=True, text=True, timeout=60)
    assert no_python.stdout.strip() == "none"

    handle = stackhop.run(write_pipeline(COUNT).counting)

    assert handle.status == RunStatus.SUCCEEDED, handle.logs("count-words")
    assert handle.artifact("summarize", "output").load() == "4 long words: definition\nkubernetes\norchestrators\npipeline"
    report = Path(handle.artifact("count-words", "report").uri.removeprefix("file://"))
    assert report.stat().st_uid == os.getuid()
    leftover = subprocess.run(["podman", "ps", "-aq"], capture_output=True, text=True, timeout=60)
    assert leftover.stdout.strip() == "", "--rm removed the container"
