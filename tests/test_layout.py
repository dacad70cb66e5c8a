"""The house's rules, read from the code's own imports: no circle, one-way layers, no private names."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("app", "graphql_schema", "resolvers", "loaders", "migrations")
# The GraphQL layer and what serves it; everything else in app/ sits below the schema.
ABOVE_SCHEMA = ("app.server", "app.cli", "app.demo")
HTTP_EDGE = ("starlette", "uvicorn", "app.server")
# Private names we still reach, as (module, the code as `ast.unparse` prints it), with the reason.
PRIVATE_ALLOWED: dict[tuple[str, str], str] = {}  # none today
ATTRIBUTE_FUNCTIONS = ("getattr", "setattr", "hasattr", "delattr")


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(path: Path, name: str) -> Iterator[tuple[str, ast.ImportFrom | ast.Import]]:
    """Every module `path` imports, lazy ones inside functions and TYPE_CHECKING ones included."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            yield base, node
            for alias in node.names:  # `from pkg import module` imports pkg.module
                yield f"{base}.{alias.name}", node


def graph(found: dict[str, Path]) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {name: set() for name in found}
    for name, path in found.items():
        for target, _ in imports(path, name):
            if target in found and target != name:
                edges[name].add(target)
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a list of modules, or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    for start in sorted(edges):
        if state.get(start):
            continue
        stack = [(start, iter(sorted(edges[start])))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                return [*path[path.index(child) :], child]
            elif not state.get(child):
                state[child] = 1
                stack.append((child, iter(sorted(edges[child]))))
                path.append(child)
    return None


def test_no_import_circle() -> None:
    cycle = find_cycle(graph(modules()))
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_the_circle_finder_finds_circles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def _below_schema(name: str) -> bool:
    if name.startswith(("graphql_schema", "resolvers", "migrations")):
        return False
    return not name.startswith(ABOVE_SCHEMA)


@pytest.mark.parametrize("forbidden", ["strawberry", "graphql_schema", "resolvers", *HTTP_EDGE])
def test_nothing_below_the_schema_imports_graphql_or_http(forbidden: str) -> None:
    found = modules()
    offenders = sorted(
        f"{name} imports {target}"
        for name, path in found.items()
        if _below_schema(name)
        for target, _ in imports(path, name)
        if target == forbidden or target.startswith(forbidden + ".")
    )
    assert not offenders, offenders


def test_settings_do_not_import_the_service() -> None:
    """Reading the configuration loads pydantic and nothing of ours."""
    found = modules()
    ours = [t for t, _ in imports(found["app.core.settings"], "app.core.settings")]
    assert not [t for t in ours if t.split(".")[0] in PACKAGES]


def _private(name: str) -> bool:
    """`_x` is private; `__x__` (and the bare `_`) are not another library's internals."""
    return name.startswith("_") and not name.startswith("__") and name != "_"


def private_uses(path: Path, name: str) -> Iterator[tuple[int, str]]:
    """(line, code) of every private name of something else `name` uses:

    - `from lib import _x` and `import lib._mod` / `from lib._mod import x` of another
      distribution (ours import each other's public names only, too, but that is style);
    - `obj._x` on anything but `self` and `cls` (a library's object, module or class: its
      internals, which a minor upgrade may rename);
    - `getattr(obj, "_x")` (and setattr, hasattr, delattr) with a literal private name."""
    for target, node in imports(path, name):
        top = target.split(".")[0]
        if top in PACKAGES or top == "__future__":
            continue
        module = node.module if isinstance(node, ast.ImportFrom) else None
        if isinstance(node, ast.ImportFrom) and target == (module or ""):
            private_module = any(_private(part) for part in target.split("."))
            if private_module:
                yield node.lineno, f"from {module} import ..."
            for alias in node.names:
                if _private(alias.name):
                    yield node.lineno, f"from {module} import {alias.name}"
        elif isinstance(node, ast.Import) and any(_private(p) for p in target.split(".")):
            yield node.lineno, f"import {target}"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                yield node.lineno, ast.unparse(node)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ATTRIBUTE_FUNCTIONS
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
        ):
            yield node.lineno, ast.unparse(node)


def test_no_private_names_of_other_libraries() -> None:
    """Another library's private names break silently on a minor upgrade of it."""
    found = modules()
    offenders = sorted(
        f"{name}:{line}: {code}"
        for name, path in found.items()
        for line, code in private_uses(path, name)
        if (name, code) not in PRIVATE_ALLOWED
    )
    assert not offenders, "\n".join(offenders)


def test_every_private_name_exception_is_still_needed() -> None:
    found = modules()
    used = {(name, code) for name, path in found.items() for _, code in private_uses(path, name)}
    assert set(PRIVATE_ALLOWED) <= used, set(PRIVATE_ALLOWED) - used


def test_the_private_name_check_catches_each_kind(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    source.write_text(
        "import argparse\n"
        "from graphql.execution import executor as _executor\n"
        "from opentelemetry.context import _RUNTIME_CONTEXT\n"
        "from opentelemetry.util._once import Once\n"
        "import lib._impl\n"
        "from app.core import settings\n"
        "def f(sub: argparse._SubParsersAction, schema: object) -> None:\n"
        "    schema._schema\n"
        "    getattr(schema, '_schema', None)\n"
        "    setattr(schema, '_x', 1)\n"
        "    getattr(schema, '__dict__')\n"
        "    _executor.execute\n"
        "class C:\n"
        "    def m(self) -> None:\n"
        "        self._mine = 1\n"
        "        type(self).__name__\n"
    )
    assert sorted(code for _, code in private_uses(source, "sample")) == sorted(
        [
            "from opentelemetry.context import _RUNTIME_CONTEXT",
            "from opentelemetry.util._once import ...",
            "import lib._impl",
            "argparse._SubParsersAction",
            "schema._schema",
            "getattr(schema, '_schema', None)",
            "setattr(schema, '_x', 1)",
        ]
    )
