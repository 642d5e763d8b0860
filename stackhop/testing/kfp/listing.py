"""List calls: the `filter`, `sort_by`, `page_size` and `page_token` query parameters.

The API server decodes `filter` as a JSON `Filter` message (`filter.proto` of v2beta1), after
URL-unescaping the already-decoded query value once more (Go's `url.QueryUnescape`: `+` becomes
a space, a bad `%` escape is an error). Predicate keys are API field names mapped to columns;
predicates are ANDed. Comparisons of strings follow MySQL's default collation, which ignores
case, so a display-name lookup can return a run whose name differs in case: callers must
compare names themselves. Pages default to 20 items and hold at most 200.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import unquote_plus

from . import errors
from .messages import seconds, snake_case

__all__ = ["Field", "Listing", "list_page"]

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 200

_OPERATIONS = {
    1: "EQUALS",
    2: "NOT_EQUALS",
    3: "GREATER_THAN",
    5: "GREATER_THAN_EQUALS",
    6: "LESS_THAN",
    7: "LESS_THAN_EQUALS",
    8: "IN",
    9: "IS_SUBSTRING",
}
_SCALAR_VALUES = {"int_value": "int", "long_value": "int", "string_value": "str", "timestamp_value": "time"}
_LIST_VALUES = {"int_values": "int", "long_values": "int", "string_values": "str"}
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")

#: Reads one field of a stored JSON object as the database column holds it.
Field = Callable[[Mapping[str, Any]], Any]


@dataclass(frozen=True)
class Listing:
    """What can be listed: its fields by API name, its default sort field and its key."""

    type_name: str
    fields: Mapping[str, Field]
    default_sort: str
    key: str
    #: API names the server accepts but this stand-in does not model (refused with 501)
    unmodelled: frozenset[str] = frozenset()

    def field(self, name: str, purpose: str) -> Field:
        if name in self.fields:
            return self.fields[name]
        if name in self.unmodelled:
            raise errors.unimplemented(f"FakeKFP does not model {purpose} {self.type_name} on {name!r}.")
        if purpose == "sorting":
            raise errors.invalid(f'Invalid sorting field: "{name}" on listable type {self.type_name}.')
        raise errors.invalid(f'no support for filtering on unrecognized field "{name}".')


@dataclass(frozen=True)
class _Predicate:
    operation: str
    key: str
    value: Any


def _convert(kind: str, value: Any) -> Any:
    if kind == "str":
        if not isinstance(value, str):
            raise ValueError("expected a string")
        return value
    if kind == "time":
        if not isinstance(value, str):
            raise ValueError("a timestamp must be an RFC 3339 string")
        return seconds(value)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError("expected an integer")
    return int(value)


def _parse_predicate(raw: Any, encoded: str) -> _Predicate:
    def bad(why: str) -> errors.ApiError:
        return errors.invalid(f"failed to parse valid filter from {json.dumps(encoded)}: {why}.")

    if not isinstance(raw, dict):
        raise bad("a predicate must be a JSON object")
    operation, key, values = None, "", []
    for name, value in raw.items():
        field = snake_case(name)
        if field == "operation":
            if isinstance(value, int) and not isinstance(value, bool):
                operation = _OPERATIONS.get(value, "OPERATION_UNSPECIFIED" if value == 0 else None)
            elif isinstance(value, str) and (value in _OPERATIONS.values() or value == "OPERATION_UNSPECIFIED"):
                operation = value
            if operation is None:
                raise bad(f"invalid value for enum field operation: {json.dumps(value)}")
        elif field == "key":
            if not isinstance(value, str):
                raise bad("key must be a string")
            key = value
        elif field in _SCALAR_VALUES:
            try:
                values.append(_convert(_SCALAR_VALUES[field], value))
            except ValueError as exc:
                raise bad(f"{field}: {exc}") from None
        elif field in _LIST_VALUES:
            if not isinstance(value, dict) or set(value) - {"values"} or not isinstance(value.get("values", []), list):
                raise bad(f'{field} must be an object {{"values": [...]}}')
            try:
                values.append([_convert(_LIST_VALUES[field], item) for item in value.get("values", [])])
            except ValueError as exc:
                raise bad(f"{field}: {exc}") from None
        else:
            raise bad(f'unknown field "{name}"')
    if len(values) > 1:
        raise bad("a predicate holds only one value")
    if operation in (None, "OPERATION_UNSPECIFIED"):
        raise errors.invalid("Invalid filter: a predicate needs an operation.")
    if not values:
        raise errors.invalid(f"Invalid filter: the predicate on {key!r} has no value.")
    value = values[0]
    if not key:
        raise errors.invalid(f"Predicate key cannot be empty for operation {operation} and value {value}.")
    if operation == "IN" and not isinstance(value, list):
        raise errors.invalid("cannot use IN operator with scalar type.")
    if operation == "IS_SUBSTRING" and not isinstance(value, str):
        raise errors.invalid(f"cannot use non string value type with operator {operation}.")
    if operation not in ("IN", "IS_SUBSTRING") and isinstance(value, list):
        raise errors.invalid(f"cannot use scalar operator {operation} on array type.")
    return _Predicate(operation, key, value)


def _parse_filter(encoded: str, listing: Listing) -> list[tuple[_Predicate, Field]]:
    if not encoded:
        return []
    if _BAD_ESCAPE.search(encoded):
        raise errors.invalid(f"failed to parse valid filter from {json.dumps(encoded)}: invalid URL escape.")
    decoded = unquote_plus(encoded)
    try:
        document = json.loads(decoded)
    except json.JSONDecodeError as exc:
        raise errors.invalid(f"failed to parse valid filter from {json.dumps(encoded)}: {exc}.") from None
    if not isinstance(document, dict) or set(document) - {"predicates"}:
        raise errors.invalid(
            f'failed to parse valid filter from {json.dumps(encoded)}: a filter only holds "predicates".'
        )
    predicates = document.get("predicates") or []
    if not isinstance(predicates, list):
        raise errors.invalid(f"failed to parse valid filter from {json.dumps(encoded)}: predicates must be a list.")
    parsed = [_parse_predicate(raw, encoded) for raw in predicates]
    return [(predicate, listing.field(predicate.key, "filtering")) for predicate in parsed]


def _fold(value: Any) -> Any:
    """Column values as MySQL compares them by default: strings without case."""
    return value.casefold() if isinstance(value, str) else value


def _matches(item: Mapping[str, Any], predicate: _Predicate, read: Field) -> bool:
    actual, wanted = _fold(read(item)), predicate.value
    if predicate.operation == "IN":
        return actual in [_fold(v) for v in wanted]
    wanted = _fold(wanted)
    if predicate.operation == "IS_SUBSTRING":
        return isinstance(actual, str) and wanted in actual
    if type(actual) is not type(wanted):
        return predicate.operation == "NOT_EQUALS"
    comparisons: dict[str, Callable[[Any, Any], bool]] = {
        "EQUALS": lambda a, b: a == b,
        "NOT_EQUALS": lambda a, b: a != b,
        "GREATER_THAN": lambda a, b: a > b,
        "GREATER_THAN_EQUALS": lambda a, b: a >= b,
        "LESS_THAN": lambda a, b: a < b,
        "LESS_THAN_EQUALS": lambda a, b: a <= b,
    }
    return comparisons[predicate.operation](actual, wanted)


def _sort_order(sort_by: str, listing: Listing) -> tuple[str, bool]:
    words = sort_by.lower().split()
    if len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
        raise errors.invalid(
            f'Received invalid sort by format "{sort_by}". Supported format: "field_name", "field_name desc", or '
            '"field_name asc".'
        )
    if not words:
        return listing.default_sort, False
    listing.field(words[0], "sorting")
    return words[0], len(words) == 2 and words[1] == "desc"


def _page_size(raw: str) -> int:
    try:
        size = int(raw or 0)
    except ValueError:
        raise errors.invalid(f'page_size must be an integer, got "{raw}".') from None
    if size < 0:
        raise errors.invalid(f"The page size should be greater than 0. Got {size}.")
    return min(size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _encode_token(offset: int, sort_by: str, filter_text: str) -> str:
    document = json.dumps({"offset": offset, "sort_by": sort_by, "filter": filter_text})
    return base64.urlsafe_b64encode(document.encode()).decode()


def _decode_token(token: str) -> dict[str, Any]:
    try:
        document = json.loads(base64.urlsafe_b64decode(token.encode()))
        if not isinstance(document, dict) or not isinstance(document.get("offset"), int):
            raise ValueError
        return document
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise errors.invalid("Invalid page token.") from None


def list_page(
    items: Sequence[Mapping[str, Any]], query: Mapping[str, str], listing: Listing
) -> tuple[list[Mapping[str, Any]], int, str]:
    """One page of `items` for a list call's query: (page, total matching, next page token or "")."""
    size = _page_size(query.get("page_size", ""))
    sort_by, filter_text, token = query.get("sort_by", ""), query.get("filter", ""), query.get("page_token", "")
    offset = 0
    if token:
        state = _decode_token(token)
        if (sort_by or filter_text) and (sort_by, filter_text) != (state["sort_by"], state["filter"]):
            raise errors.invalid(
                "page token does not match the supplied sort by and/or filtering criteria. Either specify the same "
                "criteria or leave the latter empty if page token is specified."
            )
        offset, sort_by, filter_text = state["offset"], state["sort_by"], state["filter"]
    predicates = _parse_filter(filter_text, listing)
    field, descending = _sort_order(sort_by, listing)
    read_sort, read_key = listing.fields[field], listing.fields[listing.key]
    selected = [item for item in items if all(_matches(item, p, read) for p, read in predicates)]
    selected.sort(key=lambda item: (_fold(read_sort(item)), read_key(item)), reverse=descending)
    page = selected[offset : offset + size]
    next_token = _encode_token(offset + size, sort_by, filter_text) if offset + size < len(selected) else ""
    return page, len(selected), next_token
