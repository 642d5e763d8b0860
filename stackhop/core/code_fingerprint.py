"""The cache identity of a step's code: each function, class, value and project module it reaches.

Read from the files on disk, the way a step process will import them, not from the objects
in the tracing process (a notebook may hold an older version of a module than the disk).
Parts are hashed from syntax trees, so comments and formatting never invalidate a cache
entry, while an edit to a helper invalidates exactly the steps that reach it:

- in the step's own module, only what the step reaches: functions, classes and module-level
  values it names, transitively, and whatever fills a registry it reads (`@register` defs);
- module-level code that runs on import for what it does, not for a name a step reads (a bare
  call such as `np.random.seed(0)`, an assignment through an attribute, `_ = ...`), for every
  step there;
- for a module-level value computed when imported (`N = int(os.environ["N"])`), its value as
  this process computed it, beside its code;
- every project module it imports (directly, in a function body, or through a helper), file by
  file, transitively: under the project root, or anywhere on sys.path outside site-packages;
- the whole source tree, when the code imports by name at run time (`importlib`, `__import__`,
  `exec`, `eval`) or holds a value with no stable form, and no finer answer is safe.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import math
import os
import site
import symtable
import sys
import textwrap
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

DYNAMIC = frozenset({"__import__", "exec", "eval", "import_module"})
_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)
_CONTAINERS = frozenset({"dict", "list", "set", "defaultdict", "OrderedDict", "Counter", "deque"})
_MUTATORS = frozenset({"append", "extend", "insert", "add", "update", "setdefault", "pop", "popitem", "remove",
                       "discard", "clear", "appendleft", "extendleft", "__setitem__"})
MAX_VALUE_TEXT = 1 << 20
TREE = "source tree (the code imports by name at run time)"
OPAQUE_VALUE = "source tree (a value the step reaches has no stable form)"


def short_digest(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()[:16]


def node_digest(node: ast.AST) -> str:
    return short_digest(ast.dump(node, include_attributes=False))


def parts_digest(parts: dict[str, str]) -> str:
    text = "\n".join(f"{k}\t{v}" for k, v in sorted(parts.items()))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def render_literal(value: Any) -> str | None:
    """Python source that rebuilds `value` exactly and the same way every time (sets sorted), or None."""
    if value is None or type(value) in (bool, int, str, bytes):
        return repr(value)
    if type(value) is float:
        return repr(value) if math.isfinite(value) else f"float({str(value)!r})"
    if type(value) is complex:
        return repr(value) if math.isfinite(abs(value)) else None
    if type(value) in (list, tuple, set, frozenset):
        inner = [render_literal(v) for v in value]
        if any(i is None for i in inner):
            return None
        if type(value) in (set, frozenset):
            body = ", ".join(sorted(inner))  # type: ignore[arg-type]
            if type(value) is frozenset:
                return f"frozenset({{{body}}})" if inner else "frozenset()"
            return "{" + body + "}" if inner else "set()"
        if type(value) is tuple:
            return "(" + ", ".join(inner) + ("," if len(inner) == 1 else "") + ")"  # type: ignore[arg-type]
        return "[" + ", ".join(inner) + "]"  # type: ignore[arg-type]
    if type(value) is dict:
        pairs = [(render_literal(k), render_literal(v)) for k, v in value.items()]
        if any(k is None or v is None for k, v in pairs):
            return None
        return "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
    return None


def stable_repr(value: Any) -> str | None:
    """A text that stands for `value` the same way in every process, or None when there is none."""
    literal = render_literal(value)
    if literal is not None:
        return literal
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    try:
        text = repr(value)
    except Exception:
        return None
    if " at 0x" in text or type(value) in (set, frozenset, dict, list, tuple):  # ids, or unordered members
        return None
    return f"{kind}:{text}"


# ---------------------------------------------------------------------- where project code lives


@lru_cache(maxsize=1)
def _installed_roots() -> tuple[str, ...]:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, *site.getsitepackages()}
    user = site.getusersitepackages()
    if isinstance(user, str):
        roots.add(user)
    return tuple(sorted(os.path.realpath(r) + os.sep for r in roots if r))


def is_installed(path: Path) -> bool:
    """Inside the interpreter, a virtualenv or site-packages: a dependency, not project code."""
    text = os.path.realpath(path)
    return any(text.startswith(root) for root in _installed_roots()) or "site-packages" in Path(text).parts


def _excluded_under(path: Path, root: Path) -> bool:
    """In the project's virtualenv, build output or caches (named relative to the root, never above it)."""
    # lazy: keeps tarfile and gzip out of by-value step processes, which import this module via code_by_value
    from stackhop.core.code_archive import EXCLUDED_DIRS

    try:
        parts = path.relative_to(root).parts[:-1]
    except ValueError:
        return False
    return any(p in EXCLUDED_DIRS or p.endswith(".egg-info") for p in parts)


