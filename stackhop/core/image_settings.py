"""What an image should contain, declared on the pipeline, a step or a stack, and merged.

Part of the IR (it changes what a step runs in, so it is in the pipeline's digest), and
backend-neutral: `stackhop.images` renders and builds it, adapters only see the result.

Merging, lowest to highest (stack defaults, pipeline, step, stack overrides): a scalar set
higher wins; dicts merge key by key, higher wins; lists are concatenated lowest first with
repeats dropped, so a step adds requirements to the pipeline's rather than replacing them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_LISTS = ("requirements", "apt_packages")
_DICTS = ("environment", "build_args", "extra_files")


class ImageSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    parent_image: str | None = Field(default=None, description="Base image; default python:3.11-slim.")
    dockerfile: str | None = Field(default=None, description="A Dockerfile of your own, instead of rendering one.")
    build_context: str | None = Field(default=None, description="Context for `dockerfile`; default its folder.")
    requirements: tuple[str, ...] = Field(default=(), description="pip requirement lines.")
    requirements_file: str | None = Field(default=None, description="A requirements.txt, relative to the project.")
    apt_packages: tuple[str, ...] = Field(default=(), description="Debian packages (the parent must be Debian-based).")
    environment: dict[str, str] = Field(default_factory=dict)
    extra_files: dict[str, str] = Field(default_factory=dict, description="path in the image -> path in the project")
    installer: Literal["pip", "uv"] | None = None
    code: Literal["image", "artifact_store", "git"] | None = Field(
        default=None, description="How step code reaches the container; default artifact_store.")
    user: str | None = Field(default=None, description="User the image runs as; default 10001 (not root).")
    platform: str | None = Field(default=None, pattern=r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$")
    build_args: dict[str, str] = Field(default_factory=dict)
    python: str | None = Field(default=None, description="Python executable in the image; default python.")

    @field_validator("requirements", "apt_packages", mode="before")
    @classmethod
    def _tuple(cls, v: Any) -> Any:
        return tuple(v) if isinstance(v, list) else v

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
