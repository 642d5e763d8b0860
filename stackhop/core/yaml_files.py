"""The one YAML loader for what users hand stackhop: stack files, resource-op manifests, component files.

Safe tags only. Every value keeps the line it came from, so an error can say `file:line`.
What plain `yaml.safe_load` lets through becomes one sentence instead:

- a duplicate key (YAML says last wins; here it is an error naming both lines);
- aliases that expand past a bound (a 400-byte "billion laughs" file fails at once, not after
  memory runs out), a recursive alias, and nesting deeper than a bound;
- bytes that are not UTF-8, and syntax errors, with the line and column.

An empty value (`settings:`) and `~` are null. Merge keys (`<<: *defaults`) work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

import yaml

from stackhop.errors import ConfigError

MAX_NODES = 100_000
MAX_DEPTH = 64
_MERGE = "tag:yaml.org,2002:merge"
_PLAIN = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


@dataclass
class Located:
    """Loaded data, and the line every key path came from (1-based)."""

    data: Any
    lines: dict[tuple[Any, ...], int] = field(default_factory=dict)
    interpolated: dict[tuple[Any, ...], tuple[str, ...]] = field(default_factory=dict)
    """Key path -> the environment variables its value was built from."""

    def line(self, *loc: Any) -> int:
        for n in range(len(loc), -1, -1):
            if loc[:n] in self.lines:
                return self.lines[loc[:n]]
        return 1


class _Walk:
    def __init__(self, loader: yaml.SafeLoader, where: str, scalar: Callable[[str, int, tuple[Any, ...]], Any] | None):
        self.loader, self.where, self.scalar = loader, where, scalar
        self.lines: dict[tuple[Any, ...], int] = {}
        self.count = 0

    def fail(self, node: yaml.Node, message: str) -> ConfigError:
        return ConfigError(f"{self.where}:{node.start_mark.line + 1}: {message}")

    def node(self, n: yaml.Node, loc: tuple[Any, ...], depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.fail(n, f"the document expands to more than {MAX_NODES:,} values (aliases repeating aliases?); "
                               "write the values out, or use fewer nested aliases.")
        if depth > MAX_DEPTH:
            raise self.fail(n, f"values are nested more than {MAX_DEPTH} levels deep (or an alias refers to itself); "
                               "flatten the structure.")
        self.lines.setdefault(loc, n.start_mark.line + 1)  # a key's own line wins over its value's
        if isinstance(n, (yaml.MappingNode, yaml.SequenceNode)) and n.tag not in _PLAIN:
            raise self.fail(n, f"the tag {n.tag!r} is not allowed here; write plain YAML values.")
        if isinstance(n, yaml.MappingNode):
            return self.mapping(n, loc, depth)
        if isinstance(n, yaml.SequenceNode):
            return [self.node(v, loc + (i,), depth + 1) for i, v in enumerate(n.value)]
        value = self.loader.construct_object(n, deep=True)
        if isinstance(value, str) and self.scalar is not None:
            value = self.scalar(value, n.start_mark.line + 1, loc)
        return value

    def mapping(self, n: yaml.MappingNode, loc: tuple[Any, ...], depth: int) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        merged: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        for k, v in n.value:
            if k.tag == _MERGE or (isinstance(k, yaml.ScalarNode) and k.value == "<<" and k.tag.endswith(":merge")):
                for source in (v.value if isinstance(v, yaml.SequenceNode) else [v]):
                    value = self.node(source, loc, depth + 1)
                    if not isinstance(value, dict):
                        raise self.fail(source, "a merge key (<<) takes a mapping or a list of mappings.")
                    for key, item in value.items():
                        merged.setdefault(key, item)
                continue
            key = self.node(k, loc + ("<key>",), depth + 1) if not isinstance(k, yaml.ScalarNode) else (
                self.loader.construct_object(k))
            try:
                hash(key)
            except TypeError:
                raise self.fail(k, "a mapping key must be a plain value, not a list or a mapping.") from None
            line = k.start_mark.line + 1
            if key in first_line:
                raise self.fail(k, f"key {key!r} appears twice (lines {first_line[key]} and {line}); keep one.")
            first_line[key] = line
            self.lines[loc + (key,)] = line
            out[key] = self.node(v, loc + (key,), depth + 1)
        return {**merged, **out}


def load_text(text: str | bytes, where: str, *, scalar: Callable[[str, int, tuple[Any, ...]], Any] | None = None,
              many: bool = False) -> list[Located] | Located:
    """Load one document (or all of them with `many=True`); `scalar` may rewrite each string (e.g. ${VAR})."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{where}: byte {exc.start} is not UTF-8 ({text[exc.start:exc.start + 1]!r}); save the file as UTF-8."
            ) from None
    docs: list[Located] = []
    loader = None
    try:
        loader = yaml.SafeLoader(text)
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                break
            walk = _Walk(loader, where, scalar)
            docs.append(Located(walk.node(node, (), 0), walk.lines))
            if not many and loader.check_node():
                raise ConfigError(f"{where}:{loader.peek_event().start_mark.line + 1}: the file holds more than one "
                                  "YAML document (`---`); keep one.")
    except yaml.reader.ReaderError as exc:
        raise ConfigError(f"{where}: character {exc.character!r} at position {exc.position} is not allowed in YAML; "
                          "remove it.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        at = f"{where}:{mark.line + 1}:{mark.column + 1}" if mark else where
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{at}: not valid YAML ({problem}); fix the syntax there.") from None
    except RecursionError:
        raise ConfigError(f"{where}: values are nested too deeply to read; flatten the structure.") from None
    finally:
        if loader is not None:
            loader.dispose()
    if many:
        return docs
    return docs[0] if docs else Located(None)


def load_file(path: Any, *, scalar: Callable[[str, int, tuple[Any, ...]], Any] | None = None,
              many: bool = False) -> list[Located] | Located:
    try:
        data = open(path, "rb").read()
    except FileNotFoundError:
        raise ConfigError(f"{path}: the file does not exist; check the path.") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a YAML file; name the file.") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror}); check its permissions.") from None
    return load_text(data, str(path), scalar=scalar, many=many)


_ENV = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_OPEN = re.compile(r"\$\{")


def env_interpolation(where: str, environ: dict[str, str], used: dict[tuple[Any, ...], tuple[str, ...]] | None = None
                      ) -> Callable[[str, int, tuple[Any, ...]], Any]:
    """`${VAR}` and `${VAR:-default}` from the environment; `$$` is a literal `$`. `used` collects, per key
    path, the variables a value came from."""

    def sub(value: str, line: int, loc: tuple[Any, ...]) -> str:
        dotted = ".".join(str(x) for x in loc) or "(top level)"
        leftover = _OPEN.search(_ENV.sub("", value))
        if leftover:
            raise ConfigError(
                f"{where}:{line}: {dotted} has an unterminated or malformed `${{` ({value!r}); write ${{VAR}}, "
                "${VAR:-default}, or $$ for a literal $."
            )

        def one(m: re.Match[str]) -> str:
            if m.group(0) == "$$":
                return "$"
            var, default = m.group(1), m.group(2)
            if used is not None:
                used[loc] = (*used.get(loc, ()), var)
            if var in environ:
                return environ[var]
            if default is not None:
                return default
            raise ConfigError(
                f"{where}:{line}: {dotted} uses ${{{var}}}, which is not set; export {var} or write ${{{var}:-default}}."
            )

        return _ENV.sub(one, value)

    return sub
