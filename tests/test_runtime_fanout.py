"""Fan-out over a list a step returns at run time, and fan-in with Collected, as kfp users write them.

`ParallelFor(task.output)` runs its body once per item the step returned; `Collected(x.output)`
hands a step after the loop every iteration's value in iteration order (flattened over nested
loops). The scheduler grows the run's graph when the list arrives (`train[*]` until then), so
local runs, the Kubernetes driver and PipelineSpec emulation share one implementation; the
PipelineSpec has kfp's own shapes (parameterIterator over a task output, LIST DAG outputs);
SageMaker, whose definitions are fixed when submitted, refuses both in one sentence.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import stackhop
from stackhop import RunStatus, StepStatus
from stackhop.errors import CapabilityError, PipelineDefinitionError, ValidationError
from stackhop.testing.kubernetes import FakeKubernetes

from conftest import emulated_stacks, k8s_stack

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sweep_pipeline.py"
SWEEP = EXAMPLE.read_text()
STACKS = emulated_stacks("fanout")
DEPLOYS = ("to-prod", "to-staging", "hold")


@pytest.fixture
def sweep(write_pipeline, write_config):
    write_config(STACKS)
    return write_pipeline(SWEEP).sweep


def outcome(handle) -> tuple[int, str]:
    """How many configs the sweep tried and the deploy branch it took, after checking what it decided on the way:
    every iteration's score reached pick_best in order, and the returned model is the best config's."""
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    steps = handle.steps()
    trained = [k for k in steps if k.startswith("train")]
    assert trained == [f"train[{i}]" for i in range(len(trained))]
    scores = [handle.artifact(k, "output").value for k in trained]
    best = handle.artifact("pick_best", "output").value
    assert best["seen"] == scores and best["score"] == max(scores)
    model = handle.outputs["output"]
    assert (model.type, model.step) == ("Model", "fit_final")
    assert json.loads(_read(model.uri))["lr"] == best["lr"]
    ran = [d for d in DEPLOYS if steps[d].status in (StepStatus.SUCCEEDED, StepStatus.CACHED)]
    assert len(ran) == 1 and all(steps[d].status == StepStatus.SKIPPED for d in DEPLOYS if d not in ran)
    return len(trained), ran[0]


def _read(uri: str) -> str:
    from stackhop.core.artifacts import ArtifactStore

    return ArtifactStore.for_uri(uri).read_bytes(uri).decode()


def test_each_config_a_step_returns_is_trained_and_the_best_is_deployed_locally(sweep) -> None:
    handle = stackhop.run(sweep, cache=False, progress=False)
    assert outcome(handle) == (4, "to-staging")


def test_the_list_decides_how_many_iterations_run(sweep) -> None:
    handle = stackhop.run(sweep, parameters={"grid_size": 6, "target": "prod"}, cache=False, progress=False)
    assert outcome(handle) == (6, "to-prod")


def test_an_empty_list_runs_no_iteration_and_collects_an_empty_list(write_pipeline, project) -> None:
    module = write_pipeline(SWEEP.replace("def sweep(", "def unused(") + """

@step
def count(scores: list[float]) -> int:
    return len(scores)


@pipeline
def nothing_to_try(grid_size: int = 0):
    configs = make_configs(grid_size=grid_size)
    with ParallelFor(configs.output) as config:
        trained = train(lr=config.lr, epochs=config.epochs, seed=1)
    count(scores=Collected(trained.output))
