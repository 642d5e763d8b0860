"""Container steps on SageMaker: the step's own image runs the user's command as written, data moves the SageMaker way.

A container step compiles to a Processing step in its own image whose ContainerEntrypoint and
ContainerArguments are the user's command and args (placeholders become `/opt/ml/processing/...`
paths and SageMaker expressions), then an `<step>-outputs` step in the stackhop image records what
the command wrote. The emulator runs the compiled definition with this machine's binaries
standing in for the image's; the image here is "busybox" and nothing of stackhop runs inside it.
"""

from __future__ import annotations

import json

import jsonschema
import pytest

import stackhop
from stackhop import RunStatus, StepStatus
from stackhop.errors import PipelineDefinitionError

from sagemaker_schema import load_patched

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
STACKHOP_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/stackhop-steps:1.0"

STACK = f"""
    default_stack: sm
    stacks:
      sm:
        adapter: sagemaker
        artifact_root: s3://ml-artifacts/stackhop
        defaults: {{image: "{STACKHOP_IMAGE}"}}
        settings: {{region: us-east-1, role_arn: "{ROLE}"}}
"""

COUNT_SCRIPT = """set -e
long='{for (i = 1; i <= NF; i++) if (length($i) >= n) print $i}'
{ echo '# Long words'; echo; awk -v n="$1" "$long" "$0" | sort -u | sed 's/^/- /'; } > "$2"
awk -v n="$1" "$long" "$0" | wc -l | tr -d ' ' > "$3"
"""

WORDS = f'''
from stackhop import (If, Dataset, Input, InputPath, InputValue, Markdown, Output, OutputPath, container_step,
                      pipeline, step)

COUNT_SCRIPT = {COUNT_SCRIPT!r}


@step
def write_text(text: Output[Dataset]) -> None:
    with open(text.path, "w") as f:
        f.write("one pipeline definition many orchestrators locally kubernetes sagemaker vertex kubeflow\\n")


@step
def summarize(report: Input[Markdown], count: int) -> str:
    body = open(report.path).read()
    assert body.startswith("# Long words"), body
    return f"{{count}} long words"


@step
def celebrate(count: int) -> str:
    return f"{{count}} is plenty"


def count_words(text, min_len):
    return container_step(
        "count-words",
        image="busybox",
        command=["sh", "-c", COUNT_SCRIPT],
        args=[InputPath("source"), InputValue("min_len"), OutputPath("report"), OutputPath("count")],
        inputs={{"source": text.outputs["text"], "min_len": min_len}},
        outputs={{"report": Markdown, "count": int}},
    )


@pipeline
def words(min_len: int = 8):
    counted = count_words(write_text(), min_len)
    summarize(report=counted.outputs["report"], count=counted.outputs["count"])


@pipeline
def gated_words(min_len: int = 8):
    counted = count_words(write_text(), min_len)
    with If(counted.outputs["count"] >= 3):
        celebrate(count=counted.outputs["count"])
'''


@pytest.fixture
def words(project, write_pipeline, write_config):
    write_config(STACK)
    return write_pipeline(WORDS)


def definition(pipeline) -> dict:
    return json.loads(stackhop.compile(pipeline, "sm").files["sagemaker-pipeline.json"])


def all_steps(doc: dict) -> dict[str, dict]:
    out = {}
    for s in doc["Steps"]:
        out[s["Name"]] = s
        for inner in s["Arguments"].get("IfSteps", []) + s["Arguments"].get("ElseSteps", []):
            out[inner["Name"]] = inner
    return out


def schema_errors(doc: dict) -> list[str]:
    schema = load_patched()
    if schema is None:
        pytest.skip("../shared/reference/ is not beside this checkout, so the published schema cannot be read")
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
            for e in jsonschema.Draft7Validator(schema).iter_errors(doc)]


