"""Generated input never escapes as anything but a stackhop error: DSL calls, stack configs, IRs.

Each case ends in one of two ways: a one-sentence stackhop error, or a pipeline that compiles
on every adapter. CI runs a fixed, bounded profile (STACKHOP_FUZZ unset); a longer one runs
locally with `STACKHOP_FUZZ=long .venv/bin/python -m pytest tests/test_fuzz.py`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import stackhop
from stackhop.errors import StackhopError

LONG = os.environ.get("STACKHOP_FUZZ") == "long"
settings.register_profile("ci", max_examples=200, derandomize=True, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.register_profile("long", max_examples=3000, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
PROFILE = settings.get_profile("long" if LONG else "ci")

STACKS = """
stacks:
  k8s: {adapter: kubernetes, defaults: {image: "registry.example.com/ml/train:1.0"}}
  sm:
    adapter: sagemaker
    artifact_root: s3://ml-artifacts/fuzz
    defaults: {image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1.0"}
    settings: {region: us-east-1, role_arn: "arn:aws:iam::123456789012:role/SageMakerRole"}
  vertex:
    adapter: vertex
    artifact_root: gs://ml-artifacts/fuzz
    defaults: {image: "us-docker.pkg.dev/p/ml/train:1.0"}
    settings: {project: my-project}
  kfp:
    adapter: kfp
    artifact_root: gs://ml-artifacts/fuzz
    defaults: {image: "registry.example.com/ml/train:1.0"}
    settings: {host: "http://localhost:8080"}
"""
ADAPTERS = ("local", "k8s", "sm", "vertex", "kfp")

STEPS = '''
from stackhop import Dataset, Input, Model, Output, step


@step
def make(data: Output[Dataset], n: int = 3) -> int:
    return n


@step
def train(data: Input[Dataset], model: Output[Model], rate: float = 0.1) -> float:
    return rate


@step
def report(value: float, label: str = "x") -> str:
    return label
'''

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10**12, max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["2", "500m", "1Gi", "16GB", "inf", "NaN", "-1", "0", "t4", "a100", "../x", "a\nb", "${X", ""]),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                      max_leaves=6)
RESOURCE_KEYS = ("cpu", "memory", "cpu_limit", "memory_limit", "disk", "accelerator", "accelerator_count", "gpu", "bogus")


@pytest.fixture
def fuzz_project(project: Path, write_pipeline, write_config):
    write_config(STACKS)
    return write_pipeline(STEPS, name="fuzz_steps")


CALL_ERROR = re.compile(r"(missing \d+ required|unexpected keyword argument|takes \d+ positional|takes from|got multiple values for argument)")


def compiles_everywhere_or_refuses(build: Any) -> None:
    """The property: a stackhop error, or a valid compile on every adapter.

    Calling a method with arguments it does not take stays Python's own TypeError, as with any library."""
    try:
        pipeline = build()
        for adapter in ADAPTERS:
            stackhop.compile(pipeline, adapter)
        event("compiled on every adapter")
    except StackhopError as exc:
        assert str(exc).strip() and "Traceback" not in str(exc)
        event(f"refused: {type(exc).__name__}")
    except TypeError as exc:
        if not CALL_ERROR.search(str(exc)):
            raise


SETTERS = st.sampled_from(["set_resources", "set_retry", "set_timeout", "set_caching", "set_env", "set_secret_env",
                           "set_image", "set_labels", "add_node_selector", "add_toleration", "set_name",
                           "set_display_name"])


@PROFILE
@given(decorator=st.dictionaries(st.sampled_from(["name", "resources", "retries", "timeout", "cache", "env", "image"]),
                                 values, max_size=3),
       calls=st.lists(st.tuples(SETTERS, st.lists(values, max_size=3), st.dictionaries(
           st.sampled_from(RESOURCE_KEYS + ("max_retries", "backoff_seconds", "key", "value", "effect", "operator")),
           values, max_size=3)), max_size=4),
       constant=values)
def test_dsl_calls_with_any_values_compile_or_refuse(fuzz_project, decorator, calls, constant) -> None:
    from stackhop import pipeline, step

    def build() -> Any:
        decorated = step(**decorator)(fuzz_project.report.fn)

        @pipeline
        def fuzzed():
            made = fuzz_project.make()
            trained = fuzz_project.train(data=made.outputs["data"])
            task = decorated(value=trained.output, label=constant)
            for setter, args, kwargs in calls:
                getattr(task, setter)(*args, **kwargs)

        return fuzzed

    compiles_everywhere_or_refuses(build)


stack_keys = st.sampled_from(["adapter", "artifact_root", "caching", "defaults", "overrides", "settings", "images",
                              "promotion", "description", "bogus"])
override_keys = st.sampled_from(["image", "resources", "retries", "timeout", "caching", "env", "node_selector", "junk"])
override = st.dictionaries(override_keys, st.one_of(values, st.dictionaries(st.sampled_from(RESOURCE_KEYS), values,
                                                                            max_size=3)), max_size=3)
stack = st.fixed_dictionaries({"adapter": st.sampled_from(["local", "kubernetes", "sagemaker", "vertex", "kfp", "nope"])},
                              optional={"defaults": override, "overrides": st.fixed_dictionaries(
                                  {}, optional={"all_steps": override, "steps": st.dictionaries(
                                      st.sampled_from(["make", "train", "report", "ghost"]), override, max_size=2)}),
                                  "settings": st.dictionaries(st.text(max_size=8), values, max_size=3),
                                  "artifact_root": values, "caching": values,
                                  "images": st.dictionaries(st.sampled_from(["builder", "registry", "require_digest",
                                                                             "registries", "x"]), values, max_size=2)})


@PROFILE
@given(config=st.one_of(st.dictionaries(stack_keys, values, max_size=3).map(lambda d: {"stacks": {"s": d}}),
                        stack.map(lambda d: {"stacks": {"s": d}, "default_stack": "s"})))
def test_stack_configs_of_any_shape_load_and_compile_or_refuse(fuzz_project, project: Path, config) -> None:
    from stackhop import pipeline

    @pipeline
    def simple():
        made = fuzz_project.make()
        fuzz_project.report(value=fuzz_project.train(data=made.outputs["data"]).output)

    try:
        text = yaml.safe_dump(config)
    except yaml.YAMLError:
        return
    (project / "stackhop.yaml").write_text(text)
    try:
        stackhop.compile(simple, "s")
    except StackhopError as exc:
        assert str(exc).strip()


@PROFILE
@given(text=st.one_of(st.text(max_size=200), st.binary(max_size=120).map(lambda b: b.decode("latin-1"))))
def test_any_text_as_a_stack_file_is_read_or_refused(project: Path, text: str) -> None:
    from stackhop.core.stack import load_config

    (project / "stackhop.yaml").write_bytes(text.encode("utf-8", "surrogateescape"))
    try:
        load_config()
    except StackhopError as exc:
        assert str(exc).strip()


def _mutate(data: Any, path: list[Any], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(data, dict) and data:
        key = sorted(data)[head % len(data)]
        return {**data, key: _mutate(data[key], rest, value)}
    if isinstance(data, list) and data:
        i = head % len(data)
        return [*data[:i], _mutate(data[i], rest, value), *data[i + 1:]]
    return value


@PROFILE
@given(path=st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=6), value=values)
def test_a_mutated_ir_is_refused_or_compiles_everywhere(fuzz_project, path, value) -> None:
    from stackhop import pipeline
    from stackhop.core.ir import Pipeline

    @pipeline
    def base():
        made = fuzz_project.make()
        fuzz_project.report(value=fuzz_project.train(data=made.outputs["data"]).output)

    original = json.loads(base.build().to_json())
    mutated = json.dumps(_mutate(original, path, value), allow_nan=True)
    compiles_everywhere_or_refuses(lambda: Pipeline.from_json(mutated))


NAMES = st.sampled_from(["text", "n", "out"] * 4 + ["data", "model", "ghost"])
PLACEHOLDER_KINDS = st.sampled_from(["InputValue", "InputPath", "OutputPath"] * 3 + ["InputUri", "OutputUri"])
command_text = st.one_of(st.text(max_size=10), st.sampled_from(
    ["$(HOME)", "$$(X)", "{{$.inputs.parameters['n']}}", "{{stackhop:input_value:n}}", "'", "\"", "a\nb", "}}", ""]))


def _command_item(draw_kind: str, name: str) -> Any:
    import stackhop as s

    return getattr(s, draw_kind)(name)


command_items = st.recursive(
    st.one_of(command_text, command_text, st.builds(_command_item, PLACEHOLDER_KINDS, NAMES), st.integers()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda xs: stackhop.Concat(*xs)),
        st.builds(lambda name, then, otherwise: stackhop.IfPresent(name, then, otherwise), NAMES,
                  st.lists(inner, max_size=2), st.lists(inner, max_size=2))),
    max_leaves=6)


