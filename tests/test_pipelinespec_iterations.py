"""Loop iterations of runs read back from Vertex AI and Kubeflow Pipelines.

Both backends list a loop's tasks under one task name, in an order of their own, so `train[2]`
must come from what the iteration ran, never from where the backend listed it. Here the steps
really run: each pipeline runs first from its compiled PipelineSpec (the emulator fills the
launcher's placeholders and the stackhop entrypoint writes each task's meta folder), and then a
submitted run of the same pipeline is told about those tasks by the backend stand-in, listed in
reverse, as a backend may list them.
"""

from __future__ import annotations

import uuid

import pytest

import stackhop
from stackhop.adapters.pipelinespec.compiler import META_OUTPUT, mirror_uri, task_name
from stackhop.core.artifacts import ArtifactStore
from stackhop.core.resolve import parse_instance_key
from stackhop.core.runs import RunStatus, StepStatus
from stackhop.testing.kfp import FakeKFP
from stackhop.testing.vertex import FakeVertex

PROJECT = "test-project"
ROOT = "gs://ml-artifacts/iterations"

SWEEP = """
from stackhop import Collected, ParallelFor, pipeline, step


@step
def make_configs(n: int) -> list[dict]:
    return [{"lr": round(0.01 * (i + 1), 2), "epochs": 2 + i} for i in range(n)]


@step
def train(lr: float, epochs: int) -> float:
    print(f"training at lr={lr} for {epochs} epochs")
    return round(lr * epochs, 4)


@step
def best(scores: list[float]) -> float:
    return max(scores)


@step
def check(seed: int) -> int:
    return seed * 10


@pipeline
def sweep(n: int = 4, seeds: list = [3, 1, 2]):
    configs = make_configs(n=n)
    with ParallelFor(configs.output) as c:
        trained = train(lr=c.lr, epochs=c.epochs)
    best(scores=Collected(trained.output))
    with ParallelFor(seeds) as s:
        check(seed=s)
"""

NESTED = """
from stackhop import ParallelFor, pipeline, step


@step
def regions() -> list[str]:
    return ["eu", "us"]


@step
def shards(region: str) -> list[int]:
    return list(range(3 if region == "eu" else 2))


@step
def tally(region: str, shard: int) -> str:
    return f"{region}/{shard}"


@pipeline
def census():
    with ParallelFor(regions().output) as region:
        with ParallelFor(shards(region=region).output) as shard:
            tally(region=region, shard=shard)
"""


@pytest.fixture
def stacks(write_config, vertex, kubeflow):
    write_config(f"""
        default_stack: vertex
        stacks:
          vertex:
            adapter: vertex
            artifact_root: {ROOT}
            defaults: {{image: "python:3.11"}}
            settings: {{project: {PROJECT}, location: europe-west4, api_endpoint: {vertex.endpoint}, anonymous: true}}
          kfp:
            adapter: kfp
            artifact_root: {ROOT}
            defaults: {{image: "python:3.11"}}
            settings: {{host: "{kubeflow.host}"}}
    """)


def emulated(pipeline, stack: str, **parameters):
    """The run as the backend would carry it out: the document's own commands, each step a real process."""
    handle = stackhop.run(pipeline, stack, parameters=parameters, emulate=True, cache=False, progress=False)
    assert handle.status is RunStatus.SUCCEEDED, handle.state().message
    return handle


def meta_folder(handle, key: str) -> str:
    log = handle.steps()[key].log_uri
    assert log and log.endswith("/log.txt")
    return log.removesuffix("/log.txt")


def backend_order(keys) -> list[str]:
    """Loop tasks listed last iteration first: nothing may depend on the order a backend lists them in."""
    return sorted(keys, key=lambda k: (parse_instance_key(k)[0], [-i for i in parse_instance_key(k)[1]]))


def on_vertex(vertex: FakeVertex, pipeline, *, skip: tuple[str, ...] = (), **parameters):
    """The pipeline run from its document, then submitted to Vertex, which lists the first run's tasks as the
    submitted run's (all but `skip`); returns (the submitted run, the run it was told about)."""
    ran = emulated(pipeline, "vertex", **parameters)
    handle = stackhop.run(pipeline, "vertex", parameters=parameters, wait=False)
    (job,) = vertex.jobs
    for n, key in enumerate(backend_order(ran.steps()), start=100):
        if key not in skip:
            vertex.set_task(job, task_name(parse_instance_key(key)[0]), "SUCCEEDED",
                            outputs={META_OUTPUT: [meta_folder(ran, key)]}, task_id=n)
    return handle, ran


