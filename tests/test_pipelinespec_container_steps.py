"""Container steps on Vertex AI and Kubeflow: a plain image's own command, the KFP launcher moving the data.

A container step compiles to the component and executor kfp compiles for `@dsl.container_component`:
its own image, the user's command and args with KFP's placeholders, no stackhop in it. IfPresent
and Concat are resolved at compile time into what every launcher fills (Vertex AI expands
neither of kfp's JSON forms; Kubeflow Pipelines only IfPresent, since 2.17). The emulator plays
the launcher (staging artifacts to paths, reading output files), so Python steps downstream and
conditions on the container's outputs work.
The plain image here is busybox; its commands run as this machine's `sh`, `tr`, `grep`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

import stackhop
from stackhop.core.runs import RunStatus, StepStatus
from stackhop.errors import PipelineDefinitionError

STACKS = """
stacks:
  vertex:
    adapter: vertex
    artifact_root: gs://ml-artifacts/plain-vertex
    defaults: {image: "python:3.11"}
    settings: {project: my-project}
  kfp:
    adapter: kfp
    artifact_root: gs://ml-artifacts/plain-kfp
    defaults: {image: "python:3.11"}
    settings: {host: "http://kfp.invalid"}
"""

COUNT = (
    'echo "step process: $(tr "\\0" " " < /proc/$$/cmdline)"; '
    'echo "its parent: $(tr "\\0" " " < /proc/$PPID/cmdline)"; '
    'n=$(tr -s " " "\\n" < "$0" | grep -c "^.\\{$1,\\}$"); '
    'printf "# Long words\\n\\n%s words of %s letters or more\\n" "$n" "$1" > "$2"; '
    'echo "$n" > "$3"'
)

WORDS = f"""
from stackhop import (Dataset, If, Input, InputPath, InputValue, Markdown, Output, OutputPath, container_step,
                      pipeline, step)

COUNT = {COUNT!r}

@step
def write_text(text: Output[Dataset]) -> None:
    with open(text.path, "w") as f:
        f.write("one pipeline definition many orchestrators locally kubernetes sagemaker vertex kubeflow\\n")

@step
def summarize(report: Input[Markdown], count: int) -> str:
    return open(report.path).read().splitlines()[2] + f" ({{count}})"

@step
def celebrate(count: int) -> str:
    return f"{{count}} is plenty"

@pipeline
def words(min_len: int = 8, plenty: int = 5):
    text = write_text()
    counted = container_step(
        "count-words", image="busybox",
        command=["sh", "-c", COUNT],
        args=[InputPath("source"), InputValue("min_len"), OutputPath("report"), OutputPath("count")],
        inputs={{"source": text.outputs["text"], "min_len": min_len}},
        outputs={{"report": Markdown, "count": int}},
    )
    summarize(report=counted.outputs["report"], count=counted.outputs["count"])
    with If(counted.outputs["count"] > plenty):
        celebrate(count=counted.outputs["count"])
"""

OPTIONAL = """
from typing import Optional
from stackhop import Concat, ContainerSpec, IfPresent, OutputPath, container_component, pipeline, step

@container_component
def flags(out: OutputPath(str), name: str, greeting: Optional[str] = None, punct: str = "!"):
    return ContainerSpec(image="busybox", command=["sh", "-c", 'printf "%s" "$*" > "$0"', out],
                         args=[IfPresent("greeting", then=[Concat("--greeting=", greeting)], otherwise=["--plain"]),
                               f"--name={name}",
                               IfPresent("punct", then=["--punct", punct], otherwise=["--no-punct"]), Concat(punct, punct)])

@step
def shout(a: str, b: str, c: str) -> str:
    return " | ".join([a, b, c])

@pipeline
def greetings():
    plain = flags(name="bob")
    greeted = flags(name="ada", greeting="hi")
    punctuated = flags(name="eve", punct="?")
    shout(a=plain.outputs["out"], b=greeted.outputs["out"], c=punctuated.outputs["out"])
"""

FAILING = """
from stackhop import container_step, pipeline, step

@step
def after(x: str) -> str:
    return x

@pipeline
def failing():
    broken = container_step("broken", image="busybox", command=["sh", "-c", "echo giving up; exit 3"])
    after(x="never").after(broken)
