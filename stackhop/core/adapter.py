"""The adapter contract: the one narrow seam between the core and a backend.

An adapter takes plain values (IR, stack, a run request) and returns plain values (a compiled
document, a backend reference, a RunState). `compile` is pure; only submit/status/logs/cancel
talk to the outside world, and heavy SDKs are imported inside those methods.
"""

from __future__ import annotations

import enum
import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from stackhop.errors import StackhopError

if TYPE_CHECKING:
    from stackhop.core.ir import Pipeline
    from stackhop.core.runs import ArtifactRef, RunState
    from stackhop.core.stack import Stack


class Capability(str, enum.Enum):
    CONDITIONS = "conditions"
    PARALLEL_FOR = "parallel_for"
    EXIT_HANDLER = "exit_handler"
    RETRIES = "retries"
    CACHING = "caching"
    TIMEOUTS = "timeouts"
    SECRETS = "secrets"
    GPU = "gpu"
    RESOURCE_OPS = "resource_ops"
    CONTAINER_STEPS = "container_steps"
    NODE_SELECTORS = "node_selectors"
    TOLERATIONS = "tolerations"
    SIDECARS = "sidecars"
    SCHEDULES = "schedules"


class Note(str):
    """A note on how a backend treats the pipeline: printed as `note:`, not as a warning."""


class AdapterSettings(BaseModel):
    """Base for an adapter's section of a stack; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Compiled:
    """A backend document: file name -> exact bytes. Same IR and stack, same bytes."""

    adapter: str
    files: dict[str, bytes]
    notes: tuple[str, ...] = ()

    def digest(self) -> str:
        h = hashlib.sha256()
        for name in sorted(self.files):
            h.update(name.encode() + b"\0" + hashlib.sha256(self.files[name]).digest())
        return "sha256:" + h.hexdigest()


@dataclass(frozen=True)
class CodeRef:
    """How a step process finds the user's code: a source dir (local only) and/or an archive."""

    source_dir: str | None = None
    archive_uri: str | None = None
    digest: str | None = None


@dataclass(frozen=True)
class RunRequest:
    run_id: str
    parameters: dict[str, Any]
    artifact_root: str
    code: CodeRef
    caching: bool = True
    store_path: str | None = None
    pipeline: dict[str, Any] = field(default_factory=dict)
    """The effective IR as JSON: what step processes and drivers read from the run spec."""


@dataclass(frozen=True)
class BackendRef:
    """What a backend calls the run; enough for status/logs/cancel from any later process."""

    adapter: str
    data: dict[str, Any] = field(default_factory=dict)


class Adapter(ABC):
    name: ClassVar[str]
    Settings: ClassVar[type[AdapterSettings]] = AdapterSettings
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    ignored: ClassVar[frozenset[Capability]] = frozenset()
    """Features this backend accepts but cannot honour (a warning, not an error)."""
    uses_images: ClassVar[bool] = True
    """Steps run in container images, so image settings are built, mapped and pinned for this backend."""
    poll_seconds: ClassVar[tuple[float, float]] = (1.0, 10.0)
    """First and longest delay between status polls; cloud APIs want the longer end."""

    def __init__(self, stack: "Stack"):
        self.stack = stack
        self.settings = stack.adapter_settings

    def wants_code_archive(self) -> bool:
        """Remote backends need the user's code shipped; the local one can read the source tree."""
        return True

    @classmethod
    def drive(cls, spec_uri: str) -> int:
        """Run this backend's driver for one run (`python -m stackhop.entrypoint --driver NAME`)."""
        raise StackhopError(f"adapter {cls.name!r} has no driver; it does not run one.")

    def emulate(self, compiled: Compiled, request: RunRequest) -> BackendRef:
        """Execute the compiled document on this machine (`stackhop run --emulate`), blocking."""
        raise StackhopError(
            f"adapter {self.name!r} cannot emulate its compiled document; run without --emulate."
        )

    def deploy(self, compiled: Compiled, label: str) -> dict[str, Any]:
        """Make the compiled document the one this stack runs (`stackhop promote`), without starting a run.

        The default keeps it in the stack's artifact store; backends with a pipeline registry
        (SageMaker) register it there too.
        """
        from stackhop.core.artifacts import ArtifactStore

        store = ArtifactStore(self.stack.artifact_root)
        base = f"{store.root}/_stackhop/deployments/{label}"
        for name, data in sorted(compiled.files.items()):
            store.write_bytes(f"{base}/{name}", data)
        return {"location": base}

    def notes_for(self, ir: "Pipeline") -> list[str]:
        """One-line notes on how this backend will treat the pipeline (a GPU step on a laptop runs on the CPU)."""
        return []

    def explain(self, ir: "Pipeline") -> dict[str, list[str]]:
        """Per step, the backend's choices and why (`stackhop compile --explain`)."""
        return {}

    @abstractmethod
    def compile(self, ir: "Pipeline") -> Compiled: ...

    @abstractmethod
    def submit(self, compiled: Compiled, request: RunRequest) -> BackendRef: ...

    @abstractmethod
    def status(self, ref: BackendRef) -> "RunState": ...

    @classmethod
    def settled_offline(cls, backend_ref: dict[str, Any]) -> "RunState | None":
        """A run's final state when this machine can tell without asking a backend service (a local
        runner that died), so `runs list` is right without a network call; None otherwise."""
        return None

    @abstractmethod
    def logs(self, ref: BackendRef, step: str) -> str: ...

    @abstractmethod
    def cancel(self, ref: BackendRef) -> None: ...

    @abstractmethod
    def artifacts(self, ref: BackendRef) -> list["ArtifactRef"]: ...
