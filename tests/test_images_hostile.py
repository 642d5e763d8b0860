"""Image settings cannot add Dockerfile instructions or shell commands, however they are written.

A value that names something (an image, a user, a variable, a package, a requirement, a path)
must be that thing, or stackhop.yaml fails to load with one sentence naming the key. A value
that may hold anything (an environment or build-argument value) is written as one literal
word: parsed back, the Dockerfile has exactly the instructions stackhop wrote, and a real
buildah build keeps `$(touch /tmp/pwned)` as text.
"""

from __future__ import annotations

import io
import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser
from test_images_build import base, registry, storage  # noqa: F401  (the buildah fixtures)

from stackhop import ImageSettings, StackhopError
from stackhop.core.stack import load_stack
from stackhop.errors import ConfigError
from stackhop.images.errors import ImageError
from stackhop.images.render import render

PAYLOADS = {
    "newline": "\nRUN touch /tmp/pwned",
    "semicolon": "; touch /tmp/pwned",
    "command substitution": "$(touch /tmp/pwned)",
    "backticks": "`touch /tmp/pwned`",
    "and-list": " && touch /tmp/pwned",
}

# field -> (the image: mapping carrying the payload, the key the error must name)
FIELDS: dict[str, Any] = {
    "parent_image": (lambda p: {"parent_image": f"python:3.11-slim{p}"}, "image.parent_image"),
    "user": (lambda p: {"user": f"app{p}"}, "image.user"),
    "environment key": (lambda p: {"environment": {f"MODE{p}": "ci"}}, "image.environment"),
    "apt package": (lambda p: {"apt_packages": ["curl", f"git{p}"]}, "image.apt_packages.1"),
    "requirement": (lambda p: {"requirements": ["numpy==2.1.0", f"scipy{p}"]}, "image.requirements.1"),
    "python": (lambda p: {"python": f"python3{p}"}, "image.python"),
    "extra_files destination": (lambda p: {"extra_files": {f"/etc/app.toml{p}": "app.toml"}}, "image.extra_files"),
    "build_args key": (lambda p: {"build_args": {f"PIP_INDEX_URL{p}": "https://pypi.example/simple"}},
                       "image.build_args"),
}


def stack_with(write_config, image: dict[str, Any], where: str = "defaults") -> None:
    block = {"defaults": {"image": image}} if where == "defaults" else {"overrides": {"steps": {"train": {"image": image}}}}
    write_config(json.dumps({"stacks": {"prod": {"adapter": "kubernetes", "artifact_root": "s3://ml/stackhop", **block}}},
                 indent=2))


def load_error(write_config, image: dict[str, Any], where: str = "defaults") -> str:
    stack_with(write_config, image, where)
    with pytest.raises(ConfigError) as caught:
        load_stack("prod")
    message = str(caught.value)
    assert "\n" not in message and message.endswith("."), message
    return message


@pytest.mark.parametrize("payload", PAYLOADS.values(), ids=PAYLOADS.keys())
@pytest.mark.parametrize("field", FIELDS, ids=FIELDS.keys())
def test_a_hostile_value_in_a_named_setting_fails_when_the_stack_loads(project, write_config, field, payload) -> None:
    image, key = FIELDS[field]
    message = load_error(write_config, image(payload))
    assert f"stackhop.yaml:" in message and f": stacks.prod.defaults.{key}: " in message


def test_the_error_names_the_line_and_the_step_override_it_is_in(project, write_config) -> None:
    message = load_error(write_config, {"apt_packages": ["curl", "git; touch /tmp/pwned"]}, where="override")
    assert "stacks.prod.overrides.steps.train.image.apt_packages.1: 'git; touch /tmp/pwned' is not a Debian package name" \
        in message
    line = int(message.split("stackhop.yaml:")[1].split(":")[0])
    assert "git; touch" in (project / "stackhop.yaml").read_text().splitlines()[line - 1]


