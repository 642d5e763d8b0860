"""Container steps on Kubernetes: the step's image is the main container and runs the command as written.

stackhop works beside it: an init container in the stackhop image stages inputs into an emptyDir
at /stackhop, and a native sidecar saves the outputs once the kubelet stops it after the command
has exited. The fake API server's kubelet runs each container's command with this machine's
binaries (busybox's `sh`, `awk`, `sort` ...) and each emptyDir as a directory of the pod's own.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
import yaml

import stackhop
from stackhop import RunStatus, StepStatus
from stackhop.adapters.kubernetes.schemas import validate_manifest
from stackhop.errors import ConfigError
from stackhop.testing.kubernetes import FakeKubernetes

from conftest import EXAMPLES, k8s_stack

STACKHOP_IMAGE = "python:3.11-slim"  # conftest's k8s stack default: the image Python steps (and the stager) use


@pytest.fixture(scope="module")
def busybox_path(tmp_path_factory) -> str:
    """A PATH with nothing on it but Debian's static busybox and its applets: the steps' "image"."""
    if not shutil.which("busybox"):
        pytest.skip("needs Debian's busybox-static (apt-get install busybox-static; .ci/run installs it)")
    bindir = tmp_path_factory.mktemp("busybox-bin")
    shutil.copy(shutil.which("busybox"), bindir / "busybox")
    subprocess.run([str(bindir / "busybox"), "--install", "-s", str(bindir)], check=True)
    return str(bindir)


@pytest.fixture
def kube(busybox_path):
    # Python containers (the stager, the saver, Python steps) are mapped to this interpreter by the fake,
    # so every other command a pod runs comes from busybox
    with FakeKubernetes(version="1.37", time_scale=0.05, pod_env={"PATH": busybox_path}) as fake:
        yield fake


def jobs_by_step(kube) -> dict[str, dict]:
    return {j["metadata"]["annotations"]["stackhop.dev/step-name"]: j for j in kube.objects("Job", "ml")}


def compiled_jobs(handle_or_docs) -> dict[str, dict]:
    docs = handle_or_docs
    return {d["metadata"]["annotations"]["stackhop.dev/step-name"]: d for d in docs if d["kind"] == "Job"}


def compile_docs(pipeline) -> list[dict]:
    from stackhop.core.api import compile

    compiled = compile(pipeline)
    return [d for d in yaml.safe_load_all(compiled.files["kubernetes.yaml"]) if d]


@pytest.fixture
def example(project, write_pipeline):
    shutil.copy(EXAMPLES / "container_pipeline.py", project / "container_example.py")
    return write_pipeline((project / "container_example.py").read_text(), name="container_example")


@pytest.mark.parametrize("driver,version", [("client", "1.30"), ("in-cluster", "1.37")])
def test_the_plain_image_example_runs_with_nothing_of_stackhop_in_the_steps_image(
        project, write_config, example, driver, version, busybox_path) -> None:
    settings = {"driver": "in-cluster", "driver_image": "registry.example.com/stackhop:0.1"} if driver == "in-cluster" else {}
    with FakeKubernetes(version=version, time_scale=0.05, pod_env={"PATH": busybox_path}) as kube:
        k8s_stack(write_config, kube, project, **settings)

        handle = stackhop.run(example.container_pipeline, parameters={"min_len": 8})

        assert handle.wait(timeout=120) == RunStatus.SUCCEEDED, handle.state().message
        pod = jobs_by_step(kube)["count-words"]["spec"]["template"]["spec"]
    assert {k: v.status for k, v in handle.steps().items()} == {
        "write_text": StepStatus.SUCCEEDED, "count-words": StepStatus.SUCCEEDED, "summarize": StepStatus.SUCCEEDED}
    assert handle.artifact("count-words", "count").load() == 6
    assert b"- orchestrators" in handle.artifact("count-words", "report").load()
    main = pod["containers"][0]
    assert main["image"] == "busybox:1.36"
    assert main["command"][:2] == ["sh", "-c"] and "stackhop.entrypoint" not in " ".join(main["command"] + main["args"])
    assert main["args"] == ["/stackhop/inputs/source", "$(STACKHOP_INPUT_MIN_LEN)", "/stackhop/outputs/report",
                            "/stackhop/outputs/count"]
    assert {"name": "STACKHOP_INPUT_MIN_LEN", "value": "8"} in main["env"]
    assert {c["name"]: c["image"] for c in pod["initContainers"]} == {
        "save-outputs": STACKHOP_IMAGE, "stage-inputs": STACKHOP_IMAGE}


def test_the_compiled_job_runs_the_users_command_and_stackhop_only_beside_it(project, write_config, kube, example) -> None:
    k8s_stack(write_config, kube, project)

    job = compiled_jobs(compile_docs(example.container_pipeline))["count-words"]

    pod = job["spec"]["template"]["spec"]
    main = pod["containers"][0]
    assert main["image"] == "busybox:1.36"
    assert main["command"][0:2] == ["sh", "-c"]
    assert main["args"] == ["/stackhop/inputs/source", "$(STACKHOP_INPUT_MIN_LEN)", "/stackhop/outputs/report",
                            "/stackhop/outputs/count"]
    assert {"name": "STACKHOP_INPUT_MIN_LEN", "value": ""} in main["env"], "the driver fills it when the step starts"
    assert not any(e["name"] == "STACKHOP_RUN_SPEC" for e in main["env"])
    saver, stager = pod["initContainers"]
    assert saver["name"] == "save-outputs" and saver["restartPolicy"] == "Always"
    assert saver["args"][-2:] == ["--save-outputs", "/stackhop"] and stager["args"][-2:] == ["--stage-inputs", "/stackhop"]
    assert "restartPolicy" not in stager
    assert pod["volumes"] == [{"name": "stackhop-data", "emptyDir": {}}]
    assert all(c["volumeMounts"] == [{"name": "stackhop-data", "mountPath": "/stackhop"}]
               for c in [main, saver, stager])
    for version in ("1.30", "1.37"):
        validate_manifest(job, "count-words", version=version)


def test_an_upstream_value_and_a_literal_dollar_reach_the_command_as_written(project, write_pipeline, write_config, kube) -> None:
    k8s_stack(write_config, kube, project)
    module = write_pipeline('''
        from stackhop import InputValue, OutputPath, container_step, pipeline, step

        @step
        def tricky() -> str:
            return "$(HOME) and $$ stay"

        @pipeline
        def dollars():
            t = tricky()
            container_step("echo", image="busybox", command=["sh", "-c", 'printf "%s|%s|%s" "$(echo sub)" "$0" \\'$$(x)\\' > "$1"'],
                           args=[InputValue("text"), OutputPath("said")], inputs={"text": t.output}, outputs={"said": str})
    ''')
    handle = stackhop.run(module.dollars)
    assert handle.wait(timeout=120) == RunStatus.SUCCEEDED, handle.state().message
    assert handle.artifact("echo", "said").load() == "sub|$(HOME) and $$ stay|$$(x)"
    main = jobs_by_step(kube)["echo"]["spec"]["template"]["spec"]["containers"][0]
    assert "'$$$$(x)'" in main["command"][2], "escaped once, so Kubernetes' own $(VAR) expansion gives it back"


SEED_ECHO = '''
    from stackhop import ContainerSpec, container_component, pipeline

    @container_component
    def echo():
        return ContainerSpec(image="library/busybox:latest", command=["sh", "-c"], args=["echo 'Hello KFP!'"])

    @pipeline
    def hello():
        echo()
'''


def test_the_seed_containerop_echoes_hello_kfp_in_busybox(project, write_pipeline, write_config, kube) -> None:
    k8s_stack(write_config, kube, project)
    handle = stackhop.run(write_pipeline(SEED_ECHO).hello)
    assert handle.wait(timeout=120) == RunStatus.SUCCEEDED, handle.state().message
    assert "Hello KFP!" in handle.logs("echo")
    pod = jobs_by_step(kube)["echo"]["spec"]["template"]["spec"]
    main = pod["containers"][0]
    assert (main["image"], main["command"], main["args"]) == ("library/busybox:latest", ["sh", "-c"], ["echo 'Hello KFP!'"])
    assert "initContainers" not in pod and "volumes" not in pod, "nothing to move, so the command runs alone"


def test_a_failing_command_fails_its_step_with_its_exit_code_and_leaves_no_outputs(
        project, write_pipeline, write_config, kube) -> None:
    k8s_stack(write_config, kube, project)
    module = write_pipeline('''
        from stackhop import OutputPath, container_step, pipeline, step

        @step
        def after(n: int) -> int:
            return n

        @pipeline
        def broken():
            c = container_step("half", image="busybox", command=["sh", "-c", 'echo 3 > "$0"; echo no disk >&2; exit 7'],
                               args=[OutputPath("n")], outputs={"n": int}).set_caching(False)
            after(n=c.outputs["n"])
    ''')
    handle = stackhop.run(module.broken)
    assert handle.wait(timeout=120) == RunStatus.FAILED
    steps = handle.steps()
    assert steps["half"].status == StepStatus.FAILED and "7" in steps["half"].message
    assert steps["after"].status != StepStatus.SUCCEEDED
    assert "no disk" in handle.logs("half")
    (meta,) = (project / ".stackhop").rglob("half/_stackhop")
    assert (meta / "log.txt").exists() and not (meta / "outputs.json").exists(), "a failed command's outputs are not committed"


def test_an_output_the_command_did_not_write_fails_the_step_in_one_sentence(project, write_pipeline, write_config, kube) -> None:
    k8s_stack(write_config, kube, project)
    module = write_pipeline('''
        from stackhop import OutputPath, container_step, pipeline

        @pipeline
        def forgetful():
            container_step("lazy", image="busybox", command=["true"], args=[OutputPath("n")], outputs={"n": int})
    ''')
    handle = stackhop.run(module.forgetful)
    assert handle.wait(timeout=120) == RunStatus.FAILED
    assert "did not write scalar output 'n' at its OutputPath" in handle.steps()["lazy"].message


def test_each_loop_iteration_gets_its_own_item_and_directory(project, write_pipeline, write_config, kube) -> None:
    k8s_stack(write_config, kube, project)
    module = write_pipeline('''
        from stackhop import InputValue, OutputPath, ParallelFor, container_step, pipeline

        @pipeline
        def fan(words: list = ["a", "bb", "ccc"]):
            with ParallelFor(words) as word:
                container_step("measure", image="busybox", command=["sh", "-c", 'printf %s "$0" | wc -c > "$1"'],
                               args=[InputValue("word"), OutputPath("n")], inputs={"word": word}, outputs={"n": int})
    ''')
    handle = stackhop.run(module.fan)
    assert handle.wait(timeout=120) == RunStatus.SUCCEEDED, handle.state().message
    measured = {k: v for k, v in handle.steps().items() if k.startswith("measure")}
    assert len(measured) == 3 and all(v.status == StepStatus.SUCCEEDED for v in measured.values())
    jobs = [j for j in kube.objects("Job", "ml") if j["metadata"]["annotations"]["stackhop.dev/step-name"] == "measure"]
    saved_index = sorted(j["spec"]["template"]["spec"]["initContainers"][0]["args"][-3] for j in jobs)
    assert saved_index == ["0", "1", "2"]


def test_directory_artifacts_move_between_container_steps(project, write_pipeline, write_config, kube) -> None:
    k8s_stack(write_config, kube, project)
    module = write_pipeline('''
        from stackhop import Dataset, Input, InputPath, Output, OutputPath, container_step, pipeline, step

        @step
        def check(shards: Input[Dataset]) -> str:
            import os
            return ",".join(sorted(os.listdir(shards.path)))

        @pipeline
        def shards():
            split = container_step("split", image="busybox",
                                   command=["sh", "-c", 'mkdir -p "$0" && echo a > "$0/part-0" && echo b > "$0/part-1"'],
                                   args=[OutputPath("shards")], outputs={"shards": Dataset})
            joined = container_step("join", image="busybox", command=["sh", "-c", 'ls "$0" | tr "\\\\n" " " > "$1"'],
                                    args=[InputPath("shards"), OutputPath("names")],
                                    inputs={"shards": split.outputs["shards"]}, outputs={"names": str})
            check(shards=split.outputs["shards"])
    ''')
    handle = stackhop.run(module.shards)
    assert handle.wait(timeout=120) == RunStatus.SUCCEEDED, handle.state().message
    assert handle.artifact("join", "names").load() == "part-0 part-1 "
    assert handle.artifact("check", "output").load() == "part-0,part-1"


V1_COMPONENT = """
name: Count lines
description: Counts the lines of a text file.
inputs:
- {name: text, description: a text file}
- {name: offset, type: Integer, default: '0', optional: true}
outputs:
- {name: lines, type: Integer}
implementation:
  container:
    image: busybox:1.36
    command:
    - sh
    - -exc
    - |
      n=$(wc -l < "$0")
      echo $((n + $1)) > "$2"
    - {inputPath: text}
    - {inputValue: offset}
    - {outputPath: lines}
