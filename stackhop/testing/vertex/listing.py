"""ListPipelineJobs: the documented AIP-160 filter subset, orderBy, page tokens and readMask.

Filter fields (snake_case or camelCase): pipeline_name and state (=, !=); display_name,
pipeline_job_user_id, template_uri and template_metadata.version (=, !=, ':' wildcard);
create_time, update_time and end_time (=, !=, <, >, <=, >= against RFC 3339 values); labels
(`labels.key="value"`, `labels.key!="value"`, `labels.key:*`, `labels:key`). Restrictions combine
with AND, OR (binding tighter, as AIP-160 says), NOT / '-' and parentheses.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import json
import re
from typing import Any, Callable

from .errors import invalid
from .wire import parse_time

Job = dict[str, Any]
Predicate = Callable[[Job], bool]

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

_TOKEN = re.compile(r'\s*(?:(\()|(\))|("(?:[^"\\]|\\.)*")|(!=|<=|>=|=|<|>|:)|([^\s()"=!<>:]+))')


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _get(job: Job, path: str) -> Any:
    value: Any = job
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


_STRING_FIELDS: dict[str, Callable[[Job], str | None]] = {
    "pipelineName": lambda job: _get(job, "pipelineSpec.pipelineInfo.name"),
    "state": lambda job: job.get("state"),
    "displayName": lambda job: job.get("displayName", ""),
    "pipelineJobUserId": lambda job: job["name"].rsplit("/", 1)[-1],
    "templateUri": lambda job: job.get("templateUri", ""),
    "templateMetadata.version": lambda job: _get(job, "templateMetadata.version") or "",
}
_WILDCARD_FIELDS = {"displayName", "pipelineJobUserId", "templateUri", "templateMetadata.version"}
_TIME_FIELDS = {"createTime", "updateTime", "endTime"}


class _Parser:
    """Recursive descent over AIP-160: expression = sequence {AND sequence}; factor = term {OR term}."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[str] = []
        position = 0
        while position < len(text):
            if text[position:].strip() == "":
                break
            match = _TOKEN.match(text, position)
            if match is None:
                raise invalid(f"The filter {text!r} cannot be parsed at position {position}.")
            self.tokens.append(next(group for group in match.groups() if group is not None))
            position = match.end()
        self.position = 0

    def parse(self) -> Predicate:
        if not self.tokens:
            return lambda job: True
        predicate = self._expression()
        if self.position != len(self.tokens):
            raise invalid(f"The filter {self.text!r} has unexpected {self.tokens[self.position]!r}.")
        return predicate

    def _peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self) -> str:
        token = self._peek()
        if token is None:
            raise invalid(f"The filter {self.text!r} ends too early.")
        self.position += 1
        return token

    def _expression(self) -> Predicate:
        parts = [self._sequence()]
        while self._peek() == "AND":
            self._take()
            parts.append(self._sequence())
        return lambda job: all(part(job) for part in parts)

    def _sequence(self) -> Predicate:
        parts = [self._factor()]
        while self._peek() not in (None, "AND", ")"):
            parts.append(self._factor())
        return lambda job: all(part(job) for part in parts)

    def _factor(self) -> Predicate:
        parts = [self._term()]
        while self._peek() == "OR":
            self._take()
            parts.append(self._term())
        return lambda job: any(part(job) for part in parts)

    def _term(self) -> Predicate:
        token = self._peek()
        if token in ("NOT", "-") or (token is not None and token.startswith("-") and len(token) > 1):
            if token in ("NOT", "-"):
                self._take()
            else:  # "-field" is one word to the tokenizer
                self.tokens[self.position] = token[1:]
            inner = self._simple()
            return lambda job: not inner(job)
        return self._simple()

    def _simple(self) -> Predicate:
        if self._peek() == "(":
            self._take()
            inner = self._expression()
            if self._take() != ")":
                raise invalid(f"The filter {self.text!r} has an unclosed parenthesis.")
            return inner
        field, operator, value = self._take(), self._take(), self._take()
        if value.startswith('"'):
            value = json.loads(value)
        return _restriction(field, operator, value)


