"""Label and field selectors: parsing the query-string grammar and matching objects.

Selectors decide which objects a list or watch returns, so a lenient parser would let a client
send selectors a cluster rejects, and a wrong matcher would hide or leak objects (for example,
`!=` and `notin` also match objects that lack the label, exactly as upstream).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from . import names

__all__ = [
    "SelectorError",
    "LabelSelector",
    "FieldSelector",
    "field_getters",
]


class SelectorError(ValueError):
    """The selector text (or LabelSelector object) is malformed."""


@dataclass(frozen=True)
class Requirement:
    """One comma-separated term of a label selector."""

    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        if self.operator in ("=", "in"):
            return present and value in self.values
        if self.operator in ("!=", "notin"):
            return not present or value not in self.values
        if not present:
            return False
        try:
            number = int(value or "")
        except ValueError:
            return False
        bound = int(self.values[0])
        return number > bound if self.operator == "gt" else number < bound


def _check_key(key: str) -> None:
    problems = names.qualified_name(key)
    if problems:
        raise SelectorError(f'unable to parse requirement: key: Invalid value: "{key}": {"; ".join(problems)}')


def _check_value(value: str) -> None:
    problems = names.label_value(value)
    if problems:
        raise SelectorError(f'unable to parse requirement: values[0]: Invalid value: "{value}": {"; ".join(problems)}')


def _split_top_level(text: str) -> list[str]:
    """Split at commas that are not inside a parenthesised value set."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError(f"unable to parse requirement: unbalanced ')' in {text!r}")
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth:
        raise SelectorError(f"unable to parse requirement: unbalanced '(' in {text!r}")
    parts.append("".join(current))
    return parts


