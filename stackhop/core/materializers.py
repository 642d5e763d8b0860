"""Store step return values that are not scalars, and read them back: materializers, as plugins.

A materializer is chosen when the pipeline is traced, from the step's return annotation, so a
type nothing can store is an error before anything runs, naming the step and the fix. It is
matched by the qualified names of the classes it stores, so choosing one never imports numpy,
pandas or scikit-learn. The most specific match wins (a materializer for `MyModel` beats one for
pydantic's `BaseModel`), then `priority`, then one whose packages are installed.

Built-ins live in `stackhop.plugins.materializers` and register through the same
`stackhop_materializers` hook as third-party packages; `@materializer` registers one from user
code. Pickle-based ones (pickle, joblib) run arbitrary code when loaded, so they are chosen only
for steps with `allow_pickle=True`, and loaded only with consent.
"""

from __future__ import annotations

import importlib
import importlib.util
import typing
from abc import ABC, abstractmethod
from typing import Any, ClassVar, TypeVar

from stackhop.errors import ConfigError, PipelineDefinitionError, StackhopError

AUTO = "auto"
"""Chosen at run time from the value, for returns annotated Any, object or a Union."""

M = TypeVar("M", bound="type[Materializer]")


class Materializer(ABC):
    """Writes one kind of value to a file (or directory) at `path` and reads it back.

    `save` may return metadata (a format, a class path); it is recorded beside the artifact and
    handed to `load`, together with the type the consuming step's parameter is annotated with.
    """

    name: ClassVar[str]
    types: ClassVar[tuple[str | type, ...]] = ()
    """Classes stored, as classes or by name ("numpy.ndarray", "pydantic.main.BaseModel"); subclasses match too.

    A name under a top-level package only ("pandas.DataFrame") matches that class in any of the
    package's submodules, so libraries moving classes around do not break the match."""
    priority: ClassVar[int] = 0
    pickle_based: ClassVar[bool] = False
    requires: ClassVar[tuple[str, ...]] = ()
    """Modules that must be importable for this materializer to work here."""
    install: ClassVar[str] = ""
    """How to get them, for the error message: "pip install skops"."""
    override: ClassVar[bool] = False
    """Replace a materializer of the same name from another package instead of clashing with it."""

    @classmethod
    def distance(cls, tp: type) -> int | None:
        """How far up `tp`'s MRO a stored class is (0: exactly it), or None when it is not stored."""
        wanted = [name.rpartition(".") for name in (t if isinstance(t, str) else qualified(t) for t in cls.types)]
        for i, klass in enumerate(getattr(tp, "__mro__", ())):
            module, name = str(getattr(klass, "__module__", "")), getattr(klass, "__qualname__", "")
            for want_module, _, want_name in wanted:
                same_module = module == want_module or ("." not in want_module and module.split(".")[0] == want_module)
                if name == want_name and same_module:
                    return i
        return None

    @classmethod
    def missing(cls) -> str | None:
        for module in cls.requires:
            try:
                found = importlib.util.find_spec(module)
            except (ImportError, ValueError):
                found = None
            if found is None:
                return module
        return None

    @abstractmethod
    def save(self, value: Any, path: str) -> dict[str, Any] | None:
        """Write `value` at `path`; return metadata `load` needs (or None)."""

    @abstractmethod
    def load(self, path: str, expected: type | None, meta: dict[str, Any]) -> Any:
        """Read the value back; `expected` is the consuming parameter's annotation, when it has one."""


def qualified(cls: Any) -> str:
    return f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', getattr(cls, '__name__', '?'))}"


def import_class(path: str | None) -> Any:
    """The class a qualified name names, if this process can import it (`__main__` included); else None."""
    if not path:
        return None
    import sys

    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:i])
        module = sys.modules.get(module_name)
        if module is None and module_name != "__main__":
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
        obj: Any = module
        for attr in parts[i:]:
            obj = getattr(obj, attr, None)
        if isinstance(obj, type):
            return obj
    return None


_registered: dict[str, type[Materializer]] = {}


def materializer(cls: M) -> M:
    """Class decorator: make a `Materializer` subclass available to every step in this process.

    A step process registers it again when it imports (or executes) the module defining it.
    """
    if not (isinstance(cls, type) and issubclass(cls, Materializer)) or not isinstance(getattr(cls, "name", None), str):
        raise ConfigError(f"@materializer decorates a stackhop.Materializer subclass with a `name`, got {cls!r}.")
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    if missing:
        raise ConfigError(f"materializer {cls.name!r} ({cls.__qualname__}) must define {' and '.join(missing)}(); add them.")
    # lazy: keeps pluggy and entry points out of the dsl and of step processes, which import this module
    from stackhop.core.plugins import materializer_classes

    existing = materializer_classes(include_registered=False).get(cls.name) or _registered.get(cls.name)
    if existing is not None and existing is not cls and not cls.override and qualified(existing) != qualified(cls):
        raise ConfigError(
            f"materializer {cls.name!r} from {cls.__module__} clashes with the one {_origin(existing)} provides; "
            f"rename it, or set `override = True` on {cls.__qualname__} to replace it."
        )
    _registered[cls.name] = cls
    return cls


def _origin(cls: type) -> str:
    from stackhop.core.plugins import provider

    return provider(cls)


def registered() -> dict[str, type[Materializer]]:
    from stackhop.core.plugins import materializer_classes

    return materializer_classes()


def user_registered() -> dict[str, type[Materializer]]:
    return dict(_registered)


