"""A container step's command and args: walking their placeholders and filling them in.

Every backend reads the same `ir.Arg` items. Compilers first `resolve_presence` (whether a step
instance is given an optional input is known when the pipeline is built), leaving text,
placeholders and concatenations to translate into their own placeholder syntax; runtimes that
fill values themselves (local, our Kubernetes driver, the emulators) call `render`.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, Union

from stackhop.core import ir

Flat = Union[str, ir.Placeholder, ir.Concat]
"""An item once `IfPresent` is resolved: a Concat then holds only text and placeholders."""


def placeholders(items: Iterable[ir.Arg]) -> Iterator[ir.Placeholder]:
    """Every placeholder, in order, including those inside Concat and either branch of IfPresent."""
    for item in items:
        if isinstance(item, ir.Placeholder):
            yield item
        elif isinstance(item, ir.Concat):
            yield from placeholders(item.concat)
        elif isinstance(item, ir.IfPresent):
            yield from placeholders(item.then)
            yield from placeholders(item.otherwise)


def presence_names(items: Iterable[ir.Arg]) -> Iterator[str]:
    """The inputs an `IfPresent` asks about."""
    for item in items:
        if isinstance(item, ir.Concat):
            yield from presence_names(item.concat)
        elif isinstance(item, ir.IfPresent):
            yield item.if_present
            yield from presence_names(item.then)
            yield from presence_names(item.otherwise)


def unguarded(items: Iterable[ir.Arg], guarded: frozenset[str] = frozenset()) -> Iterator[tuple[ir.Placeholder, frozenset[str]]]:
    """Each placeholder with the inputs whose presence its position is conditional on."""
    for item in items:
        if isinstance(item, ir.Placeholder):
            yield item, guarded
        elif isinstance(item, ir.Concat):
            yield from unguarded(item.concat, guarded)
        elif isinstance(item, ir.IfPresent):
            yield from unguarded(item.then, guarded | {item.if_present})
            yield from unguarded(item.otherwise, guarded)


def resolve_presence(items: Iterable[ir.Arg], present: set[str] | frozenset[str]) -> list[Flat]:
    """The items with each IfPresent replaced by the branch `present` picks; a Concat stays one item."""
    out: list[Flat] = []
    for item in items:
        if isinstance(item, ir.IfPresent):
            out += resolve_presence(item.then if item.if_present in present else item.otherwise, present)
        elif isinstance(item, ir.Concat):
            out.append(ir.Concat(concat=tuple(_flatten_concat(item.concat, present))))
        else:
            out.append(item)
    return out


def _flatten_concat(items: Iterable[ir.Arg], present: set[str] | frozenset[str]) -> Iterator[str | ir.Placeholder]:
    for item in items:
        if isinstance(item, ir.IfPresent):
            yield from _flatten_concat(item.then if item.if_present in present else item.otherwise, present)
        elif isinstance(item, ir.Concat):
            yield from _flatten_concat(item.concat, present)
        else:
            yield item


def present_inputs(step: ir.Step) -> set[str]:
    """Inputs this step instance is given (a connected or constant value), as IfPresent reads them."""
    return {i.name for i in step.inputs if i.value is not None and not (isinstance(i.value, ir.Const) and i.value.value is None)}


def render(items: Iterable[ir.Arg], present: set[str] | frozenset[str], fill: Callable[[ir.Placeholder], str]) -> list[str]:
    """The argv: IfPresent resolved, each placeholder filled, each Concat joined."""
    out: list[str] = []
    for item in resolve_presence(items, present):
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, ir.Placeholder):
            out.append(fill(item))
        else:
            out.append("".join(x if isinstance(x, str) else fill(x) for x in item.concat))
    return out


def argv_items(spec: ir.ContainerSpec) -> tuple[ir.Arg, ...]:
    return (*spec.command, *spec.args)
