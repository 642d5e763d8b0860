"""Steps defined in `__main__` (a notebook, a REPL, `python -c`, a script run directly) travel by value.

No step process can import `__main__`: it is the notebook kernel or the script itself, and
importing a script would run it again (its `run()` call included). So the step ships as source
text, captured when the pipeline is traced: the function (decorators kept), and everything of
`__main__` it reaches, transitively: helper functions and classes by their source, constants as
literals, modules and imported names as import statements. A step process executes that text
as its `__main__` and calls the function.

Source, not a pickle, is the default: it is readable in the compiled document, it runs on any
Python version an image has, and its digest is the cache key (the same text, the same key, on
every machine). When there is no source at all (`python -c`, stdin, a plain REPL), the function
is pickled with cloudpickle instead, which only a step on the same Python minor version can load.
A value that cannot travel either way (an open file, a large DataFrame built in the notebook) is
refused at trace time, naming the step and the variable.
"""

from __future__ import annotations

import __future__
import ast
import base64
import builtins
import inspect
import linecache
import os
import sys
import textwrap
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from stackhop.core.code_fingerprint import (
    _literal, _names_loaded, _resolve_import, code_tuple, definition_time_names, finish, globals_read, is_project_module,
    node_digest, parts_digest, project_module_parts, render_literal, short_digest, stable_repr, walk_step,
)
from stackhop.core.import_guard import importing
from stackhop.core.materializers import user_registered
from stackhop.core.source import module_of_file
from stackhop.errors import PipelineDefinitionError, StackhopError

MAX_VALUE_BYTES = 64 * 1024
MAX_PICKLE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ByValue:
    digest: str
    parts: dict[str, str]
    source: str | None = None
    pickled: str | None = None
    python: str | None = None
    imports_project: bool = False
    script: str | None = None


_PUBLIC_MODULES = {"posixpath": "os.path", "ntpath": "os.path"}
"""Modules known by another name on other platforms: shipped under the name users import."""


def python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def defined_in_main(fn: Callable[..., Any]) -> bool:
    return getattr(fn, "__module__", None) == "__main__"


class _Unavailable(Exception):
    """No source for something the step reaches: fall back to a pickle."""


@dataclass
class _Item:
    name: str
    text: str
    needs: set[str]
    """Names that must exist before this text runs (decorators, bases, defaults; not function bodies)."""
    order: int


