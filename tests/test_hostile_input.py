"""Malformed input, the way users and attackers actually write it: every case is exit 2, no
traceback, one `error:` sentence that names the thing at fault (file:line, key, step, value).

Each case is a small project: a `stackhop.yaml`, a pipeline file, and one command line. They
run in-process through the CLI's `main`, the way `stackhop ...` runs them.
"""

from __future__ import annotations

import itertools
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from stackhop.cli.main import main

GOOD = """
from stackhop import step, pipeline

@step
def count(n: int = 3) -> int:
    return n

@step
def double(x: int) -> int:
    return 2 * x

@pipeline
def counting(n: int = 3, label: str = "x", ratio: float = 0.5, dry: bool = False):
    double(x=count(n=n).output)
"""

K8S = """
stacks:
  k8s:
    adapter: kubernetes
    defaults: {image: "registry.example.com/ml/train:1.0"}
"""


@dataclass
class Case:
    id: str
    argv: list[str]
    expect: tuple[str, ...]
    config: str | bytes | None = K8S
    files: dict[str, str | bytes] = field(default_factory=dict)
    pipeline: str | None = GOOD


CASES: list[Case] = []
_n = itertools.count()


def case(id: str, argv: str | list[str], *expect: str, **kw) -> None:
    CASES.append(Case(id, argv.split() if isinstance(argv, str) else argv, expect, **kw))


def stack_yaml(id: str, text: str | bytes, *expect: str, stack: str = "k8s") -> None:
    """A broken stackhop.yaml, read by `compile`."""
    case(id, f"compile {{py}} -s {stack} -o out", *expect,
         config=textwrap.dedent(text) if isinstance(text, str) else text)


def pipeline_file(id: str, source: str, *expect: str, command: str = "compile {py} -s k8s -o out") -> None:
    case(id, command, *expect, pipeline=textwrap.dedent(source))


def step_body(id: str, decorator: str, *expect: str, call: str = "count()", extra: str = "") -> None:
    """A pipeline whose one step is declared or called wrongly."""
    pipeline_file(id, f"""
        from stackhop import step, pipeline, Input, Output, Dataset, ParallelFor
        {extra}
        @step{decorator}
        def count(n: int = 3) -> int:
            return n

        @pipeline
        def counting(n: int = 3):
            {call}
    """, *expect)


# ------------------------------------------------------------------ stack YAML: syntax and structure
stack_yaml("yaml-syntax", "stacks:\n  k8s: {adapter: kubernetes\n", "stackhop.yaml:", "not valid YAML")
stack_yaml("yaml-tab-indent", "stacks:\n\tk8s:\n\t\tadapter: kubernetes\n", "stackhop.yaml:2", "not valid YAML")
stack_yaml("yaml-unclosed-quote", 'stacks:\n  k8s:\n    adapter: "kubernetes\n', "stackhop.yaml:", "not valid YAML")
stack_yaml("yaml-top-level-list", "- k8s\n- prod\n", "stackhop.yaml:1", "must be a mapping", "list")
stack_yaml("yaml-top-level-scalar", "just some words\n", "stackhop.yaml:1", "must be a mapping", "str")
stack_yaml("yaml-top-level-int", "42\n", "stackhop.yaml:1", "must be a mapping")
stack_yaml("yaml-two-documents", K8S + "---\nstacks: {}\n", "stackhop.yaml:6", "more than one YAML document")
stack_yaml("yaml-duplicate-stack", K8S + "  k8s:\n    adapter: local\n", "stackhop.yaml:6", "lines 3 and 6", "k8s")
stack_yaml("yaml-duplicate-setting", """
    stacks:
      k8s:
        adapter: kubernetes
        adapter: local
    """, "stackhop.yaml:5", "adapter", "lines 4 and 5")
stack_yaml("yaml-billion-laughs", "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
           "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
           "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nstacks: {k8s: {settings: {x: *g}}}\n",
           "stackhop.yaml:", "more than 100,000 values")
stack_yaml("yaml-deep-nesting", "stacks:\n  k8s:\n    settings: " + "[" * 200 + "]" * 200 + "\n",
           "stackhop.yaml:", "nested")
stack_yaml("yaml-deep-mapping", "stacks:\n  k8s:\n    settings: " + "{a: " * 100 + "1" + "}" * 100 + "\n",
           "stackhop.yaml:", "nested")