""")
    handle = stackhop.run(module.nothing_to_try, cache=False, progress=False)
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    assert not [k for k in handle.steps() if k.startswith("train")]
    assert handle.artifact("count", "output").value == 0


def test_a_second_run_serves_every_iteration_from_the_cache(sweep) -> None:
    first = stackhop.run(sweep, progress=False)
    assert first.status == RunStatus.SUCCEEDED, first.state().message
    second = stackhop.run(sweep, progress=False)
    assert outcome(second) == (4, "to-staging")
    assert {k: s.status for k, s in second.steps().items() if k.startswith("train")} == {
        f"train[{i}]": StepStatus.CACHED for i in range(4)}


def test_the_sweep_runs_through_the_fake_kubernetes_server(sweep, project, write_config) -> None:
    with FakeKubernetes(version="1.37", time_scale=0.05) as kube:
        k8s_stack(write_config, kube, project)
        handle = stackhop.run(sweep, cache=False, progress=False)
        assert handle.wait(timeout=240) == RunStatus.SUCCEEDED, handle.state().message
        assert outcome(handle) == (4, "to-staging")
        jobs = [j["metadata"]["annotations"].get("stackhop.dev/step-name") for j in kube.objects("Job")]
        assert jobs.count("train") == 4, "one Job per item the step returned"


@pytest.mark.parametrize("stack", ["vertex", "kfp"])
def test_the_sweep_runs_from_its_compiled_pipeline_spec(sweep, gcs, stack) -> None:
    handle = stackhop.run(sweep, stack, parameters={"target": "dev"}, emulate=True, cache=False, progress=False)
    assert outcome(handle) == (4, "hold")


def test_sagemaker_refuses_a_loop_over_a_step_output_naming_the_step_and_who_can(sweep, aws) -> None:
    with pytest.raises(CapabilityError) as caught:
        stackhop.compile(sweep, "sm")
    message = str(caught.value)
    assert "step 'train' needs runtime_fan_out" in message and "'sagemaker'" in message
    assert "kfp, kubernetes, local, vertex" in message
    assert message.count(". ") == 0, "one sentence"


KFP_SWEEP = """
from typing import Dict, List

from kfp import dsl


@dsl.component(base_image="python:3.11")
def make_configs(grid_size: int) -> List[Dict]:
    return []


@dsl.component(base_image="python:3.11")
def train(lr: float, epochs: int, seed: int) -> float:
    return 1.0


@dsl.component(base_image="python:3.11")
def pick_best(scores: List[float], configs: List[Dict]) -> Dict:
    return {}


@dsl.component(base_image="python:3.11")
def fit_final(config: Dict, seed: int, model: dsl.Output[dsl.Model]) -> float:
    return 1.0


@dsl.pipeline
def sweep(grid_size: int = 4, seed: int = 7) -> dsl.Model:
    configs = make_configs(grid_size=grid_size)
    with dsl.ParallelFor(configs.output, parallelism=2) as config:
        trained = train(lr=config.lr, epochs=config.epochs, seed=seed)
    best = pick_best(scores=dsl.Collected(trained.output), configs=configs.output)
    return fit_final(config=best.output, seed=seed).outputs["model"]
"""


def _ours(pdef, stack: str = "vertex") -> dict:
    """Our PipelineSpec without stackhop's own input (the code archive), which kfp's components have no need of."""
    from stackhop.adapters.pipelinespec.compiler import CODE_PARAM

    def strip(node):
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if CODE_PARAM not in k}
        return [strip(x) for x in node] if isinstance(node, list) else node

    return strip(json.loads(stackhop.compile(pdef, stack).files["pipeline.json"]))


def _kfp(write_pipeline, source: str, name: str, tmp_path) -> dict:
    """kfp's compile of the same pipeline, with its `Output` spelled as stackhop spells a return value."""
    from kfp import compiler

    compiler.Compiler().compile(getattr(write_pipeline(source), name), str(tmp_path / "kfp.yaml"))
    text = json.dumps(yaml.safe_load((tmp_path / "kfp.yaml").read_text()))
    return json.loads(text.replace('-Output"', '-output"').replace('-Output-', '-output-').replace('"Output"', '"output"'))


def _kfps_part(ours: dict, theirs: dict) -> bool:
    """Ours holds what kfp's holds, and besides only stackhop's own records (`stackhop_meta`), which carry the
    metadata and digests of the artifacts beside them."""
    def drop(d: dict) -> dict:
        return {k: drop(v) if isinstance(v, dict) else v for k, v in d.items() if "stackhop_meta" not in k}
    return drop(ours) == theirs


def _no_ref(task: dict) -> dict:
    return {k: v for k, v in task.items() if k not in ("componentRef", "cachingOptions")}