class _Capture:
    def __init__(self, namespace: dict[str, Any], root: Path | None, where: str):
        self.ns, self.root, self.where = namespace, root, where
        self.imports: dict[str, str] = {}
        self.items: dict[str, _Item] = {}
        self.parts: dict[str, str] = {}
        self.project_modules: list[str] = []
        self.seen: set[str] = set()

    def name(self, name: str) -> None:
        if name in self.seen:
            return
        self.seen.add(name)
        if name not in self.ns:
            return  # a builtin, or a name the step would fail on in the notebook too
        obj = self.ns[name]
        real = getattr(builtins, name, None)
        if real is not None and (obj is real or getattr(obj, "__wrapped__", None) is real or str(
                getattr(obj, "__module__", "")).startswith(("IPython", "_sitebuiltins", "ipykernel"))):
            return  # the builtin itself, or IPython's own `open`, `exit` ...: the step process has the real one
        if hasattr(obj, "fn") and callable(getattr(obj, "fn")) and type(obj).__name__ == "StepDef":
            obj = obj.fn
        if isinstance(obj, types.ModuleType):
            return self.module(name, obj)
        defined = inspect.isfunction(obj) or inspect.isclass(obj) or hasattr(obj, "__wrapped__")  # @lru_cache too
        if defined and getattr(obj, "__module__", None) == "__main__":
            return self.definition(name, obj)
        ref = _importable(obj)
        if ref is not None:
            return self.import_from(name, *ref)
        self.value(name, obj)

    # ------------------------------------------------------------------ what travels
    def module(self, name: str, mod: types.ModuleType) -> None:
        full = _PUBLIC_MODULES.get(mod.__name__, mod.__name__)
        self.add_import(name, f"import {full}" if name == full else f"import {full} as {name}", full)

    def import_from(self, name: str, module: str, qualname: str) -> None:
        if "." in qualname:
            head, _, rest = qualname.partition(".")
            text = f"from {module} import {head} as _stackhop_{name}\n{name} = _stackhop_{name}.{rest}"
        else:
            text = f"from {module} import {qualname}" + (f" as {name}" if name != qualname else "")
        self.add_import(name, text, module)

    def add_import(self, name: str, text: str, module: str) -> None:
        self.imports[name] = text
        self.project_import(module, text)

    def project_import(self, module: str, text: str) -> None:
        if is_project_module(module, self.root):
            self.project_modules.append(module)
        else:
            self.parts[text.splitlines()[0]] = short_digest(text)

    def definition(self, name: str, obj: Any) -> None:
        text = _source(obj)
        try:
            tree = ast.parse(text)
        except SyntaxError:
            raise _Unavailable(name) from None
        node = tree.body[0] if tree.body else None
        if isinstance(node, (ast.Assign,)) and isinstance(obj, types.FunctionType) and obj.__name__ == "<lambda>":
            if not any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                raise _Unavailable(name)
            names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
            self.add(name, text, names, f"function {name}", node_digest(node))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and len(tree.body) == 1:
            import symtable

            table = symtable.symtable(text, "<step>", "exec")
            if node.name != name:
                text += f"\n{name} = {node.name}"
            kind = "class" if isinstance(node, ast.ClassDef) else "function"
            needs = definition_time_names(node)
            if isinstance(node, ast.ClassDef):
                needs |= globals_read(node, table)  # a class body runs when it is defined
            self.add(name, text, needs, f"{kind} {name}", node_digest(node))
            names = globals_read(node, table)
        else:
            raise _Unavailable(name)
        for inner in ast.walk(node):  # `from helpers import clean` inside the body: shipped and keyed too
            if isinstance(inner, (ast.Import, ast.ImportFrom)) and getattr(inner, "module", None) != "__future__":
                for target in _imported_modules(inner):
                    self.project_import(target, ast.unparse(inner))
        for n in sorted(names):
            self.name(n)

    def value(self, name: str, obj: Any) -> None:
        literal, needs = render_literal(obj), set()
        if literal is None and (found := self.container_of_names(obj)) is not None:
            literal, needs = found
        if literal is not None and len(literal) > MAX_VALUE_BYTES:
            raise PipelineDefinitionError(
                f"{self.where} uses {name!r}, a {type(obj).__qualname__} of {len(literal) // 1024} KiB defined in __main__, "
                "which is too large to travel inside the run spec; pass it in as a step input or load it inside the step."
            )
        if literal is not None:
            text = f"{name} = {literal}"  # digested like the same line read from a module file
            self.add(name, text, needs, f"value {name}", node_digest(ast.parse(text).body[0]))
            return
        text = _repr_source(obj, self.ns)
        if text is not None:
            needs = {n.id for n in ast.walk(ast.parse(text, mode="eval")) if isinstance(n, ast.Name)}
            self.add(name, f"{name} = {text}", needs, f"value {name}", node_digest(ast.parse(f"{name} = {text}").body[0]))
            for n in sorted(needs):
                self.name(n)
            return
        data = _small_pickle(obj)
        if data is None:
            size = _size_hint(obj)
            raise PipelineDefinitionError(
                f"{self.where} uses {name!r}, a {type(obj).__module__}.{type(obj).__qualname__}{size} defined in __main__, "
                "which cannot travel to a step process; create it inside the step, pass it in as a step input, "
                "or define the step in a module file."
            )
        text = f"{name} = __import__('pickle').loads({data!r})"
        self.add(name, text, set(), f"value {name}", short_digest(data))

    def container_of_names(self, obj: Any) -> tuple[str, set[str]] | None:
        """`OPS = {"inc": inc}`: a dict, list or tuple holding functions or classes of `__main__`, as source."""
        if type(obj) not in (dict, list, tuple):
            return None
        bound = {id(v): k for k, v in self.ns.items()
                 if (inspect.isfunction(v) or inspect.isclass(v)) and getattr(v, "__module__", None) == "__main__"}

        def render(v: Any) -> str | None:
            return bound[id(v)] if id(v) in bound else render_literal(v)

        values = list(obj.values()) if type(obj) is dict else list(obj)
        if type(obj) is dict:
            pairs = [(render_literal(k), render(v)) for k, v in obj.items()]
            if any(k is None or v is None for k, v in pairs):
                return None
            text = "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
        else:
            inner = [render(v) for v in values]
            if any(i is None for i in inner):
                return None
            body = ", ".join(inner)  # type: ignore[arg-type]
            text = f"[{body}]" if type(obj) is list else f"({body}{',' if len(inner) == 1 else ''})"
        names = {bound[id(v)] for v in values if id(v) in bound}
        for n in sorted(names):
            self.name(n)
        return (text, names) if names else None

    def add(self, name: str, text: str, needs: set[str], label: str, digest: str) -> None:
        self.items[name] = _Item(name, text, needs, len(self.items))
        self.parts[label] = digest

    # ------------------------------------------------------------------ the module text
    def render(self, header: str) -> str:
        """Imports first; then helpers before the step that found them, and whatever a definition needs before it."""
        out = [header, *self.imports.values()]
        placed: set[str] = set(self.imports)
        ordered: list[_Item] = []

        def place(item: _Item, stack: set[str]) -> None:
            if item.name in placed:
                return
            stack.add(item.name)
            for dep in sorted(item.needs):
                if dep in self.items and dep not in stack:
                    place(self.items[dep], stack)
            placed.add(item.name)
            ordered.append(item)

        for item in sorted(self.items.values(), key=lambda i: -i.order):
            place(item, set())
        body = "\n\n\n".join(i.text.rstrip() for i in ordered)
        return "\n".join(out) + ("\n\n\n" + body if body else "") + "\n"