"""


@pytest.fixture
def stacks(write_config) -> None:
    write_config(STACKS)


def spec_of(pipeline: Any, stack: str) -> dict[str, Any]:
    compiled = stackhop.compile(pipeline, stack)
    name = "pipeline.json" if stack == "vertex" else "pipeline.yaml"
    doc = next(yaml.safe_load_all(compiled.files[name]))
    json_format.ParseDict(doc, pipeline_spec_pb2.PipelineSpec())  # strict: an unknown field fails
    return doc


# ----------------------------------------------------------------------------- the compiled document


@pytest.mark.parametrize("stack", ["vertex", "kfp"])
def test_a_container_step_compiles_to_its_own_image_and_the_users_command_with_kfp_placeholders(
        project, stacks, write_pipeline, stack) -> None:
    doc = spec_of(write_pipeline(WORDS).words, stack)

    container = doc["deploymentSpec"]["executors"]["exec-count-words"]["container"]
    assert container == {
        "image": "busybox",
        "command": ["sh", "-c", COUNT],
        "args": ["{{$.inputs.artifacts['source'].path}}", "{{$.inputs.parameters['min_len']}}",
                 "{{$.outputs.artifacts['report'].path}}", "{{$.outputs.parameters['count'].output_file}}"],
    }
    component = doc["components"]["comp-count-words"]
    assert component["inputDefinitions"] == {
        "artifacts": {"source": {"artifactType": {"schemaTitle": "system.Dataset", "schemaVersion": "0.0.1"}}},
        "parameters": {"min_len": {"parameterType": "NUMBER_INTEGER"}}}
    assert component["outputDefinitions"] == {
        "artifacts": {"report": {"artifactType": {"schemaTitle": "system.Markdown", "schemaVersion": "0.0.1"}}},
        "parameters": {"count": {"parameterType": "NUMBER_INTEGER"}}}
    summarize = doc["deploymentSpec"]["executors"]["exec-summarize"]["container"]
    assert summarize["command"][1:] == ["-m", "stackhop.entrypoint"]
    assert not any("stackhop_meta_count_words" in a for a in summarize["args"]), "a container step has no stackhop meta"


def test_a_timeout_on_a_container_step_is_refused_with_the_way_to_bound_it(project, stacks, write_pipeline) -> None:
    module = write_pipeline(WORDS.replace('outputs={"report": Markdown, "count": int},\n    )',
                                          'outputs={"report": Markdown, "count": int},\n    ).set_timeout(60)'))
    with pytest.raises(PipelineDefinitionError, match=r"step 'count-words'.*timeout .*`timeout 600 \.\.\.`"):
        stackhop.compile(module.words, "vertex")


def test_an_input_path_of_a_scalar_is_refused_because_the_launcher_passes_scalars_as_text(
        project, stacks, write_pipeline) -> None:
    module = write_pipeline(WORDS.replace('InputValue("min_len")', 'InputPath("min_len")'))
    with pytest.raises(PipelineDefinitionError, match=r"step 'count-words'.*InputPath\('min_len'\) names a scalar.*"
                                                      r"use InputValue\('min_len'\)"):
        stackhop.compile(module.words, "kfp")


def test_if_present_becomes_its_branch_and_concat_one_argument_that_every_launcher_fills(
        project, stacks, write_pipeline) -> None:
    doc = spec_of(write_pipeline(OPTIONAL).greetings, "vertex")
    args = {name: doc["deploymentSpec"]["executors"][f"exec-{name}"]["container"]["args"]
            for name in ("flags", "flags-2", "flags-3")}

    assert args["flags"] == ["--plain", "--name={{$.inputs.parameters['name']}}", "--no-punct",
                             "{{$.inputs.parameters['punct']}}{{$.inputs.parameters['punct']}}"]
    assert args["flags-2"][0] == "--greeting={{$.inputs.parameters['greeting']}}"
    assert args["flags-3"][2:4] == ["--punct", "{{$.inputs.parameters['punct']}}"]
    assert doc["components"]["comp-flags"]["inputDefinitions"]["parameters"] == {
        "greeting": {"isOptional": True, "parameterType": "STRING"},
        "name": {"parameterType": "STRING"},
        "punct": {"defaultValue": "!", "isOptional": True, "parameterType": "STRING"}}


def _as_the_backend_reads(args: list[str], given: set[str]) -> list[str]:
    """kfp's JSON-string IfPresent and Concat arguments, resolved for one call of the component."""
    def expand(item: Any) -> list[str]:
        if isinstance(item, str) and item.startswith('{"'):
            item = json.loads(item)
        if isinstance(item, str):
            return [item]
        if "Concat" in item:
            return ["".join(x for part in item["Concat"] for x in expand(part))]
        branch = item["IfPresent"]
        chosen = branch.get("Then" if branch["InputName"] in given else "Else", [])
        return [x for part in (chosen if isinstance(chosen, list) else [chosen]) for x in expand(part)]

    return [x for arg in args for x in expand(arg)]