def test_a_container_step_compiles_to_its_own_image_running_the_users_command(words) -> None:
    first = stackhop.compile(words.words, "sm")
    assert first.files == stackhop.compile(words.words, "sm").files
    doc = json.loads(first.files["sagemaker-pipeline.json"])
    assert schema_errors(doc) == []
    steps = all_steps(doc)
    job = steps["count-words"]["Arguments"]
    assert job["AppSpecification"] == {
        "ImageUri": "busybox",
        "ContainerEntrypoint": ["sh", "-c", COUNT_SCRIPT],
        "ContainerArguments": ["/opt/ml/processing/input/source/text", {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.min_len"}]}},
                               "/opt/ml/processing/output/report/report", "/opt/ml/processing/output/count/count"],
    }
    assert "Environment" not in job, "nothing of stackhop is handed to the user's image"
    (source,) = job["ProcessingInputs"]
    assert source["S3Input"]["LocalPath"] == "/opt/ml/processing/input/source"
    assert source["S3Input"]["S3Uri"] == {"Std:JsonGet": {
        "PropertyFile": {"Get": "Steps.write_text.PropertyFiles.StackhopOutputs"}, "Path": "artifacts.text.uri"}}
    step_dir = {"Std:Join": {"On": "/", "Values": ["s3://ml-artifacts/stackhop/words",
                                                   {"Get": "Execution.PipelineExecutionId"}, "count-words"]}}
    assert [(o["OutputName"], o["S3Output"]["LocalPath"], o["S3Output"]["S3Uri"])
            for o in job["ProcessingOutputConfig"]["Outputs"]] == [
        ("report", "/opt/ml/processing/output/report", step_dir), ("count", "/opt/ml/processing/output/count", step_dir)]
    assert steps["summarize"]["Arguments"]["AppSpecification"]["ImageUri"] == STACKHOP_IMAGE


def test_the_container_steps_outputs_are_recorded_by_a_step_in_the_stackhop_image(words) -> None:
    steps = all_steps(definition(words.words))
    record = steps["count-words-outputs"]
    assert record["DependsOn"] == ["count-words"]
    app = record["Arguments"]["AppSpecification"]
    assert app["ImageUri"] == STACKHOP_IMAGE
    assert app["ContainerEntrypoint"] == ["python", "-m", "stackhop.adapters.sagemaker.record"]
    assert {"Std:Join": {"On": "=", "Values": ["count", {"Std:Join": {"On": "/", "Values": [
        {"Get": "Steps.count-words.ProcessingOutputConfig.Outputs['count'].S3Output.S3Uri"}, "count"]}}]}} in app[
        "ContainerArguments"]
    assert record["PropertyFiles"] == [{"PropertyFileName": "StackhopOutputs", "OutputName": "stackhop",
                                        "FilePath": "outputs.json"}]
    upstream = steps["summarize"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert {"Std:Join": {"On": "=", "Values": ["count-words", {
        "Get": "Steps.count-words-outputs.ProcessingOutputConfig.Outputs['stackhop'].S3Output.S3Uri"}]}} in upstream


def test_the_plain_image_pipeline_runs_through_sagemaker_emulation(words, aws) -> None:
    handle = stackhop.run(words.words, emulate=True)
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    assert {k: v.status for k, v in handle.steps().items()} == {
        "write_text": StepStatus.SUCCEEDED, "count-words": StepStatus.SUCCEEDED, "summarize": StepStatus.SUCCEEDED}
    assert handle.artifact("summarize", "output").load() == "6 long words"
    assert handle.artifact("count-words", "count").value == 6
    report = handle.artifact("count-words", "report")
    assert report.uri == f"s3://ml-artifacts/stackhop/words/{handle.run_id}/count-words/report"
    assert report.type == "Markdown" and report.digest
    shown = {(a.step, a.output): (a.type, a.value) for a in handle.artifacts() if a.step == "count-words"}
    assert shown == {("count-words", "report"): ("Markdown", None), ("count-words", "count"): ("int", 6)}, \
        "`runs show` lists the container step's outputs as it lists a Python step's"
    body = aws.client("s3").get_object(Bucket="ml-artifacts", Key=report.uri.removeprefix("s3://ml-artifacts/"))
    assert body["Body"].read().decode().splitlines()[2:] == [
        "- definition", "- kubeflow", "- kubernetes", "- orchestrators", "- pipeline", "- sagemaker"]


def test_a_condition_reads_the_container_steps_int_output(words, aws) -> None:
    doc = definition(words.gated_words)
    assert schema_errors(doc) == []
    check = next(s for s in doc["Steps"] if s["Type"] == "Condition")
    assert check["Arguments"]["Conditions"][0]["LeftValue"] == {"Std:JsonGet": {
        "PropertyFile": {"Get": "Steps.count-words-outputs.PropertyFiles.StackhopOutputs"}, "Path": "scalars.count"}}
    many = stackhop.run(words.gated_words, emulate=True)
    assert many.status == RunStatus.SUCCEEDED, many.state().message
    assert many.artifact("celebrate", "output").load() == "6 is plenty"
    few = stackhop.run(words.gated_words, parameters={"min_len": 12}, emulate=True)
    assert few.status == RunStatus.SUCCEEDED, few.state().message
    assert few.artifact("count-words", "count").value == 1
    assert few.steps()["celebrate"].status == StepStatus.SKIPPED


COMPONENTS = '''
from typing import Optional

from stackhop import (Concat, ContainerSpec, IfPresent, InputPath, OutputPath, container_component, container_step,
                      pipeline, step)


@container_component
def greet(name: str, greeting: OutputPath(str), salutation: Optional[str] = None):
    return ContainerSpec(
        image="busybox",
        command=["sh", "-c", 'printf "%s" "$0" > "$1"'],
        args=[IfPresent("salutation", then=[Concat(salutation, ", ", name, "!")], otherwise=[f"hello {name}"]),
              greeting],
    )


@step
def how_many() -> int:
    return 41


def add_one(n):
    return container_step("add-one", image="busybox", command=["sh", "-c", 'echo $(( $(cat "$0") + 1 )) > "$1"'],
                          args=[InputPath("n"), OutputPath("total")], inputs={"n": n}, outputs={"total": int})


@step
def both(a: str, b: str, total: int) -> str:
    return f"{a}|{b}|{total}"


@pipeline
def greetings(who: str = "team"):
    formal = greet(name=who, salutation="Dear")
    casual = greet(name=who)
    both(a=formal.outputs["greeting"], b=casual.outputs["greeting"], total=add_one(n=how_many().output).outputs["total"])
'''


def test_if_present_and_concat_are_resolved_into_the_definition_and_run(project, write_pipeline, write_config, aws) -> None:
    write_config(STACK)
    module = write_pipeline(COMPONENTS)
    doc = definition(module.greetings)
    assert schema_errors(doc) == []
    steps = all_steps(doc)
    who = {"Get": "Parameters.who"}
    assert steps["greet"]["Arguments"]["AppSpecification"]["ContainerArguments"] == [
        {"Std:Join": {"On": "", "Values": ["Dear", ", ", who, "!"]}}, "/opt/ml/processing/output/greeting/greeting"]
    assert steps["greet-2"]["Arguments"]["AppSpecification"]["ContainerArguments"][0] == {
        "Std:Join": {"On": "", "Values": ["hello ", who]}}
    handle = stackhop.run(module.greetings, parameters={"who": "Ada"}, emulate=True)
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    assert handle.artifact("both", "output").load() == "Dear, Ada!|hello Ada|42"


def test_an_input_path_of_a_scalar_downloads_the_value_the_producer_staged(project, write_pipeline, write_config) -> None:
    write_config(STACK)
    module = write_pipeline(COMPONENTS)
    (n,) = all_steps(definition(module.greetings))["add-one"]["Arguments"]["ProcessingInputs"]
    assert n["S3Input"]["LocalPath"] == "/opt/ml/processing/input/n"
    assert n["S3Input"]["S3Uri"] == {"Std:Join": {"On": "/", "Values": [
        {"Get": "Steps.how_many.ProcessingOutputConfig.Outputs['stackhop'].S3Output.S3Uri"}, "values", "output"]}}


def test_an_input_path_of_a_parameter_is_refused_in_one_sentence(project, write_pipeline, write_config) -> None:
    write_config(STACK)
    module = write_pipeline('''
        from stackhop import InputPath, container_step, pipeline

        @pipeline
        def reads_a_file(limit: int = 3):
            container_step("show", image="busybox", command=["cat", InputPath("limit")], inputs={"limit": limit})
    ''')
    with pytest.raises(PipelineDefinitionError) as err:
        stackhop.compile(module.reads_a_file, "sm")
    assert str(err.value) == (
        "pipeline 'reads-a-file', step 'show': InputPath('limit') needs a file in S3, but input 'limit' is parameter "
        "'limit', which SageMaker has no object for; use InputValue('limit').")


def test_each_iteration_of_a_loop_runs_and_records_its_own_container_step(project, write_pipeline, write_config,
                                                                         aws) -> None:
    write_config(STACK)
    module = write_pipeline('''
        from stackhop import InputValue, OutputPath, ParallelFor, container_step, pipeline, step

        @step
        def tenfold(x: int) -> int:
            return x

        @pipeline
        def loopy():
            with ParallelFor([1, 2]) as item:
                times = container_step("times", image="busybox", command=["sh", "-c", 'echo $(($0 * 10)) > "$1"'],
                                       args=[InputValue("n"), OutputPath("out")], inputs={"n": item},
                                       outputs={"out": int})
                tenfold(x=times.outputs["out"])
    ''')
    names = [s["Name"] for s in definition(module.loopy)["Steps"]]
    assert names == ["times-0", "times-0-outputs", "times-1", "times-1-outputs", "tenfold-0", "tenfold-1"]
    handle = stackhop.run(module.loopy, emulate=True)
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    assert [handle.artifact(f"tenfold[{i}]", "output").load() for i in (0, 1)] == [10, 20]


def test_no_python_runs_inside_the_container_step(project, write_pipeline, write_config, aws) -> None:
    write_config(STACK)
    module = write_pipeline('''
        from stackhop import OutputPath, container_step, pipeline

        @pipeline
        def who_runs():
            container_step("inspect", image="busybox", command=["busybox", "sh", "-c", 'readlink /proc/$$/exe > "$0"'],
                           args=[OutputPath("exe")], outputs={"exe": str})
    ''')
    handle = stackhop.run(module.who_runs, emulate=True)
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    assert handle.artifact("inspect", "exe").value == "/usr/bin/busybox"


def test_a_failing_command_fails_the_run_with_its_exit_code(project, write_pipeline, write_config, aws) -> None:
    write_config(STACK)
    module = write_pipeline('''
        from stackhop import OutputPath, container_step, pipeline, step

        @step
        def after(n: int) -> None: ...

        @pipeline
        def broken():
            failing = container_step("fails", image="busybox", command=["sh", "-c", "echo trying; exit 3"],
                                     args=[OutputPath("n")], outputs={"n": int})
            after(n=failing.outputs["n"])
    ''')
    handle = stackhop.run(module.broken, emulate=True)
    assert handle.status == RunStatus.FAILED
    step = handle.steps()["fails"]
    assert step.status == StepStatus.FAILED and step.exit_code == 3
    assert step.message == "exited with code 3"
    assert handle.state().message == "step fails failed: exited with code 3"
    assert handle.steps()["after"].status == StepStatus.SKIPPED


def test_a_command_that_writes_no_output_fails_its_step_naming_the_output(project, write_pipeline, write_config, aws) -> None:
    write_config(STACK)
    module = write_pipeline('''
        from stackhop import Markdown, OutputPath, container_step, pipeline

        @pipeline
        def forgetful():
            container_step("forgets", image="busybox", command=["sh", "-c", "true"], args=[OutputPath("report")],
                           outputs={"report": Markdown})
    ''')
    handle = stackhop.run(module.forgetful, emulate=True)
    assert handle.status == RunStatus.FAILED
    message = handle.steps()["forgets"].message
    assert message.startswith("step 'forgets' did not write output 'report': nothing was uploaded to s3://"), message


def test_on_sagemaker_a_container_step_is_done_only_when_its_outputs_are_recorded(words, aws) -> None:
    handle = stackhop.run(words.words, wait=False)
    stored = json.loads(aws.client("sagemaker").describe_pipeline(PipelineName="words")["PipelineDefinition"])
    assert all_steps(stored)["count-words"]["Arguments"]["AppSpecification"]["ImageUri"] == "busybox"
    arn = handle.ref.data["execution_arn"]
    ran = [{"StepName": "write_text", "StepStatus": "Succeeded"}, {"StepName": "count-words", "StepStatus": "Succeeded"}]
    aws.set_steps(arn, ran)
    steps = handle.steps()
    assert "count-words-outputs" not in steps
    assert steps["count-words"].status == StepStatus.RUNNING and steps["count-words"].native == "recording outputs"
    aws.set_steps(arn, [*ran, {"StepName": "count-words-outputs", "StepStatus": "Failed",
                               "FailureReason": "AlgorithmError: step 'count-words' did not write output 'count'"}])
    aws.set_execution(arn, "Failed", failure_reason="Step failure: One or multiple steps failed.")
    assert handle.wait(timeout=30) == RunStatus.FAILED
    failed = handle.steps()["count-words"]
    assert failed.status == StepStatus.FAILED and failed.native == "outputs Failed"
    assert failed.message == "AlgorithmError: step 'count-words' did not write output 'count'"
    assert handle.steps()["summarize"].status == StepStatus.SKIPPED


def test_a_scalar_output_that_does_not_parse_fails_its_step_in_one_sentence(project, write_pipeline, write_config,
                                                                          aws) -> None:
    write_config(STACK)
    module = write_pipeline('''
        from stackhop import OutputPath, container_step, pipeline

        @pipeline
        def wordy():
            container_step("counts", image="busybox", command=["sh", "-c", 'echo many > "$0"'], args=[OutputPath("n")],
                           outputs={"n": int})
    ''')
    handle = stackhop.run(module.wordy, emulate=True)
    assert handle.status == RunStatus.FAILED
    assert handle.steps()["counts"].message == "step 'counts' wrote 'many' to output 'n', which is not a valid int."


def test_an_output_written_at_its_uri_turns_sagemaker_caching_off_for_that_step(project, write_pipeline, write_config) -> None:
    """On a cache hit the command would not run, and nothing would be at this execution's URI for the record to read."""
    write_config(STACK)
    module = write_pipeline('''
        from stackhop import Dataset, OutputPath, OutputUri, container_step, pipeline

        @pipeline
        def uris():
            container_step("by-uri", image="busybox", command=["sh", "-c", 'echo "$0"'], args=[OutputUri("data")],
                           outputs={"data": Dataset})
            container_step("by-path", image="busybox", command=["sh", "-c", 'echo hi > "$0"'], args=[OutputPath("data")],
                           outputs={"data": Dataset})
    ''')
    steps = {s["Name"]: s for s in definition(module.uris)["Steps"]}
    assert steps["by-uri"]["CacheConfig"]["Enabled"] is False
    assert steps["by-path"]["CacheConfig"]["Enabled"] is True
