"""Promote a release to the next stack: same IR, rebound to the target's settings, gated and recorded.

Nothing is re-traced and nothing is rebuilt: the IR comes from the release manifest, the code
archive is copied into the target's artifact store by digest, and the target stack's own
values (artifact root, images, resources, role, project) are folded in as for any compile. A
refused promotion deploys nothing and is recorded all the same, with the gate that stopped it.
"""

from __future__ import annotations

import time
from typing import Any

from stackhop.core.ir import Pipeline
from stackhop.core.stack import LoadedConfig, load_config, load_stack
from stackhop.core.store import RunStore
from stackhop.errors import StackhopError
from stackhop.promotion.gates import GateError, evaluate
from stackhop.promotion.release import load_release


class PromotionError(StackhopError):
    """The promotion asked for is not allowed by the promotion order or policy."""


def published_promotion(config: LoadedConfig, release_id: str, stack: str) -> dict[str, Any] | None:
    """The record a promotion to `stack` left in that stack's artifact store, if any."""
    from stackhop.core.artifacts import ArtifactStore

    try:
        store = ArtifactStore(load_stack(stack, config=config).artifact_root)
        uri = f"{store.root}/_stackhop/promotions/{release_id}/{stack}.json"
        return store.read_json(uri) if store.exists(uri) else None
    except StackhopError:
        return None


def current_stack(store: RunStore, release: dict[str, Any], config: LoadedConfig, order: list[str]) -> str:
    """The furthest stack the release has reached, by this machine's records or those in the stacks' stores."""
    reached = [p["to"] for p in store.promotions(release["release_id"]) if p["result"] == "promoted"]
    reached += [name for name in order if published_promotion(config, release["release_id"], name)]
    reached = [r for r in reached if r in order]
    return max(reached, key=order.index) if reached else release["content"]["source_stack"]


def promote(release_id: str, to: str, *, run: bool = False, wait: bool = True, force: bool = False,
            approved_by: str | None = None, config: LoadedConfig | None = None) -> dict[str, Any]:
    config = config or load_config()
    release = load_release(release_id, config)
    content = release["content"]
    order = config.file.promotion or content["promotion"]
    target = load_stack(to, config=config)
    store = RunStore(target.store_path)
    source = current_stack(store, release, config, order)
    record: dict[str, Any] = {"release_id": release["release_id"], "pipeline": content["pipeline"], "from": source,
                              "to": to, "at": time.time(), "ir_digest": content["ir_digest"], "gates": [],
                              "result": "refused"}

    def refuse(exc: StackhopError) -> StackhopError:
        record["reason"] = str(exc)
        store.add_promotion(record)
        return exc

    if to not in order:
        raise refuse(PromotionError(f"stack {to!r} is not in the promotion order {order}; add it to `promotion:` "
                                    "in stackhop.yaml."))
    nxt = order[order.index(source) + 1] if source in order and order.index(source) + 1 < len(order) else None
    if to != nxt and not force:
        where = f"next in the promotion order is {nxt!r}" if nxt else "it is already at the end of the promotion order"
        raise refuse(PromotionError(f"release {release['release_id']} is on stack {source!r} and {where}, not {to!r}; "
                                    "promote in order or pass --force."))
    policy = target.config.promotion
    if policy.allowed_sources and source not in policy.allowed_sources:
        raise refuse(PromotionError(f"stack {to!r} accepts releases from {', '.join(policy.allowed_sources)}, not from "
                                    f"{source!r}; promote through an allowed stack."))
    try:
        results = evaluate(policy.gates, release=release, source=source, target=to, store=store, approved_by=approved_by,
                           evidence=published_promotion(config, release["release_id"], source))
    except StackhopError as exc:
        raise refuse(exc) from None
    record["gates"] = [r.to_dict() for r in results]
    failed = [r for r in results if not r.passed]
    if failed:
        g = failed[0]
        raise refuse(GateError(f"release {release['release_id']} may not enter stack {to!r}: gate {g.gate!r} failed "
                               f"({g.detail})."))
    try:
        deployed, run_info = _deploy(release, target, config, run=run, wait=wait)
    except StackhopError as exc:
        raise refuse(exc) from None
    record.update(result="promoted", deployed=deployed, **run_info)
    store.add_promotion(record)
    _publish(record, target)
    from stackhop.promotion.release import publish

    publish(release, target.artifact_root)  # so a later job on a fresh runner finds it
    return record


