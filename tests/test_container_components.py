"""Container components, as ML engineers define them: once at module level, called from many pipelines.

What the DSL records (image, command as written, placeholders, optional inputs), that a stack's
default image never replaces a container step's own, and that the command runs locally with
every placeholder filled.
"""

from __future__ import annotations

import pytest

import stackhop
from stackhop import RunStatus
from stackhop.core import ir
from stackhop.errors import PipelineDefinitionError, ValidationError

COMPONENTS = """
from typing import Optional

from stackhop import (Concat, ContainerSpec, Dataset, IfPresent, Input, InputPath, Model, Output, OutputPath,
                      container_component, pipeline, step)


@container_component
def say_hello(name: str, greeting: OutputPath(str)):
    return ContainerSpec(image="busybox:1.36", command=["sh", "-c", 'echo "Hello, $0!" > "$1"'], args=[name, greeting])


@container_component
def train(data: Input[Dataset], model: Output[Model], epochs: int = 3, tag: Optional[str] = None):
    return ContainerSpec(
        image="gcr.io/my-project/ml-trainer:v1.2.0",
        command=["sh", "-c", 'cat "$0" > "$1"; echo "$2" >> "$1"', data.path, model.path],
        args=[f"epochs={epochs}", IfPresent("tag", then=[Concat("--tag=", tag)])],
    )


@step
def make_data(data: Output[Dataset]) -> None:
    open(data.path, "w").write("rows\\n")


@step
def read(greeting: str, model: Input[Model]) -> str:
    return greeting + "|" + open(model.path).read()


@pipeline
def first():
    d = make_data()
    m = train(data=d.outputs["data"], tag="v1")
    read(greeting=say_hello(name="stackhop").outputs["greeting"], model=m.outputs["model"])


@pipeline
def second(who: str = "team"):
    say_hello(name=who)
    say_hello(name="again")
    train(data=make_data().outputs["data"], epochs=5)
"""

STACKS = """
stacks:
  dev:
    adapter: kubernetes
    artifact_root: s3://ml/stackhop
    defaults: {image: "registry.example.com/ml/train:1.0"}
    overrides:
      all_steps: {image: "registry.example.com/ml/everything:2.0"}
  mirrored:
    adapter: kubernetes
    artifact_root: s3://ml/stackhop
    defaults: {image: "registry.example.com/ml/train:1.0"}
    images: {registries: {busybox: "mirror.example.com/library/busybox"}}
    overrides:
      steps:
        train: {image: "registry.example.com/ml/trainer-patched:1.3"}
"""


@pytest.fixture
def components(write_pipeline):
    return write_pipeline(COMPONENTS)


def steps(p) -> dict[str, ir.Step]:
    return {s.name: s for s in p.build().steps}


def test_a_component_becomes_a_container_step_with_its_image_and_command_as_written(components) -> None:
    hello = steps(components.first)["say_hello"]
    assert hello.kind == "container"
    assert hello.container.image == "busybox:1.36"
    assert hello.container.command == ("sh", "-c", 'echo "Hello, $0!" > "$1"')
    assert hello.container.args == (ir.Placeholder(placeholder="input_value", name="name"),
                                    ir.Placeholder(placeholder="output_path", name="greeting"))
    assert [(o.name, o.type) for o in hello.outputs] == [("greeting", "str")]


def test_artifact_parameters_give_paths_and_an_f_string_keeps_its_placeholder(components) -> None:
    train = steps(components.first)["train"]
    assert train.container.command[3:] == (ir.Placeholder(placeholder="input_path", name="data"),
                                           ir.Placeholder(placeholder="output_path", name="model"))
    assert train.container.args[0] == ir.Concat(concat=("epochs=", ir.Placeholder(placeholder="input_value", name="epochs")))
    assert train.container.args[1] == ir.IfPresent(
        if_present="tag", then=(ir.Concat(concat=("--tag=", ir.Placeholder(placeholder="input_value", name="tag"))),))
    assert {i.name: (i.type, i.has_default, i.default) for i in train.inputs} == {
        "data": ("Dataset", False, None), "epochs": ("int", True, 3), "tag": ("str", True, None)}


def test_one_component_is_called_from_many_pipelines_and_twice_in_one(components) -> None:
    assert set(steps(components.second)) == {"say_hello", "say_hello-2", "make_data", "train"}
    assert "say_hello" in steps(components.first)


def test_a_stack_default_image_never_replaces_a_container_steps_own(components, write_config) -> None:
    write_config(STACKS)
    from stackhop.core.api import _prepare, to_ir

    prepared, *_ = _prepare(*to_ir(components.first), "dev", None)
    images = {s.name: s.settings.image for s in prepared.steps}
    assert images["say_hello"] == "busybox:1.36"
    assert images["train"] == "gcr.io/my-project/ml-trainer:v1.2.0"
    assert images["read"] == "registry.example.com/ml/everything:2.0"


def test_a_per_step_override_may_replace_it_and_registry_mapping_still_applies(components, write_config) -> None:
    write_config(STACKS)
    explained = stackhop.core.api.explain(components.first, "mirrored")
    assert explained["say_hello"][0] == (
        "image mirror.example.com/library/busybox:1.36: the container step's own image "
        "(short name 'busybox:1.36' mapped by images.registries)")
    assert explained["train"][0].startswith(
        "image registry.example.com/ml/trainer-patched:1.3: replacing the container step's own "
        "'gcr.io/my-project/ml-trainer:v1.2.0'")