def project_file(module: str, root: Path | None) -> Path | None:
    """The file under `root` that `import module` loads, or None when it is not project code."""
    if root is None or not module or module.startswith("."):
        return None
    base = root.joinpath(*module.split("."))
    for candidate in (base / "__init__.py", base.with_name(base.name + ".py")):
        if candidate.is_file() and not is_installed(candidate) and not _excluded_under(candidate, root):
            return candidate
    return None


def external_file(module: str) -> tuple[Path, Path] | None:
    """(file, the sys.path folder it is found under) for code outside the project that is not installed:
    a PYTHONPATH entry, an editable install of a sibling library."""
    top = module.split(".")[0]
    if not top or module.startswith(".") or top in sys.stdlib_module_names or top == "stackhop":
        return None  # stackhop itself is the runtime, like any installed package, even in a development checkout
    base = _external_base(top)
    if base is None:
        return None
    found = project_file(module, base)
    return (found, base) if found is not None else None


_bases: dict[str, Path | None] = {}


def _external_base(top: str) -> Path | None:
    if top not in _bases:
        loaded = sys.modules.get(top)
        origin = getattr(loaded, "__file__", None)
        if loaded is None:
            try:
                spec = importlib.util.find_spec(top)
            except (ImportError, ValueError):
                spec = None
            origin = spec.origin if spec is not None and spec.has_location else None
        base = None
        if origin and origin.endswith(".py") and not is_installed(Path(origin)):
            path = Path(origin).resolve()
            base = path.parent.parent if path.name == "__init__.py" else path.parent
        _bases[top] = base
    return _bases[top]


# ---------------------------------------------------------------------- one parsed module


@dataclass
class ParsedModule:
    path: Path
    tree: ast.Module
    table: symtable.SymbolTable
    bindings: dict[str, list[Any]] = field(default_factory=dict)
    """name -> the top-level statements binding it (imports as (statement, alias))."""
    effects: list[ast.stmt] = field(default_factory=list)
    """Top-level statements that change something when the module is imported."""
    loaded: set[str] = field(default_factory=set)
    star_imports: list[ast.ImportFrom] = field(default_factory=list)
    dynamic: bool = False
    containers: set[str] = field(default_factory=set)
    """Module-level names bound to a dict, list or set: registries other code may fill."""
    mutators: dict[str, set[str]] = field(default_factory=dict)
    """container name -> the functions whose bodies change it."""
    loaders: dict[str, list[ast.stmt]] = field(default_factory=dict)
    """name -> top-level statements that read it while the module is imported (a decorator, a call)."""


def _is_main_guard(stmt: ast.stmt) -> bool:
    if not isinstance(stmt, ast.If) or not isinstance(stmt.test, ast.Compare):
        return False
    sides = [stmt.test.left, *stmt.test.comparators]
    return any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides) and any(
        isinstance(s, ast.Constant) and s.value == "__main__" for s in sides)


