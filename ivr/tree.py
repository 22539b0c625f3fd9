"""The menu tree as data: node model, loader (TOML or JSON) and validator.

A tree is a start node id, a table of settings (retry limits, contact numbers, known skills) and a table
of nodes. Each node has an id, a kind and kind-specific fields. The validator lists every problem with the
node id it concerns, so an administrator sees all of them at once; activation is refused while any remain.
"""
from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from caseflow.workflow import CITIZEN_WORDS

DEFAULT_TREE_PATH = Path(__file__).resolve().parent / "default_tree.toml"

# Targets that are not node ids: repeat the current menu.
REPEAT = "@repeat"
VALID_KEYS = frozenset("0123456789*#")
PHONE_RE = re.compile(r"^\+?[0-9]{3,20}\Z")
HOUR_RE = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]\Z|^24:00\Z")
LANGUAGES = ("zh", "en")
# The citizen word keys of the status query (caseflow.workflow's one table; prompts status_<key>).
CITIZEN_STATUSES = tuple(CITIZEN_WORDS)

# Which fields of each kind name other nodes, and whether reaching them needs a caller action.
# "caller" edges follow a key press or a recording; "auto" edges are taken without one, so a cycle made
# only of auto edges could repeat forever (an IVR timeout loop), which the validator refuses.
NODE_KINDS: dict[str, dict[str, str]] = {
    "prompt": {"next": "auto"},
    "menu": {"timeout_route": "auto", "on_fail": "auto"},  # plus keys (caller)
    "collect": {"next": "caller", "on_fail": "auto"},
    "record": {"next": "caller", "on_cancel": "caller", "on_fail": "auto"},
    "mailbox": {"next": "caller", "on_cancel": "caller", "on_fail": "auto"},
    "voicemail": {"next": "caller", "on_fail": "auto"},
    "status_query": {"next": "caller", "on_fail": "auto"},
    "consultation": {"next": "caller", "on_fail": "auto"},
    "poll": {"next": "caller", "on_fail": "auto"},
    "queue": {"on_busy": "auto"},
    "transfer": {"on_fail": "auto"},
    "time": {"open": "auto", "closed": "auto", "holiday": "auto"},
    "blacklist": {"next": "auto", "blocked": "auto"},
    "language": {"next": "auto"},
    "fax": {"on_fail": "auto"},
    "satisfaction": {"next": "caller", "on_fail": "auto"},
    "hangup": {},
}
# Kinds that end the IVR part of a call: no next node is needed.
TERMINAL_KINDS = frozenset({"hangup", "queue", "transfer", "fax"})
# Fields every node of a kind must have (beyond the routes above, checked separately).
REQUIRED_ROUTES: dict[str, tuple[str, ...]] = {
    "prompt": ("next",),
    "menu": ("on_fail",),
    "collect": ("next", "on_fail"),
    "record": ("next", "on_cancel", "on_fail"),
    "mailbox": ("next", "on_cancel", "on_fail"),
    "voicemail": ("next", "on_fail"),
    "status_query": ("next", "on_fail"),
    "consultation": ("next", "on_fail"),
    "poll": ("next", "on_fail"),
    "queue": ("on_busy",),
    "transfer": ("on_fail",),
    "time": ("open", "closed", "holiday"),
    "blacklist": ("next", "blocked"),
    "language": ("next",),
    "fax": ("on_fail",),
    "satisfaction": ("next", "on_fail"),
    "hangup": (),
}
# Kinds with retries: a missing limit or final route is refused.
RETRY_KINDS = frozenset({"menu", "collect", "record", "mailbox", "voicemail", "status_query", "consultation", "poll",
                         "satisfaction"})


class TreeError(ValueError):
    """A tree that cannot be loaded or activated; ``problems`` lists every reason with its node id."""

    def __init__(self, problems: list["Problem"]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems) or "invalid tree")


@dataclass(frozen=True)
class Problem:
    """One validation finding: the node it concerns ("" for the tree itself) and what is wrong."""

    node: str
    message: str

    def __str__(self) -> str:
        return f"{self.node}: {self.message}" if self.node else self.message


@dataclass(frozen=True)
class Node:
    """One node of the tree: id, kind and the remaining fields as given in the file."""

    id: str
    kind: str
    fields: Mapping[str, Any]

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)

    @property
    def keys(self) -> Mapping[str, str]:
        """Key -> target for menus (and the choices of language/after-service menus)."""
        return self.fields.get("keys", {}) or {}