def test_the_component_runs_locally_with_every_placeholder_filled(components) -> None:
    handle = stackhop.run(components.first)
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    assert handle.artifact("read", "output").load() == "Hello, stackhop!|rows\nepochs=3\n"


OPTIONAL_ARGS = """
from typing import Optional
from stackhop import ContainerSpec, IfPresent, InputValue, OutputPath, container_component, pipeline

@container_component
def args_of(out: OutputPath(str), tag: Optional[str] = None, level: int = 2):
    return ContainerSpec(image="busybox", command=["sh", "-c", 'echo "$*" > "$0"', out],
                         args=[IfPresent("tag", then=["--tag", tag], otherwise=["--untagged"]), f"--level={level}"])

@pipeline
def p():
    args_of()
    args_of(tag="v2", level=7)
"""


def test_if_present_picks_its_branch_by_whether_the_input_is_given(write_pipeline) -> None:
    handle = stackhop.run(write_pipeline(OPTIONAL_ARGS).p)
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    assert handle.artifact("args_of", "out").load() == "--untagged --level=2"
    assert handle.artifact("args_of-2", "out").load() == "--tag v2 --level=7"


@pytest.mark.parametrize("body, message", [
    ('args=[tag]', r"reads input 'tag', which is optional and not given; pass it, or put the placeholder inside IfPresent"),
    ('args=[IfPresent("nope", then=["x"])]', r"IfPresent\('nope'\) names no declared input"),
    ('args=[InputUri("level")]', r"InputUri\('level'\) is a int value, which has no URI; use InputValue\('level'\)"),
], ids=["unguarded optional", "unknown IfPresent", "uri of a scalar"])
def test_placeholders_that_cannot_be_filled_are_one_sentence_at_build(write_pipeline, body, message) -> None:
    module = write_pipeline(f"""
        from typing import Optional
        from stackhop import ContainerSpec, IfPresent, InputUri, container_component, pipeline

        @container_component
        def c(tag: Optional[str] = None, level: int = 1):
            return ContainerSpec(image="busybox", command=["echo"], {body})

        @pipeline
        def p():
            c()
    """)
    with pytest.raises((ValidationError, PipelineDefinitionError), match=message):
        module.p.build()


def test_a_component_that_returns_no_container_spec_says_what_to_return(write_pipeline) -> None:
    module = write_pipeline("""
        from stackhop import container_component, pipeline

        @container_component
        def c(x: str):
            return ["echo", x]

        @pipeline
        def p():
            c(x="a")
    """)
    with pytest.raises(PipelineDefinitionError, match=r"component 'c' returned list; a @container_component returns "
                                                      r"ContainerSpec\(image=..., command=\[...\], args=\[...\]\)"):
        module.p.build()


PINNING = """
stacks:
  prod:
    adapter: kubernetes
    artifact_root: s3://ml/stackhop
    defaults: {image: "registry.example.com/ml/train@sha256:%s"}
    images: {require_digest: true}
""" % ("a" * 64)


def test_a_container_steps_own_image_is_pinned_by_the_lock_file_like_any_other(components, write_config) -> None:
    write_config(PINNING)
    from stackhop.core.stack import load_stack
    from stackhop.images.plan import write_lock

    with pytest.raises(stackhop.StackhopError, match=r"step 'train': image 'gcr.io/my-project/ml-trainer:v1.2.0' is a tag, "
                                                     r"and stack 'prod' requires digests; run `stackhop build"):
        stackhop.compile(components.first, "prod")
    write_lock(load_stack("prod"), {"gcr.io/my-project/ml-trainer:v1.2.0": "sha256:" + "b" * 64,
                                    "busybox:1.36": "sha256:" + "c" * 64})
    explained = stackhop.core.api.explain(components.first, "prod")
    assert explained["train"][0] == (f"image gcr.io/my-project/ml-trainer:v1.2.0: the container step's own image, pinned "
                                     f"to sha256:{'b' * 64} by the lock file")
    text = "".join(v if isinstance(v, str) else v.decode() for v in stackhop.compile(components.first, "prod").files.values())
    assert f"gcr.io/my-project/ml-trainer@sha256:{'b' * 64}" in text
    assert f"busybox@sha256:{'c' * 64}" in text


def test_a_scalar_input_annotated_input_path_reaches_the_command_as_a_file(write_pipeline) -> None:
    module = write_pipeline("""
        from stackhop import ContainerSpec, InputPath, OutputPath, container_component, pipeline

        @container_component
        def double(n: InputPath(int), out: OutputPath(int)):
            return ContainerSpec(image="busybox", command=["sh", "-c", 'echo $(( $(cat "$0") * 2 )) > "$1"', n, out])

        @pipeline
        def p(n: int = 21):
            double(n=n)
    """)
    (step,) = module.p.build().steps
    assert step.container.command[3] == ir.Placeholder(placeholder="input_path", name="n")
    handle = stackhop.run(module.p)
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    assert handle.artifact("double", "out").load() == 42
