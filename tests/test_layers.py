"""Specifications of the layers: data flows from core outwards, never back.

`stackhop.core` knows no backend, builder, promotion or CLI; they reach it through the plugin
hooks. The check reads the source, so an import hidden inside a function (where heavy SDKs
are kept) counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import stackhop

PACKAGE = Path(stackhop.__file__).parent
CORE = PACKAGE / "core"
OUTER = ("stackhop.images", "stackhop.promotion", "stackhop.adapters", "stackhop.cli")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """Every module name an import statement (or an `import_module("...")` call) reaches."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            anchor = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
            base = ".".join([*anchor, *([base] if base else [])])
        return [base, *(f"{base}.{alias.name}" for alias in node.names)]
    if (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
        return [node.args[0].value]
    return []


def _outward_imports() -> list[str]:
    found = []
    for path in sorted(CORE.rglob("*.py")):
        module = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            for name in _imported(node, module, path.name == "__init__.py"):
                if any(name == outer or name.startswith(outer + ".") for outer in OUTER):
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} imports {name}")
                    break
    return found


def test_core_imports_no_backend_builder_promotion_or_cli_module() -> None:
    assert _outward_imports() == []


@pytest.mark.parametrize("source", [
    "from stackhop.images.plan import resolve_images",
    "import stackhop.adapters.kubernetes.client",
    "from stackhop import cli",
    "from ..promotion import promote",
    "importlib.import_module('stackhop.images.build')",
])
def test_the_layer_check_sees_every_form_of_import(source: str) -> None:
    node = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, (ast.Import, ast.ImportFrom, ast.Call)))

    names = _imported(node, "stackhop.core.api", is_package=False)

    assert any(n.startswith(OUTER) for n in names), names


def test_the_plugin_table_names_outer_modules_only_as_strings() -> None:
    from stackhop.core.plugins import BUILTIN_PLUGINS

    assert all(isinstance(module, str) for module in BUILTIN_PLUGINS.values())
    assert "stackhop.plugins.images" in BUILTIN_PLUGINS.values()


def test_an_image_reference_error_from_core_is_the_images_packages_image_error() -> None:
    from stackhop.core.image_reference import parse_reference
    from stackhop.images.errors import ImageError
    from stackhop.images.reference import parse_reference as images_parse_reference

    assert images_parse_reference is parse_reference
    with pytest.raises(ImageError, match=r"^Image reference 'Python:3.11' is not valid: the repository 'library/Python' "
                                         r"must be lowercase"):
        parse_reference("Python:3.11")
