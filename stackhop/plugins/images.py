"""Images as a plugin: the built-in builders, and how compile resolves and explains step images.

Core asks these hooks and never imports `stackhop.images`, so a stack that builds no images
pays nothing for the builders, and a third-party plugin could replace how images are made.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from stackhop.core.plugins import hookimpl

if TYPE_CHECKING:
    from stackhop.core.ir import Pipeline
    from stackhop.core.stack import Stack


@hookimpl
def stackhop_builders() -> list[type]:
    from stackhop.images.builders.buildah import BuildahBuilder
    from stackhop.images.builders.cloudbuild import CloudBuildBuilder
    from stackhop.images.builders.codebuild import CodeBuildBuilder
    from stackhop.images.builders.docker import DockerBuilder
    from stackhop.images.builders.kaniko import KanikoBuilder

    return [BuildahBuilder, DockerBuilder, KanikoBuilder, CodeBuildBuilder, CloudBuildBuilder]


@hookimpl
def stackhop_prepare_images(ir: "Pipeline", stack: "Stack", root: Path | None, build: bool
                            ) -> tuple["Pipeline", list[str]]:
    from stackhop.images.plan import resolve_images

    if build and stack.config.images.builder and any(s.settings.image_build for s in ir.steps):
        from stackhop.images.build import build_images

        for o in build_images(ir, stack, root, lambda line: print(line, file=sys.stderr)):
            print(f"image {o.result}: {o.reference}@{o.digest}", file=sys.stderr)
    return resolve_images(ir, stack, root)


@hookimpl
def stackhop_explain_images(ir: "Pipeline", stack: "Stack", root: Path | None) -> dict[str, list[str]]:
    from stackhop.images.plan import explain_images

    return explain_images(ir, stack, root)