def capture(fn: Callable[..., Any], *, root: Path | None, where: str, bound_as: tuple[str, ...] = ()) -> ByValue:
    """Capture a `__main__` step as source (or, with no source to read, as a cloudpickle).

    A script run directly ships its own lines, read from the file as `stackhop run` would
    import them, so both give the step the same code and the same cache key. A notebook or a
    REPL ships what its live objects are."""
    script = _script_file(fn)
    if script is not None:
        found = _capture_script(fn, script, where, bound_as)
        if found is not None:
            return found
    qualname = getattr(fn, "__qualname__", "")
    head = qualname.split(".")[0]
    holder = fn if head == qualname else fn.__globals__.get(head)  # a method as a step: its whole class travels
    if "<locals>" not in qualname and holder is not None:
        cap = _Capture(fn.__globals__, root, where)
        cap.seen.add(head)
        try:
            cap.definition(head, holder)
            for name in _main_materializers(fn.__globals__):  # registered in this notebook: the step needs them too
                cap.name(name)
        except _Unavailable:
            pass
        else:
            parts = dict(cap.parts)
            imports_project = False
            if cap.project_modules and root is not None:
                module_parts, imports_project = project_module_parts(cap.project_modules, root)
                parts.update(module_parts)
            header = f"# stackhop: {where}, captured by value from __main__"
            if getattr(fn, "__code__", None) is not None and fn.__code__.co_flags & __future__.annotations.compiler_flag:
                header = "from __future__ import annotations\n" + header  # as the user's file had it
            source = cap.render(header)
            compile(source, "<stackhop by-value source>", "exec")
            return ByValue(parts_digest(parts), parts, source=source, imports_project=imports_project)
    return _pickled(fn, where, root)


def _script_file(fn: Callable[..., Any]) -> Path | None:
    """The file of the script running as `__main__`, when `fn` was defined in it."""
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    code = getattr(inspect.unwrap(fn), "__code__", None)
    if not main or code is None or not main.endswith(".py"):
        return None
    path = Path(main).resolve()
    return path if Path(code.co_filename).resolve() == path else None


def _capture_script(fn: Callable[..., Any], script: Path, where: str, bound_as: tuple[str, ...]) -> ByValue | None:
    module, root = module_of_file(script)
    walk = walk_step(fn, module, root, script, bound_as, live=sys.modules["__main__"])
    if walk is None:
        return None
    for name in _main_materializers(fn.__globals__):
        walk.name(name)
    found = finish(walk)
    source = script_source(walk, fn.__globals__, f"# stackhop: {where}, the lines of {script.name} it reaches")
    try:
        compile(source, f"<stackhop by-value source of {script.name}>", "exec")
    except SyntaxError:
        return None
    return ByValue(found.digest, found.parts, source=source, imports_project=bool(walk.modules),
                   script=script.relative_to(root).as_posix())


