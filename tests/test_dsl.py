"""The authoring surface: what @step, @pipeline, container_step, resource_op and control flow record in the IR."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable

import pytest

from stackhop.core import ir
from stackhop.errors import PipelineDefinitionError

HEADER = """\
from __future__ import annotations

from typing import NamedTuple

from stackhop import (
    Condition, Dataset, ExitHandler, If, Input, InputPath, InputValue, Markdown, Metrics, Model, Output,
    OutputPath, ParallelFor, container_step, pipeline, resource_op, step,
)
"""


@pytest.fixture
def load(write_pipeline: Callable[..., Any]) -> Callable[..., Any]:
    """Import a pipeline module written as `HEADER + body`, the way users write them."""

    def _load(body: str, name: str | None = None) -> Any:
        return write_pipeline(HEADER + textwrap.dedent(body), name=name)

    return _load


# ----------------------------------------------------------------------------- tracing


def test_building_a_pipeline_never_executes_step_code(load, project: Path) -> None:
    sentinel = project / "step-ran.txt"
    module = load(
        f"""
        @step
        def touch(path: str) -> None:
            with open(path, "w") as f:
                f.write("the step body ran")

        @pipeline
        def p():
            touch(path={str(sentinel)!r})
        """
    )

    built = module.p.build()

    assert [s.name for s in built.steps] == ["touch"]
    assert not sentinel.exists()


def test_pipeline_name_defaults_to_the_function_name_with_dashes(load) -> None:
    module = load(
        '''
        @step
        def noop() -> None: ...

        @pipeline
        def my_training_flow():
            """Trains things."""
            noop()
        '''
    )

    built = module.my_training_flow.build()

    assert built.name == "my-training-flow"
    assert built.description == "Trains things."


def test_pipeline_parameters_are_recorded_with_types_and_defaults(load) -> None:
    module = load(
        """
        @step
        def use(lr: float, epochs: int) -> None: ...

        @pipeline
        def p(lr: float, epochs: int = 3, tags: list = ["a"]):
            use(lr=lr, epochs=epochs)
        """
    )

    built = module.p.build()

    assert built.parameters == (
        ir.Parameter(name="lr", type="float"),
        ir.Parameter(name="epochs", type="int", default=3, has_default=True),
        ir.Parameter(name="tags", type="list", default=["a"], has_default=True),
    )
    assert built.step("use").input("lr").value == ir.ParamRef(name="lr")


def test_calling_a_pipeline_directly_is_rejected_with_a_pointer_to_run(load) -> None:
    module = load(
        """
        @step
        def noop() -> None: ...

        @pipeline
        def p():
            noop()
        """
    )

    with pytest.raises(PipelineDefinitionError, match=r"stackhop\.run\(p"):
        module.p()


# ----------------------------------------------------------------------------- step signatures


def test_step_signature_reads_artifacts_scalars_and_defaults(load) -> None:
    module = load(
        """
        @step
        def make(data: Output[Dataset]) -> None: ...

        @step
        def train(data: Input[Dataset], model: Output[Model], metrics: Output[Metrics],
                  epochs: int = 3, lr: float = 0.1, tag: str = "v1") -> float:
            return 0.0

        @pipeline
        def p():
            made = make()
            train(data=made.outputs["data"], lr=0.5)
        """
    )

    train = module.p.build().step("train")

    assert train.inputs == (
        ir.InputSpec(name="data", type="Dataset", value=ir.OutputRef(step="make", output="data")),
        ir.InputSpec(name="epochs", type="int", default=3, has_default=True),
        ir.InputSpec(name="lr", type="float", value=ir.Const(value=0.5), default=0.1, has_default=True),
        ir.InputSpec(name="tag", type="str", default="v1", has_default=True),
    )
    assert train.outputs == (
        ir.OutputSpec(name="model", type="Model"),
        ir.OutputSpec(name="metrics", type="Metrics"),
        ir.OutputSpec(name="output", type="float"),
    )


def test_return_value_becomes_the_output_named_output(load) -> None:
    module = load(
        """
        @step
        def count() -> int:
            return 1

        @step
        def show(n: int) -> None: ...

        @pipeline
        def p():
            show(n=count().output)
        """
    )

    built = module.p.build()

    assert built.step("count").outputs == (ir.OutputSpec(name="output", type="int"),)
    assert built.step("show").outputs == ()
    assert built.step("show").input("n").value == ir.OutputRef(step="count", output="output")


def test_namedtuple_return_gives_one_typed_output_per_field(load) -> None:
    """Written with `from __future__ import annotations`, as the examples are, so field annotations are strings."""
    module = load(
        """
        class Split(NamedTuple):
            rows: int
            name: str

        @step
        def split() -> Split:
            return Split(1, "a")

        @pipeline
        def p():
            split()
        """
    )

    assert module.p.build().step("split").outputs == (
        ir.OutputSpec(name="rows", type="int"),
        ir.OutputSpec(name="name", type="str"),
    )


def test_non_scalar_return_type_is_an_artifact_stored_from_the_return_value(load) -> None:
    module = load(
        """
        @step
        def encode() -> bytes:
            return b"x"

        @step
        def decode(blob: bytes) -> None: ...

        @pipeline
        def p():
            decode(blob=encode().output)
        """
    )

    built = module.p.build()

    assert built.step("encode").outputs == (ir.OutputSpec(name="output", type="Artifact", from_return=True, materializer="bytes"),)
    blob = built.step("decode").input("blob")
    assert (blob.type, blob.as_value) == ("Artifact", True)


def test_task_output_is_the_return_value_even_beside_artifact_outputs(load) -> None:
    """The seed tutorial writes `eval_task.output == "yes"` on a step that also logs Metrics."""
    module = load(
        """
        @step
        def evaluate(metrics: Output[Metrics]) -> str:
            return "yes"

        @step
        def deploy() -> None: ...

        @pipeline
        def p():
            verdict = evaluate()
            with If(verdict.output == "yes"):
                deploy()
        """
    )

    condition = module.p.build().groups[0].condition
    assert condition.left == ir.OutputRef(step="evaluate", output="output")


def test_task_output_needs_a_choice_when_a_step_has_several_outputs_and_no_return(load) -> None:
    module = load(
        """
        @step
        def split(train: Output[Dataset], test: Output[Dataset]) -> None: ...

        @step
        def show(x: Input[Dataset]) -> None: ...

        @pipeline
        def p():
            show(x=split().output)
        """
    )

    with pytest.raises(PipelineDefinitionError, match=r"'split' has 2 outputs \(train, test\) and no single return value.*outputs\['<name>'\]"):
        module.p.build()


# ----------------------------------------------------------------------------- task setters


def test_task_setters_are_recorded_on_the_step(load) -> None:
    module = load(
        """
        @step
        def prepare() -> None: ...

        @step
        def train() -> None: ...

        @pipeline
        def p():
            first = prepare()
            (
                train()
                .set_retry(3, backoff_seconds=2.0)
                .set_timeout(600)
                .set_caching(False)
                .set_env("MODE", "fast", SEED=7)
                .set_image("python:3.12-slim")
                .set_display_name("Train the model")
                .after(first)
            )
        """
    )

    train = module.p.build().step("train")

    assert train.settings.retry == ir.RetryPolicy(max_retries=3, backoff_seconds=2.0)
    assert train.settings.timeout_seconds == 600
    assert train.settings.caching is False
    assert train.settings.env == {"MODE": "fast", "SEED": "7"}
    assert train.settings.image == "python:3.12-slim"
    assert train.display_name == "Train the model"
    assert train.after == ("prepare",)
    assert ("prepare", "train") in module.p.build().edges()


def test_set_resources_parses_quantities_and_limits_default_to_requests(load) -> None:
    module = load(
        """
        @step
        def train() -> None: ...

        @pipeline
        def p():
            train().set_resources(cpu="500m", memory="4Gi", gpu=2, accelerator="t4")
            train().set_resources(cpu="1", memory="1Gi", cpu_limit="2", memory_limit="2Gi")
        """
    )

    built = module.p.build()

    assert built.step("train").settings.resources == ir.Resources(
        cpu_millicores=500,
        cpu_limit_millicores=500,
        memory_bytes=4 * 2**30,
        memory_limit_bytes=4 * 2**30,
        accelerator=ir.Accelerator(type="nvidia-tesla-t4", count=2),
    )
    assert built.step("train-2").settings.resources == ir.Resources(
        cpu_millicores=1000, cpu_limit_millicores=2000, memory_bytes=2**30, memory_limit_bytes=2 * 2**30
    )


def test_step_decorator_settings_and_pipeline_defaults_are_recorded(load) -> None:
    module = load(
        """
        @step(resources={"cpu": "2", "memory": "512Mi"}, retries=2, timeout=30, cache=False, env={"A": "1"})
        def heavy() -> None: ...

        @pipeline(image="python:3.11-slim", retries=1)
        def p():
            heavy()
        """
    )

    built = module.p.build()
    heavy = built.step("heavy")

    assert heavy.settings.resources == ir.Resources(
        cpu_millicores=2000, cpu_limit_millicores=2000, memory_bytes=512 * 2**20, memory_limit_bytes=512 * 2**20
    )
    assert heavy.settings.retry == ir.RetryPolicy(max_retries=2)
    assert heavy.settings.timeout_seconds == 30
    assert heavy.settings.caching is False
    assert heavy.settings.env == {"A": "1"}
    assert built.defaults == ir.StepSettings(image="python:3.11-slim", retry=ir.RetryPolicy(max_retries=1))


def test_set_secret_env_stores_only_the_secret_reference(load, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "s3cr3t-value")
    module = load(
        """
        @step
        def upload() -> None: ...

        @pipeline
        def p():
            upload().set_secret_env("HF_TOKEN", secret="hf-credentials", key="token")
        """
    )

    built = module.p.build()
    upload = built.step("upload")

    assert upload.secrets == (ir.SecretRef(env="HF_TOKEN", name="hf-credentials", key="token"),)
    assert upload.settings.env == {}
    assert "s3cr3t-value" not in built.to_json()


def test_repeated_calls_of_one_step_are_numbered(load) -> None:
    module = load(
        """
        @step
        def train(seed: int) -> None: ...

        @pipeline
        def p():
            for seed in range(3):
                train(seed=seed)
        """
    )

    built = module.p.build()

    assert [s.name for s in built.steps] == ["train", "train-2", "train-3"]
    assert [s.input("seed").value for s in built.steps] == [ir.Const(value=0), ir.Const(value=1), ir.Const(value=2)]


# ----------------------------------------------------------------------------- container steps and resource ops


def test_container_step_records_placeholders_and_declared_types(load) -> None:
    module = load(
        """
        @step
        def write_text(text: Output[Dataset]) -> None: ...

        @pipeline
        def p(min_len: int = 8):
            text = write_text()
            container_step(
                "count-words",
                image="python:3.11-slim",
                command=["python3", "count.py"],
                args=["--src", InputPath("source"), InputValue("min_len"), OutputPath("report"), OutputPath("count")],
                inputs={"source": text.outputs["text"], "min_len": min_len},
                outputs={"report": Markdown, "count": int},
            )
        """
    )

    counted = module.p.build().step("count-words")

    assert counted.kind == "container"
    assert counted.container == ir.ContainerSpec(
        image="python:3.11-slim",
        command=("python3", "count.py"),
        args=(
            "--src",
            ir.Placeholder(placeholder="input_path", name="source"),
            ir.Placeholder(placeholder="input_value", name="min_len"),
            ir.Placeholder(placeholder="output_path", name="report"),
            ir.Placeholder(placeholder="output_path", name="count"),
        ),
    )
    assert [(i.name, i.type, i.value) for i in counted.inputs] == [
        ("source", "Dataset", ir.OutputRef(step="write_text", output="text")),
        ("min_len", "int", ir.ParamRef(name="min_len")),
    ]
    assert counted.outputs == (ir.OutputSpec(name="report", type="Markdown"), ir.OutputSpec(name="count", type="int"))


def test_container_step_placeholder_must_name_a_declared_input(load) -> None:
    module = load(
        """
        @pipeline
        def p():
            container_step("echo", image="alpine", command=["cat", InputPath("missing")])
        """
    )

    with pytest.raises(PipelineDefinitionError, match=r"'echo'.*InputPath\('missing'\).*inputs="):
        module.p.build()


def test_resource_op_from_a_dict_parses_its_conditions(load) -> None:
    module = load(
        """
        MANIFEST = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "trainer"}, "spec": {}}

        @pipeline
        def p():
            resource_op(
                "start-pod", MANIFEST, action="apply",
                success_condition="status.phase == Running",
                failure_condition="status.phase == Failed",
                outputs={"pod": "metadata.name"},
            )
        """
    )

    op = module.p.build().step("start-pod")

    assert op.kind == "resource"
    assert op.resource == ir.ResourceOpSpec(
        manifest={"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "trainer"}, "spec": {}},
        action="apply",
        success_conditions=(ir.FieldCondition(path="status.phase", op="==", value="Running"),),
        failure_conditions=(ir.FieldCondition(path="status.phase", op="==", value="Failed"),),
        output_fields={"pod": "metadata.name"},
    )
    assert op.outputs == (ir.OutputSpec(name="pod", type="str"),)


def test_resource_op_reads_a_yaml_manifest_relative_to_the_pipeline_file(
    load, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "manifests").mkdir()
    (project / "manifests" / "job.yaml").write_text(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: train-job\nspec:\n  backoffLimit: 0\n"
    )
    module = load(
        """
        @pipeline
        def p():
            resource_op(
                "launch", "manifests/job.yaml",
                success_condition="status.succeeded > 0,status.failed == 0",
                failure_condition="status.failed > 2",
            )
        """
    )
    elsewhere = project / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    op = module.p.build().step("launch").resource

    assert op.manifest == {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "train-job"}, "spec": {"backoffLimit": 0}
    }
    assert op.action == "create"
    assert op.success_conditions == (
        ir.FieldCondition(path="status.succeeded", op=">", value=0),
        ir.FieldCondition(path="status.failed", op="==", value=0),
    )
    assert op.failure_conditions == (ir.FieldCondition(path="status.failed", op=">", value=2),)


def test_resource_op_rejects_a_malformed_condition(load) -> None:
    module = load(
        """
        @pipeline
        def p():
            resource_op("job", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}},
                        success_condition="status.phase is Running")
        """
    )

    with pytest.raises(PipelineDefinitionError, match=r"'job'.*'status\.phase is Running'.*status\.phase == Running"):
        module.p.build()


# ----------------------------------------------------------------------------- control flow


def test_if_records_a_condition_group_around_its_steps(load) -> None:
    module = load(
        """
        @step
        def check() -> str:
            return "yes"

        @step
        def deploy() -> None: ...

        @pipeline
        def p():
            verdict = check()
            with If(verdict.output == "yes"):
                deploy()
        """
    )

    built = module.p.build()

    assert built.groups == (
        ir.Group(
            id="condition-1",
            kind="condition",
            condition=ir.Compare(op="==", left=ir.OutputRef(step="check", output="output"), right=ir.Const(value="yes")),
        ),
    )
    assert built.step("deploy").group == "condition-1"
    assert built.step("check").group is None
    assert ("check", "deploy") in built.edges()


def test_condition_is_an_alias_of_if(load) -> None:
    module = load(
        """
        @step
        def deploy() -> None: ...

        @pipeline
        def p(enabled: bool = True):
            with Condition(enabled == True):
                deploy()
        """
    )

    assert module.Condition is module.If
    built = module.p.build()
    assert built.groups[0].condition == ir.Compare(op="==", left=ir.ParamRef(name="enabled"), right=ir.Const(value=True))
    assert built.step("deploy").group == "condition-1"


def test_conditions_combine_with_ampersand_pipe_and_tilde(load) -> None:
    module = load(
        """
        @step
        def score() -> float:
            return 1.0

        @step
        def deploy() -> None: ...

        @pipeline
        def p(env: str = "dev"):
            s = score()
            with If(((s.output > 0.9) & ~(env == "prod")) | env.is_in(["dev", "test"])):
                deploy()
        """
    )

    condition = module.p.build().groups[0].condition

    assert condition == ir.BoolOp(
        kind="or",
        operands=(
            ir.BoolOp(
                kind="and",
                operands=(
                    ir.Compare(op=">", left=ir.OutputRef(step="score", output="output"), right=ir.Const(value=0.9)),
                    ir.Not(operand=ir.Compare(op="==", left=ir.ParamRef(name="env"), right=ir.Const(value="prod"))),
                ),
            ),
            ir.Compare(op="in", left=ir.ParamRef(name="env"), right=ir.Const(value=["dev", "test"])),
        ),
    )


@pytest.mark.parametrize(
    "condition",
    [
        '(a.output == "yes") and (b.output == "yes")',
        'not (a.output == "yes")',
    ],
    ids=["and", "not"],
)
def test_python_boolean_operators_on_conditions_are_rejected_with_the_operators_to_use(load, condition: str) -> None:
    module = load(
        f"""
        @step
        def check() -> str:
            return "yes"

        @step
        def act() -> None: ...

        @pipeline
        def p():
            a = check()
            b = check()
            with If({condition}):
                act()
        """
    )

    with pytest.raises(PipelineDefinitionError) as caught:
        module.p.build()

    message = str(caught.value)
    assert "`&`" in message and "`|`" in message and "`~`" in message


def test_parallel_for_over_a_static_list_passes_the_item_to_the_body(load) -> None:
    module = load(
        """
        @step
        def train(seed: int) -> None: ...

        @pipeline
        def p():
            with ParallelFor([1, 2, 3], parallelism=2) as seed:
                train(seed=seed)
        """
    )

    built = module.p.build()

    assert built.groups == (
        ir.Group(id="for-1", kind="parallel_for", items=ir.LoopItems(static=(1, 2, 3)), parallelism=2),
    )
    train = built.step("train")
    assert train.group == "for-1"
    assert train.input("seed").value == ir.LoopItemRef(loop="for-1")


def test_parallel_for_over_a_list_parameter_reads_item_fields(load) -> None:
    module = load(
        """
        @step
        def train(lr: float, name: str) -> None: ...

        @pipeline
        def p(configs: list = [{"lr": 0.1, "name": "a"}]):
            with ParallelFor(configs) as cfg:
                train(lr=cfg.lr, name=cfg["name"])
        """
    )

    built = module.p.build()

    assert built.groups[0].items == ir.LoopItems(param="configs")
    train = built.step("train")
    assert train.input("lr").value == ir.LoopItemRef(loop="for-1", field="lr")
    assert train.input("name").value == ir.LoopItemRef(loop="for-1", field="name")


def test_parallel_for_rejects_a_parameter_that_is_not_a_list(load) -> None:
    module = load(
        """
        @step
        def train(seed: int) -> None: ...

        @pipeline
        def p(seeds: str = "1,2"):
            with ParallelFor(seeds) as seed:
                train(seed=seed)
        """
    )

    with pytest.raises(PipelineDefinitionError, match=r"'seeds' needs it typed `list`, it is str"):
        module.p.build()


def test_exit_handler_runs_its_step_after_every_step_of_the_body(load) -> None:
    module = load(
        """
        @step
        def notify(channel: str) -> None: ...

        @step
        def prepare() -> None: ...

        @step
        def train() -> None: ...

        @pipeline
        def p():
            cleanup = notify(channel="#ml")
            with ExitHandler(cleanup):
                prepare()
                train()
        """
    )

    built = module.p.build()

    assert built.groups == (ir.Group(id="exit-handler-1", kind="exit_handler", exit_step="notify"),)
    assert built.step("notify").group is None
    assert built.step("train").group == "exit-handler-1"
    assert {("prepare", "notify"), ("train", "notify")} <= set(built.edges())


# ----------------------------------------------------------------------------- steps outside pipelines


def test_calling_a_step_outside_a_pipeline_points_to_fn(load) -> None:
    module = load(
        """
        @step
        def add(a: int, b: int) -> int:
            return a + b
        """
    )

    with pytest.raises(PipelineDefinitionError, match=r"@pipeline.*`<step>\.fn\(\.\.\.\)`"):
        module.add(1, 2)


def test_step_fn_is_the_plain_python_function(load) -> None:
    module = load(
        """
        @step
        def add(a: int, b: int) -> int:
            return a + b
        """
    )

    assert inspect.isfunction(module.add.fn)
    assert module.add.fn(2, 3) == 5


# ----------------------------------------------------------------------------- IR identity

RICH_PIPELINE = """
@step
def load_data(data: Output[Dataset], rows: int = 10) -> int:
    return rows

