"""Which backend features a pipeline needs, and whether a stack's adapter has them, before anything runs."""

from __future__ import annotations

from stackhop.core.adapter import Adapter, Capability
from stackhop.core.ir import CollectedRef, OneOfRef, Pipeline
from stackhop.core.plugins import adapters
from stackhop.core.stack import Stack
from stackhop.errors import CapabilityError


def required_capabilities(ir: Pipeline) -> dict[Capability, list[str]]:
    """Which steps need which backend feature.

    An exit handler is needed by its handler step, not by the body it guards, so errors and
    warnings about it name the step the user passed to `ExitHandler(...)`.
    """
    needs: dict[Capability, list[str]] = {}
    groups = {g.id: g for g in ir.groups}

    def need(cap: Capability, step: str) -> None:
        needs.setdefault(cap, [])
        if step not in needs[cap]:
            needs[cap].append(step)

    for s in ir.steps:
        for g in ir.group_chain(s.group):
            if g.kind in ("condition", "parallel_for"):
                need({"condition": Capability.CONDITIONS, "parallel_for": Capability.PARALLEL_FOR}[g.kind], s.name)
            if g.items is not None and g.items.output is not None:
                need(Capability.RUNTIME_FAN_OUT, s.name)
        if any(isinstance(i.value, CollectedRef) for i in s.inputs):
            need(Capability.FAN_IN, s.name)
        if any(isinstance(i.value, OneOfRef) for i in s.inputs):
            need(Capability.ONE_OF, s.name)
        st = s.settings
        if st.retry and st.retry.max_retries > 0:
            need(Capability.RETRIES, s.name)
        if st.timeout_seconds:
            need(Capability.TIMEOUTS, s.name)
        if st.caching:
            need(Capability.CACHING, s.name)
        if s.secrets:
            need(Capability.SECRETS, s.name)
        if st.resources and st.resources.accelerator:
            need(Capability.GPU, s.name)
        if s.kind == "resource":
            need(Capability.RESOURCE_OPS, s.name)
        if s.kind == "container":
            need(Capability.CONTAINER_STEPS, s.name)
        if st.node_selector:
            need(Capability.NODE_SELECTORS, s.name)
        if st.tolerations:
            need(Capability.TOLERATIONS, s.name)
    for o in ir.outputs:
        if isinstance(o.value, CollectedRef):
            need(Capability.FAN_IN, o.value.step)
        if isinstance(o.value, OneOfRef):
            need(Capability.ONE_OF, o.value.values[0].step)
    for g in groups.values():
        if g.kind == "exit_handler" and g.exit_step:
            need(Capability.EXIT_HANDLER, g.exit_step)
    return needs


def check_capabilities(ir: Pipeline, stack: Stack, adapter_cls: type[Adapter]) -> list[str]:
    """Raise for the first unsupported feature; return warnings for features the backend ignores."""
    warnings = []
    for cap, steps in required_capabilities(ir).items():
        if cap in adapter_cls.capabilities:
            continue
        if cap in adapter_cls.ignored:
            warnings.append(f"stack {stack.name!r} ({adapter_cls.name}) ignores {cap.value} on step(s) {', '.join(steps)}.")
            continue
        others = sorted(n for n, c in adapters().items() if cap in c.capabilities)
        where = ", ".join(others) if others else "none of the installed adapters"
        role = " (the exit handler)" if cap is Capability.EXIT_HANDLER else ""
        raise CapabilityError(
            f"pipeline {ir.name!r}, step {steps[0]!r}{role} needs {cap.value}, which stack {stack.name!r} "
            f"(adapter {adapter_cls.name!r}) does not support; adapters that do: {where}."
        )
    return warnings