def test_the_loop_and_the_fan_in_have_kfps_own_shape(sweep, write_pipeline, tmp_path) -> None:
    theirs, ours = _kfp(write_pipeline, KFP_SWEEP, "sweep", tmp_path), _ours(sweep)
    assert _no_ref(ours["root"]["dag"]["tasks"]["for-loop-1"]) == _no_ref(theirs["root"]["dag"]["tasks"]["for-loop-1"])
    loop_theirs, loop_ours = theirs["components"]["comp-for-loop-1"], ours["components"]["comp-for-loop-1"]
    for key in ("inputDefinitions", "outputDefinitions"):
        assert loop_ours[key] == loop_theirs[key], key
    assert loop_ours["dag"]["outputs"] == loop_theirs["dag"]["outputs"]
    assert loop_ours["dag"]["tasks"]["train"]["inputs"] == loop_theirs["dag"]["tasks"]["train"]["inputs"]
    pick_theirs, pick_ours = theirs["root"]["dag"]["tasks"]["pick-best"], ours["root"]["dag"]["tasks"]["pick-best"]
    assert pick_ours["inputs"] == pick_theirs["inputs"] and pick_ours["dependentTasks"] == pick_theirs["dependentTasks"]
    assert (ours["components"]["comp-pick-best"]["inputDefinitions"]
            == theirs["components"]["comp-pick-best"]["inputDefinitions"])
    assert ours["root"]["dag"]["outputs"] == theirs["root"]["dag"]["outputs"]


def test_kfps_loader_reads_the_compiled_sweep(sweep) -> None:
    from kfp.components import load_component_from_text

    for stack in ("vertex", "kfp"):
        files = stackhop.compile(sweep, stack).files
        (name,) = [n for n in ("pipeline.json", "pipeline.yaml") if n in files]
        assert load_component_from_text(files[name].decode().split("\n---\n")[0]).name == "sweep"


NESTED = """
from stackhop import Collected, ParallelFor, pipeline, step


@step
def datasets() -> list[str]:
    return ["iris", "wine"]


@step
def folds(dataset: str) -> list[int]:
    return list(range(len(dataset) - 2))


@step
def score(dataset: str, fold: int) -> str:
    return f"{dataset}/{fold}"


@step
def summary(scores: list[str]) -> str:
    return ",".join(scores)


@pipeline
def cross_validate():
    names = datasets()
    with ParallelFor(names.output) as name:
        splits = folds(dataset=name)
        with ParallelFor(splits.output, parallelism=1) as fold:
            scored = score(dataset=name, fold=fold)
    summary(scores=Collected(scored.output))
"""


@pytest.fixture
def nested(write_pipeline, write_config):
    write_config(STACKS)
    return write_pipeline(NESTED).cross_validate


NESTED_RESULT = "iris/0,iris/1,wine/0,wine/1"


def test_an_inner_loop_iterates_over_a_list_each_outer_iteration_returns(nested) -> None:
    handle = stackhop.run(nested, cache=False, progress=False)
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    assert [k for k in handle.steps() if k.startswith("score")] == ["score[0][0]", "score[0][1]", "score[1][0]",
                                                                    "score[1][1]"]
    assert handle.artifact("summary", "output").value == NESTED_RESULT, "flattened, in iteration order"


@pytest.mark.parametrize("stack", ["vertex", "kfp"])
def test_nested_loops_over_outputs_run_from_the_compiled_pipeline_spec(nested, gcs, stack) -> None:
    handle = stackhop.run(nested, stack, emulate=True, cache=False, progress=False)
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    assert handle.artifact("summary", "output").value == NESTED_RESULT


FAILING = SWEEP.replace('    return [{"lr"', '    if grid_size > 9:\n        raise RuntimeError("no configs today")\n    return [{"lr"')


def test_a_producer_that_fails_skips_the_loop_and_everything_after_it(write_pipeline, project) -> None:
    handle = stackhop.run(write_pipeline(FAILING).sweep, parameters={"grid_size": 10}, cache=False, progress=False)
    assert handle.status == RunStatus.FAILED
    steps = handle.steps()
    assert steps["make_configs"].status == StepStatus.FAILED
    assert steps["train[*]"].status == StepStatus.SKIPPED and "make_configs is failed" in steps["train[*]"].message
    assert steps["pick_best"].status == StepStatus.SKIPPED and steps["fit_final"].status == StepStatus.SKIPPED
    assert "nothing of it ran" in handle.logs("train[*]")
    from test_cli import stackhop as cli

    every = cli(project, "logs", handle.run_id)
    assert every.returncode == 0 and "===== train[*] =====" in every.stdout, every.stderr


NOT_A_LIST = """
from stackhop import OutputPath, ParallelFor, container_step, pipeline, step


@pipeline
def liar():
    made = container_step("made", image="busybox", command=["sh", "-c", "echo 42 > $0"], args=[OutputPath("items")],
                          outputs={"items": list})
    with ParallelFor(made.outputs["items"]) as item:
        show(x=item)


@step
def show(x: str) -> str:
    return x
"""