def _bound_names(stmt: ast.stmt) -> list[str]:
    """Names a statement binds at module level (not inside the functions it defines)."""
    out: list[str] = []
    todo: list[ast.AST] = [stmt]
    while todo:
        node = todo.pop()
        if isinstance(node, _DEFS):
            out.append(node.name)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out += [a.asname or a.name.split(".")[0] for a in node.names if a.name != "*"]
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            out.append(node.id)
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            continue
        todo.extend(ast.iter_child_nodes(node))
    return out


def _assigns_through_attribute(stmt: ast.stmt) -> bool:
    """`os.environ["X"] = "1"`, `config.debug = True`: a module-level statement that changes state."""
    targets = getattr(stmt, "targets", None) or [getattr(stmt, "target", None)]
    return isinstance(stmt, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and any(
        isinstance(t, (ast.Attribute, ast.Subscript)) or (isinstance(t, ast.Tuple) and not all(isinstance(e, ast.Name) for e in t.elts))
        for t in targets)


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _import_time_nodes(stmt: ast.stmt) -> list[ast.AST]:
    """The parts of a top-level statement that run when the module is imported (not function bodies)."""
    if isinstance(stmt, _FUNCS):
        a = stmt.args
        return [*stmt.decorator_list, *a.defaults, *[d for d in a.kw_defaults if d is not None]]
    if isinstance(stmt, ast.ClassDef):
        return [*stmt.decorator_list, *stmt.bases, *(k.value for k in stmt.keywords),
                *(s for s in stmt.body if not isinstance(s, _FUNCS))]
    return [stmt]


def _is_container(stmt: ast.stmt) -> bool:
    value = getattr(stmt, "value", None)
    if isinstance(value, (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp)):
        return True
    if isinstance(value, ast.Call):
        f = value.func
        name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
        return name in _CONTAINERS
    return False


def _mutated_globals(fn: ast.AST, containers: set[str]) -> set[str]:
    out: set[str] = set()
    for n in ast.walk(fn):
        if isinstance(n, ast.Global):
            out |= set(n.names) & containers
        elif isinstance(n, (ast.Subscript, ast.Attribute)) and isinstance(n.ctx, (ast.Store, ast.Del)):
            root = _root_name(n)
            if root in containers:
                out.add(root)
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in _MUTATORS:
            root = _root_name(n.func.value)
            if root in containers:
                out.add(root)
    return out


def _literal(node: ast.AST | None) -> bool:
    if node is None:
        return True
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _has_dynamic_import(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id in DYNAMIC:
                return True
            if isinstance(f, ast.Attribute) and f.attr == "import_module":
                return True
    return False


def _parse_uncached(path: Path) -> ParsedModule | None:
    try:
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text, filename=str(path))
        table = symtable.symtable(text, str(path), "exec")
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return None
    info = ParsedModule(path, tree, table)
    body = []
    for i, stmt in enumerate(tree.body):
        if i == 0 and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # the module docstring
        if _is_main_guard(stmt) or isinstance(stmt, ast.Pass):
            continue
        if isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__":
            continue  # a compiler directive, already part of how every function is parsed
        body.append(stmt)
        if isinstance(stmt, ast.ImportFrom) and any(a.name == "*" for a in stmt.names):
            info.star_imports.append(stmt)
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            for alias in stmt.names:
                if alias.name != "*":
                    info.bindings.setdefault(alias.asname or alias.name.split(".")[0], []).append((stmt, alias))
            continue
        for name in _bound_names(stmt):
            info.bindings.setdefault(name, []).append(stmt)
            if _is_container(stmt):
                info.containers.add(name)
    info.loaded = _names_loaded([tree])
    for stmt in body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            continue
        bound = _bound_names(stmt)
        throwaway = not isinstance(stmt, _DEFS) and all(n not in info.loaded for n in bound)  # `_ = os.environ.setdefault(...)`
        if not bound or throwaway or _assigns_through_attribute(stmt):
            info.effects.append(stmt)
        for name in _names_loaded(_import_time_nodes(stmt)):
            info.loaders.setdefault(name, []).append(stmt)
        if isinstance(stmt, _FUNCS) and info.containers:
            for name in _mutated_globals(stmt, info.containers):
                info.mutators.setdefault(name, set()).add(stmt.name)
    info.dynamic = _has_dynamic_import(tree)
    return info


_parsed: dict[str, tuple[tuple[int, int], ParsedModule | None]] = {}


def parse_module(path: Path) -> ParsedModule | None:
    """Parsed once per version of the file on disk (its size and mtime)."""
    try:
        st = path.stat()
    except OSError:
        return None
    stamp = (st.st_size, st.st_mtime_ns)
    cached = _parsed.get(str(path))
    if cached is None or cached[0] != stamp:
        cached = _parsed[str(path)] = (stamp, _parse_uncached(path))
    return cached[1]


# ---------------------------------------------------------------------- names a definition reads


def _names_loaded(nodes: list[Any]) -> set[str]:
    """Names read anywhere in the nodes, string annotations ("Inner") included."""
    out: set[str] = set()
    for root in nodes:
        if root is None:
            continue
        for n in ast.walk(root):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
                out.add(n.id)
    return out


def _annotation_names(annotations: list[Any]) -> set[str]:
    out = _names_loaded(annotations)
    for ann in annotations:
        for n in ast.walk(ann) if ann is not None else ():
            if isinstance(n, ast.Constant) and isinstance(n.value, str):
                try:
                    out |= _names_loaded([ast.parse(n.value, mode="eval")])
                except SyntaxError:
                    pass
    return out


def _table_globals(table: symtable.SymbolTable) -> set[str]:
    out = {s.get_name() for s in table.get_symbols() if s.is_global()}
    for child in table.get_children():
        out |= _table_globals(child)
    return out


def definition_time_names(node: ast.AST) -> set[str]:
    """Names evaluated where the def or class statement runs: decorators, defaults, annotations, bases."""
    if isinstance(node, _FUNCS):
        a = node.args
        ann = [x.annotation for x in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg) if x is not None]
        return _names_loaded([*node.decorator_list, *a.defaults, *a.kw_defaults]) | _annotation_names([*ann, node.returns])
    if isinstance(node, ast.ClassDef):
        fields = [s.annotation for s in node.body if isinstance(s, ast.AnnAssign)]
        return _names_loaded([*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]) | _annotation_names(fields)
    return _names_loaded([node])


