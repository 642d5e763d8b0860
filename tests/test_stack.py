"""Specifications of stack configuration (stackhop.yaml).

Where the file is found, which stack is chosen, how `${VAR}` values are filled in, how every
mistake is reported (file, line, key, and what would have been accepted), and how a stack's
`defaults` and `overrides` change each step of a pipeline.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from stackhop.adapters.local.adapter import LocalSettings
from stackhop.core.ir import Resources
from stackhop.core.stack import (
    ConfigFile, StackConfig, StepOverride, apply_stack, find_config, json_schema, load_config, load_stack,
)
from stackhop.errors import ConfigError

GiB = 2**30
MiB = 2**20

# What an "unknown key" error must offer instead: exactly the keys valid at that spot.
STEP_KEYS = set(StepOverride.model_fields)  # caching, env, image, node_selector, resources, retries, timeout
STACK_KEYS = set(StackConfig.model_fields)  # adapter, artifact_root, caching, defaults, description, ...
TOP_KEYS = set(ConfigFile.model_fields)  # default_stack, promotion, stacks, version
LOCAL_SETTINGS_KEYS = set(LocalSettings.model_fields)  # code, max_workers, secrets, ...


def reported_line(message: str) -> int:
    """The line number an error message gives for stackhop.yaml ("...stackhop.yaml:LINE...")."""
    match = re.search(r"stackhop\.yaml:(\d+)", message)
    assert match, f"the error does not name stackhop.yaml:<line>: {message}"
    return int(match.group(1))


def line_of(path: Path, text: str) -> int:
    """1-based line of the first line of `path` containing `text`."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


def key_line(path: Path, key: str) -> int:
    """1-based line of `path` where the mapping key `key` is written."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if re.match(rf"\s*{re.escape(key)}\s*:", line):
            return number
    raise AssertionError(f"no key {key!r} in {path}")


THREE_STEP_PIPELINE = """
    from stackhop import pipeline, step

    @step
    def prep() -> int:
        return 1

    @step(resources={"cpu": "4", "memory": "8Gi"}, env={"LEVEL": "step", "FROM_STEP": "yes"}, timeout=60)
    def train(x: int) -> int:
        return x + 1

    @step(resources={"cpu": "2"}, env={"FROM_STEP": "yes"})
    def report(y: int) -> str:
        return str(y)

    @pipeline(env={"LEVEL": "pipeline", "FROM_PIPELINE": "yes"}, timeout=300, retries=5, cache=True)
    def three_steps():
        a = prep()
        b = train(x=a.output)
        report(y=b.output)
"""


# ------------------------------------------------------------------------- finding the file


def test_config_is_found_upward_from_a_subdirectory_of_the_cwd(project, write_config, monkeypatch):
    path = write_config(
        """\
        stacks:
          dev:
            description: the project's dev stack
        """
    )
    deep = project / "src" / "models" / "deep"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)

    loaded = load_config()
    assert loaded.path == path.resolve()
    assert loaded.project_dir == project.resolve()

    stack = load_stack("dev")
    assert stack.config.description == "the project's dev stack"
    assert stack.project_dir == project.resolve()
    # relative artifact roots are relative to the project (the config's folder), not the cwd
    assert stack.artifact_root == (project / ".stackhop" / "artifacts").resolve().as_uri()


def test_an_explicit_config_path_wins_over_the_file_found_upward(project, write_config, capsys):
    write_config(
        """\
        stacks:
          near: {}
        """
    )
    elsewhere = project / "configs"
    elsewhere.mkdir()
    other = elsewhere / "team.yaml"
    other.write_text("stacks:\n  far:\n    description: from the explicit file\n")

    loaded = load_config(other)
    assert set(loaded.file.stacks) == {"far"}
    assert load_stack("far", config=str(other)).config.description == "from the explicit file"
    with pytest.raises(ConfigError, match="near"):
        load_stack("near", config=str(other))

    from stackhop.cli.main import main

    assert main(["--config", str(other), "stacks", "list", "--json"]) == 0
    names = {row["name"] for row in json.loads(capsys.readouterr().out)}
    assert "far" in names and "near" not in names


def test_a_stack_needs_no_settings_section(project, write_config):
    """Most stacks only name an adapter; leaving out `settings:` means the adapter's defaults."""
    write_config(
        """\
        stacks:
          dev:
            adapter: local
          bare: {}
        """
    )
    dev = load_stack("dev")
    assert dev.config.adapter == "local"
    assert dev.adapter_settings.code == "source"
    assert load_stack("bare").adapter_settings.max_workers is None


