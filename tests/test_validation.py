"""Every validation rule: the exception type, and a message naming the pipeline, the step or field, and the fix.

Pipelines go through the DSL where it can express the mistake; hand-built IRs cover what the
DSL catches earlier, since IRs also arrive as JSON (release manifests) and from code.
"""

from __future__ import annotations

import textwrap
from typing import Any, Callable

import pytest

from stackhop.core import ir
from stackhop.core.api import resolve_parameters
from stackhop.core.validate import validate
from stackhop.errors import (
    ParameterError,
    PipelineDefinitionError,
    QuantityError,
    StackhopError,
    ValidationError,
)

HEADER = """\
from __future__ import annotations

from stackhop import (
    Dataset, If, Input, InputPath, Model, Output, ParallelFor, container_step, pipeline, step,
)
"""


@pytest.fixture
def load(write_pipeline: Callable[..., Any]) -> Callable[..., Any]:
    def _load(body: str) -> Any:
        return write_pipeline(HEADER + textwrap.dedent(body))

    return _load


def python_step(name: str, **fields: Any) -> ir.Step:
    return ir.Step(
        name=name, kind="python", python=ir.PythonCall(module="steps", qualname=name, code_digest="sha256:0"), **fields
    )


def hand_built(*steps: ir.Step, **fields: Any) -> ir.Pipeline:
    return ir.Pipeline(name="hand-built", steps=steps, **fields)


PRODUCER = python_step("producer", outputs=(ir.OutputSpec(name="data", type="Dataset"),))


def consumer(value: ir.Const | ir.ParamRef | ir.OutputRef | ir.LoopItemRef, type_: str = "Dataset", **fields: Any) -> ir.Step:
    return python_step("consumer", inputs=(ir.InputSpec(name="x", type=type_, value=value),), **fields)


def test_every_validation_error_is_a_stackhop_error() -> None:
    """The CLI prints StackhopErrors as one line and exits 2; anything else would show a traceback."""
    assert issubclass(ValidationError, StackhopError)
    assert issubclass(QuantityError, PipelineDefinitionError)
    assert issubclass(ParameterError, StackhopError)


# ----------------------------------------------------------------------------- cycles


def test_a_cycle_made_with_after_is_rejected_naming_the_loop(load) -> None:
    module = load(
        """
        @step
        def first() -> None: ...

        @step
        def second() -> None: ...

        @pipeline
        def p():
            a = first()
            b = second().after(a)
            a.after(b)
        """
    )

    with pytest.raises(ValidationError) as caught:
        module.p.build()

    message = str(caught.value)
    assert "pipeline 'p'" in message
    assert "first -> second -> first" in message
    assert "remove one of the .after() calls" in message


def test_a_step_cannot_run_after_itself(load) -> None:
    module = load(
        """
        @step
        def first() -> None: ...

        @pipeline
        def p():
            a = first()
            a.after(a)
        """
    )

    with pytest.raises(ValidationError, match=r"pipeline 'p', step 'first': a step cannot run after itself"):
        module.p.build()


# ----------------------------------------------------------------------------- unknown references


def test_unknown_output_name_in_the_dsl_lists_the_real_outputs(load) -> None:
    module = load(
        """
        @step
        def train(model: Output[Model]) -> float:
            return 1.0

        @step
        def show(x: float) -> None: ...

        @pipeline
        def p():
            show(x=train().outputs["acuracy"])
        """
    )

    with pytest.raises(StackhopError) as caught:
        module.p.build()

    message = str(caught.value)
    assert "step 'train'" in message and "'acuracy'" in message
    assert "model" in message and "output" in message


def test_output_ref_to_an_unknown_step_is_rejected() -> None:
    pipeline = hand_built(PRODUCER, consumer(ir.OutputRef(step="ghost", output="data")))

    with pytest.raises(ValidationError) as caught:
        validate(pipeline)

    message = str(caught.value)
    assert "pipeline 'hand-built', step 'consumer'" in message
    assert "input 'x'" in message and "'ghost'" in message
    assert "producer" in message, "the fix: name the steps that do exist"