def globals_read(node: ast.AST, table: symtable.SymbolTable) -> set[str]:
    """The module-level names a top-level def or class reads, at definition or at call time."""
    names = definition_time_names(node)
    if isinstance(node, _DEFS):
        matches = [c for c in table.get_children() if c.get_name() == node.name]
        exact = [c for c in matches if c.get_lineno() == node.lineno]
        for child in exact or matches[-1:]:
            names |= _table_globals(child)
        if not matches:
            names |= _names_loaded([node])
        for method in (s for s in getattr(node, "body", []) if isinstance(s, _FUNCS) and isinstance(node, ast.ClassDef)):
            names |= definition_time_names(method)
    return names


# ---------------------------------------------------------------------- project modules, transitively


def _resolve_import(stmt: ast.Import | ast.ImportFrom, alias: ast.alias | None, module: str, is_package: bool) -> list[str]:
    """Module names an import statement (or one alias of it) can load."""
    if isinstance(stmt, ast.Import):
        aliases = [alias] if alias else stmt.names
        return [a.name for a in aliases]
    base = stmt.module or ""
    if stmt.level:
        package = module if is_package else module.rpartition(".")[0]
        parts = package.split(".") if package else []
        parts = parts[: len(parts) - (stmt.level - 1)] if stmt.level > 1 else parts
        base = ".".join([*parts, *([base] if base else [])])
    aliases = [alias] if alias else stmt.names
    return [base] + [f"{base}.{a.name}" if base else a.name for a in aliases if a.name != "*"]


