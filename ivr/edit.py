"""Edits an administrator makes to one node of a tree (prompt, keys, targets, limits), producing new
TOML source for a new version. Pure: no database; bad input raises EditError saying which field."""
from __future__ import annotations

import re
from typing import Mapping

from ivr.tree import (HOUR_RE, NODE_KINDS, REPEAT, VALID_KEYS, Node, Tree, dump_toml, joined, parse_tree,
                      schedule_problems)

INT_FIELDS = {"timeout", "max_retries", "min_seconds", "max_seconds", "silence_seconds", "entry_timeout"}
BOOL_FIELDS = {"enabled", "confirm", "weekends_open", "must_hear"}
TEXT_FIELDS = {"title", "prompt", "text", "skill", "number", "setting", "lang", "ticket_type", "reason",
               "invalid_prompt"}
KEY_LINE = re.compile(r"^\s*([0-9*#])\s*[=:：→>-]+\s*(\S+)\s*\Z")


# Field and setting names in the Chinese half of a message (the English half names the field as the file does).
FIELD_ZH = {
    "title": "节点名称", "prompt": "提示音", "text": "播报文本", "enabled": "启用", "must_hear": "必须听完", "keys": "按键",
    "timeout": "等待按键", "max_retries": "尝试次数", "invalid_prompt": "按错键时的提示音", "ticket_type": "工单类型",
    "min_seconds": "最短录音", "max_seconds": "最长录音", "reason": "记录原因", "skill": "技能队列", "number": "转接号码",
    "setting": "参数中的号码", "lang": "语言", "silence_seconds": "静音结束录音", "entry_timeout": "等待输入",
    "confirm": "复述确认", "next": "然后", "on_fail": "失败时", "on_cancel": "来电者取消时", "timeout_route": "无按键时",
    "on_busy": "坐席全忙时", "open": "工作时间", "closed": "非工作时间", "holiday": "休息日和节假日",
    "blocked": "黑名单号码", "language": "默认语言", "menu_timeout": "菜单等待按键", "emergency_contact": "紧急联系人",
    "duty_mobile": "值班电话", "office_hours": "仅工作时间人工接听", "working_hours": "工作时间段",
    "rest_days": "休息日和节假日", "skills": "技能队列", "weekends_open": "周末有人接听",
}


def _zh(name: str) -> str:
    return FIELD_ZH.get(name, name)


class EditError(ValueError):
    """A node edit that cannot be applied; the message names the field."""


def parse_keys(text: str) -> dict[str, str]:
    """"1=human_time" lines (or comma-separated) -> {"1": "human_time"}."""
    keys: dict[str, str] = {}
    for part in re.split(r"[\n,，;；]+", text or ""):
        if not part.strip():
            continue
        match = KEY_LINE.match(part)
        if not match:
            raise EditError(f"按键：无法读取 {part.strip()!r}，请为每个按键选择去向 / keys: cannot read "
                            f"{part.strip()!r}: write one key and its target, e.g. 1=human_time")
        key, target = match.groups()
        if key in keys:
            raise EditError(f"按键：{key} 重复 / keys: key {key} given twice")
        keys[key] = target
    return keys


def format_keys(keys: Mapping[str, str]) -> str:
    return "\n".join(f"{k}={v}" for k, v in keys.items())


def editable_fields(node: Node) -> list[str]:
    """The fields the node form offers for this kind."""
    fields = list(NODE_KINDS[node.kind])
    by_kind = {
        "prompt": ["prompt", "text", "enabled", "must_hear"], "menu": ["prompt", "keys", "timeout", "max_retries", "invalid_prompt"],
        "record": ["prompt", "ticket_type", "min_seconds", "max_seconds", "max_retries"],
        "mailbox": ["prompt", "ticket_type", "min_seconds", "max_seconds", "max_retries"],
        "voicemail": ["prompt", "reason", "min_seconds", "max_seconds", "max_retries"],
        "status_query": ["max_retries"], "consultation": ["prompt", "max_retries"], "poll": ["max_retries"],
        "queue": ["prompt", "skill"], "transfer": ["prompt", "number", "setting"], "language": ["lang"],
        "collect": ["prompt", "max_retries"],
    }
    # title: the administrator's name for the node, shown in the chart instead of its id.
    return ["title"] + by_kind.get(node.kind, []) + fields