# ---------------------------------------------------------------------- choosing, at trace time


def _is_open(annotation: Any) -> bool:
    """Annotations that say nothing about the value: decided at run time."""
    origin = typing.get_origin(annotation)
    return annotation in (Any, object) or isinstance(annotation, TypeVar) or origin is typing.Union or (
        type(annotation).__name__ == "UnionType")


def ranked(tp: type, *, allow_pickle: bool) -> list[type[Materializer]]:
    """Materializers storing `tp`, best first (most specific, then priority), pickle-based ones only if allowed."""
    found = []
    for cls in registered().values():
        if cls.pickle_based and not allow_pickle:
            continue
        distance = cls.distance(tp)
        if distance is not None:
            found.append((distance, -cls.priority, cls.name, cls))
    return [c for *_, c in sorted(found, key=lambda x: x[:3])]


def choose(annotation: Any, *, allow_pickle: bool, where: str) -> str:
    """The materializer a return annotation needs; an error, before anything runs, when none can store it."""
    if _is_open(annotation):
        return AUTO
    tp = typing.get_origin(annotation) or annotation
    if not isinstance(tp, type):
        return AUTO
    usable = ranked(tp, allow_pickle=allow_pickle)
    missing: list[type[Materializer]] = []
    for cls in usable:
        if cls.missing() is None:
            return cls.name
        missing.append(cls)
    name = qualified(tp)
    if missing:
        first = missing[0]
        pickled = [c for c in ranked(tp, allow_pickle=True) if c.pickle_based and c.missing() is None]
        extra = f", or pass allow_pickle=True to @step to store it with {pickled[0].name}" if pickled and not allow_pickle else ""
        raise PipelineDefinitionError(
            f"{where} returns a {name}; storing it needs {first.missing()} ({first.install or 'pip install ' + first.missing()}){extra}."
        )
    hint = "" if allow_pickle else ", or pass allow_pickle=True to @step to pickle it"
    raise PipelineDefinitionError(
        f"{where} returns a {name}, which no materializer stores; return bytes, JSON-able data, a numpy array, "
        f"a DataFrame, a dataclass or a pydantic model, register a materializer for {name} with @stackhop.materializer{hint}."
    )


# ---------------------------------------------------------------------- saving and loading, at run time


def _get(name: str, module: str | None = None) -> type[Materializer]:
    table = registered()
    if name not in table and module and module != "__main__":
        try:
            importlib.import_module(module)  # registers it with @materializer
        except ImportError:
            pass
        table = registered()
    if name not in table:
        raise StackhopError(
            f"no materializer {name!r} is registered in this process; import the module that defines it "
            f"({module or 'unknown'}) or install the package that provides it."
        )
    return table[name]


def save(value: Any, path: str, *, name: str, allow_pickle: bool, where: str) -> tuple[str, dict[str, Any], str]:
    """Write `value`; return (materializer name, its metadata, the module defining it)."""
    if name == AUTO:
        last: StackhopError | None = None
        for cls in ranked(type(value), allow_pickle=allow_pickle):
            if cls.missing() is None:
                try:
                    return cls.name, _call(cls, "store", value, lambda m: m.save(value, path)) or {}, cls.__module__
                except StackhopError as exc:  # e.g. a list JSON cannot hold: the next one may store it
                    last = exc
        hint = "" if allow_pickle else ", or pass allow_pickle=True to @step"
        why = f" ({last})" if last else ""
        raise StackhopError(
            f"{where}: a {qualified(type(value))} cannot be stored{why}; return bytes, a numpy array, a DataFrame, "
            f"JSON-able data, a dataclass or a pydantic model, register a materializer for it{hint}."
        )
    cls = _get(name)
    if cls.distance(type(value)) is None:
        raise StackhopError(
            f"{where} returned a {qualified(type(value))}, but its return annotation chose materializer {name!r}, "
            f"which stores {', '.join(t if isinstance(t, str) else qualified(t) for t in cls.types) or 'other types'}; "
            "return that type or change the annotation."
        )
    if cls.pickle_based and not allow_pickle:
        raise StackhopError(f"{where}: materializer {name!r} uses pickle; pass allow_pickle=True to @step to use it.")
    return name, _call(cls, "store", value, lambda m: m.save(value, path)) or {}, cls.__module__


def load(path: str, name: str, *, allow_pickle: bool = False, expected: Any = None, meta: dict[str, Any] | None = None,
         module: str | None = None) -> Any:
    cls = _get(name, module)
    if cls.pickle_based and not allow_pickle:
        import os

        raise StackhopError(
            f"{os.path.basename(path)} was stored with {name}, which can run code when loaded; "
            "pass allow_pickle=True if you trust the run that wrote it."
        )
    expected_type = expected if isinstance(expected, type) or typing.get_origin(expected) is not None else None
    return _call(cls, "read back", None, lambda m: m.load(path, expected_type, dict(meta or {})))


def _call(cls: type[Materializer], doing: str, value: Any, action: Any) -> Any:
    """Run a materializer; anything it raises that is not already one sentence becomes one."""
    try:
        return action(cls())
    except StackhopError:
        raise
    except Exception as exc:
        what = f"a {qualified(type(value))}" if value is not None else "the value"
        raise StackhopError(
            f"materializer {cls.name!r} could not {doing} {what} ({type(exc).__name__}: {exc}); "
            "annotate the value with a type another materializer stores, or register one for it."
        ) from None