@PROFILE
@given(command=st.lists(command_items, max_size=4), args=st.lists(command_items, max_size=4),
       image=st.sampled_from(["busybox:1.36"] * 4 + ["gcr.io/p/tool@sha256:" + "a" * 64, "Busy Box", ""]),
       given_inputs=st.sets(st.sampled_from(["text", "n", "data", "model"]), min_size=2, max_size=4),
       output_types=st.dictionaries(st.sampled_from(["out", "model"]),
                                    st.sampled_from(["int", "str", "Dataset", "Model", "bool"]), min_size=1, max_size=2))
def test_container_steps_with_any_command_compile_everywhere_or_refuse(
        fuzz_project, command, args, image, given_inputs, output_types) -> None:
    from stackhop import Dataset, Model, container_step, pipeline

    kinds = {"int": int, "str": str, "bool": bool, "Dataset": Dataset, "Model": Model}

    def build() -> Any:
        @pipeline
        def contained(n: int = 2):
            made = fuzz_project.make()
            sources = {"text": "words", "n": n, "data": made.outputs["data"], "model": made.output}
            container_step("tool", image, command, args, inputs={k: sources[k] for k in sorted(given_inputs)},
                           outputs={k: kinds[v] for k, v in output_types.items()})

        return contained

    compiles_everywhere_or_refuses(build)


