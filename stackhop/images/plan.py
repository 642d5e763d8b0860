"""Which image each step runs in, on a given stack: built from settings, mapped, or pinned.

`plan_images` renders every step's effective ImageSettings; steps whose settings render the
same share one image (the tag is the content hash). `resolve_images` is what compile calls:
it reads the lock file `stackhop build` writes (a file, never the network), so compile stays
pure, and puts the final reference in each step's `image`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from stackhop.core import ir as irm
from stackhop.core.stack import Stack
from stackhop.images.errors import ImageError
from stackhop.images.spec import BuildSpec


@dataclass
class ImagePlan:
    builds: list[BuildSpec] = field(default_factory=list)
    step_build: dict[str, BuildSpec] = field(default_factory=dict)
    given: dict[str, str] = field(default_factory=dict)
    """step -> the prebuilt reference it names, after short-name mapping."""
    warnings: list[str] = field(default_factory=list)


def _has_host(name: str) -> bool:
    first = name.split("/", 1)[0]
    return "/" in name and ("." in first or ":" in first or first == "localhost")


def map_short_name(image: str, registries: dict[str, str]) -> str:
    """`train:1.0` -> `<registries[train]>:1.0`; references with a registry host are left alone."""
    if _has_host(image):
        return image
    name, sep, rest = image.partition("@")
    if not sep:
        colon = name.rfind(":")
        name, sep, rest = (name[:colon], ":", name[colon + 1:]) if colon > 0 else (name, "", "")
    target = registries.get(name)
    return f"{target}{sep}{rest}" if target else image


def plan_images(p: irm.Pipeline, stack: Stack, code_root: Path | None) -> ImagePlan:
    from stackhop.images.render import render

    cfg = stack.config.images
    scheme = urlparse(stack.artifact_root).scheme or "file"
    plan = ImagePlan()
    rendered_for: dict[str, Any] = {}
    users: dict[str, list[str]] = {}
    for s in p.steps:
        st = s.settings
        if st.image_build is None:
            if st.image:
                plan.given[s.name] = map_short_name(st.image, cfg.registries)
            continue
        if not cfg.registry:
            raise ImageError(f"stack {stack.name!r}: step {s.name!r} builds its image, so set images.registry "
                             "(where built images are pushed, e.g. 127.0.0.1:5000/ml).")
        rendered = render(st.image_build, project=stack.project_dir, where=f"pipeline {p.name!r}, step {s.name!r}",
                          artifact_scheme=scheme, code_root=code_root, reproducible=cfg.reproducible)
        if rendered.key not in rendered_for:
            rendered_for[rendered.key] = (rendered, st.image_build)
            plan.warnings += [w for w in rendered.warnings if w not in plan.warnings]
        users.setdefault(rendered.key, []).append(s.name)
    for key, (rendered, settings) in rendered_for.items():
        spec = BuildSpec(name=p.name, repository=f"{cfg.registry.rstrip('/')}/{p.name}", tag=rendered.tag,  # type: ignore[union-attr]
                         dockerfile=rendered.dockerfile, context=rendered.context, platform=settings.platform,
                         build_args=tuple(sorted(settings.build_args.items())), steps=tuple(users[key]))
        plan.builds.append(spec)
        for step in users[key]:
            plan.step_build[step] = spec
    return plan


# ------------------------------------------------------------------ the lock file


def lock_path(stack: Stack) -> Path:
    return stack.project_dir / stack.config.images.lock_file


def read_lock(stack: Stack) -> dict[str, str]:
    """reference -> digest, as `stackhop build` recorded them."""
    path = lock_path(stack)
    if not path.exists():
        return {}
    try:
        return dict(json.loads(path.read_text())["images"])
    except (ValueError, KeyError, TypeError):
        raise ImageError(f"{path} is not an image lock file stackhop wrote; delete it and run `stackhop build` again.") from None


def write_lock(stack: Stack, entries: dict[str, str]) -> Path:
    path = lock_path(stack)
    merged = {**read_lock(stack), **entries}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"version": 1, "images": dict(sorted(merged.items()))}, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def pinned(reference: str, digest: str) -> str:
    base = reference.split("@", 1)[0]
    slash = base.rfind("/")
    colon = base.rfind(":")
    if colon > slash:
        base = base[:colon]
    return f"{base}@{digest}"


# ------------------------------------------------------------------ what compile uses


def resolve_images(p: irm.Pipeline, stack: Stack, code_root: Path | None) -> tuple[irm.Pipeline, list[str]]:
    """The IR with every step's final image reference; built ones by tag or, once built, by digest."""
    cfg = stack.config.images
    if not any(s.settings.image_build or s.settings.image for s in p.steps):
        return p, []
    plan = plan_images(p, stack, code_root)
    lock = read_lock(stack) if (plan.builds or cfg.require_digest or os.path.exists(lock_path(stack))) else {}
    steps = []
    for s in p.steps:
        if s.name in plan.step_build:
            ref = plan.step_build[s.name].reference
        elif s.name in plan.given:
            ref = plan.given[s.name]
        else:
            steps.append(s)
            continue
        if "@sha256:" not in ref and ref in lock:
            ref = pinned(ref, lock[ref])
        if cfg.require_digest and "@sha256:" not in ref:
            raise ImageError(
                f"pipeline {p.name!r}, step {s.name!r}: image {ref!r} is a tag, and stack {stack.name!r} requires "
                f"digests; run `stackhop build <file> --stack {stack.name}` to build or resolve it, or pin it by digest.")
        steps.append(s.model_copy(update={"settings": s.settings.model_copy(update={"image": ref, "image_build": None})}))
    return p.model_copy(update={"steps": tuple(steps)}), plan.warnings


def explain_images(p: irm.Pipeline, stack: Stack, code_root: Path | None) -> dict[str, list[str]]:
    plan = plan_images(p, stack, code_root)
    lock = read_lock(stack)
    out: dict[str, list[str]] = {}
    for s in p.steps:
        if s.name in plan.step_build:
            spec = plan.step_build[s.name]
            shared = [n for n in spec.steps if n != s.name]
            state = f"built, digest {lock[spec.reference]}" if spec.reference in lock else "not built yet"
            why = f"shared with {', '.join(shared)} (same settings)" if shared else "its own settings"
            out[s.name] = [f"image {spec.reference} from ImageSettings, {why}; {state}"]
        elif s.name in plan.given:
            ref = plan.given[s.name]
            mapped = "" if ref == s.settings.image else f" (short name {s.settings.image!r} mapped by images.registries)"
            if ref in lock:
                mapped += f", pinned to {lock[ref]} by the lock file"
            if s.container is not None:
                own = s.settings.image == s.container.image
                source = "the container step's own image" if own else (
                    f"replacing the container step's own {s.container.image!r} (set on the step or in overrides.steps)")
                out[s.name] = [f"image {ref}: {source}{mapped}"]
            else:
                out[s.name] = [f"image {ref} given{mapped}"]
    return out


def describe(plan: ImagePlan) -> dict[str, Any]:
    return {"images": [{"reference": b.reference, "steps": list(b.steps)} for b in plan.builds],
            "given": plan.given, "warnings": plan.warnings}