stack_yaml("yaml-recursive-alias", "stacks: &s\n  k8s: *s\n", "stackhop.yaml:", "alias")
stack_yaml("yaml-latin1", "stacks:\n  k8s:\n    description: caf\xe9\n".encode("latin-1"), "stackhop.yaml", "not UTF-8")
stack_yaml("yaml-utf16", K8S.encode("utf-16"), "stackhop.yaml", "UTF-8")
stack_yaml("yaml-nul-byte", "stacks:\n  k8s:\n    adapter: kube\x00rnetes\n", "stackhop.yaml", "not allowed")
stack_yaml("yaml-python-tag", "stacks: !!python/object/apply:os.system ['echo pwned']\n", "stackhop.yaml:1", "python/object")
stack_yaml("yaml-unknown-tag", "stacks: !include other.yaml\n", "stackhop.yaml:1")
stack_yaml("yaml-unterminated-interpolation", """
    stacks:
      k8s:
        adapter: kubernetes
        artifact_root: ${ARTIFACT_ROOT
    """, "stackhop.yaml:5", "stacks.k8s.artifact_root", "unterminated")
stack_yaml("yaml-malformed-interpolation", """
    stacks:
      k8s:
        adapter: kubernetes
        description: ${1BAD}
    """, "stackhop.yaml:5", "stacks.k8s.description", "malformed")
stack_yaml("yaml-unset-variable", """
    stacks:
      k8s:
        adapter: kubernetes
        artifact_root: ${STACKHOP_SURELY_UNSET_VAR}
    """, "stackhop.yaml:5", "STACKHOP_SURELY_UNSET_VAR", "is not set")
stack_yaml("yaml-merge-of-scalar", """
    base: &base 5
    stacks:
      k8s:
        <<: *base
        adapter: kubernetes
    """, "stackhop.yaml:")

# ------------------------------------------------------------------ stack YAML: keys and values
stack_yaml("stack-unknown-top-key", K8S + "stcks: {}\n", "stackhop.yaml:6", "stcks")
stack_yaml("stack-unknown-stack-key", """
    stacks:
      k8s:
        adapter: kubernetes
        artefact_root: /tmp/x
    """, "stackhop.yaml:5", "artefact_root")
stack_yaml("stack-version-2", "version: 2\n" + K8S, "stackhop.yaml:1", "version")
stack_yaml("stack-stacks-is-list", "stacks:\n  - k8s\n", "stackhop.yaml:", "stacks")
stack_yaml("stack-entry-is-string", "stacks:\n  k8s: kubernetes\n", "stackhop.yaml:2", "k8s")
stack_yaml("stack-adapter-unknown", "stacks:\n  k8s:\n    adapter: kubernets\n", "stackhop.yaml:3", "kubernets")
stack_yaml("stack-adapter-number", "stacks:\n  k8s:\n    adapter: 5\n", "stackhop.yaml:3", "adapter")
stack_yaml("stack-caching-word", "stacks:\n  k8s:\n    adapter: kubernetes\n    caching: sometimes\n",
           "stackhop.yaml:4", "caching")
stack_yaml("stack-defaults-list", "stacks:\n  k8s:\n    adapter: kubernetes\n    defaults: [a, b]\n",
           "stackhop.yaml:4", "defaults")
stack_yaml("stack-default-stack-unknown", "default_stack: prod\n" + K8S, "prod", "not defined",
           stack="prod")
stack_yaml("stack-name-unknown", K8S, "stack 'staging' is not defined", "k8s", stack="staging")
stack_yaml("settings-unknown-key", K8S + "    settings: {namespce: ml}\n", "stackhop.yaml:6", "namespce")
stack_yaml("settings-wrong-type", K8S + "    settings: {poll_seconds: soon}\n", "stackhop.yaml:6", "poll_seconds")
stack_yaml("settings-list", K8S + "    settings: [a]\n", "stackhop.yaml:6", "settings")
stack_yaml("sagemaker-role-missing", """
    stacks:
      sm:
        adapter: sagemaker
        artifact_root: s3://b/x
        defaults: {image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/t:1"}
        settings: {region: us-east-1}
    """, "settings.role_arn", stack="sm")