DYNAMIC = '''
from stackhop import Collected, Dataset, Elif, Else, If, Input, Model, OneOf, Output, ParallelFor, importer, pipeline, step


@step
def configs(n: int = 2) -> list[dict]:
    return [{"lr": 0.1 * i} for i in range(n)]


@step
def fit(lr: float, model: Output[Model]) -> float:
    return lr


@step
def pick(scores: list[float], models: Input[list[Model]]) -> float:
    return max(scores)


@step
def use(data: Input[Dataset], best: float) -> str:
    return "ok"


@pipeline
def inner(n: int = 2):
    return configs(n=n).output


@pipeline
def dynamic(target: str = "a", uri: str = "s3://ml-artifacts/raw.csv"):
    with ParallelFor(inner(n=3).output, parallelism=2, key="lr") as c:
        f = fit(lr=c.lr)
    best = pick(scores=Collected(f.output), models=Collected(f.outputs["model"]))
    with ParallelFor([{"name": "small", "lrs": [0.1, 0.2]}]) as g:
        with ParallelFor(g.lrs) as lr:
            with If(lr > 0.15):
                h = fit(lr=lr)
    pick(scores=Collected(h.output), models=Collected(h.outputs["model"])).set_name("pick_grid")
    raw = importer(uri, Dataset, metadata={"rows": 3})
    with If(target == "a"):
        a = use(data=raw.output, best=best.output)
    with Else():
        b = use(data=raw.output, best=best.output)
    return {"chosen": OneOf(a.output, b.output), "scores": Collected(f.output)}
'''


@PROFILE
@given(path=st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=7), value=values)
def test_a_mutated_dynamic_ir_is_refused_or_compiles_wherever_its_features_run(write_pipeline, write_config,
                                                                              path, value) -> None:
    """Loops over outputs, Collected, OneOf, branches and importers: an edit anywhere is one stackhop error or a
    document every adapter that has those features compiles (SageMaker refuses them as capabilities)."""
    from stackhop.core.ir import Pipeline
    from stackhop.errors import CapabilityError

    write_config(STACKS)
    original = json.loads(write_pipeline(DYNAMIC, name="fuzz_dynamic").dynamic.build().to_json())
    mutated = json.dumps(_mutate(original, path, value), allow_nan=True)
    try:
        pipeline = Pipeline.from_json(mutated)
        for adapter in ADAPTERS:
            try:
                stackhop.compile(pipeline, adapter)
            except CapabilityError:
                continue
        event("compiled wherever its features run")
    except StackhopError as exc:
        assert str(exc).strip() and "Traceback" not in str(exc)
        event(f"refused: {type(exc).__name__}")
