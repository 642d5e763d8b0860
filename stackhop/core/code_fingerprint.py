"""The cache identity of a step's code: each function, class, value and project module it reaches.

Read from the files on disk, the way a step process will import them, not from the objects
in the tracing process (a notebook may hold an older version of a module than the disk).
Parts are hashed from syntax trees, so comments and formatting never invalidate a cache
entry, while an edit to a helper invalidates exactly the steps that reach it:

- in the step's own module, only what the step reaches: functions, classes and module-level
  values it names, transitively, plus module-level code that runs on import (side effects);
- every project module it imports (directly or through a helper), file by file, transitively;
- the whole source tree, when the code imports by name at run time (`importlib`, `__import__`,
  `exec`, `eval`) and no finer answer is safe.
"""

from __future__ import annotations

import ast
import hashlib
import os
import site
import symtable
import sys
import textwrap
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

DYNAMIC = frozenset({"__import__", "exec", "eval", "globals", "import_module"})
_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def short_digest(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()[:16]


def node_digest(node: ast.AST) -> str:
    return short_digest(ast.dump(node, include_attributes=False))


def parts_digest(parts: dict[str, str]) -> str:
    text = "\n".join(f"{k}\t{v}" for k, v in sorted(parts.items()))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


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
    if any(text.startswith(root) for root in _installed_roots()):
        return True
    from stackhop.core.code_archive import EXCLUDED_DIRS

    return any(part in EXCLUDED_DIRS or part.endswith(".egg-info") for part in Path(text).parts[:-1])


def project_file(module: str, root: Path | None) -> Path | None:
    """The file under `root` that `import module` loads, or None when it is not project code."""
    if root is None or not module:
        return None
    base = root.joinpath(*module.split("."))
    for candidate in (base / "__init__.py", base.with_name(base.name + ".py")):
        if candidate.is_file() and not is_installed(candidate):
            return candidate
    return None


def _package_files(module: str, root: Path) -> list[Path]:
    """The module's file plus the `__init__.py` of every package importing it runs first."""
    names = module.split(".")
    found = [project_file(".".join(names[:i]), root) for i in range(1, len(names) + 1)]
    return [p for p in found if p is not None]


# ---------------------------------------------------------------------- one parsed module


@dataclass
class ParsedModule:
    path: Path
    tree: ast.Module
    table: symtable.SymbolTable
    bindings: dict[str, list[Any]] = field(default_factory=dict)
    """name -> the top-level statements binding it (imports as (statement, alias))."""
    side_effects: list[ast.stmt] = field(default_factory=list)
    loaded: set[str] = field(default_factory=set)
    star_imports: list[ast.ImportFrom] = field(default_factory=list)
    dynamic: bool = False


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


def _has_dynamic_import(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id in DYNAMIC - {"globals"}:
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
    for i, stmt in enumerate(tree.body):
        if i == 0 and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # the module docstring
        if _is_main_guard(stmt) or isinstance(stmt, ast.Pass):
            continue
        if isinstance(stmt, ast.ImportFrom) and any(a.name == "*" for a in stmt.names):
            info.star_imports.append(stmt)
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            for alias in stmt.names:
                if alias.name != "*":
                    info.bindings.setdefault(alias.asname or alias.name.split(".")[0], []).append((stmt, alias))
            continue
        names = _bound_names(stmt)
        for name in names:
            info.bindings.setdefault(name, []).append(stmt)
        if not names or _assigns_through_attribute(stmt):
            info.side_effects.append(stmt)
    info.loaded = _names_loaded([tree])
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


def _names_loaded(nodes: list[ast.AST | None]) -> set[str]:
    out: set[str] = set()
    for root in nodes:
        if root is None:
            continue
        for n in ast.walk(root):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
                out.add(n.id)
    return out


def _table_globals(table: symtable.SymbolTable) -> set[str]:
    out = {s.get_name() for s in table.get_symbols() if s.is_global()}
    for child in table.get_children():
        out |= _table_globals(child)
    return out


def definition_time_names(node: ast.AST) -> set[str]:
    """Names evaluated where the def or class statement runs: decorators, defaults, annotations, bases."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        a = node.args
        ann = [x.annotation for x in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg) if x is not None]
        return _names_loaded([*node.decorator_list, *a.defaults, *a.kw_defaults, *ann, node.returns])
    if isinstance(node, ast.ClassDef):
        return _names_loaded([*node.decorator_list, *node.bases, *(k.value for k in node.keywords)])
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


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_files(modules: list[str], root: Path) -> tuple[dict[Path, str], bool]:
    """Every project file the modules load, transitively, with its digest; and whether any imports dynamically."""
    found: dict[Path, str] = {}
    dynamic = False
    todo = [p for m in modules for p in _package_files(m, root)]
    while todo:
        path = todo.pop()
        if path in found:
            continue
        info = parse_module(path)
        if info is None:
            try:
                found[path] = short_digest(path.read_bytes())
            except OSError:
                found[path] = "unreadable"
            continue
        found[path] = node_digest(info.tree)
        dynamic = dynamic or info.dynamic
        name = _module_name(path, root)
        is_package = path.name == "__init__.py"
        for node in ast.walk(info.tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _resolve_import(node, None, name, is_package):
                    todo.extend(_package_files(target, root))
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
    def __init__(self, info: ParsedModule, module: str, root: Path):
        self.info, self.module, self.root = info, module, root
        self.rel = info.path.relative_to(root).as_posix() if info.path.is_relative_to(root) else info.path.name
        self.parts: dict[str, str] = {}
        self.seen: set[str] = set()
        self.modules: list[str] = []
        self.dynamic = False

    def add(self, label: str, digest: str) -> None:
        self.parts[label] = short_digest(self.parts[label] + digest) if label in self.parts else digest

    def name(self, name: str) -> None:
        if name in self.seen:
            return
        self.seen.add(name)
        if name in DYNAMIC - {"globals"}:
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
                self.imported(*b)
                continue
            if isinstance(b, _DEFS):
                label = f"{'class' if isinstance(b, ast.ClassDef) else 'function'} {name}"
                names = globals_read(b, self.info.table)
            else:
                assigns = isinstance(b, (ast.Assign, ast.AnnAssign, ast.AugAssign))
                label = f"value {name}" if assigns else f"code at {self.rel}:{b.lineno}"
                names = _names_loaded([b])
            self.add(label, node_digest(b))
            self.dynamic = self.dynamic or _has_dynamic_import(b)
            for inner in ast.walk(b):  # `from helpers import clean` inside the function body
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    self.imported(inner, None)
            for n in sorted(names):
                self.name(n)

    def imported(self, stmt: ast.Import | ast.ImportFrom, alias: ast.alias | None) -> None:
        is_package = self.info.path.name == "__init__.py"
        local = [t for t in _resolve_import(stmt, alias, self.module, is_package) if project_file(t, self.root)]
        if local:
            self.modules += local
            return
        names = [alias] if alias else stmt.names
        node = ast.Import(names=names) if isinstance(stmt, ast.Import) else ast.ImportFrom(
            module=stmt.module, names=names, level=stmt.level)
        text = ast.unparse(node)
        self.add(text, short_digest(text))


def fingerprint_step(fn: Callable[..., Any], module: str, root: Path | None) -> Fingerprint:
    """The parts of the code a step in an importable module runs, each with its digest."""
    file = project_file(module, root) if root else None
    if root is None or file is None or (info := parse_module(file)) is None:
        return _opaque(fn, module, root)
    top = fn.__qualname__.split(".")[0]
    if not any(isinstance(b, _DEFS) for b in info.bindings.get(top, [])):
        return _opaque(fn, module, root)
    walk = _Walk(info, module, root)
    walk.name(top)
    if info.side_effects:
        walk.add(f"module-level code in {walk.rel}", short_digest("".join(node_digest(s) for s in info.side_effects)))
    for name, binds in sorted(info.bindings.items()):  # imported only for what importing them does
        if name not in info.loaded:
            for b in binds:
                if isinstance(b, tuple):
                    walk.imported(*b)
    for i, cell in enumerate(getattr(fn, "__closure__", None) or ()):
        walk.add(f"closure value {fn.__code__.co_freevars[i]}", short_digest(_stable_repr(_cell(cell))))
    parents = module.split(".")
    files, dynamic = module_files(walk.modules + [".".join(parents[:i]) for i in range(1, len(parents))], root)
    for path, digest in files.items():
        if path != file:
            walk.add(f"module {path.relative_to(root).as_posix()}", digest)
    if walk.dynamic or dynamic:
        walk.add("source tree (the code imports by name at run time)", source_tree_digest(root))
    return Fingerprint(parts_digest(walk.parts), walk.parts)


def project_module_parts(modules: list[str], root: Path) -> tuple[dict[str, str], bool]:
    """`module <file>` parts for project modules a by-value step imports; True if any was found."""
    files, dynamic = module_files(modules, root)
    parts = {f"module {p.relative_to(root).as_posix()}": d for p, d in files.items()}
    if dynamic:
        parts["source tree (the code imports by name at run time)"] = source_tree_digest(root)
    return parts, bool(files)


def _cell(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:
        return None


def _stable_repr(value: Any) -> str:
    text = f"{type(value).__module__}.{type(value).__qualname__}:{value!r}"
    return text if " at 0x" not in text else f"{type(value).__module__}.{type(value).__qualname__}"


def _opaque(fn: Callable[..., Any], module: str, root: Path | None) -> Fingerprint:
    """Not project code we can read: the function's own source (or compiled code), and its package's version,
    or the whole source tree when the step lives in the project but its source cannot be parsed."""
    import inspect

    try:
        own = short_digest(ast.dump(ast.parse(textwrap.dedent(inspect.getsource(fn))), include_attributes=False))
    except (OSError, TypeError, SyntaxError):
        code = getattr(fn, "__code__", None)
        own = short_digest(repr(_code_tuple(code)) if code else repr(fn))
    parts = {f"function {module}.{fn.__qualname__}": own}
    top = module.split(".")[0]
    if root is not None and is_installed(root / "x.py"):
        from importlib import metadata

        for dist in sorted(metadata.packages_distributions().get(top, [])):
            parts[f"package {dist}"] = metadata.version(dist)
    elif root is not None:
        parts["source tree (the step's source could not be read)"] = source_tree_digest(root)
    return Fingerprint(parts_digest(parts), parts)


def _code_tuple(code: Any) -> tuple[Any, ...]:
    consts = tuple(_code_tuple(c) if hasattr(c, "co_code") else repr(c) for c in code.co_consts)
    return (code.co_code, consts, code.co_names)