def test_the_same_container_component_has_the_shape_kfps_own_compiler_gives_it(project, stacks, write_pipeline,
                                                                                tmp_path) -> None:
    kfp_side = write_pipeline("""
        from kfp import dsl

        @dsl.container_component
        def count(source: dsl.Input[dsl.Dataset], min_len: int, tag: str, model: dsl.Output[dsl.Model],
                  n: dsl.OutputPath(int), extra: str = None):
            return dsl.ContainerSpec(image="busybox", command=["sh", "-c", "wc -w < $0 > $1"], args=[
                source.path, n, source.uri, min_len, dsl.ConcatPlaceholder(["--tag=", tag]), model.path, model.uri,
                dsl.IfPresentPlaceholder(input_name="extra", then=["--extra", extra], else_=["--none"])])
    """)
    from kfp import compiler

    compiler.Compiler().compile(kfp_side.count, str(tmp_path / "kfp.yaml"))
    theirs = yaml.safe_load((tmp_path / "kfp.yaml").read_text())
    ours = spec_of(write_pipeline("""
        from typing import Optional
        from stackhop import (Concat, ContainerSpec, Dataset, IfPresent, Input, Model, Output, OutputPath,
                              container_component, pipeline, step)

        @container_component
        def count(source: Input[Dataset], min_len: int, tag: str, model: Output[Model], n: OutputPath(int),
                  extra: Optional[str] = None):
            return ContainerSpec(image="busybox", command=["sh", "-c", "wc -w < $0 > $1"], args=[
                source.path, n, source.uri, min_len, Concat("--tag=", tag), model.path, model.uri,
                IfPresent("extra", then=["--extra", extra], otherwise=["--none"])])

        @step
        def make(data: Output[Dataset]) -> None: ...

        @pipeline
        def counting(min_len: int = 3):
            count(source=make().outputs["data"], min_len=min_len, tag="v1")
    """).counting, "kfp")

    assert ours["components"]["comp-count"]["inputDefinitions"] == theirs["components"]["comp-count"]["inputDefinitions"]
    assert ours["components"]["comp-count"]["outputDefinitions"] == theirs["components"]["comp-count"]["outputDefinitions"]
    ours_exec = ours["deploymentSpec"]["executors"]["exec-count"]["container"]
    theirs_exec = theirs["deploymentSpec"]["executors"]["exec-count"]["container"]
    assert (ours_exec["image"], ours_exec["command"]) == (theirs_exec["image"], theirs_exec["command"])
    assert ours_exec["args"] == _as_the_backend_reads(theirs_exec["args"], given={"source", "min_len", "tag"})
    assert ours_exec["args"][4] == "--tag={{$.inputs.parameters['tag']}}" and ours_exec["args"][-1] == "--none"


# ----------------------------------------------------------------------------- emulated runs


@pytest.mark.parametrize("stack", ["vertex", "kfp"])
def test_the_plain_image_pipeline_runs_from_its_compiled_spec_with_no_stackhop_in_the_container(
        project, stacks, write_pipeline, gcs, stack) -> None:
    handle = stackhop.run(write_pipeline(WORDS).words, stack, emulate=True, cache=False, progress=False)

    assert handle.status is RunStatus.SUCCEEDED, handle.state().message
    assert handle.artifact("summarize", "output").value == "6 words of 8 letters or more (6)"
    assert handle.artifact("count-words", "count").value == 6
    report = handle.artifact("count-words", "report")
    root = f"gs://ml-artifacts/plain-{stack}"
    assert report.uri == f"{root}/words/{handle.run_id}/count-words/report" and report.type == "Markdown"
    assert handle.steps()["celebrate"].status is StepStatus.SUCCEEDED
    assert handle.artifact("celebrate", "output").value == "6 is plenty"
    log = handle.logs("count-words")
    assert "step process: sh -c " in log
    assert "stackhop.entrypoint" not in log and "python" not in log.split("its parent:")[0]


