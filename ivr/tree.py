"""The menu tree as data: node model, loader (TOML or JSON) and validator.

A tree is a start node id, a table of settings (retry limits, contact numbers, known skills) and a table
of nodes. Each node has an id, a kind and kind-specific fields. The validator lists every problem with the
node id it concerns, so an administrator sees all of them at once; activation is refused while any remain.

Long because: the node kinds' tables (routes, required fields, retries) and the validator that reads them
(one function listing every problem with its node) are kept in one place, so a new kind is declared and
checked in one file; the loader and the TOML writer are short.
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


# Messages are written "中文 / English" (the convention of the case engine and the ACD): the web UI shows the
# half in the user's language (webui.i18n.one_language).
ROUTE_WORDS_ZH = {"next": "下一步", "on_fail": "失败去向", "on_cancel": "取消去向", "timeout_route": "无按键去向",
                  "on_busy": "坐席全忙去向", "open": "工作时间去向", "closed": "非工作时间去向", "holiday": "节假日去向",
                  "blocked": "黑名单去向"}


def _route_zh(label: str) -> str:
    """A route's name in Chinese ("key 1" -> 按键 1)."""
    if label.startswith("key "):
        return f"按键 {label[4:]} "
    return ROUTE_WORDS_ZH.get(label, label)


def halves(message: str) -> tuple[str, str]:
    """(Chinese, English) of a "中文 / English" message; a one-language message is both."""
    zh, sep, en = str(message).partition(" / ")
    return (zh, en) if sep else (str(message), str(message))


def prefixed(zh_prefix: str, en_prefix: str, message: str) -> str:
    zh, en = halves(message)
    return f"{zh_prefix}：{zh} / {en_prefix}: {en}"


def joined(messages: Iterable[str]) -> str:
    """Several "中文 / English" messages as one (each language's halves together)."""
    pairs = [halves(m) for m in messages]
    return "；".join(zh for zh, _ in pairs) + " / " + "; ".join(en for _, en in pairs)


class TreeError(ValueError):
    """A tree that cannot be loaded or activated; ``problems`` lists every reason with its node id."""

    def __init__(self, problems: list["Problem"]):
        self.problems = problems
        super().__init__(joined(prefixed(p.node, p.node, p.message) if p.node else p.message for p in problems)
                         if problems else "导航树无效 / invalid tree")


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
            raise TreeError([Problem(node_id, "没有该节点 / no such node")]) from None

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
        raise TreeError([Problem("", f"无法读取导航树文件（{fmt}）：{exc} / cannot parse the tree file ({fmt}): {exc}")]) from None
    return tree_from_data(data, source=text, name=name)


def tree_from_data(data: Any, source: str = "", name: str = "") -> Tree:
    """Build a Tree from already parsed data, collecting every structural problem."""
    problems: list[Problem] = []
    if not isinstance(data, Mapping):
        raise TreeError([Problem("", "导航树须为含 tree、settings 和 nodes 的表 / the tree must be a table with 'tree', "
                                    "'settings' and 'nodes'")])
    head = data.get("tree", {})
    if not isinstance(head, Mapping):
        problems.append(Problem("", "tree 须为表 / 'tree' must be a table"))
        head = {}
    start = head.get("start")
    if not isinstance(start, str) or not start:
        problems.append(Problem("", "导航树没有开始节点（tree.start） / the tree has no start node ('tree.start')"))
        start = ""
    settings = data.get("settings", {})
    if not isinstance(settings, Mapping):
        problems.append(Problem("", "settings 须为表 / 'settings' must be a table"))
        settings = {}
    raw_nodes = data.get("nodes")
    nodes: dict[str, Node] = {}
    if not isinstance(raw_nodes, Mapping) or not raw_nodes:
        problems.append(Problem("", "导航树没有节点（nodes） / the tree has no nodes ('nodes')"))
        raw_nodes = {}
    for node_id, body in raw_nodes.items():
        if not isinstance(body, Mapping):
            problems.append(Problem(str(node_id), "节点须为表 / a node must be a table"))
            continue
        kind = body.get("kind")
        if kind not in NODE_KINDS:
            problems.append(Problem(str(node_id), f"未知的节点类型 {kind!r} / unknown kind {kind!r} (one of "
                                                   f"{', '.join(NODE_KINDS)})"))
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
        return str(node.get("number")), "转接号码 / number"
    setting = node.get("setting")
    if setting:
        value = tree.setting(setting)
        if value in (None, ""):
            return None, f"要拨打的参数 {setting!r} 未设置 / the setting {setting!r} it dials is not set"
        return str(value), f"参数 {setting!r} / setting {setting!r}"
    return None, "没有指定要拨打的号码（number 或 setting） / names neither a 'number' nor a 'setting' to dial"


