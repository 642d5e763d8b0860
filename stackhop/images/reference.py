"""Image references, as the images package has always named them.

The parser moved to `stackhop.core.image_reference`, because the IR and stack config check
references where they are written; these names stay so builders and plugins keep working.
"""

from __future__ import annotations

from stackhop.core.image_reference import (
    DOCKER_HUB,
    DOCKER_HUB_API,
    ImageRef,
    check_repository_prefix,
    is_digest,
    is_loopback,
    parse_reference,
    scheme_of,
)

__all__ = ["DOCKER_HUB", "DOCKER_HUB_API", "ImageRef", "check_repository_prefix", "is_digest", "is_loopback",
           "parse_reference", "scheme_of"]
