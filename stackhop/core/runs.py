"""One vocabulary for runs on every backend: statuses, per-step states and artifact references.

Each backend maps its own words onto these enums and keeps its word beside ours (`native`), so
nothing is lost and a word we have never seen becomes UNKNOWN instead of an exception.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from stackhop.core import materializers
from stackhop.core.artifacts import ArtifactStore


class RunStatus(str, enum.Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"
    UNKNOWN = "UNKNOWN"

    @property
    def terminal(self) -> bool:
        return self in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)

    @classmethod
    def parse(cls, word: str) -> "RunStatus":
        return cls.__members__.get(str(word).upper(), cls.UNKNOWN)


class StepStatus(str, enum.Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"
    SKIPPED = "SKIPPED"
    CACHED = "CACHED"
    UNKNOWN = "UNKNOWN"

    @property
    def terminal(self) -> bool:
        return self in (StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.CANCELLED, StepStatus.SKIPPED, StepStatus.CACHED)

    @property
    def ok(self) -> bool:
        return self in (StepStatus.SUCCEEDED, StepStatus.CACHED)

    @classmethod
    def parse(cls, word: str) -> "StepStatus":
        return cls.__members__.get(str(word).upper(), cls.UNKNOWN)


@dataclass(frozen=True)
class StepState:
    name: str
    status: StepStatus
    native: str = ""
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    message: str = ""
    log_uri: str | None = None
    cache: dict[str, Any] | None = None
    """How the cache answered where the scheduler ran: {"result": "hit" | "miss" | "disabled", "changed": [...]}."""
    label: str = ""
    """A loop iteration named after its item (`train[lr=0.05]`), the same in every run that tried that item."""

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "status": self.status.value}


@dataclass(frozen=True)
class RunState:
    status: RunStatus
    native: str = ""
    steps: dict[str, StepState] = field(default_factory=dict)
    message: str = ""
    started_at: float | None = None
    finished_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "native": self.native,
            "message": self.message,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "steps": {k: v.to_dict() for k, v in self.steps.items()},
        }


@dataclass(frozen=True)
class ArtifactRef:
    """Where one output lives, what it is, and how to read it back."""

    uri: str
    type: str
    step: str = ""
    output: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    materializer: str | None = None
    digest: str | None = None
    value: Any = None
    materializer_meta: dict[str, Any] = field(default_factory=dict)
    materializer_module: str | None = None

    def load(self, *, allow_pickle: bool = False, as_type: Any = None) -> Any:
        """Scalars and metrics as values; materialized outputs through their materializer (into
        `as_type`, for dataclasses and pydantic models, when given); other files as bytes;
        directories as a local path."""
        if self.type in ("str", "int", "float", "bool", "list", "dict"):
            return self.value
        if self.type in ("Metrics", "ClassificationMetrics"):
            return dict(self.metadata)
        store = ArtifactStore.for_uri(self.uri)
        with store.local_copy(self.uri) as path:
            if self.materializer:
                return materializers.load(path, self.materializer, allow_pickle=allow_pickle, expected=as_type,
                                          meta=self.materializer_meta, module=self.materializer_module)
            import os

            if os.path.isdir(path):
                return self.download()
            with open(path, "rb") as f:
                return f.read()

    def download(self, dest: str | None = None) -> str:
        """Copy the artifact to a local path (a temp dir when not given) and return it."""
        import tempfile

        target = dest or tempfile.mkdtemp(prefix="stackhop-artifact-")
        import os

        if dest is None:
            target = os.path.join(target, self.output or "artifact")
        ArtifactStore.for_uri(self.uri).get(self.uri, target)
        return target