def test_a_list_output_that_is_no_list_at_run_time_fails_in_one_sentence(write_pipeline, project) -> None:
    handle = stackhop.run(write_pipeline(NOT_A_LIST).liar, cache=False, progress=False)
    assert handle.status == RunStatus.FAILED
    steps = handle.steps()
    assert steps["made"].status == StepStatus.FAILED
    assert steps["made"].message == "step 'made' wrote '42' to output 'items', which is not a valid list."
    assert steps["show[*]"].status == StepStatus.SKIPPED


@pytest.mark.parametrize("body,error,fragment", [
    ("    with ParallelFor(made.outputs['word']) as w:\n        use(x=w)\n", PipelineDefinitionError,
     "ParallelFor over output 'word' of step 'made' needs a list, but the step declares it str"),
    ("    with ParallelFor(made.outputs['words']) as w:\n        u = use(x=w)\n        join(xs=Collected(u.output))\n",
     ValidationError, "reads Collected(use.output) inside for-1, the loop it collects over"),
    ("    join(xs=Collected(made.outputs['words']))\n", ValidationError,
     "step 'made' is in no ParallelFor, so there is nothing to collect"),
    ("    with If(made.outputs['word'] == 'a'):\n        with ParallelFor(made.outputs['words']) as w:\n"
     "            u = use(x=w)\n    join(xs=Collected(u.output))\n", ValidationError,
     "runs only under condition-1, outside the loop it collects over"),
    ("    with ParallelFor(made.outputs['words']) as w:\n        u = use(x=w)\n    use(x=u.output)\n", ValidationError,
     "or pass Collected(use.outputs['output']) for the list of every iteration's value"),
    ("    with ParallelFor(made.outputs['words']) as w:\n        u = use(x=w)\n    use(x=Collected(u.output))\n",
     ValidationError, "expects str but gets Collected(output 'output' of step 'use') of type list"),
    ("    Collected(3)\n", PipelineDefinitionError, "Collected takes the output of a step inside a ParallelFor"),
])
def test_a_misplaced_loop_or_collection_is_refused_in_one_sentence(write_pipeline, body, error, fragment) -> None:
    module = write_pipeline(
        "from typing import NamedTuple\n\nfrom stackhop import Collected, If, ParallelFor, pipeline, step\n\n"
        "Made = NamedTuple('Made', [('word', str), ('words', list)])\n\n"
        "@step\ndef make() -> Made:\n    return Made('a', ['a', 'b'])\n\n"
        "@step\ndef use(x: str) -> str:\n    return x\n\n"
        "@step\ndef join(xs: list) -> str:\n    return ''.join(xs)\n\n"
        "@pipeline\ndef misplaced():\n    made = make().set_name('made')\n" + body)
    with pytest.raises(error) as caught:
        module.misplaced.build()
    assert fragment in str(caught.value)
    assert str(caught.value).rstrip(".").count(". ") == 0, "one sentence"


def test_the_cli_exits_2_on_a_collection_inside_its_own_loop(write_pipeline, project) -> None:
    from test_cli import assert_user_error, stackhop as cli

    write_pipeline(
        "from stackhop import Collected, ParallelFor, pipeline, step\n\n"
        "@step\ndef make() -> list[str]:\n    return ['a']\n\n"
        "@step\ndef use(x: str) -> str:\n    return x\n\n"
        "@step\ndef join(xs: list[str]) -> str:\n    return ''.join(xs)\n\n"
        "@pipeline\ndef inside():\n    with ParallelFor(make().output) as w:\n"
        "        u = use(x=w)\n        join(xs=Collected(u.output))\n", name="inside")
    assert_user_error(cli(project, "compile", "inside.py", "-o", str(project / "out")),
                      "inside for-1, the loop it collects over")


def test_iterations_are_named_after_their_configs_so_two_runs_match(sweep, project) -> None:
    four = stackhop.run(sweep, cache=False, progress=False)
    six = stackhop.run(sweep, parameters={"grid_size": 6}, cache=False, progress=False)
    assert four.steps()["train[1]"].label == "train[epochs=4,lr=0.005]"
    for label in (s.label for s in four.steps().values() if s.label):
        assert four.artifact(label, "output").value == six.artifact(label, "output").value, label
    from test_cli import stackhop as cli

    log = cli(project, "logs", four.run_id, "train[epochs=4,lr=0.005]")
    assert log.returncode == 0, log.stderr
    shown = cli(project, "runs", "show", four.run_id, env={"COLUMNS": "200"})
    assert "train[1] [epochs=4,lr=0.005]" in shown.stdout


