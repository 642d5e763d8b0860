"""Emulation: a backend's compiled document, run on this machine by the core scheduler.

`stackhop run --emulate` proves the document we would hand the backend, so an emulator reads
that document, never the IR: for each step instance the scheduler is about to start, it says
which command the backend would run (its argv, environment and limits, every expression and
placeholder filled), what to stage before and collect after, and whether the document's own
condition lets the step run. Everything else (readiness, loops, retries, caching, parallelism,
cancel, progress, the one state writer) is the scheduler's, exactly as for a local run.

An adapter that can emulate names its `Emulator` subclass as `Adapter.emulator`; choosing
emulation happens once, at submit, and the run is then watched like any local run.
"""

from __future__ import annotations

import os
import re
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

Index = tuple[int, ...]


class EmulationError(Exception):
    """The document asks for something this machine cannot do as the backend would; fails the step."""


@dataclass(frozen=True)
class Command:
    """One attempt of a step as the backend would start it."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    timeout_seconds: float | None = None
    """The document's own limit (MaxRuntimeInSeconds, activeDeadlineSeconds); None: the step's setting."""


@dataclass(frozen=True)
class EmulatedRun:
    """What an emulator knows of the run besides the document: the values the backend would supply."""

    run_id: str
    parameters: dict[str, Any]
    artifact_root: str
    pipeline: dict[str, Any]
    code: dict[str, Any]

    @property
    def run_prefix(self) -> str:
        return f"{self.artifact_root.rstrip('/')}/{self.pipeline['name']}/{self.run_id}"


class Emulator(ABC):
    """Runs one compiled document a step instance at a time; one object lives for the whole run.

    Methods are called from the scheduler's thread, except `collect`, which may run on the
    thread that saw the attempt's process end; it must only touch what that instance owns.
    """

    def __init__(self, files: dict[str, bytes], run: EmulatedRun):
        self.files = files
        self.run = run

    @abstractmethod
    def command(self, step: str, index: Index, workdir: str) -> Command:
        """The attempt's command, after staging its inputs into `workdir`; EmulationError fails the step."""

    def collect(self, step: str, index: Index, workdir: str) -> None:
        """After an attempt exited 0: move its outputs where the backend would; EmulationError fails it."""

    def condition(self, step: str, index: Index) -> bool | None:
        """Whether the document lets this instance run (its ConditionStep, its trigger policy); None: no condition."""
        return None

    def settled(self, step: str, index: Index, status: str, message: str) -> None:
        """An instance reached its final status; documents that pass task states on (exit handlers) keep it."""


def this_python(argv: list[str]) -> list[str]:
    """This interpreter stands in for the image's: the image itself is not run here."""
    name = os.path.basename(argv[0]) if argv else ""
    if name in ("python", "python3") or re.fullmatch(r"python3\.\d+", name):
        return [sys.executable, *argv[1:]]
    return argv
