"""Stacks: which backend, which artifact store, and what each environment changes.

`stackhop.yaml` is found upward from the working directory (or given with --config). It
names stacks; one is chosen by argument, then $STACKHOP_STACK, then `default_stack`, then the
built-in `local` stack, which always exists unless the file defines its own. `${VAR}` and
`${VAR:-default}` are replaced from the environment: the result is a value, written into compiled
documents like any other, so secrets go under `secrets:` as references instead. Every
error names the file, the line and the key.

Overrides, highest precedence first: `overrides.steps.<name>`, `overrides.all_steps`, the
step's own settings, the pipeline's defaults, then the stack's `defaults` (`stack_apply` folds
them into the IR).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, model_validator

from stackhop.core.artifacts import normalize_root
from stackhop.core.image_settings import ImageChoice, Registries, RepositoryPrefix
from stackhop.core.plugins import BUILTIN_STACK, adapter_class, builder_class
from stackhop.core.stack_apply import apply_stack as apply_stack  # noqa: F401  (importers know it from here)
from stackhop.core.store import store_path
from stackhop.core.store_access import remember_stack
from stackhop.core.tracing import resources_dict
from stackhop.core.yaml_files import Located, env_interpolation, load_text
from stackhop.errors import ConfigError, StackhopError

CONFIG_NAME = "stackhop.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_means_default(cls, data: Any) -> Any:
        """`settings:` with nothing after it (YAML's null) means the default, not an error."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items()
                    if not (v is None and k in cls.model_fields and cls.model_fields[k].default is not None)}
        return data


class StepOverride(_Strict):
    image: ImageChoice | None = Field(default=None, description="A reference, or settings to build one.")
    resources: dict[str, Any] | None = None
    retries: int | None = Field(default=None, ge=0, le=100)
    timeout: float | None = Field(default=None, gt=0, le=315_360_000, allow_inf_nan=False,
                                  description="Seconds, at most ten years.")
    caching: bool | None = None
    env: dict[str, str] = Field(default_factory=dict, description="Plain values: they are written into the compiled "
                                "document and the run record. Use `secrets` for anything secret.")
    secrets: dict[str, str] = Field(
        default_factory=dict,
        description="Environment variable -> `secret-name/key`: a reference the backend resolves when the step starts "
                    "(a Kubernetes Secret; locally, the variable settings.secrets maps it to).")
    node_selector: dict[str, str] = Field(default_factory=dict)

    @pydantic.field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        import re

        for env in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env):
                raise ValueError(f"environment variable name {env!r} is invalid; use letters, digits and '_'")
        return value

    @pydantic.field_validator("secrets")
    @classmethod
    def _secret_references(cls, value: dict[str, str]) -> dict[str, str]:
        import re

        for env, ref in value.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env):
                raise ValueError(f"environment variable name {env!r} is invalid; use letters, digits and '_'")
            name, _, key = ref.rpartition("/")
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/+=@-]*", name) or not re.fullmatch(r"[A-Za-z0-9._-]+", key):
                raise ValueError(f"{env}: {ref!r} is not a secret reference; write `secret-name/key`")
        return value


class Overrides(_Strict):
    all_steps: StepOverride | None = None
    steps: dict[str, StepOverride] = Field(default_factory=dict)


class ImagesConfig(_Strict):
    """How this stack gets images: which builder, which registry, how strictly pinned."""

    builder: str | None = Field(default=None, description="buildah, docker, kaniko, codebuild, cloudbuild; none: prebuilt only.")
    builder_settings: dict[str, Any] = Field(default_factory=dict)
    registry: RepositoryPrefix | None = Field(default=None,
                                              description="Where built images are pushed, e.g. 127.0.0.1:5000/ml.")
    registries: Registries = Field(default_factory=dict,
                                   description="Short image name -> full repository, e.g. train: 1234.dkr.ecr.../train.")
    require_digest: bool = Field(default=False, description="Refuse tags: every image must be pinned by digest.")
    reproducible: bool = Field(default=False, description="Warn about requirements that are not pinned with ==.")
    lock_file: str = Field(default=".stackhop/images.lock.json", description="Digests recorded by `stackhop build`.")


class Gates(_Strict):
    """What must hold before a release may be promoted *to* this stack."""

    successful_run: bool = Field(default=True, description="The release has a SUCCEEDED run on the source stack.")
    metrics: list[str] = Field(default_factory=list,
                               description='Thresholds on that run\'s Metrics, e.g. "evaluate_model.metrics.accuracy >= 0.9".')
    approval: bool = Field(default=False, description="Someone must approve (--approve NAME or STACKHOP_APPROVED_BY).")


class PromotionPolicy(_Strict):
    allowed_sources: list[str] = Field(default_factory=list, description="Stacks a release may come from; empty: the previous one.")
    gates: Gates = Gates()