def test_output_ref_to_an_unknown_output_lists_the_real_outputs() -> None:
    pipeline = hand_built(PRODUCER, consumer(ir.OutputRef(step="producer", output="dataset")))

    with pytest.raises(ValidationError) as caught:
        validate(pipeline)

    message = str(caught.value)
    assert "pipeline 'hand-built', step 'consumer'" in message
    assert "output 'dataset' of step 'producer'" in message
    assert "its outputs are data" in message


def test_param_ref_to_an_unknown_parameter_lists_the_real_parameters() -> None:
    pipeline = hand_built(
        consumer(ir.ParamRef(name="learning_rate"), type_="float"),
        parameters=(ir.Parameter(name="lr", type="float", default=0.1, has_default=True),),
    )

    with pytest.raises(ValidationError) as caught:
        validate(pipeline)

    message = str(caught.value)
    assert "pipeline 'hand-built', step 'consumer'" in message
    assert "input 'x'" in message and "'learning_rate'" in message
    assert "parameters are lr" in message


def test_after_naming_an_unknown_step_is_rejected() -> None:
    pipeline = hand_built(python_step("consumer", after=("ghost",)))

    with pytest.raises(ValidationError, match=r"'hand-built', step 'consumer': \.after\(\) names step 'ghost'"):
        validate(pipeline)


def test_loop_item_used_outside_its_parallel_for_is_rejected() -> None:
    pipeline = hand_built(
        consumer(ir.LoopItemRef(loop="for-1"), type_="int"),
        groups=(ir.Group(id="for-1", kind="parallel_for", items=ir.LoopItems(static=(1, 2))),),
    )

    with pytest.raises(ValidationError, match=r"step 'consumer': input 'x' uses the item of 'for-1' outside that ParallelFor"):
        validate(pipeline)


def test_a_loop_over_the_output_of_a_step_in_no_known_group_is_refused_naming_the_step() -> None:
    """Found by the fuzz profile: the loop's checks followed the step into a group that does not exist."""
    lists = python_step("lists", group="", outputs=(ir.OutputSpec(name="output", type="list"),))
    pipeline = hand_built(lists, consumer(ir.LoopItemRef(loop="for-1"), type_="int", group="for-1"), groups=(
        ir.Group(id="for-1", kind="parallel_for", items=ir.LoopItems(output=ir.OutputRef(step="lists", output="output"))),))

    with pytest.raises(ValidationError, match=r"^pipeline 'hand-built', step 'lists': unknown group ''\.$"):
        validate(pipeline)


# ----------------------------------------------------------------------------- types


def test_model_output_cannot_feed_a_dataset_input(load) -> None:
    module = load(
        """
        @step
        def train(model: Output[Model]) -> None: ...

        @step
        def evaluate(data: Input[Dataset]) -> None: ...

        @pipeline
        def p():
            evaluate(data=train().outputs["model"])
        """
    )

    with pytest.raises(ValidationError) as caught:
        module.p.build()

    message = str(caught.value)
    assert "pipeline 'p', step 'evaluate', input 'data' expects Dataset" in message
    assert "output 'model' of step 'train' of type Model" in message
    assert "connect an output of the matching type" in message


def test_str_output_cannot_feed_an_int_input(load) -> None:
    module = load(
        """
        @step
        def label() -> str:
            return "3"

        @step
        def repeat(times: int) -> None: ...

        @pipeline
        def p():
            repeat(times=label().output)
        """
    )

    with pytest.raises(ValidationError, match=r"step 'repeat', input 'times' expects int but gets output 'output' of step 'label' of type str"):
        module.p.build()


def test_artifact_output_cannot_feed_a_scalar_input(load) -> None:
    module = load(
        """
        @step
        def make(data: Output[Dataset]) -> None: ...

        @step
        def repeat(times: int) -> None: ...

        @pipeline
        def p():
            repeat(times=make().outputs["data"])
        """
    )

    with pytest.raises(ValidationError, match=r"input 'times' expects int but gets output 'data' of step 'make' of type Dataset"):
        module.p.build()