stack_yaml("vertex-settings-typo", """
    stacks:
      gcp:
        adapter: vertex
        artifact_root: gs://b/x
        defaults: {image: "us-docker.pkg.dev/p/ml/t:1"}
        settings: {project: p, regoin: europe-west4}
    """, "stackhop.yaml:7", "regoin", stack="gcp")
stack_yaml("kfp-host-not-url", """
    stacks:
      kfp:
        adapter: kfp
        artifact_root: gs://b/x
        defaults: {image: "r.example.com/t:1"}
        settings: {host: [not, a, url]}
    """, "stackhop.yaml:7", "host", stack="kfp")
for key, value, name in [
    ("retries", "two", "retries"), ("retries", "-1", "retries"), ("timeout", ".inf", "timeout"),
    ("timeout", "-5", "timeout"), ("timeout", ".nan", "timeout"), ("caching", "[1]", "caching"),
    ("env", "[A, B]", "env"), ("env", "{'1BAD': x}", "1BAD"), ("env", "{'A B': x}", "A B"),
    ("resources", "{cpu: inf}", "cpu"), ("resources", "{cpu: .nan}", "cpu"), ("resources", "{cpu: -1}", "cpu"),
    ("resources", "{cpu: lots}", "cpu"), ("resources", "{memory: lots}", "memory"),
    ("resources", "{memory: -1Gi}", "memory"), ("resources", "{gpu: -1}", "gpu"), ("resources", "{gpu: 1.5}", "gpu"),
    ("resources", "{accelerator: 5}", "accelerator"), ("resources", "{accelerator: nvidia-tesla-nope}", "nvidia-tesla-nope"),
    ("resources", "{cpus: 2}", "cpus"), ("node_selector", "[a]", "node_selector"),
    ("secrets", "{DB: nokey}", "secret-name/key"), ("image", "{parent_imag: python}", "parent_imag"),
    ("image", "{apt_packages: curl}", "apt_packages"), ("image", "5", "image"),
]:
    stack_yaml(f"override-{key}-{name}-{value}", K8S + f"    overrides:\n      all_steps: {{{key}: {value}}}\n",
               "stackhop.yaml:", name)
stack_yaml("override-unknown-step", K8S + "    overrides:\n      steps: {trian: {retries: 1}}\n",
           "overrides.steps.trian", "count")
stack_yaml("override-steps-list", K8S + "    overrides:\n      steps: [count]\n", "stackhop.yaml:7", "steps")
stack_yaml("override-unknown-key", K8S + "    overrides:\n      all_steps: {retry: 1}\n", "stackhop.yaml:7", "retry")
stack_yaml("images-unknown-builder", K8S + "    images: {builder: dockr}\n", "dockr")
stack_yaml("images-unknown-key", K8S + "    images: {registy: x}\n", "stackhop.yaml:6", "registy")
stack_yaml("promotion-gates-typo", K8S + "    promotion: {gates: {aproval: true}}\n", "stackhop.yaml:6", "aproval")

# ------------------------------------------------------------------ pipeline files
pipeline_file("py-syntax-error", "from stackhop import step\n@step\ndef f(:\n    pass\n", ".py:3:", "^")
pipeline_file("py-indentation", "from stackhop import step\n@step\ndef f():\nreturn 1\n", ".py:4", "indent")
pipeline_file("py-unclosed-paren", "from stackhop import step\nx = (1,\n", ".py:2", "never closed")
pipeline_file("py-import-error", "import sklearnn\n", "sklearnn", "No module named")
pipeline_file("py-misspelt-stackhop-import", "from stackhop import stepp\n", "stepp")
pipeline_file("py-raises-at-import", "raise RuntimeError('database unreachable')\n", "database unreachable")
pipeline_file("py-zero-division-at-import", "x = 1 / 0\n", "ZeroDivisionError")
pipeline_file("py-sys-exit-at-import", "import sys\nsys.exit(3)\n", "exit")
pipeline_file("py-name-error", "from stackhop import pipeline\n@pipeline\ndef p():\n    undefined_thing()\n",
              "undefined_thing", ".py:4", "pipeline 'p'")