class StackConfig(_Strict):
    adapter: str = BUILTIN_STACK
    description: str = ""
    artifact_root: str = ".stackhop/artifacts"
    caching: bool = True
    defaults: StepOverride | None = None
    overrides: Overrides = Overrides()
    settings: dict[str, Any] = Field(default_factory=dict)
    images: ImagesConfig = ImagesConfig()
    promotion: PromotionPolicy = PromotionPolicy()


class ConfigFile(_Strict):
    version: Literal[1] = 1
    default_stack: str | None = None
    stacks: dict[str, StackConfig] = Field(default_factory=dict)
    promotion: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class Stack:
    name: str
    config: StackConfig
    project_dir: Path
    source: str
    """Where the stack came from: 'path/stackhop.yaml' or 'built-in'."""
    adapter_settings: Any = None
    warnings: tuple[str, ...] = ()
    """Said at compile and run: values interpolated under secret-looking names."""

    @property
    def artifact_root(self) -> str:
        return normalize_root(self.config.artifact_root, self.project_dir)

    @property
    def store_path(self) -> Path:
        return store_path(self.project_dir)


# ---------------------------------------------------------------------------- loading


def _compose(text: str | bytes, path: str) -> Located:
    used: dict[tuple[Any, ...], tuple[str, ...]] = {}
    located = load_text(text, path, scalar=env_interpolation(path, dict(os.environ), used))
    assert isinstance(located, Located)
    located.interpolated = used
    return located


def _dotted(loc: tuple[Any, ...]) -> str:
    return ".".join(str(x) for x in loc) or "(top level)"


def _line_for(located: Located, loc: tuple[Any, ...]) -> int:
    return located.line(*loc)