# ------------------------------------------------------------------------- choosing a stack


CHOICE_CONFIG = """\
    default_stack: staging
    stacks:
      dev:
        description: dev
      staging:
        description: staging
      prod:
        description: prod
    """


def test_default_stack_is_used_when_no_name_is_given(project, write_config):
    write_config(CHOICE_CONFIG)
    assert load_stack().name == "staging"


def test_STACKHOP_STACK_overrides_default_stack(project, write_config, monkeypatch):
    write_config(CHOICE_CONFIG)
    monkeypatch.setenv("STACKHOP_STACK", "prod")
    assert load_stack().name == "prod"


def test_an_explicit_stack_name_beats_STACKHOP_STACK(project, write_config, monkeypatch):
    write_config(CHOICE_CONFIG)
    monkeypatch.setenv("STACKHOP_STACK", "prod")
    assert load_stack("dev").name == "dev"


def test_without_a_config_file_the_builtin_local_stack_runs_into_project_dot_stackhop(project, write_pipeline):
    assert find_config(project) is None, "a stackhop.yaml above the temp dir would spoil this test"
    stack = load_stack()
    assert (stack.name, stack.source, stack.config.adapter) == ("local", "built-in", "local")
    root = (project / ".stackhop" / "artifacts").resolve()
    assert stack.artifact_root == root.as_uri()

    module = write_pipeline(
        """
        from stackhop import Dataset, Output, pipeline, step

        @step
        def write_rows(rows: Output[Dataset]) -> int:
            with open(rows.path, "w") as f:
                f.write("a,b\\n1,2\\n")
            return 1

        @pipeline
        def builtin_local():
            write_rows()
        """
    )
    from stackhop.core.api import run

    handle = run(module.builtin_local)
    assert handle.status.value == "SUCCEEDED", handle.state().message
    assert handle.stack.name == "local"
    dataset = handle.artifact("write_rows", "rows")
    assert dataset.uri.startswith(root.as_uri() + "/builtin-local/")
    assert Path(unquote(urlparse(dataset.uri).path)).read_text() == "a,b\n1,2\n"
    assert (project / ".stackhop" / "runs.db").is_file()


# ------------------------------------------------------------------------- ${VAR} interpolation


def test_env_vars_are_interpolated_with_defaults_and_double_dollar_escapes(project, write_config, monkeypatch):
    monkeypatch.setenv("SH_TEST_BUCKET", "my-bucket")
    monkeypatch.setenv("SH_TEST_WORKERS", "3")
    monkeypatch.delenv("SH_TEST_UNSET", raising=False)
    write_config(
        """\
        stacks:
          dev:
            artifact_root: s3://${SH_TEST_BUCKET}/artifacts
            description: "${SH_TEST_UNSET:-fallback} costs $$5, literally $${SH_TEST_BUCKET}"
            settings:
              max_workers: ${SH_TEST_WORKERS}
        """
    )
    stack = load_stack("dev")
    assert stack.config.artifact_root == "s3://my-bucket/artifacts"
    assert stack.config.description == "fallback costs $5, literally ${SH_TEST_BUCKET}"
    assert stack.adapter_settings.max_workers == 3


def test_a_missing_variable_is_an_error_naming_file_line_and_key(project, write_config, monkeypatch):
    monkeypatch.delenv("SH_TEST_MISSING", raising=False)
    path = write_config(
        """\
        stacks:
          dev:
            adapter: local
            artifact_root: s3://${SH_TEST_MISSING}/artifacts
        """
    )
    with pytest.raises(ConfigError) as err:
        load_stack("dev")
    message = str(err.value)
    assert reported_line(message) == line_of(path, "SH_TEST_MISSING") == 4
    assert "stacks.dev.artifact_root" in message
    assert "SH_TEST_MISSING" in message


# ------------------------------------------------------------------------- reporting mistakes