@step
def train(data: Input[Dataset], model: Output[Model], lr: float = 0.1) -> float:
    return 0.9

@step
def notify(channel: str) -> None: ...

@pipeline(description="everything at once", retries=1)
def p(lr: float = 0.1, seeds: list = [1, 2]):
    cleanup = notify(channel="#ml")
    with ExitHandler(cleanup):
        data = load_data()
        trained = (
            train(data=data.outputs["data"], lr=lr)
            .set_resources(cpu="500m", memory="1Gi", gpu=1, accelerator="l4")
            .set_env(B="2", A="1")
            .set_secret_env("TOKEN", "creds", "token")
            .set_labels(team="ml", cost="low")
        )
        with If((trained.outputs["output"] > 0.5) & (lr < 1)):
            container_step("report", image="alpine", command=["cat", InputPath("m")],
                           inputs={"m": trained.outputs["model"]})
        with ParallelFor(seeds) as seed:
            load_data(rows=seed)
    resource_op("job", {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}},
                success_condition="status.succeeded > 0")
"""


def test_ir_json_round_trip_is_exact(load) -> None:
    built = load(RICH_PIPELINE).p.build()

    text = built.to_json()
    again = ir.Pipeline.from_json(text)

    assert again == built
    assert again.to_json() == text


def test_digest_is_stable_across_python_processes(load, project: Path) -> None:
    module = load(RICH_PIPELINE)
    script = (
        "import sys\n"
        "from stackhop.core.source import import_file\n"
        "print(import_file(sys.argv[1]).p.build().digest())\n"
    )

    fresh = subprocess.run(
        [sys.executable, "-c", script, module.__file__],
        capture_output=True, text=True, cwd=project, env={**os.environ, "PYTHONHASHSEED": "4242"}, timeout=120,
    )

    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.strip() == module.p.build().digest()
    assert module.p.build().digest().startswith("sha256:")


def test_digest_changes_when_a_step_source_changes(load) -> None:
    body = """
        @step
        def score() -> float:
            return {value}

        @pipeline
        def p():
            score()
        """
    before = load(body.format(value="0.5"), name="digest_subject").p.build()
    after = load(body.format(value="0.75 + 0.0"), name="digest_subject").p.build()

    assert after.step("score").python.code_digest != before.step("score").python.code_digest
    assert after.digest() != before.digest()


# ----------------------------------------------------------------------------- Python control flow on traced values


@pytest.mark.parametrize("line,expected", [
    ('if check().output == "yes":', r"a Python `if` cannot test a comparison of traced values, which only has a value "
                                    r"at run time; write `with If\(<condition>\):` around the steps"),
    ("if threshold > 0.5:", r"a Python `if` cannot test"),
    ("while check().output != 'done':", r"a Python `while` cannot test"),
    ("for item in check().output:", r"output 'output' of step 'check' cannot be iterated while the pipeline is traced "
                                   r"\(it only has a value at run time\); to run steps once per item, write "
                                   r"`with ParallelFor\(<list>\) as item:`"),
    ("for item in check():", r"step 'check' cannot be iterated .*ParallelFor"),
    ("if check():", r"a Python `if` cannot test step 'check'"),
], ids=["if-output", "if-parameter", "while", "for-output", "for-task", "if-task"])
def test_python_control_flow_on_a_traced_value_says_what_to_write_and_where(load, line: str, expected: str) -> None:
    body = textwrap.dedent("""
        @step
        def check() -> str:
            return "yes"

        @step
        def act() -> None: ...

        @pipeline
        def p(threshold: float = 0.9):
            {line}
                act()
        """).format(line=line)
    module = load(body)
    lineno = (HEADER + body).splitlines().index("    " + line) + 1

    with pytest.raises(PipelineDefinitionError) as caught:
        module.p.build()

    message = str(caught.value)
    assert message.startswith(f"{Path(module.__file__).name}:{lineno}: "), message
    assert re.search(expected, message), message


@pytest.mark.parametrize("line,expected", [
    ("if (check().output == 'a') and (check().output == 'b'): pass", r"cannot use Python's `and`, `or`, `not` or chained"),
    ("if 1 < threshold < 3: pass", r"cannot use Python's `and`, `or`, `not` or chained"),
    ("assert check().output == 'a'", r"a Python `assert` cannot test"),
], ids=["and-in-if", "chained", "assert"])
def test_boolean_operators_and_asserts_on_traced_values_name_their_fix(load, line: str, expected: str) -> None:
    module = load(textwrap.dedent("""
        @step
        def check() -> str:
            return "yes"

        @pipeline
        def p(threshold: float = 0.9):
            {line}
        """).format(line=line))

    with pytest.raises(PipelineDefinitionError, match=expected):
        module.p.build()


def test_a_traced_value_in_an_f_string_says_to_build_the_string_in_a_step(load) -> None:
    module = load("""
        @step
        def a() -> int:
            return 1

        @step
        def b(msg: str) -> None: ...

        @pipeline
        def p():
            b(msg=f"value is {a().output}")
        """)

    with pytest.raises(PipelineDefinitionError, match=r"output 'output' of step 'a' cannot be put into a string while "
                                                      r"the pipeline is traced .*build the string there"):
        module.p.build()


def test_output_of_a_step_without_a_return_annotation_says_to_add_one(load) -> None:
    module = load("""
        @step
        def make():
            return 1

        @step
        def use(x: int) -> None: ...

        @pipeline
        def p():
            use(x=make().output)
        """)

    with pytest.raises(PipelineDefinitionError, match=r"step 'make' has no outputs; give its function a return annotation"):
        module.p.build()
