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
import math
import sys
import textwrap
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from stackhop.core.code_fingerprint import (
    definition_time_names, globals_read, node_digest, parts_digest, project_file, project_module_parts,
    short_digest,
)
from stackhop.errors import PipelineDefinitionError

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
        if hasattr(builtins, name) and getattr(obj, "__module__", None) != "__main__":
            return  # IPython's own `open`, `exit` ...: the step process has the real builtin
        if hasattr(obj, "fn") and callable(getattr(obj, "fn")) and type(obj).__name__ == "StepDef":
            obj = obj.fn
        if isinstance(obj, types.ModuleType):
            return self.module(name, obj)
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and getattr(obj, "__module__", None) == "__main__":
            return self.definition(name, obj)
        ref = _importable(obj)
        if ref is not None:
            return self.import_from(name, *ref)
        self.value(name, obj)

    # ------------------------------------------------------------------ what travels
    def module(self, name: str, mod: types.ModuleType) -> None:
        full = mod.__name__
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
        if project_file(module, self.root):
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
        for n in sorted(names):
            self.name(n)

    def value(self, name: str, obj: Any) -> None:
        literal = render_literal(obj)
        if literal is not None:
            text = f"{name} = {literal}"  # digested like the same line read from a module file
            self.add(name, text, set(), f"value {name}", node_digest(ast.parse(text).body[0]))
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


def capture(fn: Callable[..., Any], *, root: Path | None, where: str) -> ByValue:
    """Capture a `__main__` step as source (or, with no source to read, as a cloudpickle)."""
    top = getattr(fn, "__qualname__", "")
    if "<locals>" not in top:
        cap = _Capture(fn.__globals__, root, where)
        cap.seen.add(fn.__name__)
        try:
            cap.definition(fn.__name__, fn)
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
    return _pickled(fn, where)


def _pickled(fn: Callable[..., Any], where: str) -> ByValue:
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
    parts = {f"function {fn.__qualname__} (pickled: no source to read)": short_digest(data)}
    return ByValue(parts_digest(parts), parts, pickled=base64.b64encode(data).decode(), python=python_version())


# ---------------------------------------------------------------------- reading source


def _source(obj: Any) -> str:
    try:
        return textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError):
        pass
    if inspect.isclass(obj):
        found = _class_from_cells(obj)
        if found is not None:
            return found
    raise _Unavailable(getattr(obj, "__name__", "?"))


def _class_from_cells(cls: type) -> str | None:
    """A class defined in a notebook cell: Python 3.11 cannot find its source, the cell history can."""
    for fn in vars(cls).values():
        code = getattr(getattr(fn, "__func__", fn), "__code__", None)
        if code is not None:
            found = _class_in(linecache.getlines(code.co_filename), cls.__name__, code.co_firstlineno)
            if found:
                return found
    shell = _ipython()
    cells = list(getattr(getattr(shell, "history_manager", None), "input_hist_parsed", []) or [])
    for cell in reversed(cells):
        found = _class_in(cell.splitlines(True), cls.__name__, None)
        if found:
            return found
    return None


def _class_in(lines: list[str], name: str, near_line: int | None) -> str | None:
    text = "".join(lines)
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            if near_line is None or start <= near_line <= (node.end_lineno or start):
                return textwrap.dedent("".join(lines[start - 1: node.end_lineno]))
    return None


def _ipython() -> Any:
    if "IPython" not in sys.modules:
        return None
    try:
        return sys.modules["IPython"].get_ipython()
    except Exception:
        return None


# ---------------------------------------------------------------------- values


def render_literal(value: Any) -> str | None:
    """Python source that rebuilds `value` exactly, deterministically (sets sorted), or None."""
    if value is None or type(value) in (bool, int, str, bytes):
        return repr(value)
    if type(value) is float:
        return repr(value) if math.isfinite(value) else f"float({str(value)!r})"
    if type(value) is complex:
        return repr(value) if math.isfinite(abs(value)) else None
    if type(value) in (list, tuple):
        inner = [render_literal(v) for v in value]
        if any(i is None for i in inner):
            return None
        if type(value) is tuple:
            return "(" + ", ".join(inner) + ("," if len(inner) == 1 else "") + ")"  # type: ignore[arg-type]
        return "[" + ", ".join(inner) + "]"  # type: ignore[arg-type]
    if type(value) is dict:
        pairs = [(render_literal(k), render_literal(v)) for k, v in value.items()]
        if any(k is None or v is None for k, v in pairs):
            return None
        return "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
    if type(value) in (set, frozenset):
        inner = [render_literal(v) for v in value]
        if any(i is None for i in inner):
            return None
        body = ", ".join(sorted(inner))  # type: ignore[arg-type]
        if type(value) is frozenset:
            return f"frozenset({{{body}}})" if inner else "frozenset()"
        return "{" + body + "}" if inner else "set()"
    return None


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
    if getattr(type(value), "__module__", "") == "__main__":
        return None
    import pickle

    try:
        data = pickle.dumps(value, protocol=4)
    except Exception:
        return None
    return data if len(data) <= MAX_VALUE_BYTES else None


def _size_hint(value: Any) -> str:
    nbytes = getattr(value, "nbytes", None)
    if nbytes is None:
        try:
            import pickle

            nbytes = len(pickle.dumps(value, protocol=4))
        except Exception:
            return ""
    return f" of {nbytes / 2**20:.1f} MiB" if nbytes > 2**20 else f" of {nbytes / 1024:.0f} KiB"


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


def load(call: dict[str, Any], where: str) -> Any:
    """The step function from its by-value source or pickle, executed as this process's `__main__`."""
    if call.get("pickled"):
        if call.get("python") and call["python"] != python_version():
            from stackhop.errors import StackhopError

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
    sys.modules["__main__"] = module
    exec(compile(source, filename, "exec"), module.__dict__)
    obj: Any = module
    for part in call["qualname"].split("."):
        obj = getattr(obj, part)
    return obj
