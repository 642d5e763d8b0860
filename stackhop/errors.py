"""Exceptions a user can act on.

Every `StackhopError` is one sentence that names the pipeline, step or config key and says
how to fix it; the CLI prints it without a traceback and exits 2. Anything else escaping is a
bug in stackhop and is shown with its traceback.
"""

from __future__ import annotations


class StackhopError(Exception):
    """A mistake in user input (pipeline code, parameters, stack config, CLI arguments)."""

    exit_code = 2


class PipelineDefinitionError(StackhopError):
    """The pipeline as written cannot be turned into a valid IR."""


class ValidationError(PipelineDefinitionError):
    """The IR breaks a rule (cycle, unknown reference, type mismatch, bad name ...)."""


class QuantityError(PipelineDefinitionError):
    """A cpu, memory or disk quantity is malformed or ambiguous."""


class ConfigError(StackhopError):
    """stackhop.yaml (or a stack passed in code) is invalid."""


class ParameterError(StackhopError):
    """Run parameters are missing, unknown or of the wrong type."""


class CapabilityError(StackhopError):
    """The pipeline needs a feature the chosen backend does not have."""


class RunNotFoundError(StackhopError):
    """No run with that id is in the run store."""


class ArtifactError(StackhopError):
    """An artifact is missing, or its name would escape its run's prefix."""


class ImageError(StackhopError):
    """An image reference is malformed, or a build, push or registry call failed.

    Defined here rather than in `stackhop.images` because core's reference parser raises it too,
    and one class keeps every `except ImageError` catching both.
    """


class StepFailedError(Exception):
    """Raised inside the entrypoint when the user's step code fails (exit code 1, not 2)."""


class RecursiveRunError(StackhopError):
    """run() was called while stackhop was importing a user's module (a script without a main guard)."""


class UserCodeError(PipelineDefinitionError):
    """The user's own module could not be imported; `details` holds its own frames, shown above the sentence."""

    def __init__(self, message: str, details: str = ""):
        super().__init__(message)
        self.details = details