"""


def test_a_kfp_component_file_runs_on_kubernetes(project, write_pipeline, write_config, kube) -> None:
    (project / "count_lines.yaml").write_text(V1_COMPONENT)
    k8s_stack(write_config, kube, project)
    module = write_pipeline('''
        from stackhop import Dataset, Output, load_component, pipeline, step

        count_lines = load_component("count_lines.yaml")

        @step
        def text(out: Output[Dataset]) -> None:
            open(out.path, "w").write("a\\nb\\nc\\n")

        @pipeline
        def counted():
            count_lines(text=text().outputs["out"], offset=10)
    ''')
    handle = stackhop.run(module.counted)
    assert handle.wait(timeout=120) == RunStatus.SUCCEEDED, handle.state().message
    (name,) = [k for k in handle.steps() if k != "text"]
    assert handle.artifact(name, "lines").load() == 13
    main = jobs_by_step(kube)[name]["spec"]["template"]["spec"]["containers"][0]
    assert main["image"] == "busybox:1.36"
    assert "$$((n + $1))" in main["command"][2] and "$$(wc -l" in main["command"][2]


def test_a_step_with_nothing_to_move_runs_even_on_a_cluster_without_native_sidecars(
        project, write_pipeline, write_config, busybox_path) -> None:
    with FakeKubernetes(version="1.28", time_scale=0.05, pod_env={"PATH": busybox_path}) as old:
        k8s_stack(write_config, old, project)
        handle = stackhop.run(write_pipeline(SEED_ECHO).hello)
        assert handle.wait(timeout=120) == RunStatus.SUCCEEDED, handle.state().message
        assert "Hello KFP!" in handle.logs("echo")


def test_a_cluster_without_native_sidecars_is_refused_before_anything_runs(project, write_config, example) -> None:
    with FakeKubernetes(version="1.28", time_scale=0.05) as old:
        k8s_stack(write_config, old, project)
        with pytest.raises(ConfigError) as caught:
            stackhop.run(example.container_pipeline)
        assert old.objects("Job", "ml") == []
    message = str(caught.value)
    assert "'container-pipeline'" in message and "Kubernetes 1.29 or later" in message and "1.28" in message
    assert message.count(". ") == 0, "one sentence"


def test_an_explicit_stackhop_image_stages_and_saves(project, write_config, kube, example) -> None:
    k8s_stack(write_config, kube, project, stackhop_image="registry.example.com/stackhop:0.1")
    job = compiled_jobs(compile_docs(example.container_pipeline))["count-words"]
    assert {c["image"] for c in job["spec"]["template"]["spec"]["initContainers"]} == {"registry.example.com/stackhop:0.1"}
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.36"


def test_cancelling_a_running_container_step_stops_it_and_keeps_no_outputs(project, write_pipeline, write_config, kube) -> None:
    k8s_stack(write_config, kube, project)
    started = project / "started"
    module = write_pipeline(f'''
        from stackhop import OutputPath, container_step, pipeline

        @pipeline
        def slow():
            container_step("wait", image="busybox", command=["sh", "-c", 'echo 1 > "$0"; touch {started}; sleep 60'],
                           args=[OutputPath("n")], outputs={{"n": int}}).set_caching(False)
    ''')
    handle = stackhop.run(module.slow, wait=False)
    deadline = time.time() + 60
    while not started.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert started.exists(), handle.state().message
    handle.cancel()

    assert handle.wait(timeout=60) == RunStatus.CANCELLED
    assert handle.steps()["wait"].status == StepStatus.CANCELLED
    (meta,) = (project / ".stackhop").rglob("wait/_stackhop")
    assert not (meta / "outputs.json").exists(), "what the saver saved on the way out is dropped"


def test_where_the_version_check_cannot_tell_the_saver_fails_the_pod_instead_of_blocking_it(
        project, write_config, example, monkeypatch) -> None:
    from stackhop.adapters.kubernetes.adapter import KubernetesAdapter

    monkeypatch.setattr(KubernetesAdapter, "_check_sidecars", lambda self, pipeline: None)  # a version it cannot read
    with FakeKubernetes(version="1.28", time_scale=0.05, pod_env={"STACKHOP_SIDECAR_PROOF_SECONDS": "1"}) as old:
        k8s_stack(write_config, old, project)
        handle = stackhop.run(example.container_pipeline)
        assert handle.wait(timeout=120) == RunStatus.FAILED
        pod = jobs_by_step(old)["count-words"]["spec"]["template"]["spec"]
    assert "restartPolicy" not in pod["initContainers"][0], "the 1.28 API server dropped it, as a real one does"
    assert "not running as a native sidecar" in handle.steps()["count-words"].message
    assert "Kubernetes 1.29 or later" in handle.steps()["count-words"].message


def test_no_python_runs_inside_the_container_step(project, write_pipeline, write_config, kube, busybox_path) -> None:
    k8s_stack(write_config, kube, project)
    module = write_pipeline('''
        from stackhop import OutputPath, container_step, pipeline

        @pipeline
        def who_runs():
            container_step("inspect", image="busybox", command=["sh", "-c", 'readlink /proc/$$/exe > "$0"'],
                           args=[OutputPath("exe")], outputs={"exe": str})
    ''')
    handle = stackhop.run(module.who_runs)
    assert handle.wait(timeout=120) == RunStatus.SUCCEEDED, handle.state().message
    assert handle.artifact("inspect", "exe").load() == f"{busybox_path}/busybox"