def test_constant_of_the_wrong_type_is_rejected(load) -> None:
    module = load(
        """
        @step
        def repeat(times: int) -> None: ...

        @pipeline
        def p():
            repeat(times="three")
        """
    )

    with pytest.raises(ValidationError, match=r"step 'repeat', input 'times' expects int but gets 'three' of type str"):
        module.p.build()


def test_int_values_may_feed_float_inputs(load) -> None:
    module = load(
        """
        @step
        def count() -> int:
            return 3

        @step
        def scale(factor: float, offset: float, bias: float) -> None: ...

        @pipeline
        def p(offset: int = 1):
            scale(factor=count().output, offset=offset, bias=2)
        """
    )

    built = module.p.build()

    assert built.step("scale").input("factor").value == ir.OutputRef(step="count", output="output")


def test_parameter_default_must_match_its_type() -> None:
    pipeline = hand_built(python_step("s"), parameters=(ir.Parameter(name="n", type="int", default="ten", has_default=True),))

    with pytest.raises(ValidationError, match=r"pipeline 'hand-built': parameter 'n' is int but its default 'ten' is not"):
        validate(pipeline)


# ----------------------------------------------------------------------------- missing inputs and parameters


def test_missing_required_step_input_is_rejected_when_the_step_is_called(load) -> None:
    module = load(
        """
        @step
        def train(data: Input[Dataset], epochs: int = 3) -> None: ...

        @pipeline
        def p():
            train(epochs=5)
        """
    )

    with pytest.raises(PipelineDefinitionError, match=r"step 'train' in pipeline 'p' needs input 'data'; pass it as train\(data=\.\.\.\)"):
        module.p.build()


def test_missing_required_step_input_in_an_ir_is_rejected() -> None:
    pipeline = hand_built(python_step("train", inputs=(ir.InputSpec(name="data", type="Dataset"),)))

    with pytest.raises(ValidationError, match=r"pipeline 'hand-built', step 'train' needs input 'data'; pass it when calling the step"):
        validate(pipeline)


SCALAR_PIPELINE = """
@step
def use(threshold: float, enabled: bool, epochs: int, tags: list, name: str) -> None: ...

@pipeline
def p(threshold: float, enabled: bool = False, epochs: int = 3, tags: list = [], name: str = "run"):
    use(threshold=threshold, enabled=enabled, epochs=epochs, tags=tags, name=name)
"""


def test_missing_required_pipeline_parameter_is_rejected_at_run_time(load) -> None:
    built = load(SCALAR_PIPELINE).p.build()

    with pytest.raises(ParameterError, match=r"pipeline 'p' needs parameter 'threshold' \(float\); pass it with -p threshold=<value>"):
        resolve_parameters(built, {})


def test_unknown_pipeline_parameter_is_rejected_listing_the_real_ones(load) -> None:
    built = load(SCALAR_PIPELINE).p.build()

    with pytest.raises(ParameterError) as caught:
        resolve_parameters(built, {"threshold": 0.5, "treshold": 0.9})

    message = str(caught.value)
    assert "pipeline 'p' has no parameter 'treshold'" in message
    assert "threshold, enabled, epochs, tags, name" in message


def test_defaults_fill_in_parameters_that_are_not_given(load) -> None:
    built = load(SCALAR_PIPELINE).p.build()

    assert resolve_parameters(built, {"threshold": 1}) == {
        "threshold": 1.0, "enabled": False, "epochs": 3, "tags": [], "name": "run"
    }


@pytest.mark.parametrize(
    ("name", "text", "parsed"),
    [
        ("threshold", "0.9", 0.9),
        ("threshold", "1", 1.0),
        ("enabled", "true", True),
        ("enabled", "false", False),
        ("epochs", "12", 12),
        ("tags", '["a", "b"]', ["a", "b"]),
        ("name", "true", "true"),
    ],
)
def test_cli_string_parameters_are_parsed_per_declared_type(load, name: str, text: str, parsed: Any) -> None:
    built = load(SCALAR_PIPELINE).p.build()

    values = resolve_parameters(built, {"threshold": "0.5", name: text}, from_strings=True)

    assert values[name] == parsed
    assert type(values[name]) is type(parsed)