def _restriction(field: str, operator: str, value: str) -> Predicate:
    name = ".".join(_camel(part) for part in field.split("."))
    if name == "labels" and operator == ":":
        return lambda job: value in job.get("labels", {})
    if name.startswith("labels."):
        key = field.split(".", 1)[1]
        if operator == ":" and value == "*":
            return lambda job: key in job.get("labels", {})
        if operator in ("=", "!="):
            equal = operator == "="
            return lambda job: (job.get("labels", {}).get(key) == value) == equal
        raise invalid(f"The filter field {field!r} supports only =, != and ':*'.")
    if name in _TIME_FIELDS:
        return _time_restriction(field, name, operator, value)
    getter = _STRING_FIELDS.get(name)
    if getter is None:
        raise invalid(f"The filter field {field!r} is not supported for PipelineJobs.")
    if operator == ":" and name in _WILDCARD_FIELDS:
        pattern = value if "*" in value else f"*{value}*"
        return lambda job: fnmatch.fnmatchcase(getter(job) or "", pattern)
    if operator not in ("=", "!="):
        raise invalid(f"The filter field {field!r} does not support the operator {operator!r}.")
    equal = operator == "="
    return lambda job: (getter(job) == value) == equal


def _time_restriction(field: str, name: str, operator: str, value: str) -> Predicate:
    if operator == ":":
        raise invalid(f"The filter field {field!r} does not support the operator ':'.")
    try:
        bound = parse_time(value).ToNanoseconds()
    except ValueError:
        raise invalid(f"The filter value {value!r} for {field!r} is not an RFC 3339 timestamp.") from None
    compare: dict[str, Callable[[int, int], bool]] = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        ">": lambda a, b: a > b,
        "<=": lambda a, b: a <= b,
        ">=": lambda a, b: a >= b,
    }

    def check(job: Job) -> bool:
        stamp = job.get(name)
        if stamp is None:
            return operator == "!="
        return compare[operator](parse_time(stamp).ToNanoseconds(), bound)

    return check


def parse_filter(text: str) -> Predicate:
    """A predicate over stored jobs; an unsupported filter is a 400, as on the service."""
    return _Parser(text).parse()


_ORDER_FIELDS = {"createTime", "updateTime", "endTime", "startTime"}


def order(jobs: list[Job], order_by: str) -> list[Job]:
    """Sorted by `order_by` ("create_time desc, end_time"); the default is create time, newest first."""
    keys: list[tuple[str, bool]] = []
    for clause in (order_by or "create_time desc").split(","):
        words = clause.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
            raise invalid(f"The orderBy clause {clause.strip()!r} is not 'field' or 'field desc'.")
        field = _camel(words[0])
        if field not in _ORDER_FIELDS:
            raise invalid(f"Cannot order PipelineJobs by {words[0]!r}; use create_time, update_time, end_time or start_time.")
        keys.append((field, len(words) == 2 and words[1] == "desc"))
    result = list(jobs)
    for field, descending in reversed(keys):
        result.sort(key=lambda job: parse_time(job[field]).ToNanoseconds() if field in job else -1, reverse=descending)
    return result


def page(items: list[Job], page_size: str | None, page_token: str | None, query: str) -> tuple[list[Job], str]:
    """One page and the next page's token ("" on the last page); tokens are bound to their query."""
    try:
        size = int(page_size) if page_size else DEFAULT_PAGE_SIZE
    except ValueError:
        raise invalid(f"pageSize {page_size!r} is not an integer.") from None
    if size < 0:
        raise invalid("pageSize must not be negative.")
    size = min(size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    digest = hashlib.sha256(query.encode()).hexdigest()[:16]
    offset = 0
    if page_token:
        try:
            decoded = json.loads(base64.urlsafe_b64decode(page_token.encode()))
            offset, token_query = int(decoded["offset"]), decoded["query"]
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise invalid("pageToken is not a token this service issued.") from None
        if token_query != digest:
            raise invalid("pageToken belongs to a different filter or orderBy.")
    chunk = items[offset : offset + size]
    more = offset + size < len(items)
    token = base64.urlsafe_b64encode(json.dumps({"offset": offset + size, "query": digest}).encode()).decode() if more else ""
    return chunk, token


def apply_read_mask(job: Job, read_mask: str, fields: set[str]) -> Job:
    """Only the fields named by the mask (comma-separated paths, snake_case or camelCase)."""
    result: Job = {}
    for raw in read_mask.split(","):
        path = [_camel(part) for part in raw.strip().split(".")]
        if path[0] not in fields:
            raise invalid(f"readMask names {raw.strip()!r}, which is not a PipelineJob field.")
        source: Any = job
        for part in path:
            source = source.get(part) if isinstance(source, dict) else None
        if source is None:
            continue
        target = result
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = source
    return result