def script_source(walk: Any, namespace: dict[str, Any], header: str) -> str:
    """The script's own lines a step reaches, in file order: what `python train.py` ships by value.

    Module-level code that runs for its effect travels too (a seed, logging set-up), except
    what drives runs: a statement reading a pipeline, a run handle or stackhop's run API, or a
    name the script has not bound yet (it runs after the run started). A value the script
    computed (`args = parser.parse_args()`, `N = int(os.environ["N"])`) travels as computed,
    when it can, so the step sees what this process saw and what the cache key says."""
    info = walk.info
    lines = info.path.read_text(encoding="utf-8").splitlines(True)
    bound_later = {n for n in info.bindings if n not in namespace}
    chosen = set(map(id, walk.reached))
    out = [header]
    if any(isinstance(s, ast.ImportFrom) and s.module == "__future__" for s in info.tree.body):
        out.insert(0, "from __future__ import annotations")
    for stmt in info.tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)) and id(stmt) in walk.aliases:
            names = walk.aliases[id(stmt)]
            node = ast.Import(names=names) if isinstance(stmt, ast.Import) else ast.ImportFrom(
                module=stmt.module, names=names, level=stmt.level)
            out.append(ast.unparse(node))
        elif id(stmt) in chosen and not _drives_runs(stmt, namespace, bound_later):
            computed = _as_computed(stmt, namespace)
            start = min([stmt.lineno, *(d.lineno for d in getattr(stmt, "decorator_list", []))])
            out.append(computed or "".join(lines[start - 1: stmt.end_lineno]).rstrip())
    return "\n\n".join(out) + "\n"


def _as_computed(stmt: ast.stmt, namespace: dict[str, Any]) -> str | None:
    """`name = <value>` for a single-name assignment computed by code, when the value can travel as such."""
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
    if len(targets) != 1 or not isinstance(targets[0], ast.Name) or _literal(getattr(stmt, "value", None)):
        return None
    name = targets[0].id
    if name not in namespace:
        return None
    value = namespace[name]
    literal = render_literal(value)
    if literal is not None and len(literal) <= MAX_VALUE_BYTES:
        return f"{name} = {literal}"
    data = _small_pickle(value)
    return f"{name} = __import__('pickle').loads({data!r})" if data is not None else None


def _drives_runs(stmt: ast.stmt, namespace: dict[str, Any], bound_later: set[str]) -> bool:
    for name in _names_loaded([stmt]):
        if name in bound_later:
            return True
        value = namespace.get(name)
        kind = type(value)
        if kind.__name__ in ("PipelineDef", "RunHandle") and kind.__module__.startswith("stackhop."):
            return True
        if callable(value) and getattr(value, "__module__", "") in ("stackhop.core.api", "stackhop.core.handles"):
            return True
    return False


def _main_materializers(namespace: dict[str, Any]) -> list[str]:
    wanted = {id(c) for c in user_registered().values() if c.__module__ == "__main__"}
    return sorted(name for name, value in namespace.items() if id(value) in wanted)


def _pickled(fn: Callable[..., Any], where: str, root: Path | None) -> ByValue:
    try:
        import cloudpickle
    except ImportError:
        raise PipelineDefinitionError(
            f"{where} is defined where no source can be read (python -c, stdin or a plain REPL), and shipping it "
            "by value then needs cloudpickle; pip install cloudpickle, or define the step in a file or notebook."
        ) from None
    try:
        data = cloudpickle.dumps(fn)
    except Exception as exc:
        raise PipelineDefinitionError(
            f"{where} is defined where no source can be read and cannot be pickled ({type(exc).__name__}: {exc}); "
            "define the step in a file or a notebook cell."
        ) from None
    if len(data) > MAX_PICKLE_BYTES:
        raise PipelineDefinitionError(
            f"{where} pickles to {len(data) // 1024} KiB because it uses data from __main__; "
            "pass the data in as a step input or load it inside the step."
        )
    identity, modules = _pickled_identity(fn)
    parts = {f"function {fn.__qualname__} (pickled: no source to read)": identity}
    imports_project = False
    if root is not None:
        local = [m for m in modules if is_project_module(m, root)]
        if local:  # `import helpers` beside the script: the pickle names it, the step imports it from the tree
            module_parts, imports_project = project_module_parts(local, root)
            parts.update(module_parts)
    return ByValue(parts_digest(parts), parts, pickled=base64.b64encode(data).decode(), python=python_version(),
                   imports_project=imports_project)