@dataclass(frozen=True)
class Tree:
    """A loaded tree: start node, settings and nodes by id."""

    name: str
    start: str
    settings: Mapping[str, Any]
    nodes: Mapping[str, Node]
    source: str = ""

    def node(self, node_id: str) -> Node:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise TreeError([Problem(node_id, "no such node")]) from None

    def setting(self, name: str, default: Any = None) -> Any:
        return self.settings.get(name, default)

    def edges(self, node: Node) -> list[tuple[str, str, str]]:
        """(label, target, "caller"|"auto") for every route out of ``node``; repeats are left out."""
        out: list[tuple[str, str, str]] = []
        for name, how in NODE_KINDS.get(node.kind, {}).items():
            target = node.get(name)
            if isinstance(target, str) and target and target != REPEAT:
                out.append((name, target, how))
        for key, target in node.keys.items():
            if isinstance(target, str) and target != REPEAT:
                out.append((f"key {key}", target, "caller"))
        return out

    def prompt_refs(self) -> list[tuple[str, str]]:
        """(node id, prompt key) for every prompt the tree names."""
        refs: list[tuple[str, str]] = []
        for node in self.nodes.values():
            for name, value in node.fields.items():
                if (name == "prompt" or name.endswith("_prompt")) and isinstance(value, str) and value:
                    refs.append((node.id, value))
            for topic in node.get("topics", []) or []:
                if isinstance(topic, Mapping):
                    for name in ("prompt", "title_prompt"):
                        if isinstance(topic.get(name), str) and topic.get(name):
                            refs.append((node.id, topic[name]))
        return refs


def parse_tree(text: str, fmt: str = "toml", name: str = "") -> Tree:
    """Parse tree source text (TOML or JSON) into a Tree; structural errors raise TreeError."""
    try:
        data = tomllib.loads(text) if fmt == "toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TreeError([Problem("", f"cannot parse the tree file ({fmt}): {exc}")]) from None
    return tree_from_data(data, source=text, name=name)


def tree_from_data(data: Any, source: str = "", name: str = "") -> Tree:
    """Build a Tree from already parsed data, collecting every structural problem."""
    problems: list[Problem] = []
    if not isinstance(data, Mapping):
        raise TreeError([Problem("", "the tree must be a table with 'tree', 'settings' and 'nodes'")])
    head = data.get("tree", {})
    if not isinstance(head, Mapping):
        problems.append(Problem("", "'tree' must be a table"))
        head = {}
    start = head.get("start")
    if not isinstance(start, str) or not start:
        problems.append(Problem("", "the tree has no start node ('tree.start')"))
        start = ""
    settings = data.get("settings", {})
    if not isinstance(settings, Mapping):
        problems.append(Problem("", "'settings' must be a table"))
        settings = {}
    raw_nodes = data.get("nodes")
    nodes: dict[str, Node] = {}
    if not isinstance(raw_nodes, Mapping) or not raw_nodes:
        problems.append(Problem("", "the tree has no nodes ('nodes')"))
        raw_nodes = {}
    for node_id, body in raw_nodes.items():
        if not isinstance(body, Mapping):
            problems.append(Problem(str(node_id), "a node must be a table"))
            continue
        kind = body.get("kind")
        if kind not in NODE_KINDS:
            problems.append(Problem(str(node_id), f"unknown kind {kind!r} (one of {', '.join(NODE_KINDS)})"))
            continue
        fields = {k: v for k, v in body.items() if k != "kind"}
        nodes[str(node_id)] = Node(str(node_id), kind, fields)
    if problems:
        raise TreeError(problems)
    return Tree(name=name or str(head.get("name", "default")), start=start, settings=dict(settings),
                nodes=nodes, source=source)


def load_tree(path: str | Path = DEFAULT_TREE_PATH) -> Tree:
    """Load a tree file (.toml or .json) from disk."""
    path = Path(path)
    fmt = "json" if path.suffix == ".json" else "toml"
    return parse_tree(path.read_text(encoding="utf-8"), fmt, name=path.stem)


def _positive_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _resolve_number(tree: Tree, node: Node) -> tuple[str | None, str]:
    """The number a transfer node dials and where it came from, or None with a reason."""
    if node.get("number"):
        return str(node.get("number")), "number"
    setting = node.get("setting")
    if setting:
        value = tree.setting(setting)
        if value in (None, ""):
            return None, f"the setting {setting!r} it dials is not set"
        return str(value), f"setting {setting!r}"
    return None, "names neither a 'number' nor a 'setting' to dial"


def schedule_problems(fields: Mapping[str, Any]) -> list[str]:
    """What is wrong with the answering-hours fields (ivr.schedule) of the settings or of a time node."""
    from ivr.schedule import REST_DAY_RULES

    problems = []
    for name in ("office_hours", "weekends_open"):
        if name in fields and not isinstance(fields[name], bool):
            problems.append(f"{name} must be true or false, got {fields[name]!r}")
    if "rest_days" in fields and fields["rest_days"] not in REST_DAY_RULES:
        problems.append(f"rest_days must be one of {', '.join(REST_DAY_RULES)}, got {fields['rest_days']!r}")
    return problems


