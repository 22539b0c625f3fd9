"""The layer rule of docs/architecture.md as a test: every import of every module of the product, at the top
of a file or inside a function (lazy imports close cycles just as well), goes down the floors, never up or
sideways to a floor it may not know. No exceptions are listed: a violation is fixed in the code (move it,
pass the dependency in, a callback) or the rule changes in docs/architecture.md, with the reason.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Package -> the packages it may import (besides itself). docs/architecture.md explains each floor.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "core": frozenset(),
    "switch": frozenset({"core"}),
    "caseflow": frozenset({"core"}),
    "recorder": frozenset({"core", "switch", "caseflow"}),
    "acd": frozenset({"core", "switch", "caseflow", "recorder"}),
    "ivr": frozenset({"core", "switch", "caseflow", "recorder", "acd"}),
    "channels": frozenset({"core", "caseflow", "recorder", "acd", "ivr"}),
    "stats": frozenset({"core", "caseflow", "recorder", "acd", "ivr", "channels"}),
    "ops": frozenset({"core", "caseflow", "recorder", "acd", "ivr", "channels", "stats"}),
    "webui": frozenset({"core", "caseflow", "recorder", "acd", "ivr", "channels", "stats", "ops"}),
    "hotline": frozenset({"core", "switch", "caseflow", "recorder", "acd", "ivr", "channels", "stats", "ops",
                          "webui"}),
}
# run.py starts the composition root; nothing imports it.
SCRIPTS = {"run.py": frozenset({"core", "hotline"})}


def packages() -> list[str]:
    """Every top-level package of the product: a directory beside run.py with an __init__.py."""
    return sorted(p.parent.name for p in ROOT.glob("*/__init__.py")
                  if p.parent.name not in ("tests", "bench", "scripts", "node_modules"))


def imported_packages(source: str, package: str) -> list[tuple[int, str, str]]:
    """(line, dotted name, top-level package) of every import in ``source`` (a module of ``package``),
    wherever it stands: module level, functions, classes, ``if TYPE_CHECKING`` blocks."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [package if node.level else (node.module or "")]
        else:
            continue
        found += [(node.lineno, name, name.split(".")[0]) for name in names]
    return found


def violations(rule: dict[str, frozenset[str]], files: dict[str, tuple[str, str]]) -> list[str]:
    """``path:line: package imports name`` for every import ``rule`` does not allow. ``files`` maps a path
    to (its package, its source); imports of packages outside ``rule`` (the standard library, third
    parties) are not this rule's business."""
    bad = []
    for path, (package, source) in sorted(files.items()):
        allowed = rule[package]
        for line, name, top in imported_packages(source, package):
            if top != package and top in rule and top not in allowed:
                bad.append(f"{path}:{line}: {package} imports {name}")
    return bad


def _product_files() -> dict[str, tuple[str, str]]:
    files = {}
    for package in packages():
        for path in sorted((ROOT / package).rglob("*.py")):
            files[str(path.relative_to(ROOT))] = (package, path.read_text(encoding="utf-8"))
    for script in SCRIPTS:
        files[script] = (script, (ROOT / script).read_text(encoding="utf-8"))
    return files


def test_every_package_has_a_floor():
    """Should place every top-level package of the product in the rule (a new one gets its floor first)."""
    assert [p for p in packages() if p not in MAY_IMPORT] == []


def test_the_floors_do_not_form_a_cycle():
    """Should keep the rule itself acyclic: if a may import b, b may not import a, even through others."""
    def below(package, seen=()):
        for other in MAY_IMPORT[package]:
            assert other not in seen + (package,), f"cycle through {package} and {other}"
            yield other
            yield from below(other, seen + (package,))
    for package in MAY_IMPORT:
        assert package not in set(below(package))


def test_no_module_imports_up_or_across_the_floors():
    """Should find no import, top-level or lazy, that the layer rule does not allow."""
    found = violations({**MAY_IMPORT, **SCRIPTS}, _product_files())
    assert found == [], "imports against docs/architecture.md's layer rule:\n" + "\n".join(found)


def test_rule_reads_lazy_and_relative_imports():
    """Should report a lazy import inside a function, an import in a TYPE_CHECKING block and a plain
    ``import x.y``, and pass imports of the module's own package, of lower floors and of the stdlib."""
    source = (
        "import json\n"
        "from core.db import database\n"
        "from . import models\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from webui.app import Services\n"
        "def late():\n"
        "    from acd.models import Queue\n"
        "    import ivr.store\n"
        "    return Queue\n")
    found = violations({"caseflow": frozenset({"core"}), "core": frozenset(), "acd": frozenset(),
                        "ivr": frozenset(), "webui": frozenset()}, {"caseflow/x.py": ("caseflow", source)})
    assert found == ["caseflow/x.py:6: caseflow imports webui.app", "caseflow/x.py:8: caseflow imports acd.models",
                     "caseflow/x.py:9: caseflow imports ivr.store"]
