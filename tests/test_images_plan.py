"""Image settings -> rendered Dockerfiles -> the reference each step runs in, without building anything.

Rendering is checked with dockerfile-parse (the parser tooling uses), plans are checked for
sharing and determinism, and compile is checked to stay pure: it reads the lock file
`stackhop build` writes, never a registry.
"""

from __future__ import annotations

import json

import pytest
from dockerfile_parse import DockerfileParser

import stackhop
from stackhop import ImageSettings
from stackhop.images.errors import ImageError
from stackhop.images.render import render

STACKS = """
stacks:
  dev:
    adapter: kubernetes
    artifact_root: s3://ml/stackhop
    defaults: {image: "python:3.11-slim"}
    images: {registry: "127.0.0.1:5000/ml", reproducible: true, registries: {trainer: "eu.gcr.io/acme/trainer"}}
  prod:
    adapter: kubernetes
    artifact_root: s3://ml/stackhop
    images: {registry: "127.0.0.1:5000/ml", require_digest: true}
  nobuild:
    adapter: kubernetes
    artifact_root: s3://ml/stackhop
"""

PIPELINE = """
from stackhop import ImageSettings, pipeline, step

@step
def prepare() -> int:
    return 1

@step
def train(x: int) -> int:
    return x

@step
def report(x: int) -> None: ...

@pipeline(image=ImageSettings(requirements=["scikit-learn==1.5.2"], apt_packages=["libgomp1"],
                              environment={"OMP_NUM_THREADS": "2"}))
def p():
    x = prepare()
    y = train(x=x.output).set_image(ImageSettings(requirements=["xgboost"]))
    report(x=y.output).set_image("trainer:2.1")
"""


@pytest.fixture
def module(project, write_config, write_pipeline):
    write_config(STACKS)
    (project / "requirements.txt").write_text("pandas==2.2.3\n")
    return write_pipeline(PIPELINE)


def images(pipeline, stack: str) -> dict[str, str]:
    from stackhop.core.api import _prepare, to_ir

    ir, *_ = _prepare(*to_ir(pipeline), stack, None)
    return {s.name: s.settings.image for s in ir.steps}


def test_a_rendered_dockerfile_parses_and_layers_from_stable_to_volatile(project) -> None:
    settings = ImageSettings(parent_image="python:3.12-slim", apt_packages=["git", "curl"], requirements=["numpy==2.1.0"],
                             requirements_file="requirements.txt", environment={"A": "1"}, code="image",
                             extra_files={"/etc/app.toml": "requirements.txt"})
    (project / "requirements.txt").write_text("pandas==2.2.3\n")
    rendered = render(settings, project=project, where="step 't'", code_root=project)

    parser = DockerfileParser(fileobj=__import__("io").BytesIO(rendered.dockerfile.encode()))
    instructions = [(i["instruction"], i["value"]) for i in parser.structure]
    kinds = [k for k, _ in instructions]
    assert parser.baseimage == "python:3.12-slim"
    assert kinds.index("RUN") < kinds.index("ENV")  # apt first
    runs = [v for k, v in instructions if k == "RUN"]
    assert "apt-get install" in runs[0] and "curl git" in runs[0]
    assert "project.txt" in runs[1] and "step.txt" in runs[2] and "/opt/stackhop/requirements.txt" in runs[3]
    copies = [v for k, v in instructions if k == "COPY"]
    assert copies[-1] == "code/ /app/"
    assert instructions[-1] == ("USER", "10001")
    assert parser.envs["PYTHONPATH"] == "/app:/opt/stackhop"
    files = dict(rendered.context)
    assert files["requirements/project.txt"] == b"pandas==2.2.3\n"
    assert any(name.startswith("stackhop/src/stackhop/entrypoint.py") for name in files)
    assert b"pydantic==" in files["stackhop/requirements.txt"]