def handback_nodes(tree: Tree) -> list[tuple[str, str]]:
    """(node id, kind) of the nodes an agent may hand a caller to (人工转自动): those marked
    ``handback = true`` (e.g. satisfaction, status query), in the file's order."""
    return [(nid, node.kind) for nid, node in tree.nodes.items() if node.get("handback") is True]


def validate(tree: Tree, prompt_keys: Iterable[str] | None = None, skills: Iterable[str] | None = None
             ) -> list[Problem]:
    """Every problem of ``tree``: missing routes and limits, unknown references, unreachable nodes, loops.

    ``prompt_keys``: the prompts that exist (None: not checked). ``skills``: the queues that exist
    (None: the tree's own ``settings.skills``).
    """
    problems: list[Problem] = []
    nodes = tree.nodes
    known_prompts = set(prompt_keys) if prompt_keys is not None else None
    known_skills = set(skills) if skills is not None else set(tree.setting("skills", []) or [])

    if tree.start not in nodes:
        problems.append(Problem("", f"the start node {tree.start!r} does not exist"))

    for node in nodes.values():
        nid = node.id
        for label, target, _how in tree.edges(node):
            if target not in nodes:
                problems.append(Problem(nid, f"{label} leads to unknown node {target!r}"))
        for route in REQUIRED_ROUTES[node.kind]:
            if not node.get(route):
                problems.append(Problem(nid, f"missing final route '{route}'"))
        if node.kind in RETRY_KINDS:
            retries = node.get("max_retries", tree.setting("max_retries"))
            if not isinstance(retries, int) or isinstance(retries, bool) or not 1 <= retries <= 10:
                problems.append(Problem(nid, "missing retry limit 'max_retries' (1-10)"))
        if node.kind == "menu":
            keys = node.keys
            if not keys:
                problems.append(Problem(nid, "a menu without keys"))
            for key in keys:
                if key not in VALID_KEYS:
                    problems.append(Problem(nid, f"key {key!r} cannot be pressed on a phone"))
            if not _positive_number(node.get("timeout", tree.setting("menu_timeout"))):
                problems.append(Problem(nid, "menu without timeout handling ('timeout' seconds)"))
            if not node.get("invalid_prompt", tree.setting("invalid_prompt")):
                problems.append(Problem(nid, "menu without invalid-key handling ('invalid_prompt')"))
            if not node.get("prompt"):
                problems.append(Problem(nid, "menu without a prompt"))
        if "must_hear" in node.fields:
            if node.kind != "prompt":
                problems.append(Problem(nid, "must_hear applies to prompt nodes only (a menu's prompt is "
                                             "always stopped by the caller's key)"))
            elif not isinstance(node.get("must_hear"), bool):
                problems.append(Problem(nid, f"must_hear must be true or false, got {node.get('must_hear')!r}"))
        if node.kind == "prompt" and not (node.get("prompt") or node.get("text") or node.get("text_var")):
            problems.append(Problem(nid, "prompt node without 'prompt', 'text' or 'text_var'"))
        if node.kind == "collect":
            if not node.get("prompt"):
                problems.append(Problem(nid, "collect node without a prompt"))
            choices = str(node.get("choices", ""))
            if choices and not choices.isdigit():
                problems.append(Problem(nid, f"choices must be digits, got {choices!r}"))
        if node.kind == "queue":
            skill = node.get("skill")
            if not skill:
                problems.append(Problem(nid, "queue node without 'skill'"))
            elif skill not in known_skills:
                problems.append(Problem(nid, f"unknown queue/skill {skill!r}: no active queue serves it "
                                             f"(known: {', '.join(sorted(known_skills)) or 'none'})"))
        if node.kind == "transfer":
            number, where = _resolve_number(tree, node)
            if number is None:
                problems.append(Problem(nid, where))
            elif not PHONE_RE.match(number):
                problems.append(Problem(nid, f"{where}: {number!r} is not a phone number"))
        if node.kind == "language" and node.get("lang") not in LANGUAGES:
            problems.append(Problem(nid, f"unknown language {node.get('lang')!r} (one of {', '.join(LANGUAGES)})"))
        if node.kind in ("record", "mailbox", "voicemail"):
            max_s, min_s = node.get("max_seconds", 120), node.get("min_seconds", 2)
            if not _positive_number(max_s) or not isinstance(min_s, (int, float)) or min_s < 0 or min_s >= max_s:
                problems.append(Problem(nid, "recording needs 0 <= min_seconds < max_seconds"))
        if node.kind == "consultation":
            topics = node.get("topics") or []
            if not topics:
                problems.append(Problem(nid, "consultation without topics"))
            seen = set()
            for index, topic in enumerate(topics):
                if not isinstance(topic, Mapping) or topic.get("key") not in VALID_KEYS - {"0", "*", "#"}:
                    problems.append(Problem(nid, f"topic {index + 1} needs a key 1-9"))
                    continue
                if topic["key"] in seen:
                    problems.append(Problem(nid, f"topic key {topic['key']} used twice"))
                seen.add(topic["key"])
                if not (topic.get("prompt") or topic.get("text") or topic.get("kb_item")):
                    problems.append(Problem(nid, f"topic {topic['key']} has no prompt, text or kb_item"))
        if node.kind == "time":
            if node.get("schedule") not in (None, "calendar"):
                problems.append(Problem(nid, "time condition 'schedule' must be 'calendar'"))
            problems.extend(Problem(nid, message) for message in schedule_problems(node.fields))
            hours = node.get("working_hours", tree.setting("working_hours", ["08:00", "20:00"]))
            if not (isinstance(hours, (list, tuple)) and len(hours) == 2
                    and all(isinstance(h, str) and HOUR_RE.match(h) for h in hours) and hours[0] < hours[1]):
                problems.append(Problem(nid, f"working_hours must be two times HH:MM, earlier first: {hours!r}"))

    problems.extend(Problem("", f"settings: {message}") for message in schedule_problems(tree.settings))

    if known_prompts is not None:
        invalid = tree.setting("invalid_prompt")
        if invalid and invalid not in known_prompts:
            problems.append(Problem("", f"settings: unknown prompt {invalid!r}"))
        for nid, key in tree.prompt_refs():
            if key not in known_prompts:
                problems.append(Problem(nid, f"unknown prompt {key!r}"))

    problems.extend(_reachability(tree))
    problems.extend(_auto_loops(tree))
    return problems


