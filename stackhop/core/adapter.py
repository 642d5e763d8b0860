"""The adapter contract: the one page an adapter author reads.

An adapter is one class, registered through the `stackhop` entry-point group by a module with a
`stackhop_adapters()` hook (see docs/adapters.md for the files and tests/toy_adapter for a whole
third-party backend). It takes plain values and returns plain values; nothing else of stackhop
needs to know it exists.

Declare, on the class:
- `name`: what `adapter:` in a stack says.
- `Settings`: a pydantic model of the stack's `settings:` section (unknown keys are errors).
- `Ref`: a `RefData` model of what `submit` records to find the run again from any process.
- `capabilities`: the `Capability` values the backend honours; a pipeline needing another one is
  refused before anything is submitted, naming the step and the adapters that have it. `ignored`
  lists features accepted with a warning instead.
- `uses_images`, `poll_seconds`, and `emulator` (an `Emulator` subclass, see `core.emulation`,
  if `--emulate` can run the compiled document on this machine).

Implement:
- `compile(ir) -> Compiled`: pure. No network, clock or randomness: the same IR and stack give the
  same bytes, so CI can diff it and promotion can re-target it.
- `submit(compiled, request) -> BackendRef`: idempotent (a retried submit finds the first run).
- `status(ref) -> RunState`, `logs(ref, step)`, `cancel(ref)`, `artifacts(ref)`: read the backend
  and answer in stackhop's vocabulary (`RunStatus`, `StepStatus`), keeping the backend's own word
  beside it as `native`. Never raise for an unknown word: map it to UNKNOWN.
- Optionally `stage` (what steps read besides the document, before an emulated run), `deploy`,
  `notes_for`, `explain`, `wants_code_archive`, `settled_offline` and `drive`.

Heavy SDKs are imported inside the methods that talk to the backend, never at module level, so
`import stackhop` and `stackhop --help` stay fast.
"""

from __future__ import annotations

import enum
import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from stackhop.core.artifacts import ArtifactStore
from stackhop.errors import StackhopError

if TYPE_CHECKING:
    from stackhop.core.emulation import Emulator
    from stackhop.core.ir import Pipeline
    from stackhop.core.runs import ArtifactRef, RunState
    from stackhop.core.stack import Stack


class Capability(str, enum.Enum):
    CONDITIONS = "conditions"
    PARALLEL_FOR = "parallel_for"
    RUNTIME_FAN_OUT = "runtime_fan_out"
    """A ParallelFor over a list a step returns at run time."""
    FAN_IN = "fan_in"
    """Collected(...): one step reads every iteration's value of a loop."""
    ONE_OF = "one_of"
    """OneOf(...): one step reads the output of whichever branch of an If/Elif/Else chain ran."""
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
    RESUME = "resume"
    """`runs resume`: a new run that reuses the finished steps of a run that failed or stopped."""


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
    resume: dict[str, Any] | None = None
    """{"origin": run id, "rerun": [steps], "skip": [steps], "origin_ref": {...}, "origin_parameters": {...}}: reuse
    the origin's finished steps whose cache key is unchanged; `origin_ref` is the origin's backend ref data."""


@dataclass(frozen=True)
class BackendRef:
    """What a backend calls the run; enough for status/logs/cancel from any later process.

    `data` is the JSON the run store keeps; adapters read it through their typed `Ref` model."""

    adapter: str
    data: dict[str, Any] = field(default_factory=dict)


class RefData(BaseModel):
    """Base for an adapter's `Ref`: the fields it records to find its run again.

    Unknown keys are ignored, so a record an older stackhop wrote still opens."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    @classmethod
    def of(cls: type[_R], ref: BackendRef) -> _R:
        try:
            return cls.model_validate(ref.data)
        except ValidationError as exc:
            missing = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
            raise StackhopError(
                f"the run's {ref.adapter} reference lacks {missing}; it was recorded by another version of stackhop "
                "or edited by hand, so open the run in the backend's own console."
            ) from None

    def ref(self, adapter: str) -> BackendRef:
        return BackendRef(adapter, self.model_dump(mode="json", exclude_none=True))


_R = TypeVar("_R", bound=RefData)


class ResumedRef(RefData):
    """The fields a backend that resumes by resubmitting or retrying keeps, so its status can say what was reused."""

    document: str = ""
    """The compiled document's digest: a run whose document and parameters are unchanged can be retried in place."""
    resumed: str = ""
    """The stackhop run this one resumes; `mechanism` says how ("retry" or "resubmit"), `note` why."""
    mechanism: str = ""
    note: str = ""
    again: dict[str, str] = {}
    """Instance key -> why it runs again."""
    reused: list[str] = []
    """Instance keys a retry kept from the origin (the same backend run)."""
    left_out: list[str] = []
    """Steps `--skip` left out of the document: SKIPPED."""


class Adapter(ABC):
    name: ClassVar[str]
    Settings: ClassVar[type[AdapterSettings]] = AdapterSettings
    Ref: ClassVar[type[RefData]] = RefData
    """The typed shape of this adapter's BackendRef.data."""
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    ignored: ClassVar[frozenset[Capability]] = frozenset()
    """Features this backend accepts but cannot honour (a warning, not an error)."""
    uses_images: ClassVar[bool] = True
    """Steps run in container images, so image settings are built, mapped and pinned for this backend."""
    poll_seconds: ClassVar[tuple[float, float]] = (1.0, 10.0)
    """First and longest delay between status polls; cloud APIs want the longer end."""
    emulator: ClassVar["type[Emulator] | None"] = None
    """Runs this backend's compiled document on this machine (`--emulate`); None: it cannot."""

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

    def stage(self, compiled: Compiled, request: RunRequest) -> None:
        """Put what the document's steps read besides the document (the run spec) where they look for it.

        Called before an emulated run; `submit` stages for itself."""

    def deploy(self, compiled: Compiled, label: str) -> dict[str, Any]:
        """Make the compiled document the one this stack runs (`stackhop promote`), without starting a run.

        The default keeps it in the stack's artifact store; backends with a pipeline registry
        (SageMaker) register it there too.
        """
        store = ArtifactStore(self.stack.artifact_root)
        base = f"{store.root}/_stackhop/deployments/{label}"
        for name, data in sorted(compiled.files.items()):
            store.write_bytes(f"{base}/{name}", data)
        return {"location": base}

    def for_resume(self, ir: "Pipeline", resume: dict[str, Any]) -> "Pipeline":
        """The IR to compile for a run that resumes another (`RunRequest.resume`). A backend whose scheduler is
        stackhop's reuses steps itself and changes nothing; one that reuses through its own cache or retry turns
        caching off on the steps to run again here, and refuses what it cannot do."""
        return ir

    def run_prefixes(self, ref: BackendRef) -> list[str]:
        """Folders of the artifact store the backend itself wrote for this run, beyond stackhop's run layout
        (`{artifact_root}/{pipeline}/{run_id}`): what deleting the run removes with it."""
        return []

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