def assert_same_iterations(submitted, ran) -> None:
    steps, expected = submitted.steps(), ran.steps()
    assert sorted(steps) == sorted(expected)
    for key, state in expected.items():
        assert steps[key].status is StepStatus.SUCCEEDED, key
        assert steps[key].label == state.label, key
        if state.label:
            assert submitted.artifact(state.label, "output").value == ran.artifact(key, "output").value


def test_a_vertex_run_tells_each_iteration_by_its_item_whatever_order_the_tasks_are_listed(
        stacks, vertex, write_pipeline) -> None:
    handle, ran = on_vertex(vertex, write_pipeline(SWEEP).sweep)

    assert_same_iterations(handle, ran)
    assert handle.steps()["train[2]"].label == "train[epochs=4,lr=0.03]"
    assert handle.artifact("train[2]", "output").value == 0.12
    assert "training at lr=0.03 for 4 epochs" in handle.logs("train[epochs=4,lr=0.03]")
    assert [handle.steps()[f"check[{i}]"].label for i in range(3)] == ["check[item=3]", "check[item=1]",
                                                                       "check[item=2]"]
    assert handle.artifact("check[item=1]", "output").value == 10


def test_a_list_parameter_given_at_submit_names_the_iterations_it_made(stacks, vertex, write_pipeline) -> None:
    handle, ran = on_vertex(vertex, write_pipeline(SWEEP).sweep, n=2, seeds=[7, 5])

    assert_same_iterations(handle, ran)
    assert {k: s.label for k, s in handle.steps().items() if k.startswith("check")} == {
        "check[0]": "check[item=7]", "check[1]": "check[item=5]"}


def test_an_iteration_still_running_takes_the_place_the_finished_ones_left(stacks, vertex, write_pipeline) -> None:
    handle, ran = on_vertex(vertex, write_pipeline(SWEEP).sweep, skip=("train[1]", "best"))
    vertex.set_task(handle.ref.data["job_id"], "train", "RUNNING", task_id=999)

    steps = handle.steps()

    assert steps["train[1]"].status is StepStatus.RUNNING
    assert steps["train[1]"].label == "train[epochs=3,lr=0.02]", "the one iteration left is the one it runs"
    for i in (0, 2, 3):
        assert steps[f"train[{i}]"].label == ran.steps()[f"train[{i}]"].label
        assert handle.artifact(f"train[{i}]", "output").value == ran.artifact(f"train[{i}]", "output").value
    assert steps["best"].status is StepStatus.PENDING


def test_nested_loops_over_outputs_are_told_apart_at_every_level(stacks, vertex, write_pipeline) -> None:
    handle, ran = on_vertex(vertex, write_pipeline(NESTED).census)

    assert_same_iterations(handle, ran)
    assert [k for k in handle.steps() if k.startswith("tally")] == [
        "tally[0][0]", "tally[0][1]", "tally[0][2]", "tally[1][0]", "tally[1][1]"]
    assert handle.artifact("tally[0][2]", "output").value == "eu/2"
    assert handle.artifact("tally[us][item=1]", "output").value == "us/1"


def test_a_kubeflow_run_tells_iterations_apart_from_the_meta_folders_each_task_mirrored(
        stacks, kubeflow, write_pipeline) -> None:
    sweep = write_pipeline(SWEEP).sweep
    ran = emulated(sweep, "kfp")
    handle = stackhop.run(sweep, "kfp", wait=False)
    (run_id,) = kubeflow.runs
    for key in backend_order(ran.steps()):
        step, index = parse_instance_key(key)
        source = "/".join([f"{ROOT}/sweep/{ran.run_id}", step, *map(str, index), "_stackhop"])  # the task's meta
        target = mirror_uri(ROOT, "sweep", handle.run_id, step, str(uuid.uuid4()))  # the digests sort in no loop order
        store = ArtifactStore.for_uri(source)
        for name in ("outputs.json", "log.txt", "iteration.json"):
            if store.exists(f"{source}/{name}"):
                store.write_bytes(f"{target}/{name}", store.read_bytes(f"{source}/{name}"))
        kubeflow.set_task(run_id, task_name(step), "SUCCEEDED", task_id=str(uuid.uuid4()))

    assert_same_iterations(handle, ran)
    assert "training at lr=0.02 for 3 epochs" in handle.logs("train[epochs=3,lr=0.02]")


