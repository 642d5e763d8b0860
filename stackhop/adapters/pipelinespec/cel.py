"""The part of CEL that PipelineSpec trigger conditions use, evaluated the way the backends do.

kfp and our compiler emit conditions such as
`int(inputs.parameter_values['pipelinechannel--n']) > 3 && !(inputs.parameter_values['x'] in ['a', 'b'])`.
This evaluates that subset (literals, `inputs.parameter_values[...]`, `int()`/`double()`/`string()`,
comparisons, `in`, `&&`, `||`, `!`, parentheses) and refuses anything else by name, so an
emulated run never guesses at an expression the real service might read differently.
"""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(r"""\s*(?:(?P<num>-?\d+\.\d*(?:[eE][-+]?\d+)?|-?\d+(?:[eE][-+]?\d+)?)|(?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
                    r"""|(?P<op>&&|\|\||==|!=|<=|>=|[<>!()\[\],.])|(?P<name>[A-Za-z_][A-Za-z0-9_]*))""")


class CelError(ValueError):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise CelError(f"cannot read the condition at {text[pos:pos + 20]!r}")
        kind = m.lastgroup
        assert kind is not None
        out.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


class _Parser:
    def __init__(self, text: str, values: dict[str, Any]):
        self.toks = _tokens(text)
        self.i = 0
        self.values = values
        self.text = text

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise CelError(f"expected {value or 'more'} in condition {self.text!r}")
        self.i += 1
        return tok

    def parse(self) -> Any:
        result = self.or_()
        if self.peek() is not None:
            raise CelError(f"unexpected {self.peek()[1]!r} in condition {self.text!r}")  # type: ignore[index]
        return result

    def or_(self) -> Any:
        left = self.and_()
        while self.peek() and self.peek()[1] == "||":  # type: ignore[index]
            self.take()
            right = self.and_()
            left = _bool(left) or _bool(right)
        return left

    def and_(self) -> Any:
        left = self.compare()
        while self.peek() and self.peek()[1] == "&&":  # type: ignore[index]
            self.take()
            right = self.compare()
            left = _bool(left) and _bool(right)
        return left

    def compare(self) -> Any:
        left = self.unary()
        tok = self.peek()
        if tok and tok[1] in ("==", "!=", "<", "<=", ">", ">=", "in"):
            self.take()
            right = self.unary()
            op = tok[1]
            if op == "in":
                if not isinstance(right, (list, dict, str)):
                    raise CelError(f"'in' needs a list on its right in condition {self.text!r}")
                return left in right
            if op in ("==", "!="):
                equal = _same(left, right)
                return equal if op == "==" else not equal
            if isinstance(left, bool) or isinstance(right, bool) or type(left) is not type(right) and not (
                    _number(left) and _number(right)):
                raise CelError(f"no matching overload for {op!r} between {left!r} and {right!r} in {self.text!r}")
            return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]
        return left

    def unary(self) -> Any:
        tok = self.peek()
        if tok and tok[1] == "!":
            self.take()
            return not _bool(self.unary())
        return self.primary()

    def primary(self) -> Any:
        kind, text = self.take()
        if text == "(":
            value = self.or_()
            self.take(")")
            return value
        if text == "[":
            items = []
            while self.peek() and self.peek()[1] != "]":  # type: ignore[index]
                items.append(self.or_())
                if self.peek() and self.peek()[1] == ",":  # type: ignore[index]
                    self.take()
            self.take("]")
            return items
        if kind == "num":
            return float(text) if any(c in text for c in ".eE") else int(text)
        if kind == "str":
            return bytes(text[1:-1], "utf-8").decode("unicode_escape")
        if kind == "name":
            if text in ("true", "false"):
                return text == "true"
            if text in ("int", "double", "string"):
                self.take("(")
                value = self.or_()
                self.take(")")
                return {"int": _to_int, "double": float, "string": _to_string}[text](value)
            if text == "inputs":
                self.take(".")
                _, field = self.take()
                if field != "parameter_values":
                    raise CelError(f"conditions may read inputs.parameter_values only, not inputs.{field}")
                self.take("[")
                _, key = self.take()
                self.take("]")
                name = key[1:-1]
                if name not in self.values:
                    raise CelError(f"the condition reads {name!r}, which is not an input of the task")
                return self.values[name]
        raise CelError(f"unsupported {text!r} in condition {self.text!r}")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _same(a: Any, b: Any) -> bool:
    if _number(a) and _number(b):
        return float(a) == float(b)
    return type(a) is type(b) and a == b


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise CelError(f"{v!r} is not a boolean")
    return v


def _to_int(v: Any) -> int:
    if isinstance(v, float) and not v.is_integer():
        return int(v)
    return int(v)


def _to_string(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def evaluate(expression: str, parameter_values: dict[str, Any]) -> bool:
    return _bool(_Parser(expression, parameter_values).parse())
