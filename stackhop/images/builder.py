"""The builder contract: build a BuildSpec and push it, wherever that happens.

Builders register through the `stackhop_builders` hook, like adapters, so a third-party
builder is a plugin with the same standing as the built-in ones. Local builders (buildah,
docker) read the context from a directory; remote ones (kaniko, CodeBuild, Cloud Build) take
it from the stack's artifact store, where `BuildSpec.context_tar()` is uploaded first.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Callable, ClassVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from stackhop.core.stack import Stack
    from stackhop.images.spec import BuildSpec


class BuilderSettings(BaseModel):
    """Base for a builder's `images.builder_settings`; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Builder(ABC):
    name: ClassVar[str]
    Settings: ClassVar[type[BuilderSettings]] = BuilderSettings
    remote: ClassVar[bool] = False
    """True when the build runs elsewhere and reads its context from the artifact store."""

    def __init__(self, settings: BuilderSettings, stack: "Stack"):
        self.settings = settings
        self.stack = stack

    def unavailable(self) -> str | None:
        """Why this builder cannot run from here (no binary, no daemon, no credentials), or None."""
        return None

    @abstractmethod
    def build(self, spec: "BuildSpec", log: Callable[[str], None]) -> str:
        """Build `spec`, push it to `spec.reference`, and return the pushed manifest's digest ("sha256:...")."""