pipeline_file("py-no-pipeline", "x = 1\n", "defines no pipeline")
pipeline_file("py-two-pipelines", GOOD + "\n@pipeline\ndef other():\n    count()\n", "counting", "other")
case("py-named-pipeline-missing", "compile {py}:nope -s k8s -o out", "nope", "counting")
case("py-file-missing", "compile missing_pipeline.py -s k8s -o out", "missing_pipeline.py")
case("py-directory", "compile . -s k8s -o out", ".")
case("py-not-python", "compile stackhop.yaml -s k8s -o out", "stackhop.yaml")
pipeline_file("py-latin1-source", b"# caf\xe9\nx = 1\n".decode("latin-1"), "defines no pipeline")
pipeline_file("py-recursion-at-import", "def f():\n    return f()\nf()\n", "RecursionError")
pipeline_file("py-step-called-outside-pipeline", GOOD + "\ncount()\n", "count", "pipeline")

# ------------------------------------------------------------------ DSL values
step_body("dsl-retries-string", '(retries="2")', "count", "retries")
step_body("dsl-retries-negative", "(retries=-1)", "count", "retries")
step_body("dsl-retries-float", "(retries=1.5)", "count", "retries")
step_body("dsl-timeout-inf", '(timeout=float("inf"))', "count", "timeout")
step_body("dsl-timeout-zero", "(timeout=0)", "count", "timeout")
step_body("dsl-timeout-string", '(timeout="1h")', "count", "timeout")
step_body("dsl-accelerator-int", '(resources={"accelerator": 5})', "count", "accelerator")
step_body("dsl-accelerator-unknown", '(resources={"accelerator": "tpu-v99"})', "count", "tpu-v99")
step_body("dsl-cpu-inf", '(resources={"cpu": "inf"})', "count", "cpu")
step_body("dsl-cpu-nan", '(resources={"cpu": "NaN"})', "count", "cpu")
step_body("dsl-cpu-float-inf", '(resources={"cpu": float("inf")})', "count", "cpu")
step_body("dsl-cpu-negative", '(resources={"cpu": -2})', "count", "cpu")
step_body("dsl-cpu-list", '(resources={"cpu": [1]})', "count", "cpu")
step_body("dsl-memory-garbage", '(resources={"memory": "a lot"})', "count", "memory")
step_body("dsl-gpu-string", '(resources={"gpu": "two"})', "count", "gpu")
step_body("dsl-resources-unknown-key", '(resources={"cpus": 2})', "count", "cpus")
step_body("dsl-resources-list", '(resources=["cpu", 2])', "count", "resources")
step_body("dsl-cpu-kwarg", '(cpu=2)', "hostile_", "resources={'cpu': ...}")
step_body("dsl-unknown-keyword", "(retires=2)", "retires", "did you mean 'retries'?")
step_body("dsl-env-not-mapping", '(env=["A=1"])', "count", "env")
step_body("dsl-env-bad-name", '(env={"1A": "x"})', "count", "1A")
step_body("dsl-env-value-none", '(env={"A": None})', "count", "A")
step_body("dsl-cache-string", '(cache="no")', "count", "cache")
step_body("dsl-name-empty", '(name="")', "name")
step_body("dsl-name-slash", '(name="../etc")', "../etc")
step_body("dsl-image-int", "(image=5)", "count", "image")
step_body("dsl-image-newline", '(image="python:3.11\\nRUN rm -rf /")', "count", "image")
step_body("dsl-set-name-int", "", "5", call="count().set_name(5)")
step_body("dsl-set-name-traversal", "", "../../x", call='count().set_name("../../x")')
step_body("dsl-set-retry-string", "", "retr", call='count().set_retry("3")')
step_body("dsl-set-timeout-nan", "", "timeout", call='count().set_timeout(float("nan"))')
step_body("dsl-set-caching-int", "", "caching", call="count().set_caching(3)")
step_body("dsl-set-env-bad-name", "", "BAD NAME", call='count().set_env("BAD NAME", "x")')
step_body("dsl-set-env-value-none", "", "A", call='count().set_env("A", None)')
step_body("dsl-set-display-name-int", "", "display", call="count().set_display_name(7)")
step_body("dsl-add-toleration-bad", "", "toleration", call='count().add_toleration(key="a", operator="Maybe")')
step_body("dsl-add-node-selector-int", "", "node", call="count().add_node_selector(1, 2)")
step_body("dsl-set-labels-list", "", "labels", call='count().set_labels(["a"])')
step_body("dsl-secret-env-bad", "", "count", "A B", call='count().set_secret_env("A B", "s", "k")')
step_body("dsl-wrong-kwarg", "", "count", "m", call="count(m=3)")
step_body("dsl-too-many-args", "", "count", call="count(1, 2, 3)")
step_body("dsl-wrong-type-constant", "", "count", "n", call='count(n="three")')
step_body("dsl-nan-constant", "", "count", "n", call='count(n=float("nan"))')
step_body("dsl-if-on-output", "", ".py:", "If", call="print('x') if count().output else None")
step_body("dsl-bool-of-output", "", ".py:", call="bool(count().output)")
step_body("dsl-len-of-output", "", ".py:", call="len(count().output)")
step_body("dsl-after-not-a-task", "", "after", call='count().after("other")')
step_body("dsl-loop-over-int", "", "ParallelFor", call="ParallelFor(5)")
pipeline_file("dsl-artifact-fed-none", """
    from stackhop import step, pipeline, Input, Dataset

    @step
    def train(data: Input[Dataset]) -> int:
        return 1

    @pipeline
    def p():
        train(data=None)
""", "train", "data")
pipeline_file("dsl-artifact-fed-loop-item", """
    from stackhop import step, pipeline, Input, Dataset, ParallelFor

    @step
    def train(data: Input[Dataset]) -> int:
        return 1

    @pipeline
    def p():
        with ParallelFor(["a", "b"]) as item:
            train(data=item)
""", "train", "data")
pipeline_file("dsl-artifact-fed-int", """
    from stackhop import step, pipeline, Input, Dataset

    @step
    def train(data: Input[Dataset]) -> int:
        return 1

    @pipeline
    def p():
        train(data=5)
""", "train", "data")
pipeline_file("dsl-parameter-unsupported-type", """
    from stackhop import step, pipeline

    @step
    def count(n: int = 3) -> int:
        return n

    @pipeline
    def p(when: object = None):
        count()
""", "when")
pipeline_file("dsl-parameter-default-nan", """
    from stackhop import step, pipeline

    @step
    def count(x: float = 1.0) -> float:
        return x

    @pipeline
    def p(x: float = float("nan")):
        count(x=x)
""", "x")
pipeline_file("dsl-required-input-missing", """
    from stackhop import step, pipeline

    @step
    def count(rows: int) -> int:
        return rows

    @pipeline
    def p():
        count()
""", "count", "rows")