def _pickled_identity(fn: Callable[..., Any]) -> tuple[str, list[str]]:
    """What a pickled step runs, the same in every process: code objects and the `__main__` values they read
    (cloudpickle's own bytes order a set's members by hash, which changes with every interpreter); and the
    modules it uses."""
    seen: set[int] = set()
    out: list[str] = []
    modules: list[str] = []

    def visit(f: Any) -> None:
        code = getattr(f, "__code__", None)
        if code is None or id(f) in seen:
            return
        seen.add(id(f))
        out.append(repr(code_tuple(code)))
        names: set[str] = set()
        todo = [code]
        while todo:
            c = todo.pop()
            names |= set(c.co_names)
            todo += [k for k in c.co_consts if hasattr(k, "co_code")]
        for name in sorted(names):
            if name not in getattr(f, "__globals__", {}):
                continue
            value = f.__globals__[name]
            if inspect.isfunction(value) and value.__module__ == "__main__":
                visit(value)
            elif isinstance(value, types.ModuleType):
                out.append(f"{name}=module {value.__name__}")
                modules.append(value.__name__)
            elif getattr(value, "__module__", "__main__") != "__main__" and (inspect.isfunction(value) or inspect.isclass(value)):
                out.append(f"{name}={value.__module__}.{value.__qualname__}")
                modules.append(value.__module__)
            else:
                out.append(f"{name}={stable_repr(value) or type(value).__qualname__}")
        for cell in getattr(f, "__closure__", None) or ():
            try:
                value = cell.cell_contents
            except ValueError:
                continue
            visit(value) if inspect.isfunction(value) else out.append(stable_repr(value) or type(value).__qualname__)

    visit(fn)
    return short_digest("\n".join(out)), modules


# ---------------------------------------------------------------------- reading source


def _source(obj: Any) -> str:
    if inspect.isclass(obj):  # by its methods' own lines: right even when the name is defined twice
        found = _class_by_methods(obj)
        if found is not None:
            return found
    try:
        return textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError):
        pass
    if inspect.isclass(obj):
        found = _class_from_cells(obj)
        if found is not None:
            return found
    raise _Unavailable(getattr(obj, "__name__", "?"))


def _class_by_methods(cls: type) -> str | None:
    for fn in vars(cls).values():
        code = getattr(getattr(fn, "__func__", fn), "__code__", None)
        if code is not None:
            found = _class_in(linecache.getlines(code.co_filename), cls.__name__, code.co_firstlineno)
            if found:
                return found
    return None


def _class_from_cells(cls: type) -> str | None:
    """A class without methods defined in a notebook cell: Python 3.11 cannot find its source, the cell history can."""
    shell = _ipython()
    cells = list(getattr(getattr(shell, "history_manager", None), "input_hist_parsed", []) or [])
    for cell in reversed(cells):
        found = _class_in(cell.splitlines(True), cls.__name__, None)
        if found:
            return found
    return None


def _class_in(lines: list[str], name: str, near_line: int | None) -> str | None:
    """The source of class `name` in these lines: the one spanning `near_line`, else the last one."""
    text = "".join(lines)
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    found = None
    for node in ast.walk(tree):  # also inside `if`/`try` blocks at module level
        if isinstance(node, ast.ClassDef) and node.name == name:
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            if near_line is None or start <= near_line <= (node.end_lineno or start):
                found = textwrap.dedent("".join(lines[start - 1: node.end_lineno]))
                if near_line is not None:
                    return found
    return found


def _ipython() -> Any:
    if "IPython" not in sys.modules:
        return None
    try:
        return sys.modules["IPython"].get_ipython()
    except Exception:
        return None


