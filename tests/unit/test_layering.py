"""Web views call services; they never write the database (house style, issue 10 item 4).

The rule is read from the source of every view module: a call of ``.save(``, ``.create(``,
``.delete_instance(``, ``.update(``, ``.insert(`` (and ``insert_many``, ``delete``, ``get_or_create``,
``execute``) or any ``.atomic(`` is a database write, unless it is a function of a module the view imported
(``saved_searches.save(...)`` is a service call). No exceptions are listed: a write goes into a service.
"""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VIEW_MODULES = sorted((ROOT / "webui" / "blueprints").glob("*.py")) + [ROOT / "webui" / "auth.py"]
WRITE_CALLS = frozenset({"save", "create", "delete_instance", "update", "insert", "insert_many", "delete",
                         "get_or_create", "execute", "atomic"})


def _is_module(dotted: str) -> bool:
    try:
        return importlib.util.find_spec(dotted) is not None
    except (ImportError, ValueError):
        return False


def _module_names(tree: ast.AST) -> set[str]:
    """Names the file binds to modules (``import a.b as x``, ``from a import module``), anywhere in it."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                if _is_module(f"{node.module}.{alias.name}"):
                    names.add(alias.asname or alias.name)
    return names


def database_writes(source: str, filename: str = "<view>") -> list[str]:
    """``file:line: .name(`` for every database write in a view module's ``source``."""
    tree = ast.parse(source, filename)
    modules = _module_names(tree)
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name, receiver = node.func.attr, node.func.value
        if name not in WRITE_CALLS:
            continue
        if name != "atomic" and isinstance(receiver, ast.Name) and receiver.id in modules:
            continue  # a service module's function
        found.append(f"{filename}:{node.lineno}: {ast.unparse(node.func)}(")
    return sorted(found, key=lambda line: (int(line.split(":")[1]), line))


def test_views_do_not_write_the_database():
    """Should find, in webui/blueprints/*.py and webui/auth.py (more than 10 modules), no call of a method named
    in WRITE_CALLS (``.save(``, ``.create(``, ``.update(``, ``.execute(``...; ``.atomic(`` on anything) but on a
    module the view imported: views call services (acd.admin, caseflow, ivr...). A write through a method of
    another name (``execute_sql``, ``bulk_create``, ``replace``), or through any function of a module the view
    imported (taken for a service's), is not seen."""
    assert len(VIEW_MODULES) > 10
    found = []
    for path in VIEW_MODULES:
        found += database_writes(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert found == [], "views write the database; move these into a service:\n" + "\n".join(found)


def test_rule_catches_writes():
    """Should report model writes, transactions and updates on a query, and pass calls of service modules."""
    source = (
        "from caseflow import saved_searches\n"
        "from acd.models import Queue\n"
        "from core.db import database\n"
        "def view(row, q):\n"
        "    saved_searches.save(1, 2)\n"
        "    Queue.create(name='x')\n"
        "    row.save()\n"
        "    row.delete_instance()\n"
        "    Queue.update(active=False).where(Queue.id == 1).execute()\n"
        "    Queue.insert(name='y').execute()\n"
        "    with database.atomic():\n"
        "        pass\n"
        "    with Queue._meta.database.atomic():\n"
        "        pass\n")
    found = database_writes(source, "v.py")
    assert found == ["v.py:6: Queue.create(", "v.py:7: row.save(", "v.py:8: row.delete_instance(",
                     "v.py:9: Queue.update(", "v.py:9: Queue.update(active=False).where(Queue.id == 1).execute(",
                     "v.py:10: Queue.insert(", "v.py:10: Queue.insert(name='y').execute(",
                     "v.py:11: database.atomic(", "v.py:13: Queue._meta.database.atomic("]
