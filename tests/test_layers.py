"""The package's layers: imports point down the list, never up (STYLE.md's layout)."""

from __future__ import annotations

import ast
import pathlib

import tether

SRC = pathlib.Path(tether.__file__).parent

# Lower number = lower floor. A module may import only from its own floor or below.
FLOORS = {
    "models": 0,
    "exceptions": 0,
    "closing": 0,
    "cookiejar": 0,
    "requestbody": 0,
    "response": 0,
    "decoding": 0,
    "protocol": 1,
    "lifecycle": 2,
    "io": 3,
    "sync": 4,
    "aio": 4,
    "client": 5,
    "adapters": 6,
    "testing": 6,
    "cli": 7,
    "__init__": 8,
    "__main__": 8,
}


def floor_of(parts: tuple[str, ...]) -> int:
    return FLOORS[parts[0].removesuffix(".py")]


def imported_modules(path: pathlib.Path) -> list[tuple[str, ...]]:
    rel = path.relative_to(SRC).with_suffix("").parts
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = rel[: len(rel) - node.level]
            target = base + tuple((node.module or "").split(".")) if node.module else base
            target = tuple(p for p in target if p)
            if target:
                found.append(target)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tether."):
            found.append(tuple(node.module.split(".")[1:]))  # type: ignore[union-attr]
    return found


def test_every_module_has_a_floor() -> None:
    for path in SRC.rglob("*.py"):
        floor_of(path.relative_to(SRC).parts)


def test_imports_point_down() -> None:
    upward = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).parts
        if rel[-1] == "__init__.py" and len(rel) == 1:
            continue
        mine = floor_of(rel)
        for target in imported_modules(path):
            if floor_of(target) > mine:
                upward.append(f"{'/'.join(rel)} imports {'.'.join(target)}")
    assert upward == []


def test_public_names_complete() -> None:
    # Sorted by ruff (RUF022); here: no duplicates, and every name is really there.
    assert len(set(tether.__all__)) == len(tether.__all__)
    for name in tether.__all__:
        assert hasattr(tether, name), name