@pytest.mark.parametrize(
    ("name", "text", "hint"),
    [
        ("threshold", "abc", r"parameter 'threshold' is float, and 'abc' is not one\."),
        ("epochs", "1.5", r"parameter 'epochs' is int, and '1.5' is not one\."),
        ("enabled", "yes", r"parameter 'enabled' is bool, and 'yes' is not one \(write true or false\)\."),
        ("tags", '{"a": 1}', r"parameter 'tags' is list, got dict"),
    ],
)
def test_cli_string_parameters_that_do_not_parse_are_rejected(load, name: str, text: str, hint: str) -> None:
    built = load(SCALAR_PIPELINE).p.build()

    with pytest.raises(ParameterError, match=r"pipeline 'p': " + hint):
        resolve_parameters(built, {"threshold": "0.5", name: text}, from_strings=True)


def test_python_parameter_of_the_wrong_type_is_rejected(load) -> None:
    built = load(SCALAR_PIPELINE).p.build()

    with pytest.raises(ParameterError, match=r"pipeline 'p': parameter 'epochs' is int, got bool True"):
        resolve_parameters(built, {"threshold": 0.5, "epochs": True})


# ----------------------------------------------------------------------------- duplicate names


def test_two_container_steps_with_one_name_are_rejected(load) -> None:
    module = load(
        """
        @pipeline
        def p():
            container_step("fetch", image="alpine", command=["true"])
            container_step("fetch", image="alpine", command=["false"])
        """
    )

    with pytest.raises(ValidationError, match=r"pipeline 'p': two steps are named 'fetch'; give one another name with \.set_name\(\.\.\.\)"):
        module.p.build()


def test_set_name_colliding_with_another_step_is_rejected(load) -> None:
    module = load(
        """
        @step
        def train() -> None: ...

        @step
        def evaluate() -> None: ...

        @pipeline
        def p():
            train()
            evaluate().set_name("train")
        """
    )

    with pytest.raises(ValidationError, match=r"pipeline 'p': two steps are named 'train'; give one another name"):
        module.p.build()


def test_input_declared_twice_in_an_ir_is_rejected() -> None:
    twice = ir.InputSpec(name="x", type="int", value=ir.Const(value=1))
    pipeline = hand_built(python_step("s", inputs=(twice, twice)))

    with pytest.raises(ValidationError, match=r"pipeline 'hand-built', step 's': input 'x' is declared twice"):
        validate(pipeline)


# ----------------------------------------------------------------------------- quantities


def test_ambiguous_memory_unit_is_rejected_with_both_exact_spellings(load) -> None:
    module = load(
        """
        @step
        def train() -> None: ...

        @pipeline
        def p():
            train().set_resources(memory="16GB")
        """
    )

    with pytest.raises(QuantityError) as caught:
        module.p.build()

    message = str(caught.value)
    assert "step 'train'" in message and "'16GB' is ambiguous" in message
    assert "'16Gi'" in message and "'16G'" in message


def test_ambiguous_memory_unit_in_the_step_decorator_is_rejected_at_import(load) -> None:
    with pytest.raises(QuantityError, match=r"step 'train': memory '2gb' is ambiguous; write '2Gi' .* or '2G'"):
        load(
            """
            @step(resources={"memory": "2gb"})
            def train() -> None: ...
            """
        )


def test_cpu_that_is_not_a_quantity_is_rejected(load) -> None:
    module = load(
        """
        @step
        def train() -> None: ...

        @pipeline
        def p():
            train().set_resources(cpu="abc")
        """
    )

    with pytest.raises(QuantityError, match=r"step 'train': cpu 'abc' is not a quantity; write cores like '2' or '0\.5', or millicores like '500m'"):
        module.p.build()


def test_memory_with_an_unknown_unit_is_rejected(load) -> None:
    module = load(
        """
        @step
        def train() -> None: ...

        @pipeline
        def p():
            train().set_resources(memory="4Gb/s")
        """
    )

    with pytest.raises(QuantityError, match=r"step 'train': memory '4Gb/s' is not a quantity; write e\.g\. '4Gi'"):
        module.p.build()