def test_a_failed_iteration_on_kubeflow_gets_the_folder_with_its_error(stacks, kubeflow, write_pipeline) -> None:
    sweep = write_pipeline(SWEEP).sweep
    handle = stackhop.run(sweep, "kfp", parameters={"n": 2}, wait=False)
    (run_id,) = kubeflow.runs
    done, failed = (mirror_uri(ROOT, "sweep", handle.run_id, "train", "a"),
                    mirror_uri(ROOT, "sweep", handle.run_id, "train", "b"))
    store = ArtifactStore.for_uri(done)
    store.write_json(f"{failed}/error.json", {"message": "out of memory", "type": "MemoryError"})
    store.write_json(f"{failed}/iteration.json", {"items": {"for-1": {"lr": 0.01, "epochs": 2}}})
    store.write_json(f"{done}/outputs.json", {"scalars": {"output": 0.06}, "artifacts": {}})
    store.write_json(f"{done}/iteration.json", {"items": {"for-1": {"lr": 0.02, "epochs": 3}}})
    configs = mirror_uri(ROOT, "sweep", handle.run_id, "make_configs", "c")
    store.write_json(f"{configs}/outputs.json", {"scalars": {"output": [{"lr": 0.01, "epochs": 2},
                                                                         {"lr": 0.02, "epochs": 3}]}, "artifacts": {}})
    kubeflow.set_task(run_id, "make-configs", "SUCCEEDED")
    kubeflow.set_task(run_id, "train", "SUCCEEDED", task_id="t-1")
    kubeflow.set_task(run_id, "train", "FAILED", error_message="MemoryError: out of memory", task_id="t-2")

    steps = handle.steps()

    loop_id = next(g["id"] for g in handle.ref.data["pipeline"]["groups"] if g["kind"] == "parallel_for")
    assert loop_id == "for-1", "the records above name the loop as the IR does"
    assert steps["train[0]"].status is StepStatus.FAILED and steps["train[0]"].label == "train[epochs=2,lr=0.01]"
    assert steps["train[1]"].status is StepStatus.SUCCEEDED and steps["train[1]"].label == "train[epochs=3,lr=0.02]"
    assert handle.artifact("train[1]", "output").value == 0.06


def test_a_run_recorded_by_an_earlier_stackhop_is_still_numbered_as_listed(stacks, vertex, write_pipeline) -> None:
    """Its record kept no loop items, so the tasks are numbered in the order the backend lists them, as before."""
    handle, _ = on_vertex(vertex, write_pipeline(SWEEP).sweep, n=2, seeds=[1])
    ref = dict(handle.store.get(handle.run_id).backend_ref)
    ref["pipeline"] = {**ref["pipeline"], "groups": [{k: v for k, v in g.items() if k not in ("items", "items_from")}
                                                     for g in ref["pipeline"]["groups"]]}
    handle.store.set_status(handle.run_id, "RUNNING", backend_ref=ref)

    steps = stackhop.get_run(handle.run_id).steps()

    assert sorted(k for k in steps if k.startswith("train")) == ["train[0]", "train[1]"]
    assert all(not s.label for s in steps.values())


GRID = """
from stackhop import ParallelFor, pipeline, step


@step
def fit(lr: float, name: str) -> str:
    return f"{name}@{lr}"


@pipeline
def grid(configs: list = [{"name": "small", "lrs": [0.1, 0.2]}, {"name": "large", "lrs": [0.3]}]):
    with ParallelFor(configs) as config:
        with ParallelFor(config.lrs) as lr:
            fit(lr=lr, name=config.name)
"""


def test_an_inner_loop_over_a_list_in_each_outer_item_is_told_apart(stacks, vertex, write_pipeline) -> None:
    handle, ran = on_vertex(vertex, write_pipeline(GRID).grid)

    assert_same_iterations(handle, ran)
    assert [handle.artifact(f"fit[{i}][{j}]", "output").value for i, j in ((0, 0), (0, 1), (1, 0))] == [
        "small@0.1", "small@0.2", "large@0.3"]