def test_a_condition_on_the_container_steps_int_output_skips_when_false(project, stacks, write_pipeline, gcs) -> None:
    handle = stackhop.run(write_pipeline(WORDS).words, "kfp", {"plenty": 6}, emulate=True, cache=False,
                          progress=False)

    assert handle.status is RunStatus.SUCCEEDED, handle.state().message
    assert handle.steps()["celebrate"].status is StepStatus.SKIPPED
    assert handle.artifact("summarize", "output").value == "6 words of 8 letters or more (6)"


def test_a_cached_container_step_still_hands_its_outputs_to_the_condition_and_the_next_step(
        project, stacks, write_pipeline, gcs) -> None:
    words = write_pipeline(WORDS).words
    stackhop.run(words, "vertex", emulate=True, progress=False)
    again = stackhop.run(words, "vertex", emulate=True, progress=False)

    assert again.steps()["count-words"].status is StepStatus.CACHED
    assert again.steps()["celebrate"].status in (StepStatus.SUCCEEDED, StepStatus.CACHED)
    assert again.artifact("count-words", "count").value == 6
    assert again.artifact("summarize", "output").value == "6 words of 8 letters or more (6)"


@pytest.mark.parametrize("stack", ["vertex", "kfp"])
def test_optional_inputs_and_concat_fill_as_the_launcher_fills_them(project, stacks, write_pipeline, gcs,
                                                                   stack) -> None:
    handle = stackhop.run(write_pipeline(OPTIONAL).greetings, stack, emulate=True, cache=False, progress=False)

    assert handle.status is RunStatus.SUCCEEDED, handle.state().message
    assert handle.artifact("shout", "output").value == (
        "--plain --name=bob --no-punct !! | --greeting=hi --name=ada --no-punct !! | --plain --name=eve --punct ? ??")


@pytest.mark.parametrize("stack", ["vertex", "kfp"])
def test_a_failing_command_fails_the_run_with_its_exit_code(project, stacks, write_pipeline, gcs, stack) -> None:
    handle = stackhop.run(write_pipeline(FAILING).failing, stack, emulate=True, cache=False, progress=False)

    assert handle.status is RunStatus.FAILED
    steps = handle.steps()
    assert steps["broken"].status is StepStatus.FAILED and steps["broken"].native == "exit code 3"
    assert steps["after"].status in (StepStatus.SKIPPED, StepStatus.CANCELLED, StepStatus.PENDING)
    assert "giving up" in handle.logs("broken")


def _with_kfp_forms(files: dict[str, bytes], arg: str) -> dict[str, bytes]:
    doc = json.loads(files["pipeline.json"])
    doc["deploymentSpec"]["executors"]["exec-flags"]["container"]["args"][0] = arg
    return {**files, "pipeline.json": json.dumps(doc).encode()}


@pytest.mark.parametrize("arg, outcome", [
    ('{"IfPresent": {"InputName": "greeting", "Then": ["--greeting"], "Else": ["--anonymous"]}}', "--anonymous"),
    ('{"Concat": ["--greeting=", "{{$.inputs.parameters[\'name\']}}"]}', "pass to the command unexpanded"),
], ids=["IfPresent, resolved as the Kubeflow driver does", "Concat, which no backend expands"])
def test_kfps_json_forms_in_a_document_run_as_the_backend_would_run_them(
        project, stacks, write_pipeline, gcs, monkeypatch, arg, outcome) -> None:
    from stackhop.core.adapter import Compiled
    from stackhop.core.plugins import adapter_class

    cls = adapter_class("vertex", where="test")
    compile_ = cls.compile
    monkeypatch.setattr(cls, "compile", lambda self, ir: Compiled(
        "vertex", _with_kfp_forms(compile_(self, ir).files, arg)))
    handle = stackhop.run(write_pipeline(OPTIONAL).greetings, "vertex", emulate=True, cache=False, progress=False)

    if outcome.startswith("--"):
        assert handle.status is RunStatus.SUCCEEDED, handle.state().message
        assert handle.artifact("flags", "out").value.startswith(outcome + " --name=bob")
    else:
        assert handle.status is RunStatus.FAILED
        assert outcome in handle.steps()["flags"].message


# ----------------------------------------------------------------------------- the stand-ins of the services


def _services_stack(write_config, vertex: Any, kfp_host: str) -> None:
    write_config(f"""
        stacks:
          vertex:
            adapter: vertex
            artifact_root: gs://ml-artifacts/plain-service
            defaults: {{image: "python:3.11"}}
            settings: {{project: test-project, location: europe-west4, api_endpoint: {vertex.endpoint}, anonymous: true}}
          kfp:
            adapter: kfp
            artifact_root: gs://ml-artifacts/plain-service
            defaults: {{image: "python:3.11"}}
            settings: {{host: "{kfp_host}"}}
    """)