@pytest.mark.parametrize(
    ("resources", "what"),
    [('cpu="2", cpu_limit="1"', "cpu"), ('memory="2Gi", memory_limit="1Gi"', "memory")],
)
def test_limit_below_request_is_rejected(load, resources: str, what: str) -> None:
    module = load(
        f"""
        @step
        def train() -> None: ...

        @pipeline
        def p():
            train().set_resources({resources})
        """
    )

    with pytest.raises(
        PipelineDefinitionError,
        match=rf"step 'train': the {what} limit is below the {what} request; raise the limit or lower the request",
    ):
        module.p.build()


def test_unknown_accelerator_is_rejected_with_a_suggestion(load) -> None:
    module = load(
        """
        @step
        def train() -> None: ...

        @pipeline
        def p():
            train().set_resources(gpu=1, accelerator="tesla-t5")
        """
    )

    with pytest.raises(QuantityError) as caught:
        module.p.build()

    message = str(caught.value)
    assert "step 'train': unknown accelerator 'tesla-t5'" in message
    assert "Did you mean 'nvidia-tesla-t4'" in message


def test_gpus_without_an_accelerator_type_are_rejected(load) -> None:
    module = load(
        """
        @step
        def train() -> None: ...

        @pipeline
        def p():
            train().set_resources(gpu=2)
        """
    )

    with pytest.raises(PipelineDefinitionError, match=r"step 'train': 2 GPU\(s\) requested without a type; pass accelerator="):
        module.p.build()


# ----------------------------------------------------------------------------- names


def test_pipeline_name_with_uppercase_and_underscore_is_rejected_with_a_suggestion(load) -> None:
    module = load(
        """
        @step
        def train() -> None: ...

        @pipeline(name="My_Pipeline")
        def p():
            train()
        """
    )

    with pytest.raises(ValidationError) as caught:
        module.p.build()

    message = str(caught.value)
    assert "pipeline 'My_Pipeline'" in message
    assert "lowercase letters, digits and '-'" in message
    assert "'my-pipeline'" in message


def test_step_name_with_spaces_is_rejected(load) -> None:
    module = load(
        """
        @step
        def train() -> None: ...

        @pipeline
        def p():
            train().set_name("train model")
        """
    )

    with pytest.raises(ValidationError, match=r"pipeline 'p': step name 'train model' must be 1-63 letters, digits, '_' or '-'"):
        module.p.build()


@pytest.mark.parametrize("kind", ["input", "output"])
def test_input_and_output_names_starting_with_underscore_are_rejected(kind: str) -> None:
    if kind == "input":
        step_ = python_step("s", inputs=(ir.InputSpec(name="_hidden", type="int", value=ir.Const(value=1)),))
    else:
        step_ = python_step("s", outputs=(ir.OutputSpec(name="_hidden", type="Model"),))

    with pytest.raises(ValidationError) as caught:
        validate(hand_built(step_))

    message = str(caught.value)
    assert f"pipeline 'hand-built', step 's': {kind} name '_hidden'" in message
    assert "Python identifier not starting with '_'" in message


# ----------------------------------------------------------------------------- conditions and scopes


def test_condition_comparing_an_artifact_is_rejected(load) -> None:
    module = load(
        """
        @step
        def make(data: Output[Dataset]) -> None: ...

        @step
        def act() -> None: ...

        @pipeline
        def p():
            made = make()
            with If(made.outputs["data"] == "empty"):
                act()
        """
    )

    with pytest.raises(ValidationError) as caught:
        module.p.build()

    message = str(caught.value)
    assert "pipeline 'p', condition-1" in message
    assert "output 'data' of step 'make', a Dataset artifact" in message
    assert "have a step return the value to compare" in message


def test_condition_ordering_a_string_against_a_number_is_rejected(load) -> None:
    module = load(
        """
        @step
        def label() -> str:
            return "a"

        @step
        def act() -> None: ...

        @pipeline
        def p():
            with If(label().output > 3):
                act()
        """
    )

    with pytest.raises(ValidationError, match=r"pipeline 'p', condition-1: `>` compares str with int; compare values of one kind"):
        module.p.build()