# ------------------------------------------------------------------ CLI misuse and values
case("cli-unknown-option", "compile {py} -s k8s --frobnicate", "--frobnicate")
case("cli-unknown-command", "compil {py}", "compil")
case("cli-missing-argument", "compile", "target")
case("cli-run-param-unknown", "run {py} -s local -p nn=3", "nn", "counting")
case("cli-run-param-no-equals", "run {py} -s local -p n", "n")
case("cli-run-param-int-word", "run {py} -s local -p n=three", "'n'", "int")
case("cli-run-param-float-word", "run {py} -s local -p ratio=half", "ratio", "float")
case("cli-run-param-bool-word", "run {py} -s local -p dry=maybe", "dry", "true or false")
case("cli-run-param-int-float", "run {py} -s local -p n=2.5", "'n'", "int")
case("cli-run-param-twice-unknown-stack", "run {py} -s nowhere", "nowhere")
case("cli-config-missing", "--config nope.yaml compile {py} -s k8s", "nope.yaml")
case("cli-config-directory", "--config . compile {py} -s k8s", "folder")
case("cli-compile-out-under-file", "compile {py} -s k8s -o /dev/null/x", "/dev/null/x")
case("cli-runs-show-unknown", "runs show 20990101-000000-abcdef", "20990101-000000-abcdef")
case("cli-runs-show-traversal", "runs show ../../etc/passwd", "../../etc/passwd")
case("cli-runs-show-empty", ["runs", "show", ""], "run")
case("cli-logs-unknown-run", "logs 20990101-000000-abcdef count", "20990101-000000-abcdef")
case("cli-logs-traversal-run", "logs ../../../../canary", "canary")
case("cli-cancel-unknown", "cancel 20990101-000000-abcdef", "20990101-000000-abcdef")
case("cli-promote-unknown-release", "promote r-nope --to k8s", "r-nope")
case("cli-release-show-unknown", "release show r-nope", "r-nope")
case("cli-stacks-show-unknown", "stacks show nowhere", "nowhere")
case("cli-diff-unknown-stack", "diff {py} -s nowhere -s k8s", "nowhere")
case("cli-graph-missing-file", "graph nope.py", "nope.py")