def _module_name(path: Path, base: Path) -> str:
    rel = path.relative_to(base).with_suffix("")
    parts = list(rel.parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _locate(module: str, root: Path) -> list[tuple[Path, Path]]:
    """(file, base folder) for the module and the packages above it: in the project, else outside it."""
    names = module.split(".")
    found: list[tuple[Path, Path]] = []
    for i in range(1, len(names) + 1):
        name = ".".join(names[:i])
        local = project_file(name, root)
        if local is not None:
            found.append((local, root))
            continue
        outside = external_file(name)
        if outside is not None:
            found.append(outside)
    return found


def is_project_module(module: str, root: Path | None) -> bool:
    return bool(root is not None and (project_file(module, root) or external_file(module)))


def module_files(modules: list[str], root: Path) -> tuple[dict[Path, tuple[str, str]], bool]:
    """Every project file the modules load, transitively: file -> (label, digest); and whether any
    imports by name at run time."""
    found: dict[Path, tuple[str, str]] = {}
    dynamic = False
    todo = [hit for m in modules for hit in _locate(m, root)]
    while todo:
        path, base = todo.pop()
        if path in found:
            continue
        rel = path.relative_to(base).as_posix()
        label = rel if base == root else f"{rel} (outside the project, under {base.name})"
        info = parse_module(path)
        if info is None:
            try:
                found[path] = (label, short_digest(path.read_bytes()))
            except OSError:
                found[path] = (label, "unreadable")
            continue
        found[path] = (label, node_digest(info.tree))
        dynamic = dynamic or info.dynamic
        name = _module_name(path, base)
        is_package = path.name == "__init__.py"
        for node in ast.walk(info.tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _resolve_import(node, None, name, is_package):
                    todo.extend(_locate(target, root))
    return found, dynamic


_trees: dict[str, tuple[tuple[Any, ...], str]] = {}


def source_tree_digest(root: Path) -> str:
    """Every file the code archive would ship, by content: the conservative answer."""
    from stackhop.core.code_archive import source_files

    files = source_files(root)
    stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    cached = _trees.get(str(root))
    if cached and cached[0] == stamp:
        return cached[1]
    h = hashlib.sha256()
    for p in files:
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
    digest = h.hexdigest()[:16]
    _trees[str(root)] = (stamp, digest)
    return digest


# ---------------------------------------------------------------------- the walk


@dataclass(frozen=True)
class Fingerprint:
    digest: str
    parts: dict[str, str]


class _Walk:
    def __init__(self, info: ParsedModule, module: str, root: Path, live: Any = None):
        self.info, self.module, self.root = info, module, root
        self.live = live if live is not None else sys.modules.get(module)
        self.reached: list[ast.stmt] = []
        self.aliases: dict[int, list[ast.alias]] = {}
        """Top-level statements (and import aliases) the step reaches: what a script ships by value."""
        self.rel = info.path.relative_to(root).as_posix() if info.path.is_relative_to(root) else info.path.name
        self.parts: dict[str, str] = {}
        self.seen: set[str] = set()
        self.statements: set[int] = set()
        self.modules: list[str] = []
        self.dynamic = False

    def add(self, label: str, digest: str) -> None:
        self.parts[label] = short_digest(self.parts[label] + digest) if label in self.parts else digest

    def name(self, name: str) -> None:
        if name in self.seen:
            return
        self.seen.add(name)
        if name in DYNAMIC:
            self.dynamic = True
        if name in ("globals", "vars"):  # module names looked up by string: all of them count
            self.add(f"module {self.rel}", node_digest(self.info.tree))
        binds = self.info.bindings.get(name)
        if not binds:
            for star in self.info.star_imports:
                self.imported(star, None)
            return
        for b in binds:
            if isinstance(b, tuple):
                stmt, alias = b
                if alias not in self.aliases.setdefault(id(stmt), []):
                    self.aliases[id(stmt)].append(alias)
                self.imported(*b)
            else:
                self.statement(b, name)
        if name in self.info.containers:  # a registry: the functions that fill it, and the code calling them
            for filler in sorted(self.info.mutators.get(name, ())):
                self.name(filler)
                for stmt in self.info.loaders.get(filler, []):
                    self.statement(stmt, None)

    def statement(self, b: ast.stmt, name: str | None) -> None:
        if id(b) in self.statements:
            return
        self.statements.add(id(b))
        self.reached.append(b)
        if isinstance(b, _DEFS):
            label = f"{'class' if isinstance(b, ast.ClassDef) else 'function'} {b.name}"
            names = globals_read(b, self.info.table)
        else:
            assigns = name is not None and isinstance(b, (ast.Assign, ast.AnnAssign, ast.AugAssign))
            label = f"value {name}" if assigns else f"code at {self.rel}:{b.lineno}"
            names = _names_loaded([b])
            if assigns and not _literal(getattr(b, "value", None)):
                self.computed(name)  # type: ignore[arg-type]
        self.add(label, node_digest(b))
        self.dynamic = self.dynamic or _has_dynamic_import(b)
        self.inner_imports(b)
        for n in sorted(names):
            self.name(n)

    def computed(self, name: str) -> None:
        """`N = int(os.environ["N"])`: the same code can compute another value; the value as computed here counts."""
        module = self.live
        if module is None or not hasattr(module, name):
            return
        text = stable_repr(getattr(module, name))
        if text is not None and len(text) <= MAX_VALUE_TEXT:  # an object with no stable form: its code alone
            self.add(f"value {name} (as computed here)", short_digest(text))

    def inner_imports(self, node: ast.AST) -> None:
        for inner in ast.walk(node):  # `from helpers import clean` inside a function body
            if isinstance(inner, (ast.Import, ast.ImportFrom)) and getattr(inner, "module", None) != "__future__":
                self.imported(inner, None)

    def imported(self, stmt: ast.Import | ast.ImportFrom, alias: ast.alias | None) -> None:
        is_package = self.info.path.name == "__init__.py"
        local = [t for t in _resolve_import(stmt, alias, self.module, is_package) if is_project_module(t, self.root)]
        if local:
            self.modules += local
            return
        names = [alias] if alias else stmt.names
        node = ast.Import(names=names) if isinstance(stmt, ast.Import) else ast.ImportFrom(
            module=stmt.module, names=names, level=stmt.level)
        text = ast.unparse(node)
        self.add(text, short_digest(text))

    def value(self, label: str, value: Any) -> None:
        """A live value (a closure cell): a project function or class by its code, else its stable form."""
        name = getattr(value, "__name__", None)
        code = getattr(inspect.unwrap(value), "__code__", None) if callable(value) else None
        here = getattr(value, "__module__", None) in (self.module, getattr(self.live, "__name__", None)) or (
            code is not None and Path(code.co_filename).resolve() == self.info.path.resolve())
        if callable(value) and here and isinstance(name, str) and name in self.info.bindings:
            self.name(name)
            return
        text = stable_repr(value)
        if text is None:
            self.add(OPAQUE_VALUE, source_tree_digest(self.root))
        else:
            self.add(label, short_digest(text))


def fingerprint_step(fn: Callable[..., Any], module: str, root: Path | None, bound_as: tuple[str, ...] = ()) -> Fingerprint:
    """The parts of the code a step in an importable module runs, each with its digest.

    `bound_as`: the module-level names the step object is bound to, for steps a factory makes
    (`train_small = make_trainer(...)`), so the call that made it counts too."""
    file = project_file(module, root) if root else None
    walk = walk_step(fn, module, root, file, bound_as) if file is not None and root is not None else None
    if walk is None:
        return _opaque(fn, module, root)
    _finish(walk, file)  # type: ignore[arg-type]
    return Fingerprint(parts_digest(walk.parts), walk.parts)


def finish(walk: _Walk) -> Fingerprint:
    _finish(walk, walk.info.path)
    return Fingerprint(parts_digest(walk.parts), walk.parts)


def walk_step(fn: Callable[..., Any], module: str, root: Path, file: Path, bound_as: tuple[str, ...] = (),
              live: Any = None) -> _Walk | None:
    """Everything of `file` (imported as `module`) the step reaches, with the parts of its key; None when unreadable."""
    info = parse_module(file)
    top = fn.__qualname__.split(".")[0]
    if info is None or not any(isinstance(b, _DEFS) for b in info.bindings.get(top, [])):
        return None
    walk = _Walk(info, module, root, live)
    walk.name(top)
    for name in bound_as:
        walk.name(name)
    for stmt in info.effects:
        walk.statement(stmt, None)
    if info.effects:
        walk.add(f"module-level code in {walk.rel}", short_digest("".join(node_digest(s) for s in info.effects)))
    for name, binds in sorted(info.bindings.items()):  # imported only for what importing them does
        if name not in info.loaded:
            for b in binds:
                if isinstance(b, tuple):
                    walk.aliases.setdefault(id(b[0]), []).append(b[1])
                    walk.imported(*b)
    for i, cell in enumerate(getattr(fn, "__closure__", None) or ()):
        walk.value(f"closure value {fn.__code__.co_freevars[i]}", _cell(cell))
    return walk


def _finish(walk: _Walk, file: Path) -> None:
    """The project files the walk's imports load, and the whole tree when code imports by name."""
    root, info, module = walk.root, walk.info, walk.module
    parents = module.split(".")
    files, dynamic = module_files(walk.modules + [".".join(parents[:i]) for i in range(1, len(parents))], root)
    for path, (label, digest) in files.items():
        if path == file:  # another module imports the step's own: anything in it may be read
            walk.add(f"module {label}", node_digest(info.tree))
        else:
            walk.add(f"module {label}", digest)
    if walk.dynamic or dynamic:
        walk.add(TREE, source_tree_digest(root))


def project_module_parts(modules: list[str], root: Path) -> tuple[dict[str, str], bool]:
    """`module <file>` parts for project modules a by-value step imports; True if any was found."""
    files, dynamic = module_files(modules, root)
    parts = {f"module {label}": digest for label, digest in files.values()}
    if dynamic:
        parts[TREE] = source_tree_digest(root)
    return parts, bool(files)


def _cell(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:
        return None


def _opaque(fn: Callable[..., Any], module: str, root: Path | None) -> Fingerprint:
    """Not project code we can read: the function's own source (or compiled code), and its package's version,
    or the whole source tree when the step lives in the project but its source cannot be parsed."""
    import inspect

    try:
        own = short_digest(ast.dump(ast.parse(textwrap.dedent(inspect.getsource(fn))), include_attributes=False))
    except (OSError, TypeError, SyntaxError):
        code = getattr(fn, "__code__", None)
        own = short_digest(repr(code_tuple(code)) if code else repr(fn))
    parts = {f"function {module}.{fn.__qualname__}": own}
    top = module.split(".")[0]
    file = getattr(sys.modules.get(module), "__file__", None)
    if file and is_installed(Path(file)):
        from importlib import metadata

        for dist in sorted(metadata.packages_distributions().get(top, [])):
            parts[f"package {dist}"] = metadata.version(dist)
    elif root is not None:
        parts["source tree (the step's source could not be read)"] = source_tree_digest(root)
    return Fingerprint(parts_digest(parts), parts)


def code_tuple(code: Any) -> tuple[Any, ...]:
    consts = tuple(code_tuple(c) if hasattr(c, "co_code") else repr(c) for c in code.co_consts)
    return (code.co_code, consts, code.co_names)