_SET_TERM = re.compile(r"^(?P<key>\S+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_CMP_TERM = re.compile(r"^(?P<key>[^=!<>\s]+)\s*(?P<op>==|=|!=|<|>)\s*(?P<value>[^=!<>\s]*)$")


class LabelSelector:
    """A parsed label selector; an empty selector matches everything."""

    def __init__(self, requirements: tuple[Requirement, ...] = ()) -> None:
        self.requirements = requirements

    @classmethod
    def parse(cls, text: str | None) -> "LabelSelector":
        """Parse the `labelSelector` query-parameter grammar (equality and set-based)."""
        if text is None or not text.strip():
            return cls()
        requirements = []
        for raw in _split_top_level(text):
            term = raw.strip()
            if not term:
                raise SelectorError(f"unable to parse requirement: found '', expected: identifier in {text!r}")
            requirements.append(cls._parse_term(term))
        return cls(tuple(requirements))

    @staticmethod
    def _parse_term(term: str) -> Requirement:
        if term.startswith("!"):
            key = term[1:].strip()
            _check_key(key)
            return Requirement(key, "!")
        match = _SET_TERM.match(term)
        if match:
            key = match["key"]
            _check_key(key)
            values = tuple(v.strip() for v in match["values"].split(",")) if match["values"].strip() else ()
            if not values and match["op"] == "in":
                raise SelectorError("unable to parse requirement: for 'in' operator, values set can't be empty")
            for value in values:
                _check_value(value)
            return Requirement(key, match["op"], values)
        match = _CMP_TERM.match(term)
        if match:
            key, op, value = match["key"], match["op"], match["value"]
            _check_key(key)
            if op in ("<", ">"):
                try:
                    int(value)
                except ValueError:
                    raise SelectorError(
                        "unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer"
                    ) from None
                return Requirement(key, "gt" if op == ">" else "lt", (value,))
            _check_value(value)
            return Requirement(key, "!=" if op == "!=" else "=", (value,))
        if re.fullmatch(r"[^\s=!<>(),]+", term):
            _check_key(term)
            return Requirement(term, "exists")
        raise SelectorError(f"unable to parse requirement: couldn't parse the selector string {term!r}")

    @classmethod
    def from_object(cls, selector: Mapping[str, Any] | None) -> "LabelSelector":
        """Build from a `metav1.LabelSelector` (matchLabels + matchExpressions), as in Job.spec.selector."""
        if not selector:
            return cls()
        requirements = [Requirement(k, "=", (v,)) for k, v in (selector.get("matchLabels") or {}).items()]
        operators = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
        for expression in selector.get("matchExpressions") or []:
            operator = operators.get(expression.get("operator", ""))
            if operator is None:
                raise SelectorError(f"{expression.get('operator')!r} is not a valid label selector operator")
            requirements.append(Requirement(expression["key"], operator, tuple(expression.get("values") or ())))
        return cls(tuple(requirements))

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def __bool__(self) -> bool:
        return bool(self.requirements)


FieldGetter = Callable[[Mapping[str, Any]], str]


def _path(*keys: str) -> FieldGetter:
    def get(obj: Mapping[str, Any]) -> str:
        current: Any = obj
        for key in keys:
            if not isinstance(current, Mapping):
                return ""
            current = current.get(key)
        if current is None:
            return ""
        if isinstance(current, bool):
            return "true" if current else "false"
        return str(current)

    return get


_COMMON: dict[str, FieldGetter] = {
    "metadata.name": _path("metadata", "name"),
    "metadata.namespace": _path("metadata", "namespace"),
}

# The selectable fields the real API server registers per kind (a subset of upstream's lists
# chosen for what controllers and tools actually use); anything else is a 400.
_BY_KIND: dict[str, dict[str, FieldGetter]] = {
    "Pod": {
        "spec.nodeName": _path("spec", "nodeName"),
        "spec.restartPolicy": _path("spec", "restartPolicy"),
        "spec.schedulerName": _path("spec", "schedulerName"),
        "spec.serviceAccountName": _path("spec", "serviceAccountName"),
        "spec.hostNetwork": lambda o: "true" if (o.get("spec") or {}).get("hostNetwork") else "false",
        "status.phase": _path("status", "phase"),
        "status.podIP": _path("status", "podIP"),
        "status.nominatedNodeName": _path("status", "nominatedNodeName"),
    },
    "Event": {
        "involvedObject.kind": _path("involvedObject", "kind"),
        "involvedObject.namespace": _path("involvedObject", "namespace"),
        "involvedObject.name": _path("involvedObject", "name"),
        "involvedObject.uid": _path("involvedObject", "uid"),
        "involvedObject.apiVersion": _path("involvedObject", "apiVersion"),
        "involvedObject.resourceVersion": _path("involvedObject", "resourceVersion"),
        "involvedObject.fieldPath": _path("involvedObject", "fieldPath"),
        "reason": _path("reason"),
        "reportingComponent": _path("reportingComponent"),
        "source": _path("source", "component"),
        "type": _path("type"),
    },
    "Secret": {"type": _path("type")},
    "Namespace": {"status.phase": _path("status", "phase")},
    "Job": {"status.successful": _path("status", "succeeded")},
}


def field_getters(kind: str) -> dict[str, FieldGetter]:
    """The fields a `fieldSelector` may name for objects of `kind`."""
    return {**_COMMON, **_BY_KIND.get(kind, {})}


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    operator: str  # "=" or "!="
    value: str


class FieldSelector:
    """A parsed `fieldSelector`: `a=b,c!=d`, only over the fields the kind supports."""

    def __init__(self, requirements: tuple[FieldRequirement, ...], getters: dict[str, FieldGetter]) -> None:
        self.requirements = requirements
        self._getters = getters

    @classmethod
    def parse(cls, text: str | None, kind: str) -> "FieldSelector":
        getters = field_getters(kind)
        if text is None or not text.strip():
            return cls((), getters)
        requirements = []
        for raw in re.split(r"(?<!\\),", text):
            term = raw.strip()
            match = re.fullmatch(r"(?P<field>[^=!]+?)\s*(?P<op>==|!=|=)\s*(?P<value>.*)", term)
            if not match:
                raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
            name = match["field"]
            if name not in getters:
                raise SelectorError(f"field label not supported: {name}")
            requirements.append(FieldRequirement(name, "!=" if match["op"] == "!=" else "=", _unescape(match["value"])))
        return cls(tuple(requirements), getters)

    def matches(self, obj: Mapping[str, Any]) -> bool:
        for requirement in self.requirements:
            actual = self._getters[requirement.field](obj)
            if (actual == requirement.value) != (requirement.operator == "="):
                return False
        return True

    def __bool__(self) -> bool:
        return bool(self.requirements)