@pytest.fixture
def services(project, write_config, monkeypatch, gcs, tmp_path):
    import kfp

    from stackhop.testing.kfp import FakeKFP
    from stackhop.testing.vertex import FakeVertex

    monkeypatch.setattr(kfp.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / "kfp-context.json"))
    with FakeVertex(project="test-project", location="europe-west4") as vertex, FakeKFP() as server:
        vertex.patch_client(monkeypatch)
        _services_stack(write_config, vertex, server.host)
        yield vertex, server


def test_vertex_accepts_the_plain_container_job_and_reports_the_container_steps_outputs_by_type(
        services, write_pipeline) -> None:
    vertex, _ = services
    words = write_pipeline(WORDS).words
    handle = stackhop.run(words, "vertex", wait=False)
    (job, submitted), = vertex.jobs.items()
    assert submitted["pipelineSpec"]["deploymentSpec"]["executors"]["exec-count-words"]["container"]["image"] == "busybox"

    report = f"gs://ml-artifacts/plain-service/123456789012/{job}/count-words_1/report"
    vertex.set_state(job, "PIPELINE_STATE_RUNNING")
    vertex.set_task(job, "count-words", "SUCCEEDED", outputs={"report": [report]})

    assert handle.steps()["count-words"].status is StepStatus.SUCCEEDED
    found = handle.artifact("count-words", "report")
    assert (found.uri, found.type) == (report, "Markdown")


def test_kubeflow_accepts_the_plain_container_run_and_its_outputs_are_found_where_the_launcher_puts_them(
        services, write_pipeline) -> None:
    from stackhop.core.artifacts import ArtifactStore

    _, server = services
    handle = stackhop.run(write_pipeline(WORDS).words, "kfp", wait=False)
    (run_id, _), = server.runs.items()
    report = (f"gs://ml-artifacts/plain-service/words/{handle.run_id}/words/{run_id}/count-words/count-words-x7k2p/"
              "report")  # the launcher's layout under the run's own pipeline root
    ArtifactStore.for_uri(report).write_bytes(report, b"# Long words\n")
    server.set_state(run_id, "RUNNING")
    server.set_task(run_id, "count-words", "SUCCEEDED")

    assert handle.steps()["count-words"].status is StepStatus.SUCCEEDED
    found = handle.artifact("count-words", "report")
    assert (found.uri, found.type) == (report, "Markdown")


def test_a_python_step_after_a_container_step_reads_the_launchers_uri_with_no_stackhop_record(
        project, write_config, write_pipeline, tmp_path) -> None:
    import subprocess
    import sys

    from stackhop.adapters.pipelinespec import runs

    root = tmp_path / "art"
    write_config(f"""
        stacks:
          kfp:
            adapter: kfp
            artifact_root: {root}
            defaults: {{image: "python:3.11"}}
            settings: {{host: "http://kfp.invalid"}}
    """)
    compiled = stackhop.compile(write_pipeline(WORDS).words, "kfp")
    runs.store_run_spec(compiled, f"file://{root}")
    doc = next(yaml.safe_load_all(compiled.files["pipeline.yaml"]))
    (root / "launcher").mkdir()
    (root / "launcher" / "report").write_text("# Long words\n\n6 words of 8 letters or more\n")
    filled = {"{{$.pipeline_job_name}}": "run-1", "{{$.pipeline_job_uuid}}": "run-1", "{{$.pipeline_task_uuid}}": "t-1",
              "{{$.inputs.artifacts['report'].uri}}": f"file://{root}/launcher/report",
              "{{$.inputs.parameters['count']}}": "6", "{{$.inputs.parameters['stackhop_code']}}": "",
              "{{$.outputs.artifacts['stackhop_meta'].uri}}": f"file://{root}/meta",
              "{{$.outputs.parameters['output'].output_file}}": str(tmp_path / "output")}
    container = doc["deploymentSpec"]["executors"]["exec-summarize"]["container"]
    argv = []
    for arg in container["command"][1:] + container["args"]:
        for placeholder, value in filled.items():
            arg = arg.replace(placeholder, value)
        argv.append(arg)

    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr
    assert (tmp_path / "output").read_text() == "6 words of 8 letters or more (6)"