def _deploy(release: dict[str, Any], target: Any, config: LoadedConfig, *, run: bool, wait: bool
            ) -> tuple[dict[str, Any], dict[str, Any]]:
    from stackhop.core.adapter import CodeRef
    from stackhop.core.api import _prepare
    from stackhop.core.api import run as run_pipeline
    from stackhop.core.artifacts import ArtifactStore

    content = release["content"]
    ir = Pipeline.model_validate(content["ir"])
    code = CodeRef()
    if content.get("code"):
        src = content["code"]
        name = src["digest"].split(":", 1)[1] + ".tar.gz"
        store = ArtifactStore(target.artifact_root)
        uri = store.shared_meta("code", name)
        if not store.exists(uri):
            store.write_bytes(uri, _code_bytes(src, name, config))
        code = CodeRef(archive_uri=uri, digest=src["digest"])
    copied = _carry_images(content, ir, target)
    effective, stack, adapter, _warnings = _prepare(ir, None, target, config)
    compiled = adapter.compile(effective)
    deployed = {"adapter": adapter.name, "digest": compiled.digest(), **adapter.deploy(compiled, release["release_id"])}
    if copied:
        deployed["images_copied"] = copied
    info: dict[str, Any] = {}
    if run:
        handle = run_pipeline(ir, target, wait=wait, config=config, _code=code)
        info = {"run_id": handle.run_id, "run_status": handle.status.value}
    return deployed, info


def _carry_images(content: dict[str, Any], ir: Pipeline, target: Any) -> dict[str, str]:
    """Built images the release pinned on its source registry, copied by digest to the target's registry.

    The target computes the same content-hash tag for the same settings; when its lock file does
    not know that reference yet, the source image is copied (never rebuilt) and the lock records it.
    """
    from stackhop.core.stack import apply_stack
    from stackhop.images.plan import plan_images, read_lock, write_lock
    from stackhop.images.reference import parse_reference
    from stackhop.images.registry import Registry

    effective = apply_stack(ir, target)
    if not target.config.images.registry or not any(s.settings.image_build for s in effective.steps):
        return {}
    plan = plan_images(effective, target, None)
    lock = read_lock(target)
    copied: dict[str, str] = {}
    for step, spec in plan.step_build.items():
        source = content["images"].get(step, "")
        built_as = content.get("built", {}).get(step, "")
        if spec.reference in lock or copied.get(spec.reference) or "@sha256:" not in source:
            continue
        if built_as.rsplit(":", 1)[-1] != spec.tag:
            continue  # the target renders different contents (e.g. another artifact store): it builds its own
        if source.split("@", 1)[0] == spec.repository:
            continue  # the same registry: nothing to carry
        dst = parse_reference(spec.reference)
        digest = Registry(dst.registry).copy(source, f"{dst.registry}/{dst.repository}", tag=spec.tag)
        copied[spec.reference] = digest
    if copied:
        write_lock(target, copied)
    return {ref: f"{ref.split(':h-')[0]}@{d}" for ref, d in copied.items()}


def _code_bytes(src: dict[str, Any], name: str, config: LoadedConfig) -> bytes:
    """The release's code archive: where it was released, or any stack of the order it has reached."""
    from stackhop.core.artifacts import ArtifactStore

    candidates = [src["archive_uri"]]
    for stack in config.file.promotion:
        try:
            candidates.append(ArtifactStore(load_stack(stack, config=config).artifact_root).shared_meta("code", name))
        except StackhopError:
            continue
    for uri in candidates:
        store = ArtifactStore.for_uri(uri)
        if store.exists(uri):
            return store.read_bytes(uri)
    raise PromotionError(f"the release's code archive {src['digest']} is in none of the promotion order's artifact "
                         "stores; release again from a stack whose store the target can read.")


def _publish(record: dict[str, Any], target: Any) -> None:
    from stackhop.core.artifacts import ArtifactStore

    store = ArtifactStore(target.artifact_root)
    store.write_json(f"{store.root}/_stackhop/promotions/{record['release_id']}/{record['to']}.json", record)