# ------------------------------------------------------------------ found by a user trial
stack_yaml("override-retries-over-100", K8S + "    overrides:\n      all_steps: {retries: 101}\n",
           "stackhop.yaml:7", "retries", "100")
stack_yaml("defaults-retries-over-100", K8S.replace("defaults: {", "defaults: {retries: 101, "),
           "stackhop.yaml:5", "retries", "100")
stack_yaml("override-timeout-huge", K8S + "    overrides:\n      all_steps: {timeout: 1e300}\n",
           "stackhop.yaml:7", "timeout", "315360000")
stack_yaml("override-memory-huge", K8S + "    overrides:\n      all_steps: {resources: {memory: 100000000Ei}}\n",
           "stackhop.yaml:7", "memory", "64-bit")
stack_yaml("sagemaker-gs-root", """
    stacks:
      sm:
        adapter: sagemaker
        artifact_root: gs://b/x
        defaults: {image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/t:1"}
        settings: {region: us-east-1, role_arn: "arn:aws:iam::123456789012:role/SageMakerRole"}
    """, "stack 'sm'", "s3://", stack="sm")
case("cli-empty-stack-name", ["compile", "{py}", "-s", "", "-o", "out"], "stack name is empty", "k8s")
case("cli-stacks-show-empty-name", ["stacks", "show", ""], "stack name is empty")
step_body("dsl-sys-exit-in-pipeline", "", "pipeline 'counting'", "sys.exit('bad')", ".py:",
          call="count()\n            import sys; sys.exit('bad')")
step_body("dsl-bare-sys-exit-in-pipeline", "", "pipeline 'counting'", "sys.exit(None)",
          call="count()\n            raise SystemExit")
step_body("dsl-timeout-huge", "(timeout=10**20)", "count", "timeout", "ten years")
step_body("dsl-memory-huge", '(resources={"memory": 10**40})', "count", "memory", "64-bit")
step_body("dsl-cpu-huge", '(resources={"cpu": 10**30})', "count", "cpu", "64-bit")
step_body("dsl-int-beyond-64-bits", "", "count", "64 bits", call="count(n=10**30)")
step_body("dsl-deeply-nested-constant", "", "count", "nested more than 100 levels",
          call="count(n=functools.reduce(lambda v, _: [v], range(2000), []))", extra="import functools")
step_body("dsl-parallelism-string", "", "parallelism", "whole number",
          call="count()\n            with ParallelFor([1, 2], parallelism='2'):\n                count()")
step_body("dsl-resource-op-kind-int", "", "kind", "'r'",
          call="resource_op('r', {'apiVersion': 'v1', 'kind': 5, 'metadata': {'name': 'x'}})",
          extra="from stackhop import resource_op")
step_body("dsl-resource-op-list", "", "'r'", "one Kubernetes object",
          call="resource_op('r', [{'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'x'}}])",
          extra="from stackhop import resource_op")
step_body("dsl-resource-op-metadata-string", "", "metadata", "'r'",
          call="resource_op('r', {'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': 'x'})",
          extra="from stackhop import resource_op")
step_body("dsl-container-command-string", "", "'c'", "command", "list of strings",
          call="container_step('c', 'python:3.11', command='echo hi')", extra="from stackhop import container_step")
step_body("dsl-container-outputs-list", "", "'c'", "outputs", "dict",
          call="container_step('c', 'python:3.11', command=['echo'], outputs=['o'])",
          extra="from stackhop import container_step")
step_body("dsl-set-image-with-space", "", "step 'count'", "ml train", call='count().set_image("ml train")')
step_body("dsl-image-shell", '(image="python 3.11; rm -rf /")', "step 'count'", "python 3.11; rm -rf /")
case("cli-run-param-twice", "run {py} -s local -p n=1 -p n=2", "'n'", "twice")
case("cli-run-param-no-name", "run {py} -s local -p =3", "no name")
case("cli-runs-list-negative-limit", "runs list --limit -5", "--limit")
LISTS = GOOD.replace('dry: bool = False', 'dry: bool = False, xs: list = []')
for value, what in [("nan", "NaN"), ("inf", "NaN and infinity"), ("1e400", "NaN and infinity")]:
    case(f"cli-run-param-float-{value}", f"run {{py}} -s local -p ratio={value}", "ratio", what)