def test_the_tag_is_a_content_hash_same_inputs_same_tag(project) -> None:
    settings = ImageSettings(requirements=["numpy==2.1.0"])
    first = render(settings, project=project, where="w")
    assert first == render(settings, project=project, where="w")
    assert first.tag != render(ImageSettings(requirements=["numpy==2.1.1"]), project=project, where="w").tag
    assert first.tag.startswith("h-") and len(first.tag) == 34


def test_steps_with_equal_settings_share_one_image_and_only_the_different_one_gets_its_own(module) -> None:
    refs = images(module.p, "dev")
    assert refs["prepare"].startswith("127.0.0.1:5000/ml/p:h-")
    assert refs["train"].startswith("127.0.0.1:5000/ml/p:h-") and refs["train"] != refs["prepare"]
    assert refs["report"] == "eu.gcr.io/acme/trainer:2.1"  # a short name mapped by images.registries


def test_a_step_adds_to_the_pipelines_requirements_rather_than_replacing_them() -> None:
    pipeline = ImageSettings(requirements=["a==1"], environment={"X": "1"}, user="app")
    step = ImageSettings(requirements=["b==2", "a==1"], environment={"Y": "2"})
    merged = step.merged_over(pipeline)
    assert merged.requirements == ("a==1", "b==2")
    assert merged.environment == {"X": "1", "Y": "2"}
    assert merged.user == "app"


def test_compile_pins_built_images_by_digest_once_the_lock_file_records_them(module, project) -> None:
    with pytest.raises(ImageError, match=r"step 'prepare': image '127\.0\.0\.1:5000/ml/p:h-[0-9a-f]+' is a tag, and "
                                         r"stack 'prod' requires digests; run `stackhop build <file> --stack prod`"):
        images(module.p, "prod")
    dev = images(module.p, "dev")
    digest = "sha256:" + "ab" * 32
    lock = {dev["prepare"]: digest, dev["train"]: "sha256:" + "cd" * 32}
    (project / ".stackhop").mkdir(exist_ok=True)
    (project / ".stackhop" / "images.lock.json").write_text(json.dumps({"version": 1, "images": lock}))
    assert images(module.p, "dev")["prepare"] == f"127.0.0.1:5000/ml/p@{digest}"
    with pytest.raises(ImageError, match=r"step 'report': image 'trainer:2.1' is a tag"):
        images(module.p, "prod")


def test_an_unpinned_requirement_warns_on_a_reproducible_stack(module) -> None:
    compiled = stackhop.compile(module.p, "dev")
    assert any("requirement(s) xgboost are not pinned with ==" in note for note in compiled.notes)


def test_building_steps_need_a_registry_to_push_to(module) -> None:
    with pytest.raises(ImageError, match=r"stack 'nobuild': step 'prepare' builds its image, so set images.registry"):
        stackhop.compile(module.p, "nobuild")


@pytest.mark.parametrize("settings, message", [
    (ImageSettings(requirements_file="missing.txt"), r"requirements_file 'missing.txt' does not exist"),
    (ImageSettings(parent_image="alpine:3.20", apt_packages=["git"]), r"apt_packages need a Debian-based parent image"),
    (ImageSettings(dockerfile="../Dockerfile"), r"dockerfile '../Dockerfile' is outside the project"),
    (ImageSettings(dockerfile="docker/Dockerfile", build_context="docker/ctx"), r"is outside its build context"),
])
def test_bad_image_settings_are_one_sentence_before_any_build(project, settings, message) -> None:
    (project.parent / "Dockerfile").write_text("FROM scratch\n")
    (project / "docker" / "ctx").mkdir(parents=True)
    (project / "docker" / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(ImageError, match=message):
        render(settings, project=project, where="step 'train'")


def test_explain_says_which_image_each_step_gets_and_why(module) -> None:
    explained = stackhop.core.api.explain(module.p, "dev")
    assert "from ImageSettings, its own settings; not built yet" in explained["train"][0]
    assert "given (short name 'trainer:2.1' mapped by images.registries)" in explained["report"][0]


def test_the_local_stack_ignores_image_settings(module) -> None:
    assert stackhop.compile(module.p, "local").files