def _validate(model: type[BaseModel], located: Located, path: str, prefix: tuple[Any, ...] = ()) -> Any:
    data = located.data
    for key in prefix:
        data = data.get(key) if isinstance(data, dict) else None
    data = {} if data is None and prefix else data
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        loc = prefix + tuple(err["loc"])
        line = _line_for(located, loc)
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(_allowed_keys(model, tuple(err["loc"])[:-1]))
            raise ConfigError(
                f"{path}:{line}: unknown key {_dotted(loc)!r}; allowed here: {allowed}."
            ) from None
        raise ConfigError(f"{path}:{line}: {_dotted(loc)}: {err['msg'].removeprefix('Value error, ')}.") from None


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for key in loc:
        if isinstance(key, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            continue
        field = current.model_fields.get(str(key))
        if field is None:
            # a dict[str, Model] value: the key is a user name, the model is the value type
            continue
        ann = field.annotation
        for candidate in (ann, *getattr(ann, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                current = candidate
                break
            for inner in getattr(candidate, "__args__", ()):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    current = inner
    return sorted(current.model_fields) if isinstance(current, type) and issubclass(current, BaseModel) else []


def find_project_dir(start: str | os.PathLike[str] | None = None) -> Path:
    """Where runs and artifacts live when no stackhop.yaml names a project: the nearest folder
    holding `.stackhop/` (looking no higher than the git work tree, or below the home folder),
    else the git work tree's root, else the current directory. So `cd notebooks` keeps seeing
    the project's runs."""
    here = Path(start or os.getcwd()).resolve()
    chain = [here, *here.parents]
    git = next((d for d in chain if (d / ".git").exists()), None)
    home = Path.home().resolve()
    for d in chain:
        if d == home and d != here and git is None:
            break  # outside a repository, projects under ~ do not share ~/.stackhop
        if (d / ".stackhop").is_dir():
            return d
        if d == git:
            return d
    return here


def find_config(start: str | os.PathLike[str] | None = None) -> Path | None:
    here = Path(start or os.getcwd()).resolve()
    for d in (here, *here.parents):
        candidate = d / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True)
class LoadedConfig:
    file: ConfigFile
    path: Path | None
    located: Located | None

    @property
    def project_dir(self) -> Path:
        return self.path.parent if self.path else find_project_dir()

    def stack_names(self) -> list[str]:
        names = list(self.file.stacks)
        return names if BUILTIN_STACK in names else [BUILTIN_STACK, *names]

    def line(self, *loc: Any) -> int:
        return _line_for(self.located, loc) if self.located else 1


def load_config(path: str | os.PathLike[str] | None = None) -> LoadedConfig:
    explicit = path or os.environ.get("STACKHOP_CONFIG")
    found = Path(explicit) if explicit else find_config()
    if found is None:
        return LoadedConfig(ConfigFile(), None, None)
    if found.is_dir():
        raise ConfigError(f"config file {str(found)!r} is a folder; pass the stackhop.yaml file itself to --config.")
    if not found.is_file():
        raise ConfigError(f"config file {str(found)!r} does not exist; pass an existing file to --config.")
    try:
        raw = found.read_bytes()
    except OSError as exc:
        raise ConfigError(f"config file {str(found)!r} cannot be read ({exc.strerror}); check its permissions.") from None
    located = _compose(raw, str(found))
    if located.data is None:
        located = Located({}, located.lines)  # an empty file: no stacks yet
    if not isinstance(located.data, dict):
        raise ConfigError(f"{found}:1: the file must be a mapping with a `stacks:` key, not a "
                          f"{type(located.data).__name__}.")
    return LoadedConfig(_validate(ConfigFile, located, str(found)), found.resolve(), located)


def default_stack_name(loaded: LoadedConfig) -> str:
    """The stack used when none is named: $STACKHOP_STACK, then `default_stack`, then `local`.

    One rule, so `stackhop stacks list` marks the stack `run()` would really choose."""
    return os.environ.get("STACKHOP_STACK") or loaded.file.default_stack or BUILTIN_STACK


def load_stack(name: str | None = None, *, config: str | os.PathLike[str] | LoadedConfig | None = None) -> Stack:
    loaded = config if isinstance(config, LoadedConfig) else load_config(config)
    if name is not None and not name.strip():
        raise ConfigError(f"the stack name is empty (-s \"\" or stack=\"\"), which an unset variable often gives; "
                          f"pass one of {', '.join(loaded.stack_names())}, or leave it out for the default.")
    chosen = name or default_stack_name(loaded)
    source = str(loaded.path) if loaded.path else "built-in"
    if chosen in loaded.file.stacks:
        cfg = loaded.file.stacks[chosen]
    elif chosen == BUILTIN_STACK:
        cfg, source = StackConfig(), "built-in"
    else:
        where = f"{loaded.path}" if loaded.path else "no stackhop.yaml was found"
        raise ConfigError(
            f"stack {chosen!r} is not defined ({where}); known stacks are {', '.join(loaded.stack_names())}."
        )
    where = f"{source}:{loaded.line('stacks', chosen, 'adapter')}" if source != "built-in" else "built-in stack"
    cls = adapter_class(cfg.adapter, where=f"{where} stacks.{chosen}.adapter")
    if loaded.located is not None and chosen in loaded.file.stacks:
        assert loaded.path is not None
        settings = _validate(cls.Settings, loaded.located, str(loaded.path), ("stacks", chosen, "settings"))
    else:
        settings = cls.Settings.model_validate(cfg.settings)
    _check_overrides(cfg, chosen, source, loaded)
    if cfg.images.builder:
        line = f"{source}:{loaded.line('stacks', chosen, 'images', 'builder')}" if source != "built-in" else source
        builder_class(cfg.images.builder, where=f"{line} stacks.{chosen}.images.builder")
    stack = Stack(chosen, cfg, loaded.project_dir, source, settings, _interpolated_secrets(loaded, chosen))
    remember_stack(stack.artifact_root, chosen)
    return stack


_SECRET_WORDS = {"TOKEN", "PASSWORD", "PASSWD", "PASS", "SECRET", "KEY", "CREDENTIAL", "CREDENTIALS", "APIKEY"}


def looks_secret(name: str) -> bool:
    """`API_TOKEN`, `aws_secret_access_key`, `dbPassword`, `api-key`: a word of the name says secret."""
    words = re.split(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])", str(name))
    return any(w.upper() in _SECRET_WORDS for w in words if w)


def _interpolated_secrets(loaded: LoadedConfig, stack: str) -> tuple[str, ...]:
    """A warning for each `${VAR}` that puts a value under a secret-looking name, where it will be written
    into compiled documents and run records; `secrets:` holds references instead."""
    if loaded.located is None:
        return ()
    out = []
    for loc, variables in sorted(loaded.located.interpolated.items(), key=lambda kv: loaded.line(*kv[0])):
        if loc[:2] != ("stacks", stack) or any(k in ("secrets", "image_pull_secrets") for k in loc):
            continue
        named = [k for k in loc[2:] if isinstance(k, str) and looks_secret(k)]
        if named:
            out.append(
                f"{loaded.path}:{loaded.line(*loc)}: {_dotted(loc)} gets the value of "
                f"{', '.join('${' + v + '}' for v in variables)}, and a value is written as it is into the compiled "
                f"document and the run record; for a secret, use `secrets: {{{named[-1]}: secret-name/key}}` in "
                "defaults or overrides (or set_secret_env), which passes a reference."
            )
    return tuple(out)


def _check_overrides(cfg: StackConfig, name: str, source: str, loaded: LoadedConfig) -> None:
    entries: list[tuple[tuple[Any, ...], StepOverride]] = []
    if cfg.defaults:
        entries.append((("defaults",), cfg.defaults))
    if cfg.overrides.all_steps:
        entries.append((("overrides", "all_steps"), cfg.overrides.all_steps))
    entries += [(("overrides", "steps", k), v) for k, v in cfg.overrides.steps.items()]
    for loc, ov in entries:
        if ov.resources is not None:
            full = ("stacks", name, *loc, "resources")
            try:
                resources_dict(f"{source}:{loaded.line(*full)} {_dotted(full)}", **ov.resources)
            except StackhopError as exc:
                raise ConfigError(str(exc)) from None


def json_schema() -> dict[str, Any]:
    return ConfigFile.model_json_schema()