WORDS = """
from stackhop import ParallelFor, pipeline, step


@step
def shout(word: str) -> str:
    return word.upper()


@step
def weigh(config: dict) -> float:
    return config["lr"] * 10


@pipeline
def words(items: list = ["ham", "eggs"], configs: list = [{"lr": 0.1, "note": "a b"}, {"lr": 0.2, "note": "c"}]):
    with ParallelFor(items) as word:
        shout(word=word)
    with ParallelFor(configs, key="lr") as config:
        weigh(config=config)
"""


def test_an_item_names_its_iteration_wherever_it_sits_in_the_list(write_pipeline, project) -> None:
    module = write_pipeline(WORDS)
    first = stackhop.run(module.words, cache=False, progress=False)
    swapped = stackhop.run(module.words, parameters={"items": ["eggs", "ham"]}, cache=False, progress=False)
    assert first.steps()["shout[0]"].label == "shout[ham]" and swapped.steps()["shout[1]"].label == "shout[ham]"
    assert first.artifact("shout[ham]", "output").value == swapped.artifact("shout[ham]", "output").value == "HAM"
    assert first.steps()["weigh[1]"].label == "weigh[lr=0.2]", "key= names dict items by one field"
    twice = stackhop.run(module.words, parameters={"items": ["ham", "ham"]}, cache=False, progress=False)
    assert [s.label for k, s in twice.steps().items() if k.startswith("shout")] == ["", ""], "no name: the index"


def test_a_key_the_items_lack_is_refused_in_one_sentence(write_pipeline) -> None:
    module = write_pipeline(WORDS.replace("with ParallelFor(configs, key=\"lr\")",
                                          "with ParallelFor([{\"lr\": 1}, {\"rate\": 2}], key=\"lr\")"))
    with pytest.raises(ValidationError) as caught:
        module.words.build()
    assert "ParallelFor key 'lr' names each item by that field, but item {'rate': 2} has none" in str(caught.value)


SHARDS = """
from stackhop import Collected, Dataset, Input, Output, ParallelFor, pipeline, step


@step
def plan(n: int) -> list[int]:
    return list(range(n))


@step
def shard(i: int, part: Output[Dataset]) -> None:
    with open(part.path, "w") as f:
        f.write("row\\n" * (i + 1))
    part.metadata["rows"] = i + 1


@step
def merge(parts: Input[list[Dataset]]) -> str:
    return ",".join(f"{sum(1 for _ in open(p.path))}/{p.metadata['rows']}" for p in parts)


@pipeline
def sharded(n: int = 3):
    with ParallelFor(plan(n=n).output) as i:
        part = shard(i=i)
    merge(parts=Collected(part.outputs["part"]))
"""


@pytest.fixture
def sharded(write_pipeline, write_config):
    write_config(STACKS)
    return write_pipeline(SHARDS).sharded


def test_collected_artifacts_arrive_as_a_list_in_iteration_order(sharded) -> None:
    handle = stackhop.run(sharded, progress=False)
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    assert handle.artifact("merge", "output").value == "1/1,2/2,3/3"
    again = stackhop.run(sharded, progress=False)
    assert again.steps()["merge"].status == StepStatus.CACHED


def test_collected_artifacts_pass_through_the_fake_kubernetes_server(sharded, project, write_config) -> None:
    with FakeKubernetes(version="1.37", time_scale=0.05) as kube:
        k8s_stack(write_config, kube, project)
        handle = stackhop.run(sharded, cache=False, progress=False)
        assert handle.wait(timeout=180) == RunStatus.SUCCEEDED, handle.state().message
        assert handle.artifact("merge", "output").value == "1/1,2/2,3/3"


@pytest.mark.parametrize("body,fragment", [
    ("    merge(parts=part.outputs['part'])\n", "is a list of Dataset artifacts (Input[list[Dataset]]), which only"),
    ("    one(part=Collected(part.outputs['part']))\n", "is one Dataset artifact but gets Collected("),
])
def test_a_list_of_artifacts_fed_the_wrong_way_is_refused_in_one_sentence(write_pipeline, body, fragment) -> None:
    source = SHARDS.split("    merge(parts=")[0].replace("@pipeline", "@step\ndef one(part: Input[Dataset]) -> int:\n"
                                                          "    return 1\n\n\n@pipeline") + body
    with pytest.raises(ValidationError) as caught:
        write_pipeline(source).sharded.build()
    assert fragment in str(caught.value)


