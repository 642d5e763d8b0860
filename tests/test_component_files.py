"""Components from files: a KFP component someone else wrote plugs into a stackhop pipeline as it is.

A KFP v1 `component.yaml` (the shape of kubeflow/pipelines' `components/` tree) and the document
kfp's own compiler writes for one v2 component both load into a component called like a step;
`export_component` writes one back that stackhop and kfp both read. Files from elsewhere may hold
anything, so every malformed file is one sentence naming the file, the line, the field and the fix.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import stackhop
from stackhop import RunStatus
from stackhop.errors import ConfigError, PipelineDefinitionError

COUNT_WORDS = """\
name: Count words
description: Counts the words of a text file and keeps the lines holding a pattern.
inputs:
- {name: Text file, type: Dataset, description: the text to read}
- {name: Pattern, type: String, default: the, optional: true}
- {name: Min count, type: Integer, default: '1'}
- {name: Label, type: String, optional: true}
outputs:
- {name: Word count, type: Integer}
- {name: Matches, type: CSV}
implementation:
  container:
    image: busybox:1.36
    command:
    - sh
    - -ec
    - |
      wc -w < "$0" | tr -d ' ' > "$1"
      grep -- "$2" "$0" > "$3" || true
      echo "$4 $5" >> "$3"
    - {inputPath: Text file}
    - {outputPath: Word count}
    - {inputValue: Pattern}
    - {outputPath: Matches}
    args:
    - {concat: [--min=, {inputValue: Min count}]}
    - if:
        cond: {isPresent: Label}
        then: [{concat: [label=, {inputValue: Label}]}]
        else: [unlabelled]
"""

WORDS = """
from pathlib import Path

from stackhop import Artifact, Dataset, Input, Output, load_component, pipeline, step

count_words = load_component(Path(__file__).parent / "count_words.yaml")


@step
def write_text(text: Output[Dataset]) -> None:
    open(text.path, "w").write("the cat\\nsat on\\nthe mat\\n")


@step
def report(count: int, matches: Input[Artifact]) -> str:
    return f"{count}|" + open(matches.path).read()


@pipeline
def words():
    text = write_text().outputs["text"]
    counted = count_words(text_file=text, label="x")
    report(count=counted.outputs["word_count"], matches=counted.outputs["matches"])
    count_words(text_file=text, pattern="sat", min_count=3)