def edit_node(tree: Tree, node_id: str, changes: Mapping[str, str]) -> str:
    """New TOML source with ``node_id`` changed; an empty value removes the field (defaults apply)."""
    if node_id not in tree.nodes:
        raise EditError(f"没有节点 {node_id!r} / no node {node_id!r}")
    node = tree.nodes[node_id]
    allowed = set(editable_fields(node))
    fields = dict(node.fields)
    for name, raw in changes.items():
        if name not in allowed:
            raise EditError(f"此类节点不能修改“{_zh(name)}” / {node_id}: field {name!r} cannot be edited on "
                            f"a {node.kind} node")
        value = (raw or "").strip()
        if len(value) > 2000:
            raise EditError(f"{_zh(name)}超过2000字（现为{len(value)}字） / {name}: longer than 2000 characters "
                            f"({len(value)})")
        if name == "keys":
            keys = parse_keys(value)
            for key, target in keys.items():
                if key not in VALID_KEYS:
                    raise EditError(f"按键：{key!r} 不是电话按键 / keys: {key!r} is not a phone key")
                if target != REPEAT and target not in tree.nodes:
                    raise EditError(f"按键：{key} 指向不存在的节点 {target!r} / keys: key {key} leads to unknown "
                                    f"node {target!r}")
            fields["keys"] = keys
            continue
        if not value:
            fields.pop(name, None)
            continue
        if name in INT_FIELDS:
            try:
                fields[name] = int(value)
            except ValueError:
                raise EditError(f"{_zh(name)}：{value!r} 不是整数 / {name}: {value!r} is not a whole number") from None
        elif name in BOOL_FIELDS:
            if value.lower() not in TRUE_WORDS + FALSE_WORDS:
                raise EditError(f"{_zh(name)}：{value!r} 须为是或否 / {name}: {value!r} is neither true nor false")
            fields[name] = value.lower() in TRUE_WORDS
        elif name in NODE_KINDS[node.kind]:
            if value not in tree.nodes:
                raise EditError(f"{_zh(name)}：没有节点 {value!r} / {name}: unknown node {value!r}")
            fields[name] = value
        else:
            fields[name] = value
    nodes = dict(tree.nodes)
    nodes[node_id] = Node(node_id, node.kind, fields)
    source = dump_toml(Tree(tree.name, tree.start, tree.settings, nodes))
    parse_tree(source)  # what we write must read back
    return source


# Answering-hours settings (ivr.schedule) an administrator may add to a tree saved before they existed,
# with the type each takes.
SCHEDULE_SETTINGS = {"office_hours": False, "rest_days": "staffed", "weekends_open": False,
                     "working_hours": ["08:00", "20:00"]}
TRUE_WORDS, FALSE_WORDS = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def edit_settings(tree: Tree, changes: Mapping[str, str]) -> str:
    """New source with settings changed (contact numbers, hours): strings, numbers and lists kept typed.
    A schedule setting the tree lacks is added when given a value (left out when blank)."""
    settings = dict(tree.settings)
    for name, raw in changes.items():
        value = (raw or "").strip()
        if name not in settings:
            if name not in SCHEDULE_SETTINGS:
                raise EditError(f"未知的参数 {name!r} / unknown setting {name!r}")
            if not value:
                continue
        current = settings.get(name, SCHEDULE_SETTINGS.get(name))
        if isinstance(current, bool):
            if value.lower() not in TRUE_WORDS + FALSE_WORDS:
                raise EditError(f"{_zh(name)}：{value!r} 须为是或否 / {name}: {value!r} is neither true nor false")
            settings[name] = value.lower() in TRUE_WORDS
        elif isinstance(current, int):
            try:
                settings[name] = int(value)
            except ValueError:
                raise EditError(f"{_zh(name)}：{value!r} 不是整数 / {name}: {value!r} is not a whole number") from None
        elif isinstance(current, list):
            settings[name] = [v.strip() for v in re.split(r"[,，\s]+", value) if v.strip()]
        else:
            settings[name] = value
    problems = schedule_problems(settings)
    if problems:
        raise EditError(joined(problems))
    hours = settings.get("working_hours")
    if "working_hours" in changes and not (isinstance(hours, list) and len(hours) == 2
                                           and all(HOUR_RE.match(h) for h in hours) and hours[0] < hours[1]):
        raise EditError(f"工作时间段须为两个 HH:MM 时间，先早后晚，例如 08:00, 20:00：{hours!r} / working_hours: two "
                        f"times HH:MM, earlier first, e.g. 08:00, 20:00 (got {hours!r})")
    return dump_toml(Tree(tree.name, tree.start, settings, tree.nodes))