@pytest.mark.parametrize("stack", ["vertex", "kfp"])
def test_collected_artifacts_reach_the_step_through_the_launchers_executor_input(sharded, gcs, stack) -> None:
    handle = stackhop.run(sharded, stack, emulate=True, cache=False, progress=False)
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    assert handle.artifact("merge", "output").value.split(",") == ["1/1", "2/2", "3/3"]


KFP_SHARDS = """
from typing import List

from kfp import dsl


@dsl.component(base_image="python:3.11")
def plan(n: int) -> List[int]:
    return []


@dsl.component(base_image="python:3.11")
def shard(i: int, part: dsl.Output[dsl.Dataset]):
    pass


@dsl.component(base_image="python:3.11")
def merge(parts: dsl.Input[List[dsl.Dataset]]) -> str:
    return ""


@dsl.pipeline
def sharded(n: int = 3):
    with dsl.ParallelFor(plan(n=n).output) as i:
        part = shard(i=i)
    merge(parts=dsl.Collected(part.outputs["part"]))
"""


def test_collected_artifacts_have_kfps_own_shape(sharded, write_pipeline, tmp_path) -> None:
    theirs, ours = _kfp(write_pipeline, KFP_SHARDS, "sharded", tmp_path), _ours(sharded)
    loop_theirs, loop_ours = theirs["components"]["comp-for-loop-1"], ours["components"]["comp-for-loop-1"]
    assert _kfps_part(loop_ours["outputDefinitions"], loop_theirs["outputDefinitions"])
    assert _kfps_part(loop_ours["dag"]["outputs"], loop_theirs["dag"]["outputs"])
    merge_theirs, merge_ours = theirs["root"]["dag"]["tasks"]["merge"], ours["root"]["dag"]["tasks"]["merge"]
    assert _kfps_part(merge_ours["inputs"]["artifacts"], merge_theirs["inputs"]["artifacts"])
    assert _kfps_part(ours["components"]["comp-merge"]["inputDefinitions"]["artifacts"],
                      theirs["components"]["comp-merge"]["inputDefinitions"]["artifacts"])
    assert (ours["components"]["comp-plan"]["outputDefinitions"]["parameters"]
            == theirs["components"]["comp-plan"]["outputDefinitions"]["parameters"])


def test_a_list_too_long_to_fan_out_fails_the_loop_in_one_sentence_before_any_iteration(write_pipeline,
                                                                                          project) -> None:
    module = write_pipeline(SHARDS)
    handle = stackhop.run(module.sharded, parameters={"n": 10_001}, cache=False, progress=False)
    assert handle.status == RunStatus.FAILED
    steps = handle.steps()
    assert steps["plan"].status == StepStatus.SUCCEEDED and [k for k in steps if k.startswith("shard")] == ["shard[*]"]
    assert steps["shard[*]"].message == (
        "for-1 would run 10001 iterations (step 'plan' returned 10001 items), more than the 10000 one ParallelFor "
        "runs; give each iteration a batch of items instead")
    assert steps["merge"].status == StepStatus.SKIPPED


RETURNING = SHARDS.replace("    merge(parts=Collected(part.outputs[\"part\"]))\n",
                           "    merge(parts=Collected(part.outputs[\"part\"]))\n"
                           "    with ParallelFor([1, 2]) as k:\n        doubled = twice(k=k)\n"
                           "    return {\"doubled\": Collected(doubled.output)}\n").replace(
    "@pipeline", "@step\ndef twice(k: int) -> int:\n    return 2 * k\n\n\n@pipeline")


def test_a_pipeline_returns_every_iterations_value_as_one_output(write_pipeline, write_config, gcs) -> None:
    write_config(STACKS)
    module = write_pipeline(RETURNING)
    for stack, emulate in (("laptop", False), ("vertex", True)):
        handle = stackhop.run(module.sharded, stack, emulate=emulate, cache=False, progress=False)
        assert handle.status == RunStatus.SUCCEEDED, handle.state().message
        assert handle.outputs["doubled"].value == [2, 4], stack
    root = _ours(module.sharded)["root"]
    assert root["outputDefinitions"] == {"parameters": {"doubled": {"parameterType": "LIST"}}}
    assert root["dag"]["outputs"]["parameters"]["doubled"] == {"valueFromParameter": {
        "outputParameterKey": "pipelinechannel--twice-output", "producerSubtask": "for-loop-2"}}
    from stackhop.core.adapter import Capability
    from stackhop.core.capabilities import required_capabilities

    assert "twice" in required_capabilities(module.sharded.build())[Capability.FAN_IN], "SageMaker refuses it"