def test_output_of_a_conditional_step_cannot_be_used_outside_its_if(load) -> None:
    module = load(
        """
        @step
        def check() -> str:
            return "yes"

        @step
        def train(model: Output[Model]) -> None: ...

        @step
        def publish(model: Input[Model]) -> None: ...

        @pipeline
        def p():
            with If(check().output == "yes"):
                trained = train()
            publish(model=trained.outputs["model"])
        """
    )

    with pytest.raises(ValidationError) as caught:
        module.p.build()

    message = str(caught.value)
    assert "pipeline 'p', step 'publish'" in message
    assert "output 'model' of step 'train', which runs only under condition-1" in message
    assert "move the consumer into the same If block" in message


def test_output_of_a_parallel_for_body_cannot_be_used_outside_the_loop(load) -> None:
    module = load(
        """
        @step
        def train(seed: int) -> float:
            return 0.5

        @step
        def report(score: float) -> None: ...

        @pipeline
        def p():
            with ParallelFor([1, 2, 3]) as seed:
                trained = train(seed=seed)
            report(score=trained.output)
        """
    )

    with pytest.raises(ValidationError) as caught:
        module.p.build()

    message = str(caught.value)
    assert "pipeline 'p', step 'report'" in message
    assert "output 'output' of step 'train' from outside its ParallelFor (for-1)" in message
    assert "consume it inside the loop" in message


def test_output_of_a_conditional_step_may_be_used_inside_the_same_if(load) -> None:
    module = load(
        """
        @step
        def check() -> str:
            return "yes"

        @step
        def train(model: Output[Model]) -> None: ...

        @step
        def publish(model: Input[Model]) -> None: ...

        @pipeline
        def p():
            with If(check().output == "yes"):
                trained = train()
                with If(check().output == "still"):
                    publish(model=trained.outputs["model"])
        """
    )

    assert module.p.build().step("publish").group == "condition-2"


# ----------------------------------------------------------------------------- environment


@pytest.mark.parametrize("name", ["1ST_VAR", "MY-VAR", "HAS SPACE"])
def test_invalid_environment_variable_name_is_rejected(load, name: str) -> None:
    module = load(
        f"""
        @step
        def train() -> None: ...

        @pipeline
        def p():
            train().set_env({name!r}, "x")
        """
    )

    with pytest.raises(PipelineDefinitionError, match=rf"step 'train': environment variable name '{name}' is invalid; use letters, digits and '_'"):
        module.p.build()


def test_invalid_secret_environment_variable_name_is_rejected(load) -> None:
    module = load(
        """
        @step
        def train() -> None: ...

        @pipeline
        def p():
            train().set_secret_env("HF-TOKEN", "hf", "token")
        """
    )

    with pytest.raises(PipelineDefinitionError, match=r"step 'train': environment variable name 'HF-TOKEN' is invalid"):
        module.p.build()


def test_environment_variable_set_both_plainly_and_from_a_secret_is_rejected(load) -> None:
    module = load(
        """
        @step
        def train() -> None: ...

        @pipeline
        def p():
            train().set_env(TOKEN="plain").set_secret_env("TOKEN", "creds", "token")
        """
    )

    with pytest.raises(ValidationError, match=r"step 'train': environment variable 'TOKEN' is set twice \(env and secret\); keep one"):
        module.p.build()


# ----------------------------------------------------------------------------- step bodies


def test_container_placeholder_naming_nothing_declared_in_an_ir_is_rejected() -> None:
    step_ = ir.Step(
        name="echo",
        kind="container",
        container=ir.ContainerSpec(image="alpine", command=("cat", ir.Placeholder(placeholder="input_path", name="src"))),
    )

    with pytest.raises(ValidationError, match=r"pipeline 'hand-built', step 'echo': placeholder input_path\('src'\) names nothing declared"):
        validate(hand_built(step_))


def test_step_kind_must_match_its_body() -> None:
    step_ = ir.Step(name="s", kind="container", python=ir.PythonCall(module="m", qualname="s", code_digest="sha256:0"))

    with pytest.raises(ValidationError, match=r"pipeline 'hand-built', step 's': a container step must carry exactly its `container` body"):
        validate(hand_built(step_))