case("cli-run-param-list-nan", "run {py} -s local -p xs=[1,NaN]", "xs", "NaN", pipeline=LISTS)
case("cli-run-param-int-huge", f"run {{py}} -s local -p n={10**30}", "'n'", "64 bits")
case("cli-run-param-deep-list", "run {py} -s local -p xs=" + "[" * 5000 + "]" * 5000, "xs", "not one", pipeline=LISTS)


# Runs that exist, for the cases about logs and artifacts of a real run.
RUN_CASES = [
    ("logs-step-traversal", ["logs", "{run}", "../../../../../../canary"], "canary"),
    ("logs-other-runs-step", ["logs", "{run}", "../{other}/count"], "count"),
    ("logs-unknown-step", ["logs", "{run}", "train"], "train", "count"),
    ("logs-bad-index", ["logs", "{run}", "count[abc]"], "count[abc]"),
    ("logs-nul", ["logs", "{run}", "count\x00"], "count"),
    ("runs-show-percent", ["runs", "show", "%"], "no run '%'"),
    ("runs-show-underscore-percent", ["runs", "show", "_%"], "no run '_%'"),
    ("runs-show-underscores", ["runs", "show", "{day}___"], "___"),
    ("runs-show-one-char-wildcard", ["runs", "show", "{day}-______-______"], "______"),
    ("logs-percent-run", ["logs", "%", "count"], "no run '%'"),
    ("cancel-percent-run", ["cancel", "%"], "no run '%'"),
]


@pytest.fixture
def project_with(project: Path):
    def make(c: Case) -> list[str]:
        py = f"hostile_{next(_n)}.py"
        if c.config is not None:
            (project / "stackhop.yaml").write_bytes(c.config if isinstance(c.config, bytes) else c.config.encode())
        if c.pipeline is not None:
            (project / py).write_text(c.pipeline, encoding="latin-1" if "caf\xe9" in c.pipeline else "utf-8")
        for name, text in c.files.items():
            (project / name).write_bytes(text if isinstance(text, bytes) else text.encode())
        return [a.replace("{py}", py) for a in c.argv]

    return make


def _one_sentence(code: int, err: str, expect: tuple[str, ...]) -> None:
    assert code == 2, f"exit {code}:\n{err}"
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith(("error: ", "Error: "))]
    assert len(errors) == 1, err
    for part in expect:
        assert part in err, f"{part!r} not in:\n{err}"


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_malformed_input_is_one_sentence_and_exit_2(c: Case, project_with, capsys, monkeypatch) -> None:
    monkeypatch.delenv("STACKHOP_SURELY_UNSET_VAR", raising=False)
    code = main(project_with(c))
    _one_sentence(code, capsys.readouterr().err, c.expect)


@pytest.fixture
def two_runs(project: Path, capsys) -> tuple[str, str]:
    (project / "stackhop.yaml").write_text(K8S)
    flow = f"hostile_runs_{next(_n)}.py"
    (project / flow).write_text(GOOD)
    ids = []
    for _ in range(2):
        assert main(["run", flow, "-s", "local", "--json"]) == 0
        import json

        ids.append(json.loads(capsys.readouterr().out)["run_id"])
    (project.parent / "canary").write_text("outside the store")
    return ids[0], ids[1]


@pytest.mark.parametrize("id,argv,expect", [(c[0], c[1], c[2:]) for c in RUN_CASES], ids=[c[0] for c in RUN_CASES])
def test_log_keys_cannot_leave_their_run(id, argv, expect, two_runs, capsys) -> None:
    run, other = two_runs
    code = main([a.replace("{run}", run).replace("{other}", other).replace("{day}", run[:8]) for a in argv])
    err = capsys.readouterr().err
    _one_sentence(code, err, expect)
    assert "outside the store" not in err


def test_the_corpus_holds_at_least_150_cases() -> None:
    assert len(CASES) + len(RUN_CASES) >= 150
    assert len({c.id for c in CASES}) == len(CASES)