UNKNOWN_KEY_CASES = {
    "top level": (
        """\
        version: 1
        colour: red
        stacks:
          dev: {}
        """,
        "colour",
        TOP_KEYS,
    ),
    "inside a stack": (
        """\
        stacks:
          dev:
            adapter: local
            artifact_rot: /tmp/x
        """,
        "stacks.dev.artifact_rot",
        STACK_KEYS,
    ),
    "inside overrides.steps.<name>": (
        """\
        stacks:
          dev:
            overrides:
              steps:
                train:
                  resources: {cpu: "1"}
                  gpus: 2
        """,
        "stacks.dev.overrides.steps.train.gpus",
        STEP_KEYS,
    ),
    "inside adapter settings": (
        """\
        stacks:
          dev:
            adapter: local
            settings:
              max_workers: 2
              workers: 3
        """,
        "stacks.dev.settings.workers",
        LOCAL_SETTINGS_KEYS,
    ),
    "an unknown key holding a block mapping": (
        """\
        stacks:
          dev:
            adapter: local
            overides:
              steps:
                train:
                  retries: 1
        """,
        "stacks.dev.overides",
        STACK_KEYS,
    ),
    "inside defaults, after a nested block": (
        """\
        stacks:
          dev:
            defaults:
              resources:
                cpu: "1"
                memory: 1Gi
              colour: blue
        """,
        "stacks.dev.defaults.colour",
        STEP_KEYS,
    ),
}


@pytest.mark.parametrize("text, key, allowed", UNKNOWN_KEY_CASES.values(), ids=UNKNOWN_KEY_CASES.keys())
def test_an_unknown_key_is_an_error_naming_file_line_key_and_allowed_keys(project, write_config, text, key, allowed):
    path = write_config(text)
    offending = key.rsplit(".", 1)[-1]
    with pytest.raises(ConfigError) as err:
        load_stack("dev")
    message = str(err.value)
    assert "stackhop.yaml" in message
    assert reported_line(message) == key_line(path, offending), message
    assert repr(key) in message
    listed = set(re.findall(r"[a-z_]+", message.split("allowed here:", 1)[1]))
    assert listed == allowed, message


def test_invalid_yaml_is_an_error_with_its_line(project, write_config):
    write_config(
        """\
        stacks:
          dev:
            adapter: local
            description: this: is not yaml
        """
    )
    with pytest.raises(ConfigError) as err:
        load_stack("dev")
    assert "not valid YAML" in str(err.value)
    assert reported_line(str(err.value)) == 4


def test_an_unknown_adapter_suggests_the_closest_installed_one(project, write_config):
    path = write_config(
        """\
        stacks:
          dev:
            adapter: locl
        """
    )
    with pytest.raises(ConfigError) as err:
        load_stack("dev")
    message = str(err.value)
    assert "'locl'" in message
    assert "Did you mean 'local'?" in message
    assert reported_line(message) == line_of(path, "adapter: locl")
    assert "stacks.dev.adapter" in message


def test_an_unknown_stack_lists_the_known_stacks(project, write_config):
    write_config(CHOICE_CONFIG)
    with pytest.raises(ConfigError) as err:
        load_stack("qa")
    message = str(err.value)
    assert "'qa'" in message
    for known in ("local", "dev", "staging", "prod"):
        assert known in message


def test_an_unknown_stack_without_a_config_file_says_only_local_exists(project):
    with pytest.raises(ConfigError) as err:
        load_stack("dev")
    assert "'dev'" in str(err.value)
    assert "known stacks are local" in str(err.value)


def test_an_ambiguous_quantity_in_overrides_is_an_error_naming_file_and_line(project, write_config):
    path = write_config(
        """\
        stacks:
          dev:
            overrides:
              steps:
                train:
                  resources:
                    cpu: "1"
                    memory: 16GB
        """
    )
    with pytest.raises(ConfigError) as err:
        load_stack("dev")
    message = str(err.value)
    assert "16GB" in message and "16Gi" in message  # says what to write instead
    assert "stacks.dev.overrides.steps.train.resources" in message
    # the `resources:` key the message names, or the `memory:` line itself
    assert reported_line(message) in {key_line(path, "resources"), key_line(path, "memory")}, message


# ------------------------------------------------------------------------- applying a stack