def _reachability(tree: Tree) -> list[Problem]:
    if tree.start not in tree.nodes:
        return []
    # Hand-back nodes (``handback = true``) are entry points too: agents send callers there (人工转自动).
    roots = [tree.start] + [nid for nid, node in tree.nodes.items() if node.get("handback") is True]
    seen = set(roots)
    stack = list(roots)
    while stack:
        node = tree.nodes[stack.pop()]
        for _label, target, _how in tree.edges(node):
            if target in tree.nodes and target not in seen:
                seen.add(target)
                stack.append(target)
    return [Problem(nid, "unreachable from the start node") for nid in tree.nodes if nid not in seen]


def _auto_loops(tree: Tree) -> list[Problem]:
    """Cycles made only of routes taken without a caller action (they would repeat forever)."""
    graph = {nid: [t for _l, t, how in tree.edges(n) if how == "auto" and t in tree.nodes]
             for nid, n in tree.nodes.items()}
    problems: list[Problem] = []
    reported: set[frozenset] = set()
    colour: dict[str, int] = {}
    path: list[str] = []

    def visit(nid: str) -> None:
        colour[nid] = 1
        path.append(nid)
        for target in graph[nid]:
            if colour.get(target) == 1:
                cycle = path[path.index(target):]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    problems.append(Problem(target, "loop without a caller action: "
                                            + " -> ".join(cycle + [target])))
            elif target not in colour:
                visit(target)
        path.pop()
        colour[nid] = 2

    for nid in graph:
        if nid not in colour:
            visit(nid)
    return problems


def check(tree: Tree, prompt_keys: Iterable[str] | None = None, skills: Iterable[str] | None = None) -> Tree:
    """Return ``tree`` if valid, else raise TreeError with every problem."""
    problems = validate(tree, prompt_keys, skills)
    if problems:
        raise TreeError(problems)
    return tree


def tree_to_toml(tree: Tree) -> str:
    """The tree's source text; trees edited in the admin pages are re-serialised with ``dump_toml``."""
    return tree.source or dump_toml(tree)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def dump_toml(tree: Tree) -> str:
    """Serialise a tree (settings and nodes) to TOML that ``parse_tree`` reads back unchanged."""
    lines = ["[tree]", f"name = {_toml_value(tree.name)}", f"start = {_toml_value(tree.start)}", "", "[settings]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in tree.settings.items()]
    for node in tree.nodes.values():
        lines += ["", f"[nodes.{json.dumps(node.id)}]", f"kind = {_toml_value(node.kind)}"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in node.fields.items()]
    return "\n".join(lines) + "\n"


@dataclass
class TreeSummary:
    """Counts used by the admin page."""

    nodes: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


def summarize(tree: Tree) -> TreeSummary:
    summary = TreeSummary(nodes=len(tree.nodes))
    for node in tree.nodes.values():
        summary.by_kind[node.kind] = summary.by_kind.get(node.kind, 0) + 1
    return summary
