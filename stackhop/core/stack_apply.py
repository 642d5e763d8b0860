"""Folding a stack into an IR: every step's settings as that stack runs them.

Layers, lowest first: the stack's `defaults`, the pipeline's defaults, the step's own settings,
`overrides.all_steps`, then `overrides.steps.<name>`. A container step runs its own image: only
its own settings and `overrides.steps.<name>` may replace it. Each setting has one merge rule, kept in
one table (mappings merge key by key, resources field by field, an image reference and image
settings replace each other), so what a stack does to a setting is read in one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from stackhop.core.image_settings import ImageSettings
from stackhop.core.tracing import resources_dict
from stackhop.errors import ConfigError

if TYPE_CHECKING:
    from stackhop.core import ir as irm
    from stackhop.core.stack import Stack, StepOverride

Layer = dict[str, Any]
"""StepSettings fields (plus the two markers below) that one layer sets."""

_NO_ACCELERATOR = "_no_accelerator"
"""An override said `accelerator: null`: it removes the accelerator a lower layer asked for."""
_SECRETS = "_secrets"
"""Secret references travel with the layers but end in `Step.secrets`, not in the settings."""


def apply_stack(ir: "irm.Pipeline", stack: "Stack") -> "irm.Pipeline":
    """The IR as this stack will run it: stack defaults and overrides folded into each step."""
    _check_override_names(ir, stack)
    cfg = stack.config
    low, high = _override_layer(cfg.defaults, stack), _override_layer(cfg.overrides.all_steps, stack)
    pipeline_defaults = _settings_layer(ir.defaults)
    steps = tuple(
        _step_on_stack(s, [*_shared(s, [low, pipeline_defaults]), _settings_layer(s.settings), *_shared(s, [high]),
                           _override_layer(cfg.overrides.steps.get(s.name), stack)])
        for s in ir.steps
    )
    return ir.model_copy(update={"steps": steps})


def _shared(step: "irm.Step", layers: list[Layer]) -> list[Layer]:
    """Layers set for every step; a container step's image is its own, so their image settings pass it by."""
    if step.kind != "container":
        return layers
    return [{k: v for k, v in layer.items() if k not in ("image", "image_build")} for layer in layers]


def _check_override_names(ir: "irm.Pipeline", stack: "Stack") -> None:
    """An override for a step the pipeline lacks is a typo, never something to ignore."""
    names = {s.name for s in ir.steps}
    for step_name in stack.config.overrides.steps:
        if step_name not in names:
            raise ConfigError(
                f"{stack.source} stacks.{stack.name}.overrides.steps.{step_name}: pipeline {ir.name!r} has no step "
                f"{step_name!r}; its steps are {', '.join(sorted(names))}."
            )


def _step_on_stack(step: "irm.Step", layers: list[Layer]) -> "irm.Step":
    # lazy: keeps ir's pydantic models out of loading a stack (callers of apply_stack hold an IR already)
    from stackhop.core import ir as irm
    from stackhop.core.ir_build import construct

    merged = _merge_layers(layers)
    if step.container is not None and "image" not in merged and "image_build" not in merged:
        merged["image"] = step.container.image
    secrets = {**{r.env: r for r in step.secrets}, **merged.pop(_SECRETS, {})}
    return step.model_copy(update={"settings": construct(irm.StepSettings, merged, f"step {step.name!r}"),
                                   "secrets": tuple(secrets[e] for e in sorted(secrets))})


# ---------------------------------------------------------------------------- layers


def _override_layer(ov: "StepOverride | None", stack: "Stack") -> Layer:
    """A stack's `defaults` or one of its overrides, in the IR's own terms."""
    if ov is None:
        return {}
    from stackhop.core import ir as irm

    out: Layer = {**_image_layer(ov), **_resources_layer(ov, stack)}
    if ov.retries is not None:
        out["retry"] = irm.RetryPolicy(max_retries=ov.retries)
    if ov.timeout is not None:
        out["timeout_seconds"] = ov.timeout
    if ov.caching is not None:
        out["caching"] = ov.caching
    if ov.env:
        out["env"] = dict(ov.env)
    if ov.node_selector:
        out["node_selector"] = dict(ov.node_selector)
    if ov.secrets:
        out[_SECRETS] = _secret_refs(ov.secrets)
    return out


def _image_layer(ov: "StepOverride") -> Layer:
    if isinstance(ov.image, ImageSettings):
        return {"image_build": ov.image}
    return {"image": ov.image} if ov.image is not None else {}


def _resources_layer(ov: "StepOverride", stack: "Stack") -> Layer:
    """Parsed resources; `accelerator: null` is kept as a marker, because the merge would read it as unset."""
    if ov.resources is None:
        return {}
    from stackhop.core import ir as irm

    parsed = resources_dict(f"stack {stack.name!r}", **ov.resources)
    out: Layer = {"resources": irm.Resources.model_validate(parsed)}
    if "accelerator" in parsed and parsed["accelerator"] is None:
        out[_NO_ACCELERATOR] = True
    return out


def _secret_refs(secrets: dict[str, str]) -> dict[str, "irm.SecretRef"]:
    from stackhop.core import ir as irm

    return {env: irm.SecretRef(env=env, name=ref.rpartition("/")[0], key=ref.rpartition("/")[2])
            for env, ref in secrets.items()}


def _settings_layer(settings: Any) -> Layer:
    """The fields a step (or the pipeline) set; empty ones leave lower layers alone."""
    out: Layer = {}
    for key in type(settings).model_fields:
        value = getattr(settings, key)
        if value is None or value == {} or value == ():
            continue
        out[key] = value
    return out


# ---------------------------------------------------------------------------- merging


def _merge_mapping(merged: Layer, key: str, value: Any) -> None:
    merged[key] = {**merged.get(key, {}), **value}


def _merge_resources(merged: Layer, key: str, value: Any) -> None:
    lower = merged.get(key)
    merged[key] = value.merged_over(lower) if lower is not None else value


def _drop_accelerator(merged: Layer, key: str, value: Any) -> None:
    merged["resources"] = merged["resources"].model_copy(update={"accelerator": None})


def _merge_image_build(merged: Layer, key: str, value: Any) -> None:
    """The most specific layer decides between building an image and naming one."""
    merged[key] = value.merged_over(merged.get(key))
    merged.pop("image", None)


def _set_image(merged: Layer, key: str, value: Any) -> None:
    merged[key] = value
    merged.pop("image_build", None)


def _replace(merged: Layer, key: str, value: Any) -> None:
    merged[key] = value


_MERGE: dict[str, Callable[[Layer, str, Any], None]] = {
    "env": _merge_mapping,
    "labels": _merge_mapping,
    "node_selector": _merge_mapping,
    _SECRETS: _merge_mapping,
    "resources": _merge_resources,
    _NO_ACCELERATOR: _drop_accelerator,
    "image_build": _merge_image_build,
    "image": _set_image,
}
"""How a higher layer's value meets a lower one's; any setting not listed here replaces it."""


def _merge_layers(layers: list[Layer]) -> Layer:
    merged: Layer = {}
    for layer in layers:
        for key, value in layer.items():
            _MERGE.get(key, _replace)(merged, key, value)
    return merged
