"""Registers the built-in image builders through the same hook third-party builders use."""

from __future__ import annotations

from stackhop.core.plugins import hookimpl


@hookimpl
def stackhop_builders() -> list[type]:
    from stackhop.images.builders.buildah import BuildahBuilder
    from stackhop.images.builders.cloudbuild import CloudBuildBuilder
    from stackhop.images.builders.codebuild import CodeBuildBuilder
    from stackhop.images.builders.docker import DockerBuilder
    from stackhop.images.builders.kaniko import KanikoBuilder

    return [BuildahBuilder, DockerBuilder, KanikoBuilder, CodeBuildBuilder, CloudBuildBuilder]