def schedule_problems(fields: Mapping[str, Any]) -> list[str]:
    """What is wrong with the answering-hours fields (ivr.schedule) of the settings or of a time node."""
    from ivr.schedule import REST_DAY_RULES

    problems = []
    for name in ("office_hours", "weekends_open"):
        if name in fields and not isinstance(fields[name], bool):
            zh = {"office_hours": "仅工作时间人工接听", "weekends_open": "周末有人接听"}[name]
            problems.append(f"{zh}须为是或否：{fields[name]!r} / {name} must be true or false, got "
                            f"{fields[name]!r}")
    if "rest_days" in fields and fields["rest_days"] not in REST_DAY_RULES:
        problems.append(f"休息日和节假日的处理须为 {'、'.join(REST_DAY_RULES)} 之一：{fields['rest_days']!r} / rest_days must "
                        f"be one of {', '.join(REST_DAY_RULES)}, got {fields['rest_days']!r}")
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
        problems.append(Problem("", f"开始节点 {tree.start!r} 不存在 / the start node {tree.start!r} does not exist"))

    for node in nodes.values():
        nid = node.id
        for label, target, _how in tree.edges(node):
            if target not in nodes:
                problems.append(Problem(nid, f"{_route_zh(label)}指向不存在的节点 {target!r} / {label} leads to unknown "
                                             f"node {target!r}"))
        for route in REQUIRED_ROUTES[node.kind]:
            if not node.get(route):
                problems.append(Problem(nid, f"缺少最终去向（{_route_zh(route)}） / missing final route '{route}'"))
        if node.kind in RETRY_KINDS:
            retries = node.get("max_retries", tree.setting("max_retries"))
            if not isinstance(retries, int) or isinstance(retries, bool) or not 1 <= retries <= 10:
                problems.append(Problem(nid, "缺少尝试次数上限（max_retries，1-10） / missing retry limit 'max_retries' "
                                             "(1-10)"))
        if node.kind == "menu":
            keys = node.keys
            if not keys:
                problems.append(Problem(nid, "菜单没有按键 / a menu without keys"))
            for key in keys:
                if key not in VALID_KEYS:
                    problems.append(Problem(nid, f"电话上没有按键 {key!r} / key {key!r} cannot be pressed on a phone"))
            if not _positive_number(node.get("timeout", tree.setting("menu_timeout"))):
                problems.append(Problem(nid, "菜单没有等待按键的时间（timeout 秒） / menu without timeout handling "
                                             "('timeout' seconds)"))
            if not node.get("invalid_prompt", tree.setting("invalid_prompt")):
                problems.append(Problem(nid, "菜单没有按错键时的提示音（invalid_prompt） / menu without invalid-key "
                                             "handling ('invalid_prompt')"))
            if not node.get("prompt"):
                problems.append(Problem(nid, "菜单没有提示音 / menu without a prompt"))
        if "must_hear" in node.fields:
            if node.kind != "prompt":
                problems.append(Problem(nid, "“必须听完”只适用于播放提示节点（菜单提示音总会被按键打断） / must_hear "
                                             "applies to prompt nodes only (a menu's prompt is always stopped by "
                                             "the caller's key)"))
            elif not isinstance(node.get("must_hear"), bool):
                problems.append(Problem(nid, f"“必须听完”须为是或否：{node.get('must_hear')!r} / must_hear "
                                             f"must be true or false, got {node.get('must_hear')!r}"))
        if node.kind == "prompt" and not (node.get("prompt") or node.get("text") or node.get("text_var")):
            problems.append(Problem(nid, "播放提示节点没有提示音或播报文本（prompt、text 或 text_var） / prompt node "
                                         "without 'prompt', 'text' or 'text_var'"))
        if node.kind == "collect":
            if not node.get("prompt"):
                problems.append(Problem(nid, "号码输入节点没有提示音 / collect node without a prompt"))
            choices = str(node.get("choices", ""))
            if choices and not choices.isdigit():
                problems.append(Problem(nid, f"可选按键须为数字：{choices!r} / choices must be digits, got {choices!r}"))
        if node.kind == "queue":
            skill = node.get("skill")
            if not skill:
                problems.append(Problem(nid, "转人工节点没有技能队列（skill） / queue node without 'skill'"))
            elif skill not in known_skills:
                problems.append(Problem(nid, f"未知的技能队列 {skill!r}：没有启用的队列服务该技能（已有："
                                             f"{'、'.join(sorted(known_skills)) or '无'}） / unknown queue/skill "
                                             f"{skill!r}: no active queue serves it (known: "
                                             f"{', '.join(sorted(known_skills)) or 'none'})"))
        if node.kind == "transfer":
            number, where = _resolve_number(tree, node)
            if number is None:
                problems.append(Problem(nid, where))
            elif not PHONE_RE.match(number):
                zh, _sep, en = where.partition(" / ")
                problems.append(Problem(nid, f"{zh}：{number!r} 不是电话号码 / {en}: {number!r} is not a phone "
                                             f"number"))
        if node.kind == "language" and node.get("lang") not in LANGUAGES:
            problems.append(Problem(nid, f"未知的语言 {node.get('lang')!r} / unknown language {node.get('lang')!r} "
                                         f"(one of {', '.join(LANGUAGES)})"))
        if node.kind in ("record", "mailbox", "voicemail"):
            max_s, min_s = node.get("max_seconds", 120), node.get("min_seconds", 2)
            if not _positive_number(max_s) or not isinstance(min_s, (int, float)) or min_s < 0 or min_s >= max_s:
                problems.append(Problem(nid, "录音时长须满足 0 ≤ 最短 < 最长 / recording needs 0 <= min_seconds < "
                                             "max_seconds"))
        if node.kind == "consultation":
            topics = node.get("topics") or []
            if not topics:
                problems.append(Problem(nid, "自助咨询没有主题 / consultation without topics"))
            seen = set()
            for index, topic in enumerate(topics):
                if not isinstance(topic, Mapping) or topic.get("key") not in VALID_KEYS - {"0", "*", "#"}:
                    problems.append(Problem(nid, f"第 {index + 1} 个主题须有 1-9 的按键 / topic {index + 1} needs a key 1-9"))
                    continue
                if topic["key"] in seen:
                    problems.append(Problem(nid, f"主题按键 {topic['key']} 重复 / topic key {topic['key']} used twice"))
                seen.add(topic["key"])
                if not (topic.get("prompt") or topic.get("text") or topic.get("kb_item")):
                    problems.append(Problem(nid, f"主题 {topic['key']} 没有提示音、文本或知识条目 / topic {topic['key']} has "
                                             f"no prompt, text or kb_item"))
        if node.kind == "time":
            if node.get("schedule") not in (None, "calendar"):
                problems.append(Problem(nid, "工作时间判断的 schedule 须为 calendar / time condition 'schedule' must "
                                             "be 'calendar'"))
            problems.extend(Problem(nid, message) for message in schedule_problems(node.fields))
            hours = node.get("working_hours", tree.setting("working_hours", ["08:00", "20:00"]))
            if not (isinstance(hours, (list, tuple)) and len(hours) == 2
                    and all(isinstance(h, str) and HOUR_RE.match(h) for h in hours) and hours[0] < hours[1]):
                problems.append(Problem(nid, f"工作时间段须为两个 HH:MM 时间，先早后晚：{hours!r} / working_hours must "
                                             f"be two times HH:MM, earlier first: {hours!r}"))

    problems.extend(Problem("", prefixed("参数设置", "settings", message))
                    for message in schedule_problems(tree.settings))

    if known_prompts is not None:
        invalid = tree.setting("invalid_prompt")
        if invalid and invalid not in known_prompts:
            problems.append(Problem("", f"参数设置：未知的提示音 {invalid!r} / settings: unknown prompt {invalid!r}"))
        for nid, key in tree.prompt_refs():
            if key not in known_prompts:
                problems.append(Problem(nid, f"未知的提示音 {key!r} / unknown prompt {key!r}"))

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
    return [Problem(nid, "从开始节点无法到达 / unreachable from the start node")
            for nid in tree.nodes if nid not in seen]


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
                    loop = " -> ".join(cycle + [target])
                    problems.append(Problem(target, f"没有来电者操作的循环：{loop} / loop without a caller action: "
                                                    f"{loop}"))
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