def test_a_dev_stack_shrinks_train_while_other_steps_keep_their_resources(project, write_config, write_pipeline):
    module = write_pipeline(THREE_STEP_PIPELINE)
    write_config(
        """\
        stacks:
          dev:
            overrides:
              steps:
                train:
                  resources: {cpu: 500m, memory: 512Mi}
        """
    )
    ir = module.three_steps.build()
    effective = apply_stack(ir, load_stack("dev"))

    train = effective.step("train").settings.resources
    assert (train.cpu_millicores, train.memory_bytes) == (500, 512 * MiB)
    assert effective.step("report").settings.resources == Resources(cpu_millicores=2000, cpu_limit_millicores=2000)
    assert effective.step("prep").settings.resources is None
    # the pipeline as written is untouched
    assert ir.step("train").settings.resources.cpu_millicores == 4000


PRECEDENCE_CONFIG = """\
    stacks:
      dev:
        defaults:
          env: {LEVEL: stack-defaults, FROM_STACK: "yes"}
          resources: {memory: 1Gi}
          timeout: 600
          caching: false
        overrides:
          all_steps:
            env: {LEVEL: all_steps, FROM_ALL: "yes"}
            retries: 2
          steps:
            train:
              env: {LEVEL: steps.train}
              resources: {cpu: 500m, memory: 512Mi}
              retries: 0
    """


def test_override_precedence_steps_name_over_all_steps_over_step_over_pipeline_over_stack_defaults(
    project, write_config, write_pipeline
):
    module = write_pipeline(THREE_STEP_PIPELINE)
    write_config(PRECEDENCE_CONFIG)
    effective = apply_stack(module.three_steps.build(), load_stack("dev"))
    train, report, prep = (effective.step(n).settings for n in ("train", "report", "prep"))

    # overrides.steps.<name> beats overrides.all_steps and the step's own settings
    assert train.retry.max_retries == 0
    assert train.env["LEVEL"] == "steps.train"
    assert (train.resources.cpu_millicores, train.resources.memory_bytes) == (500, 512 * MiB)
    # overrides.all_steps beats the step's own settings and the pipeline's defaults
    assert report.retry.max_retries == prep.retry.max_retries == 2
    assert report.env["LEVEL"] == prep.env["LEVEL"] == "all_steps"
    # the step's own settings beat the pipeline's defaults
    assert train.timeout_seconds == 60
    assert report.resources.cpu_millicores == 2000
    # the pipeline's defaults beat the stack's defaults
    assert report.timeout_seconds == prep.timeout_seconds == 300
    assert train.caching is report.caching is prep.caching is True
    # stack defaults fill what nobody else sets, field by field inside resources
    assert report.resources.memory_bytes == prep.resources.memory_bytes == 1 * GiB
    assert prep.resources.cpu_millicores is None


def test_env_maps_are_merged_across_every_layer(project, write_config, write_pipeline):
    module = write_pipeline(THREE_STEP_PIPELINE)
    write_config(PRECEDENCE_CONFIG)
    effective = apply_stack(module.three_steps.build(), load_stack("dev"))

    assert effective.step("train").settings.env == {
        "LEVEL": "steps.train", "FROM_STACK": "yes", "FROM_PIPELINE": "yes", "FROM_STEP": "yes", "FROM_ALL": "yes",
    }
    assert effective.step("prep").settings.env == {
        "LEVEL": "all_steps", "FROM_STACK": "yes", "FROM_PIPELINE": "yes", "FROM_ALL": "yes",
    }


def test_an_override_for_a_step_the_pipeline_lacks_names_it_and_lists_the_real_steps(
    project, write_config, write_pipeline
):
    module = write_pipeline(THREE_STEP_PIPELINE)
    write_config(
        """\
        stacks:
          dev:
            overrides:
              steps:
                trian:
                  retries: 1
        """
    )
    with pytest.raises(ConfigError) as err:
        apply_stack(module.three_steps.build(), load_stack("dev"))
    message = str(err.value)
    assert "'trian'" in message
    assert "prep, report, train" in message


def test_json_schema_describes_the_config_file(project):
    schema = json_schema()
    json.dumps(schema)  # plain JSON
    assert schema["type"] == "object"
    assert "stacks" in schema["properties"]
    assert schema.get("additionalProperties") is False  # editors flag unknown top-level keys too