@pytest.mark.parametrize("image, says", [
    ({"environment": {"NOTE": "two\nlines"}}, "the value of 'NOTE' contains a newline"),
    ({"build_args": {"NOTE": "two\nlines"}}, "the value of 'NOTE' contains a newline"),
    ({"requirements": ["--index-url=https://evil.example/simple"]}, "is a pip option, not a requirement"),
    ({"requirements": ["numpy==2.1.0\n--index-url https://evil.example"]}, "contains a newline"),
    ({"extra_files": {"/etc/app.toml": "../../etc/passwd"}}, "leads out of the project"),
    ({"extra_files": {"/etc/app.toml": "/etc/passwd"}}, "is not a relative path in the project"),
    ({"extra_files": {"/etc/app.toml": "app\n.toml"}}, "is not a relative path in the project"),
    ({"extra_files": {"etc/app.toml": "app.toml"}}, "is not an absolute path in the image"),
    ({"extra_files": {"/etc/../root/.profile": "app.toml"}}, "is not an absolute path in the image"),
    ({"user": "0\nRUN id"}, "is not a user"),
    ({"parent_image": "--platform=linux/amd64 python:3.11"}, "is not valid"),
    ({"requirements_file": "requirements.txt\nRUN id"}, "contains a newline"),
])
def test_values_no_dockerfile_can_carry_or_that_lead_elsewhere_are_refused(project, write_config, image, says) -> None:
    assert says in load_error(write_config, image)


def test_settings_that_follow_their_grammar_load(project, write_config) -> None:
    stack_with(write_config, {
        "parent_image": "ghcr.io/acme/base:3.11@sha256:" + "ab" * 32, "user": "app:10001",
        "apt_packages": ["libgomp1", "curl=7.88.1-10+deb12u8", "libc6:amd64", "g++"],
        "requirements": ["numpy==2.1.0", "scipy>=1.14; python_version >= '3.11'", "torch[cpu]~=2.4",
                         "pkg @ https://example.com/pkg-1.0.tar.gz"],
        "python": "/usr/local/bin/python3.12", "environment": {"_X1": "any $(thing) `at` all; && \"q\" 'q'"},
        "extra_files": {"/etc/app/": "config dir/app.toml"}, "build_args": {"PIP_INDEX_URL": "https://p/simple"}})
    image = load_stack("prod").config.defaults.image
    assert isinstance(image, ImageSettings) and image.user == "app:10001"


def test_image_settings_built_in_pipeline_code_fail_with_a_stackhop_error_naming_the_setting() -> None:
    with pytest.raises(StackhopError, match=r"^ImageSettings: apt_packages\[0\]: 'git; touch /tmp/pwned' is not a "
                                            r"Debian package name; .*\.$"):
        ImageSettings(apt_packages=["git; touch /tmp/pwned"])


HOSTILE_TEXT = "it's $(touch /tmp/pwned) `touch /tmp/pwned`; a && b \"q\" \\ $HOME ${PATH} ü\tend"


def parsed(dockerfile: str) -> DockerfileParser:
    return DockerfileParser(fileobj=io.BytesIO(dockerfile.encode()))


