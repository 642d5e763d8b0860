"""The one exception the images package raises for things a user can fix."""

from __future__ import annotations

from stackhop.errors import StackhopError


class ImageError(StackhopError):
    """An image reference is malformed, or a build, push or registry call failed.

    Like every `StackhopError`, the message is one sentence that names the image (or registry)
    and says what to do, so the CLI can print it without a traceback.
    """
