"""`stackhop build`: make every image a pipeline needs on a stack exist, and record its digest.

An image whose content-hash tag the registry already has is reused without building, which
is the common case: the check is one HEAD request per image. Built or reused, each reference
is written to the stack's lock file with its digest, and prebuilt tags are resolved there too
when the stack requires digests; compile then pins from that file without touching the network.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from stackhop.core import ir as irm
from stackhop.core.stack import Stack
from stackhop.images.builder import Builder
from stackhop.images.errors import ImageError
from stackhop.images.plan import ImagePlan, plan_images, write_lock


@dataclass(frozen=True)
class Outcome:
    reference: str
    steps: tuple[str, ...]
    result: str  # "reused", "built", "resolved"
    digest: str
    seconds: float


def make_builder(stack: Stack) -> "Builder | None":
    from stackhop.core.plugins import builder_class

    cfg = stack.config.images
    if not cfg.builder:
        return None
    cls = builder_class(cfg.builder, where=f"stack {stack.name!r} images.builder")
    try:
        settings = cls.Settings.model_validate(cfg.builder_settings)
    except Exception as exc:
        raise ImageError(f"stack {stack.name!r} images.builder_settings: {str(exc).splitlines()[0]}; "
                         f"see the {cls.name} builder's settings.") from None
    return cls(settings, stack)


def build_images(p: irm.Pipeline, stack: Stack, code_root: Path | None, log: Callable[[str], None],
                 plan: ImagePlan | None = None) -> list[Outcome]:
    from stackhop.images.reference import parse_reference
    from stackhop.images.registry import Registry

    plan = plan or plan_images(p, stack, code_root)
    builder = make_builder(stack) if plan.builds else None
    if plan.builds and builder is None:
        raise ImageError(f"stack {stack.name!r} has no images.builder, and pipeline {p.name!r} builds images; set one "
                         "(buildah, docker, kaniko, codebuild, cloudbuild) or give every step a prebuilt image.")
    if builder is not None and (reason := builder.unavailable()):
        raise ImageError(f"stack {stack.name!r}: the {builder.name} builder cannot run here: {reason}.")
    outcomes: list[Outcome] = []
    lock: dict[str, str] = {}
    for spec in plan.builds:
        start = time.perf_counter()
        ref = parse_reference(spec.reference)
        digest = Registry(ref.registry).manifest_digest(ref.repository, spec.tag)
        result = "reused"
        if digest is None:
            log(f"building {spec.reference} for {', '.join(spec.steps)}")
            digest = builder.build(spec, log)  # type: ignore[union-attr]
            result = "built"
        lock[spec.reference] = digest
        outcomes.append(Outcome(spec.reference, spec.steps, result, digest, time.perf_counter() - start))
    if stack.config.images.require_digest:
        for step, given in sorted(plan.given.items()):
            if "@sha256:" in given or given in lock:
                continue
            start = time.perf_counter()
            ref = parse_reference(given)
            digest = Registry(ref.registry).resolve(given).rsplit("@", 1)[1]
            lock[given] = digest
            outcomes.append(Outcome(given, (step,), "resolved", digest, time.perf_counter() - start))
    if lock:
        write_lock(stack, lock)
    return outcomes
