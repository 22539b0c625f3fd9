"""Every FreeSWITCH command string is written in switch/ (switch.commands), nowhere else."""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SKIP = {"switch", "tests", ".venv", "var", "node_modules", ".git", "freeswitch-conf"}
# What a module writing its own command starts a string literal (or an f-string's first part) with: an API
# command word and its first space, originate before its variables or dial string, an originate application.
COMMAND_START = re.compile(r"(?:uuid_[a-z_]+|conference|eavesdrop|bgapi|global_getvar|sofia status|show channels)"
                           r" "
                           r"|originate(?:\Z| \Z| [{\[<&]| (?:user|sofia|loopback)/)"
                           r"|&[a-z_]+\(")
LOGGING = {"debug", "info", "warning", "error", "exception", "critical", "log"}


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def command_literals(source: str) -> list[tuple[int, str]]:
    """(line, text) of string literals and f-strings that start like a FreeSWITCH command."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    inside_fstring = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
    # a log line may name a command ("uuid_break %s failed"): it is never sent
    logged = {id(arg) for node in ast.walk(tree) if isinstance(node, ast.Call)
              and isinstance(node.func, ast.Attribute) and node.func.attr in LOGGING for arg in node.args[:2]}
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            first = node.values[0] if node.values else None
            text = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else ""
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs \
                and id(node) not in inside_fstring:
            text = node.value
        else:
            continue
        if id(node) not in logged and COMMAND_START.match(text):
            hits.append((node.lineno, text[:60]))
    return sorted(hits)


def test_the_check_finds_command_strings():
    """Should flag plain, f-string and concatenated commands and applications, and not a docstring, a log
    line, a variable name or prose."""
    source = ('"""uuid_kill in a docstring is prose."""\n'
              'a = f"uuid_kill {x} NORMAL_CLEARING"\nb = "originate " + d\nc = "bgapi status"\n'
              'log.info("uuid_break %s failed: %s", u, e)\nd = f"conference {room} kick all"\n'
              'e = f"originate {{{v}}}user/1000 &park()"\nf = f"&eavesdrop({u})"\ng = "eavesdrop_bridge_aleg"\n'
              'h = f"originate failed: {body}"\ni = "uuid_getvar"\n')
    assert [line for line, _ in command_literals(source)] == [2, 3, 4, 6, 7, 8]


def test_no_module_outside_switch_writes_a_command():
    """Should find no string literal or f-string starting like a FreeSWITCH command (COMMAND_START: an API
    command word and its space, originate, an ``&application(``), docstrings and a log call's first two
    arguments aside, in the .py files outside SKIP (switch/, tests/, freeswitch-conf/, var/ and the tool
    folders). A command put together from pieces none of which starts that way is not seen."""
    offenders = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in SKIP:
            continue
        for line, text in command_literals(path.read_text(encoding="utf-8")):
            offenders.append(f"{rel}:{line}: {text!r}")
    assert not offenders, "build these with switch.commands / the channel handle:\n" + "\n".join(offenders)