KFP_DEPLOY = '''
    final = fit_final(config=best.output, seed=seed)
    with dsl.If(target == "prod"):
        deploy(where="prod", score=final.outputs["Output"])
    with dsl.Elif(target == "staging"):
        deploy(where="staging", score=final.outputs["Output"])
    with dsl.Else():
        deploy(where="nowhere", score=final.outputs["Output"])
    return final.outputs["model"]
'''


def test_the_deploy_chain_has_kfps_branches_and_trigger_policies(sweep, write_pipeline, tmp_path) -> None:
    source = KFP_SWEEP.replace("seed: int = 7) -> dsl.Model:", "seed: int = 7, target: str = \"staging\") -> dsl.Model:")
    source = source.replace('\n    return fit_final(config=best.output, seed=seed).outputs["model"]\n', KFP_DEPLOY)
    source = source.replace("@dsl.pipeline", "@dsl.component(base_image=\"python:3.11\")\ndef deploy(where: str, "
                                             "score: float) -> str:\n    return where\n\n\n@dsl.pipeline")
    theirs, ours = _kfp(write_pipeline, source, "sweep", tmp_path), _ours(sweep)

    def policies(spec: dict) -> list[str]:
        (branches,) = [c for name, c in spec["components"].items() if "condition-branches" in name]
        return [t["triggerPolicy"]["condition"] for _, t in sorted(branches["dag"]["tasks"].items())]

    assert len(policies(ours)) == 3 and policies(ours) == policies(theirs)


UNROLLED = """
from stackhop import Collected, ParallelFor, pipeline, step


@step
def twice(k: int) -> int:
    return 2 * k


@step
def total(xs: list[int]) -> int:
    return sum(xs)


@pipeline
def unrolled():
    with ParallelFor([1, 2, 3]) as k:
        doubled = twice(k=k)
    total(xs=Collected(doubled.output))
    return {"doubled": Collected(doubled.output)}
"""


def test_sagemaker_collects_a_loop_it_unrolls_at_compile_time(write_pipeline, write_config, aws) -> None:
    write_config(STACKS)
    module = write_pipeline(UNROLLED)
    handle = stackhop.run(module.unrolled, "sm", emulate=True, cache=False, progress=False)
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    assert handle.artifact("total", "output").value == 12
    assert handle.outputs["doubled"].value == [2, 4, 6]
    steps = json.loads(stackhop.compile(module.unrolled, "sm").files["sagemaker-pipeline.json"])["Steps"]
    (total,) = [s for s in steps if s["Name"].startswith("total")]
    ups = [a for a in total["Arguments"]["AppSpecification"]["ContainerArguments"] if isinstance(a, dict)]
    assert [u["Std:Join"]["Values"][0] for u in ups if "Std:Join" in u and "twice" in str(u)] == [
        "twice[0]", "twice[1]", "twice[2]"]


def test_sagemaker_collects_the_artifacts_of_a_loop_it_unrolls(write_pipeline, write_config, aws) -> None:
    write_config(STACKS)
    module = write_pipeline(SHARDS.replace("ParallelFor(plan(n=n).output)", "ParallelFor([0, 1, 2])"))
    handle = stackhop.run(module.sharded, "sm", emulate=True, cache=False, progress=False)
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    assert handle.artifact("merge", "output").value == "1/1,2/2,3/3"


def test_a_submitted_sagemaker_run_names_the_iterations_it_unrolled(write_pipeline, write_config, aws) -> None:
    write_config(STACKS)
    module = write_pipeline(WORDS.split("    with ParallelFor(configs")[0].replace("ParallelFor(items)",
                                                                             "ParallelFor([\"ham\", \"eggs\"])"))
    handle = stackhop.run(module.words, "sm", wait=False, progress=False)
    assert {k: s.label for k, s in handle.steps().items()} == {"shout[0]": "shout[ham]", "shout[1]": "shout[eggs]"}