"""

STACKS = """
stacks:
  sm:
    adapter: sagemaker
    artifact_root: s3://ml-artifacts/stackhop
    defaults: {image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1.0"}
    settings: {region: us-east-1, role_arn: "arn:aws:iam::123456789012:role/SageMakerRole"}
  k8s:
    adapter: kubernetes
    artifact_root: s3://ml-artifacts/stackhop
    defaults: {image: "registry.example.com/ml/train:1.0"}
    settings: {namespace: ml}
  vertex:
    adapter: vertex
    artifact_root: gs://ml-artifacts/stackhop
    defaults: {image: "us-docker.pkg.dev/p/ml/train:1.0"}
    settings: {project: my-project, location: europe-west4}
  kfp:
    adapter: kfp
    artifact_root: gs://ml-artifacts/stackhop
    defaults: {image: "registry.example.com/ml/train:1.0"}
    settings: {host: "http://localhost:8080"}
  dev:
    adapter: local
"""


@pytest.fixture
def words(project: Path, write_pipeline):
    (project / "count_words.yaml").write_text(COUNT_WORDS)
    return write_pipeline(WORDS)


def test_a_kfp_v1_component_file_loads_with_typed_inputs_defaults_and_optional_inputs(words) -> None:
    component = words.count_words
    assert component.name == "count-words" and component.display_name == "Count words"
    assert [(p.name, p.type, p.direction, p.default, p.optional) for p in component.params] == [
        ("text_file", "Dataset", "in", None, False),
        ("pattern", "str", "in", "the", True),
        ("min_count", "int", "in", 1, True),
        ("label", "str", "in", None, True),
        ("word_count", "int", "out", None, False),
        ("matches", "Artifact", "out", None, False),  # a type no artifact class has (CSV) is an Artifact
    ]


def test_its_command_is_the_files_command_with_stackhops_placeholders(words) -> None:
    from stackhop.core import ir

    step = words.words.build().step("count-words")
    assert step.kind == "container" and step.container.image == "busybox:1.36"
    assert step.container.command[:2] == ("sh", "-ec")
    assert step.container.command[3:] == (
        ir.Placeholder(placeholder="input_path", name="text_file"),
        ir.Placeholder(placeholder="output_path", name="word_count"),
        ir.Placeholder(placeholder="input_value", name="pattern"),
        ir.Placeholder(placeholder="output_path", name="matches"))
    assert step.container.args == (
        ir.Concat(concat=("--min=", ir.Placeholder(placeholder="input_value", name="min_count"))),
        ir.IfPresent(if_present="label",
                     then=(ir.Concat(concat=("label=", ir.Placeholder(placeholder="input_value", name="label"))),),
                     otherwise=("unlabelled",)))
    assert step.display_name == "Count words"


def test_a_pipeline_using_it_runs_locally_and_a_python_step_reads_its_outputs(words) -> None:
    handle = stackhop.run(words.words)

    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    assert handle.artifact("count-words", "word_count").value == 6
    assert handle.artifact("report", "output").load() == "6|the cat\nthe mat\n--min=1 label=x\n"
    with open(handle.artifact("count-words-2", "matches").uri.removeprefix("file://")) as f:
        assert f.read() == "sat on\n--min=3 unlabelled\n", "the second call: its own inputs, the else branch"


@pytest.mark.parametrize("stack", ["sm", "k8s", "vertex", "kfp", "dev"])
def test_a_pipeline_using_it_compiles_for_every_built_in_stack_kind(words, write_config, stack) -> None:
    write_config(STACKS)

    first = stackhop.compile(words.words, stack)
    again = stackhop.compile(words.words, stack)

    assert first.files == again.files, "the same pipeline compiles to the same bytes"
    text = "".join(v if isinstance(v, str) else v.decode() for v in first.files.values())
    assert "busybox:1.36" in text, "the component's own image, whatever the stack's default"


KFP_COMPONENT = '''
from typing import Optional

from kfp import compiler, dsl


@dsl.container_component
def shout(text: str, data: dsl.Input[dsl.Dataset], loud: dsl.OutputPath(str), copy: dsl.Output[dsl.Dataset],
          times: int = 2, suffix: Optional[str] = None):
    return dsl.ContainerSpec(
        image="busybox",
        command=["sh", "-ec", 'for i in $(seq "$2"); do printf "%s" "$0" | tr a-z A-Z; done > "$1"; cp "$3" "$4"; '
                              'echo "$5" >> "$4"'],
        args=[text, loud, times, data.path, copy.path,
              dsl.IfPresentPlaceholder(input_name="suffix", then=[dsl.ConcatPlaceholder(["suffix=", suffix])],
                                       else_=["no suffix"])])


compiler.Compiler().compile(shout, {out!r})
'''

SHOUTING = """
from pathlib import Path

from stackhop import Dataset, Input, Output, load_component, pipeline, step

shout = load_component(Path(__file__).parent / "shout.yaml")


@step
def rows(data: Output[Dataset]) -> None:
    open(data.path, "w").write("a,b\\n")


@step
def heard(loud: str, copy: Input[Dataset]) -> str:
    return loud + "|" + open(copy.path).read()


@pipeline
def shouting():
    made = shout(text="hey", data=rows().outputs["data"], suffix="!")
    heard(loud=made.outputs["loud"], copy=made.outputs["copy"])
    shout(text="ho", data=rows().outputs["data"], times=1)
"""


def test_a_component_kfp_compiled_loads_and_runs_locally(project: Path, write_pipeline) -> None:
    pytest.importorskip("kfp", reason="kfp (the test extra) writes the v2 component document this spec reads")
    import subprocess
    import sys

    script = project / "make_shout.py"
    script.write_text(KFP_COMPONENT.format(out=str(project / "shout.yaml")))
    subprocess.run([sys.executable, str(script)], check=True, capture_output=True)
    module = write_pipeline(SHOUTING)
    assert [(p.name, p.type, p.direction, p.default) for p in module.shout.params] == [
        ("suffix", "str", "in", None), ("text", "str", "in", None), ("times", "int", "in", 2),
        ("data", "Dataset", "in", None), ("loud", "str", "out", None), ("copy", "Dataset", "out", None)]

    handle = stackhop.run(module.shouting)

    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    assert handle.artifact("heard", "output").load() == "HEYHEY|a,b\nsuffix=!\n"
    assert handle.artifact("shout-2", "loud").value == "HO"


CONTAINER_COMPONENT = """
from typing import Optional

from stackhop import ContainerSpec, Dataset, IfPresent, Input, Output, OutputPath, container_component


@container_component
def tally(data: Input[Dataset], total: OutputPath(int), report: Output[Dataset], scale: float = 1.5,
          verbose: bool = False, tags: list = ["a"], note: Optional[str] = None):
    \"\"\"Sums a column.

    Written once, shared as a file.\"\"\"
    return ContainerSpec(image="busybox:1.36",
                         command=["sh", "-c", 'awk "{s+=\\\\$1} END {print s}" "$0" > "$1"; cp "$0" "$2"',
                                  data.path, total, report.path],
                         args=[f"--scale={scale}", IfPresent("note", then=["--note", note], otherwise=["--quiet"]),
                               data.uri, verbose, tags])
"""


def _by_direction(component) -> tuple[list, list]:
    """Inputs in order and outputs in order (a file lists all inputs before the outputs); `= None` is optional."""
    shown = [(p.name, p.type, p.direction, p.default, p.has_default or p.optional) for p in component.params]
    return [p for p in shown if p[2] == "in"], [p for p in shown if p[2] == "out"]


def _steps_of(component, **inputs):
    from stackhop.core import tracing
    from stackhop.core.ir_build import _step

    with tracing.trace("roundtrip"):
        task = component(**inputs)
        return _step(task, "roundtrip")


def test_export_then_load_reads_back_the_same_component(project: Path, write_pipeline) -> None:
    module = write_pipeline(CONTAINER_COMPONENT)
    path = stackhop.export_component(module.tally, project / "tally.yaml")

    loaded = stackhop.load_component(path)

    assert _by_direction(loaded) == _by_direction(module.tally)
    assert loaded.description == "Sums a column. Written once, shared as a file."
    assert _steps_of(loaded, data="s3://x", note="n") == _steps_of(module.tally, data="s3://x", note="n")
    stackhop.export_component(loaded, project / "again.yaml")
    assert (project / "again.yaml").read_text() == path.read_text(), "exporting what was loaded writes the same file"


def test_a_loaded_v1_file_exports_and_loads_back_the_same(words, project: Path) -> None:
    path = stackhop.export_component(words.count_words, project / "exported.yaml")
    loaded = stackhop.load_component(path)

    assert _by_direction(loaded) == _by_direction(words.count_words) and loaded.display_name == "Count words"
    assert _steps_of(loaded, text_file="s3://x") == _steps_of(words.count_words, text_file="s3://x")


def test_kfp_reads_the_exported_file(project: Path, write_pipeline) -> None:
    components = pytest.importorskip("kfp.components", reason="kfp (the test extra) is the reader this spec asks")
    module = write_pipeline(CONTAINER_COMPONENT)
    path = stackhop.export_component(module.tally, project / "tally.yaml")

    spec = components.load_component_from_file(str(path)).component_spec

    assert {k: (v.type, v.default, v.optional) for k, v in spec.inputs.items()} == {
        "data": ("system.Dataset@0.0.1", None, False), "scale": ("Float", 1.5, True),
        "verbose": ("Boolean", False, True), "tags": ("List", ["a"], True), "note": ("String", None, True)}
    assert {k: v.type for k, v in spec.outputs.items()} == {"total": "Integer", "report": "system.Dataset@0.0.1"}
    assert spec.implementation.container.image == "busybox:1.36"


def test_a_python_step_is_not_exported_as_a_component(write_pipeline, project: Path) -> None:
    module = write_pipeline("""
        from stackhop import step

        @step
        def train(x: int) -> int:
            return x
    """)
    with pytest.raises(PipelineDefinitionError, match=r"step 'train' is a Python @step, which needs stackhop inside its "
                                                      r"image; .* write it as a @container_component"):
        stackhop.export_component(module.train, project / "train.yaml")


MINIMAL = """\
name: echo
inputs:
- {name: msg, type: String}
outputs:
- {name: out, type: String}
implementation:
  container:
    image: busybox
    command: [sh, -c, 'echo "$0" > "$1"', {inputValue: msg}, {outputPath: out}]
"""


@pytest.mark.parametrize("edit, message", [
    (("{inputValue: msg}", "{inputFile: msg}"),
     r"c\.yaml:9: implementation\.container\.command\[3\]\.inputFile is not a placeholder KFP component files have; "
     r"use one of inputValue, .* \(did you mean 'inputValue'\?\)\."),
    (("{inputValue: msg}", "{inputValue: massage}"),
     r"c\.yaml:9: implementation\.container\.command\[3\]\.inputValue names 'massage', which is not a declared input "
     r"\(declared: msg\); declare it under inputs\."),
    (("{outputPath: out}", "{outputPath: msg}"),
     r"command\[4\]\.outputPath names 'msg', which is not a declared output \(declared: out\)"),
    (("type: String}\noutputs", "type: [String]}\noutputs"),
     r"c\.yaml:3: inputs\[0\]\.type must be a type name, not a list; write String, Integer"),
    (("image: busybox", "image: 7"), r"c\.yaml:8: implementation\.container\.image must be an image reference, not int 7"),
    (("  container:", "  contianer:"),
     r"c\.yaml:7: implementation\.contianer is not a field this format has; use container, graph "
     r"\(did you mean 'container'\?\)\."),
    (("- {name: msg, type: String}", "- {name: msg, type: Integer, default: lots}"),
     r"c\.yaml:3: inputs\[0\]\.default is 'lots', which is not a int; write a int default, or change the input's type\."),
    (("- {name: out, type: String}", "- {name: msg, type: String}"),
     r"c\.yaml:5: outputs\[0\]\.name 'msg' is the name of inputs\[0\] too"),
    (("command: [sh, -c, 'echo \"$0\" > \"$1\"', {inputValue: msg}, {outputPath: out}]",
      "command: [{if: {cond: {inputValue: msg}, then: [x]}}]"),
     r"implementation\.container\.command\[0\]\.if\.cond\.inputValue is not a field this format has; use isPresent"),
    (("inputs:", "environment: {}\ninputs:"), r"c\.yaml:2: environment is not a field this format has"),
], ids=["unknown placeholder key", "undeclared input", "undeclared output", "type of the wrong kind", "image not text",
        "misspelled field", "default of the wrong type", "name used twice", "if on a value", "unknown top-level key"])
def test_a_malformed_v1_file_is_one_sentence_naming_file_line_field_and_fix(project: Path, edit, message) -> None:
    old, new = edit
    assert old in MINIMAL
    (project / "c.yaml").write_text(MINIMAL.replace(old, new))
    with pytest.raises(ConfigError, match=message):
        stackhop.load_component(project / "c.yaml")


@pytest.mark.parametrize("text, message", [
    ("- just\n- a list\n", r"<component text>:1: the document is a list, not a component; a KFP component file is a "
                           r"mapping"),
    ("a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
     "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n", r"expands to more than 100,000 values"),
    ("name: x\nimplementation: {container: {image: busybox, command: &c [sh, *c]}}\n",
     r"nested more than 64 levels deep \(or an alias refers to itself\)"),
    ("name: x\nimplementation: {graph: {tasks: {}}}\n",
     r"implementation\.graph is a graph component \(a pipeline of other components\); load each of its components"),
    ("name: x\nimplementation: {container: {image: busybox, command: [!!python/object:os.system echo]}}\n",
     r"not valid YAML|is not allowed"),
], ids=["not a mapping", "billion laughs", "recursive alias", "graph component", "python tag"])
def test_hostile_component_text_is_one_sentence(text, message) -> None:
    with pytest.raises(ConfigError, match=message):
        stackhop.load_component_from_text(text)


def test_a_kfp_python_component_is_refused_with_what_to_write_instead(project: Path) -> None:
    pytest.importorskip("kfp", reason="kfp (the test extra) writes the v2 component document this spec reads")
    import subprocess
    import sys

    script = project / "make_py.py"
    script.write_text(textwrap.dedent(f"""
        from kfp import compiler, dsl

        @dsl.component(base_image="python:3.11")
        def add(a: int, b: int) -> int:
            return a + b

        compiler.Compiler().compile(add, {str(project / "add.yaml")!r})
    """))
    subprocess.run([sys.executable, str(script)], check=True, capture_output=True)
    with pytest.raises(ConfigError, match=r"add\.yaml:\d+: deploymentSpec\.executors\.exec-add\.container\.\w+\[\d+\] uses "
                                          r"the placeholder .* \(a KFP Python component needs kfp inside its image: "
                                          r"write it as a @step instead\)\."):
        stackhop.load_component(project / "add.yaml")


def test_a_missing_file_says_so(project: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: the file does not exist; check the path\."):
        stackhop.load_component(project / "nope.yaml")


V2_MINIMAL = """\
components:
  comp-echo:
    executorLabel: exec-echo
    inputDefinitions:
      parameters:
        msg: {parameterType: STRING}
    outputDefinitions:
      parameters:
        out: {parameterType: STRING}
deploymentSpec:
  executors:
    exec-echo:
      container:
        image: busybox
        command: [sh, -c, 'echo "$0" > "$1"']
        args: ["{{$.inputs.parameters['msg']}}", "{{$.outputs.parameters['out'].output_file}}"]
pipelineInfo: {name: echo}
root: {}
schemaVersion: 2.1.0
"""


@pytest.mark.parametrize("edit, message", [
    ("{{$.inputs.parameters['msg']}}", None),
    ("{{$.inputs.parameters['nope']}}",
     r"<component text>:16: deploymentSpec\.executors\.exec-echo\.container\.args\[0\] uses "
     r"\"\{\{\$\.inputs\.parameters\['nope'\]\}\}\", which names no declared input parameter 'nope'; declare it in "
     r"inputDefinitions\."),
    ("{{$.inputs.parameters['msg'].metadata}}", r"args\[0\] uses the placeholder .*which stackhop cannot fill"),
    ('{\\"IfPresent\\": {\\"InputName\\": \\"ghost\\", \\"Then\\": [\\"x\\"]}}',
     r"args\[0\] asks whether input 'ghost' is present, which the component does not declare"),
], ids=["as compiled", "undeclared input", "unknown placeholder", "IfPresent of nothing"])
def test_a_malformed_v2_document_is_one_sentence_too(edit, message) -> None:
    text = V2_MINIMAL.replace("{{$.inputs.parameters['msg']}}", edit)
    if message is None:
        assert [p.name for p in stackhop.load_component_from_text(text).params] == ["msg", "out"]
        return
    with pytest.raises(ConfigError, match=message):
        stackhop.load_component_from_text(text)


def test_a_v2_document_of_a_whole_pipeline_is_refused(project: Path) -> None:
    text = V2_MINIMAL.replace("components:\n", "components:\n  comp-other: {executorLabel: exec-echo}\n")
    with pytest.raises(ConfigError, match=r"<component text>:1: components holds 2 components; load_component reads one "
                                          r"component; compile a single @dsl.container_component with kfp\."):
        stackhop.load_component_from_text(text)