# ---------------------------------------------------------------------- values


def _repr_source(value: Any, namespace: dict[str, Any]) -> str | None:
    """`Config(lr=0.1)`: a repr that evaluates back to an equal value with the notebook's names."""
    try:
        text = repr(value)
    except Exception:
        return None
    if " at 0x" in text or len(text) > 4096:
        return None
    try:
        tree = ast.parse(text, mode="eval")
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        if not names or not names <= set(namespace):
            return None
        rebuilt = eval(compile(tree, "<repr>", "eval"), {"__builtins__": builtins, **{n: namespace[n] for n in names}})
        return text if type(rebuilt) is type(value) and rebuilt == value else None
    except Exception:
        return None


def _small_pickle(value: Any) -> bytes | None:
    """A plain pickle that loads in a step process: small, and referring to nothing defined in `__main__`."""
    if getattr(type(value), "__module__", "") == "__main__":
        return None
    import pickle
    import pickletools

    try:
        data = pickle.dumps(value, protocol=4)
    except Exception:
        return None
    if len(data) > MAX_VALUE_BYTES:
        return None
    strings = [arg for op, arg, _ in pickletools.genops(data) if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "GLOBAL")]
    return None if any(str(a).startswith("__main__") for a in strings) else data


def _size_hint(value: Any) -> str:
    nbytes = getattr(value, "nbytes", None)
    if nbytes is None:
        try:
            import pickle

            nbytes = len(pickle.dumps(value, protocol=4))
        except Exception:
            return ""
    return f" of {nbytes / 2**20:.1f} MiB" if nbytes > 2**20 else f" of {nbytes / 1024:.0f} KiB"


def _imported_modules(stmt: ast.Import | ast.ImportFrom) -> list[str]:
    return [m for m in _resolve_import(stmt, None, "__main__", False) if m]


def _importable(obj: Any) -> tuple[str, str] | None:
    """(module, qualname) under which `obj` itself can be imported, preferring the public package."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or getattr(obj, "_name", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or module == "__main__" or "<" in qualname:
        return None
    mod = sys.modules.get(module)
    if mod is None:
        return None
    target: Any = mod
    for part in qualname.split("."):
        target = getattr(target, part, None)
    if target is not obj:
        return None
    module = _PUBLIC_MODULES.get(module, module)
    top = module.split(".")[0]
    if top != module and "." not in qualname and getattr(sys.modules.get(top), qualname, None) is obj:
        return top, qualname
    return module, qualname


def image_python_mismatch(call: Any, image: str | None) -> str | None:
    """Why a pickled step cannot run in `image`, when the image's name says its Python version."""
    import re

    if not call.pickled or not call.python or not image:
        return None
    found = re.search(r"(?:^|/)python:(\d+\.\d+)", image)
    if found and found.group(1) != call.python:
        return (f"travels as a Python {call.python} pickle (it was defined where no source can be read), but its image "
                f"{image} runs Python {found.group(1)}; define the step in a file or notebook, or use a Python "
                f"{call.python} image.")
    return None


# ---------------------------------------------------------------------- in the step process


def load(call: dict[str, Any], where: str, root: str | None = None) -> Any:
    """The step function from its by-value source or pickle, executed as this process's `__main__`."""
    if call.get("pickled"):
        if call.get("python") and call["python"] != python_version():
            raise StackhopError(
                f"{where} was pickled by Python {call['python']} (it was defined without source), and this step runs "
                f"Python {python_version()}; use an image with Python {call['python']}, or define the step in a file or notebook."
            )
        import pickle

        return pickle.loads(base64.b64decode(call["pickled"]))
    source = call["source"]
    filename = f"<stackhop {where}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    module = types.ModuleType("__main__")
    module.__dict__["__builtins__"] = builtins
    if call.get("script"):  # the script's own lines may read __file__: it is in the shipped source tree
        module.__file__ = os.path.join(root or os.getcwd(), call["script"])
    sys.modules["__main__"] = module
    with importing(call.get("script") or "__main__", "a step process"):  # and never start a run
        exec(compile(source, filename, "exec"), module.__dict__)
    obj: Any = module
    for part in call["qualname"].split("."):
        obj = getattr(obj, part)
    return obj