def test_values_that_may_hold_anything_stay_one_literal_word_of_their_instruction(project) -> None:
    (project / "app.toml").write_text("x = 1\n")
    settings = ImageSettings(apt_packages=["curl", "git"], requirements=["numpy==2.1.0"],
                             environment={"NOTE": HOSTILE_TEXT, "EMPTY": ""}, build_args={"TOKEN": HOSTILE_TEXT},
                             extra_files={"/etc/app=1,2/app.toml": "app.toml"})
    parser = parsed(render(settings, project=project, where="step 'train'").dockerfile)

    kinds = [i["instruction"] for i in parser.structure if i["instruction"] != "COMMENT"]
    assert kinds == ["FROM", "USER", "ARG", "RUN", "ENV", "COPY", "RUN", "COPY", "RUN", "COPY", "COPY", "WORKDIR", "USER"]
    assert parser.envs["NOTE"] == HOSTILE_TEXT and parser.envs["EMPTY"] == ""
    assert parser.args == {"TOKEN": HOSTILE_TEXT}
    runs = [json.loads(i["value"]) for i in parser.structure if i["instruction"] == "RUN"]
    assert all(r[:2] == ["/bin/sh", "-c"] and len(r) == 3 for r in runs)
    assert shlex.split(runs[0][2].split(" && ")[1]) == [
        "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "--no-install-recommends", "curl", "git"]
    copies = [i["value"] for i in parser.structure if i["instruction"] == "COPY"]
    assert json.loads(copies[-1])[1] == "/etc/app=1,2/app.toml"


@pytest.mark.parametrize("bypass", [
    lambda: ImageSettings.model_construct(user="app\nRUN touch /tmp/pwned"),
    lambda: ImageSettings().model_copy(update={"apt_packages": ("git; touch /tmp/pwned",)}),
    lambda: ImageSettings().model_copy(update={"environment": {"NOTE": "a\nRUN touch /tmp/pwned"}}),
    lambda: ImageSettings().model_copy(update={"python": "python$(touch /tmp/pwned)"}),
], ids=["model_construct user", "model_copy apt", "model_copy env value", "model_copy python"])
def test_settings_that_skipped_validation_are_refused_when_rendered(project, bypass) -> None:
    with pytest.raises(ImageError, match=r"^step 'train': image settings \w+.*\.$"):
        render(bypass(), project=project, where="step 'train'")


def test_a_real_build_keeps_command_substitution_in_values_as_text(registry, storage, base, project) -> None:  # noqa: F811
    from stackhop.core.stack import Stack, StackConfig
    from stackhop.images.builders.buildah import BuildahBuilder
    from stackhop.images.spec import BuildSpec

    settings = ImageSettings(parent_image=base, requirements=["numpy==2.1.0"], environment={"NOTE": HOSTILE_TEXT},
                             build_args={"TOKEN": "$(touch /tmp/pwned-arg)"})
    rendered = render(settings, project=project, where="step 'train'")
    spec = BuildSpec(name="hostile", repository=f"{registry.host}/test/hostile", tag=rendered.tag,
                     dockerfile=rendered.dockerfile, context=rendered.context,
                     build_args=tuple(sorted(settings.build_args.items())))
    BuildahBuilder(BuildahBuilder.Settings(**storage), Stack("t", StackConfig(), project, "test")).build(spec, lambda _: None)

    def buildah(*args: str) -> str:
        argv = ["buildah", "--storage-driver", "vfs", "--root", storage["root"], "--runroot", storage["runroot"], *args]
        return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()

    config = json.loads(buildah("inspect", "--type", "image", spec.reference))["OCIv1"]["config"]
    assert f"NOTE={HOSTILE_TEXT}" in config["Env"]
    container = buildah("from", "--tls-verify=false", "--pull-always", spec.reference)
    try:
        root = Path(buildah("mount", container))
        assert (root / "var/log/python-calls.log").read_text().count("-r ") == 2  # the RUNs did run
        assert not (root / "tmp/pwned").exists() and not (root / "tmp/pwned-arg").exists()
    finally:
        buildah("rm", container)


# ------------------------------------------------------------------ files, references and registries, as users write them

import itertools  # noqa: E402

from stackhop.cli.main import main  # noqa: E402

K8S_STACK = """
stacks:
  k8s:
    adapter: kubernetes
    artifact_root: s3://ml/stackhop
    images: {registry: "127.0.0.1:5000/ml"}
"""

BUILT_PIPELINE = """
from stackhop import ImageSettings, pipeline, step

@step
def train() -> int:
    return 1

@pipeline(image=ImageSettings(requirements_file="requirements.txt"))
def p():
    train()
"""


def cli(capsys, *argv: str) -> tuple[int, str]:
    """Run the CLI in-process; the exit code and everything it printed to stderr (stdout too, for safety)."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code or 0, out.err + out.out


def one_error(text: str) -> str:
    """The contract: no traceback, and exactly one `error: ...` sentence."""
    assert "Traceback" not in text, text
    errors = [line for line in text.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, text
    assert errors[0].endswith("."), errors[0]
    return errors[0]


_files = itertools.count()


def user_project(project: Path, *, pipeline: str = BUILT_PIPELINE, config: str = K8S_STACK) -> str:
    """stackhop.yaml and a pipeline file; the file's name is new each time, as imported modules are cached by name."""
    (project / "stackhop.yaml").write_text(config)
    name = f"hostile_images_{next(_files)}.py"
    (project / name).write_text(pipeline)
    return name


@pytest.mark.parametrize("command", [["build", "{file}", "-s", "k8s", "--dry-run"], ["compile", "{file}", "-s", "k8s"]],
                         ids=["build --dry-run", "compile"])
@pytest.mark.parametrize("content, says", [
    ("numpy==2.1.0\r\nscipy==1.14.1\r\n".encode("utf-16"), "is UTF-16"),
    (b"numpy==2.1.0\nsch\xf6n==1.0\n", "is not UTF-8 (line 2"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is not text"),
], ids=["UTF-16 from PowerShell pip freeze", "Latin-1", "binary"])
def test_a_requirements_file_that_is_not_utf8_is_one_sentence_naming_it(project, capsys, command, content,
                                                                         says) -> None:
    file = user_project(project)
    (project / "requirements.txt").write_bytes(content)
    code, text = cli(capsys, *(word.format(file=file) for word in command))
    message = one_error(text)
    assert code == 2
    assert "step 'train'" in message and "requirements_file 'requirements.txt'" in message and says in message
    assert "save it as UTF-8" in message


def test_a_utf8_requirements_file_with_a_byte_order_mark_is_read(project, capsys) -> None:
    file = user_project(project)
    (project / "requirements.txt").write_bytes("numpy==2.1.0\n".encode("utf-8-sig"))
    code, text = cli(capsys, "build", file, "-s", "k8s", "--dry-run")
    assert code == 0, text


def test_a_dockerfile_that_is_not_utf8_is_one_sentence_naming_it(project, capsys) -> None:
    file = user_project(project, pipeline=BUILT_PIPELINE.replace('requirements_file="requirements.txt"',
                                                                 'dockerfile="docker/Dockerfile"'))
    (project / "docker").mkdir()
    (project / "docker/Dockerfile").write_bytes("FROM python:3.11-slim\n".encode("utf-16"))
    code, text = cli(capsys, "build", file, "-s", "k8s", "--dry-run")
    message = one_error(text)
    assert code == 2 and "dockerfile 'docker/Dockerfile' is UTF-16" in message and "save it as UTF-8" in message


@pytest.mark.parametrize("lines, bad_line, says", [
    ("numpy==2.1.0\n-r base.txt\n", 2, "reads another file"),
    ("numpy==2.1.0\n  --requirement=base.txt\n", 2, "reads another file"),
    ("-c constraints.txt\nnumpy\n", 1, "reads another file"),
    ("# the project itself\n-e .\n", 2, "is an editable install"),
    ("--editable ./libs/featurize\n", 1, "is an editable install"),
    ("numpy==2.1.0\n./libs/featurize\n", 2, "installs from a path on this machine"),
    ("featurize @ file:///home/me/featurize\n", 1, "installs from a path on this machine"),
    ("-f ./wheels\nnumpy\n", 1, "points pip at a folder"),
    ("numpy==2.1.0 \\\n    --hash=sha256:abc\n-r base.txt\n", 3, "reads another file"),
], ids=["-r", "--requirement=", "-c", "-e .", "--editable path", "local path", "file: URL", "-f folder",
        "after a continuation"])
def test_a_requirements_file_line_the_image_cannot_install_is_refused_naming_its_line(project, capsys, lines,
                                                                                     bad_line, says) -> None:
    file = user_project(project)
    (project / "requirements.txt").write_text(lines)
    (project / "base.txt").write_text("scipy==1.14.1\n")
    code, text = cli(capsys, "build", file, "-s", "k8s", "--dry-run")
    message = one_error(text)
    assert code == 2 and f"requirements_file requirements.txt:{bad_line}:" in message and says in message


def test_a_requirements_file_with_indexes_hashes_and_comments_still_builds(project, capsys) -> None:
    file = user_project(project)
    (project / "requirements.txt").write_text(
        "# pinned by pip-compile\n--index-url https://pypi.example/simple\n--extra-index-url=https://extra.example/simple\n"
        "-f https://download.pytorch.org/whl/torch_stable.html\n"
        "numpy==2.1.0 \\\n    --hash=sha256:" + "ab" * 32 + "  # via scipy\n"
        "pkg @ https://example.com/pkg-1.0.tar.gz\n")
    code, text = cli(capsys, "build", file, "-s", "k8s", "--dry-run")
    assert code == 0, text


@pytest.mark.parametrize("image", ["python 3.11; rm", "Python:3.11", "https://registry.example.com/ml/train:1",
                                   "train:", "train@sha256:short"])
def test_a_step_image_that_is_not_a_reference_fails_when_the_step_is_declared(project, capsys, image) -> None:
    file = user_project(project, config=K8S_STACK, pipeline=f"""
from stackhop import pipeline, step

@step(image={image!r})
def train() -> int:
    return 1

@pipeline
def p():
    train()
""")
    code, text = cli(capsys, "compile", file, "-s", "k8s")
    message = one_error(text)
    assert code == 2 and "step 'train'" in message and repr(image) in message and "is not an image reference" in message


@pytest.mark.parametrize("call", ['train().set_image("ml train:1")', 'train(); container_step("copy", "Busy Box", ["ls"])'],
                         ids=["set_image", "container_step"])
def test_an_image_given_later_in_the_pipeline_is_checked_too(project, capsys, call) -> None:
    file = user_project(project, config=K8S_STACK, pipeline=f"""
from stackhop import container_step, pipeline, step

@step
def train() -> int:
    return 1

@pipeline(image="python:3.11-slim")
def p():
    {call}
""")
    code, text = cli(capsys, "compile", file, "-s", "k8s")
    message = one_error(text)
    assert code == 2 and ("step 'train'" in message or "step 'copy'" in message or "steps[" in message), message
    assert "is not" in message and "reference" in message


@pytest.mark.parametrize("block, key", [
    ("defaults: {image: 'Registry Example/ml train'}", "stacks.k8s.defaults.image"),
    ("overrides: {steps: {train: {image: 'python:3.11 ; rm -rf /'}}}", "stacks.k8s.overrides.steps.train.image"),
    ("overrides: {all_steps: {image: 'https://ghcr.io/acme/train:1'}}", "stacks.k8s.overrides.all_steps.image"),
    ("settings: {driver: in-cluster, driver_image: 'stackhop driver'}", "stacks.k8s.settings.driver_image"),
])
def test_a_stack_image_that_is_not_a_reference_names_its_key_and_line(project, capsys, block, key) -> None:
    file = user_project(project, pipeline=BUILT_PIPELINE.replace("(image=ImageSettings(requirements_file=\"requirements.txt\"))", ""),
                 config=K8S_STACK + f"    {block}\n")
    code, text = cli(capsys, "compile", file, "-s", "k8s")
    message = one_error(text)
    assert code == 2 and "stackhop.yaml:7:" in message and f"{key}: Image reference" in message


@pytest.mark.parametrize("images, key, says", [
    ("{registry: 'https://registry.example.com/ml'}", "stacks.k8s.images.registry", "drop the https://"),
    ("{registry: 'http://127.0.0.1:5000/ml'}", "stacks.k8s.images.registry", "drop the http://"),
    ("{registry: 'registry.example.com/ml:latest'}", "stacks.k8s.images.registry", "ends in the tag 'latest'"),
    ("{registry: 'Registry.example.com/ML'}", "stacks.k8s.images.registry", "must be lowercase"),
    ("{registry: 'registry example/ml'}", "stacks.k8s.images.registry", "contains whitespace"),
    ("{registry: '127.0.0.1:5000/ml', registries: {trainer: 'https://eu.gcr.io/acme/trainer'}}",
     "stacks.k8s.images.registries", "drop the https://"),
    ("{registry: '127.0.0.1:5000/ml', registries: {'trainer:2.1': 'eu.gcr.io/acme/trainer'}}",
     "stacks.k8s.images.registries", "has a tag or digest"),
])
def test_a_registry_written_as_a_url_or_a_tag_names_its_key(project, capsys, images, key, says) -> None:
    file = user_project(project, config=K8S_STACK.replace('{registry: "127.0.0.1:5000/ml"}', images))
    (project / "requirements.txt").write_text("numpy==2.1.0\n")
    code, text = cli(capsys, "build", file, "-s", "k8s", "--dry-run")
    message = one_error(text)
    assert code == 2 and "stackhop.yaml:6:" in message and f"{key}: " in message and says in message
    assert "https://registry.example.com" not in text.replace(message, "")  # no tag was planned


@pytest.mark.parametrize("image", [
    "python:3.11-slim", "registry.example.com/ml/train:1.0", "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1.0",
    "us-docker.pkg.dev/p/ml/t:1", "127.0.0.1:5000/ml/train", "localhost:5000/train:dev", "[::1]:5000/train:1",
    "ghcr.io/acme/train@sha256:" + "ab" * 32, "ghcr.io/acme/train:1.0@sha256:" + "cd" * 32, "busybox",
])
def test_references_as_registries_spell_them_compile_from_the_step_and_the_stack(project, capsys, image) -> None:
    file = user_project(project, config=K8S_STACK + f"    defaults: {{image: {image!r}}}\n", pipeline=f"""
from stackhop import pipeline, step

@step(image={image!r})
def train() -> int:
    return 1

@pipeline
def p():
    train()
""")
    code, text = cli(capsys, "compile", file, "-s", "k8s")
    assert code == 0 and "Traceback" not in text, text
