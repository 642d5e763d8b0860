"""What an image should contain, declared on the pipeline, a step or a stack, and merged.

Part of the IR (it changes what a step runs in, so it is in the pipeline's digest), and
backend-neutral: `stackhop.images` renders and builds it, adapters only see the result.

Merging, lowest to highest (stack defaults, pipeline, step, stack overrides): a scalar set
higher wins; dicts merge key by key, higher wins; lists are concatenated lowest first with
repeats dropped, so a step adds requirements to the pipeline's rather than replacing them.

Every setting that reaches a rendered Dockerfile is checked by `image_rules` as it is
loaded, so a newline or a `;` in stackhop.yaml fails there, naming its key.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pydantic
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidatorFunctionWrapHandler, WrapValidator, \
    field_validator

from stackhop.core import image_rules as rules
from stackhop.errors import PipelineDefinitionError

_LISTS = ("requirements", "apt_packages")
_DICTS = ("environment", "build_args", "extra_files")

_Reference = Annotated[str, AfterValidator(rules.reference)]
Reference = _Reference
"""An image reference to run, checked by the OCI grammar (the IR's step and container images)."""
_User = Annotated[str, AfterValidator(rules.user)]
_Python = Annotated[str, AfterValidator(rules.python_executable)]
_ProjectPath = Annotated[str, AfterValidator(rules.project_path)]
_Requirement = Annotated[str, AfterValidator(rules.requirement)]
_AptPackage = Annotated[str, AfterValidator(rules.apt_package)]


class ImageSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    parent_image: _Reference | None = Field(default=None, description="Base image; default python:3.11-slim.")
    dockerfile: _ProjectPath | None = Field(default=None, description="A Dockerfile of your own, instead of rendering one.")
    build_context: _ProjectPath | None = Field(default=None, description="Context for `dockerfile`; default its folder.")
    requirements: tuple[_Requirement, ...] = Field(default=(), description="pip requirement lines.")
    requirements_file: _ProjectPath | None = Field(default=None, description="A requirements.txt, relative to the project.")
    apt_packages: tuple[_AptPackage, ...] = Field(default=(), description="Debian packages (the parent must be Debian-based).")
    environment: dict[str, str] = Field(default_factory=dict)
    extra_files: dict[str, str] = Field(default_factory=dict, description="path in the image -> path in the project")
    installer: Literal["pip", "uv"] | None = None
    code: Literal["image", "artifact_store", "git"] | None = Field(
        default=None, description="How step code reaches the container; default artifact_store.")
    user: _User | None = Field(default=None, description="User the image runs as; default 10001 (not root).")
    platform: str | None = Field(default=None, pattern=r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$")
    build_args: dict[str, str] = Field(default_factory=dict)
    python: _Python | None = Field(default=None, description="Python executable in the image; default python.")

    @field_validator("requirements", "apt_packages", mode="before")
    @classmethod
    def _tuple(cls, v: Any) -> Any:
        return tuple(v) if isinstance(v, list) else v

    @field_validator("environment")
    @classmethod
    def _environment(cls, v: dict[str, str]) -> dict[str, str]:
        return rules.variables(v, "an environment variable")

    @field_validator("build_args")
    @classmethod
    def _build_args(cls, v: dict[str, str]) -> dict[str, str]:
        return rules.variables(v, "a build argument")

    @field_validator("extra_files")
    @classmethod
    def _extra_files(cls, v: dict[str, str]) -> dict[str, str]:
        return rules.extra_files(v)

    def __init__(self, **data: Any) -> None:
        """Built in pipeline code: a bad setting is a stackhop error naming it, like one in stackhop.yaml."""
        try:
            super().__init__(**data)
        except pydantic.ValidationError as exc:
            # lazy: cycle, core.ir_build imports core.ir, which imports this module
            from stackhop.core.ir_build import describe_pydantic_error

            raise PipelineDefinitionError(f"ImageSettings: {describe_pydantic_error(exc, data)}") from None

    # Marks this __init__ as wrapping pydantic's own, so nested validation (stackhop.yaml, the IR) skips it
    # and keeps its located errors; only a direct ImageSettings(...) call gets the stackhop error.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    def merged_over(self, lower: "ImageSettings | None") -> "ImageSettings":
        if lower is None:
            return self
        data = lower.model_dump(exclude_defaults=True)
        for key, value in self.model_dump(exclude_defaults=True).items():
            if key in _LISTS:
                data[key] = tuple(dict.fromkeys((*data.get(key, ()), *value)))
            elif key in _DICTS:
                data[key] = {**data.get(key, {}), **value}
            else:
                data[key] = value
        return ImageSettings.model_validate(data)


def _reference_or_settings(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """A mapping is settings, validated so its errors name the setting itself, not a union branch;
    a string is a reference to run, checked by the OCI grammar."""
    if isinstance(value, dict):
        return ImageSettings.model_validate(value)
    if isinstance(value, str):
        return rules.reference(value)
    return handler(value)


ImageChoice = Annotated[str | ImageSettings, WrapValidator(_reference_or_settings)]
"""An `image:` in stackhop.yaml: a reference to run, or settings to build one from."""

RepositoryPrefix = Annotated[str, AfterValidator(rules.repository_prefix)]
"""`images.registry`: where built images are pushed, host[:port][/path] without a scheme."""

Registries = Annotated[dict[str, str], AfterValidator(rules.registries)]
"""`images.registries`: short image name -> the full repository it stands for."""
