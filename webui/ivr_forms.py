"""The IVR designer's node and settings forms as the page shows them: each field's label, control, options
and unit in the page's language. Presentation only (nothing here reads or writes the database); the views
in webui/blueprints/ivr_admin.py hand the rows to the templates."""
from __future__ import annotations

from flask import g

# What each node field and tree setting is called on the page (message ids; the ids stay in the form names).
FIELD_LABELS = {
    "title": "Node title", "prompt": "Prompt", "text": "Text to speak", "enabled": "Switched on",
    "must_hear": "Heard to the end (keys ignored)", "keys": "Keys", "timeout": "Wait for a key",
    "max_retries": "Attempts", "invalid_prompt": "Prompt after a wrong key", "ticket_type": "Ticket type",
    "min_seconds": "Shortest recording", "max_seconds": "Longest recording", "reason": "Reason noted",
    "skill": "Skill queue", "number": "Number to transfer to", "setting": "Number from the settings",
    "lang": "Language", "silence_seconds": "Silence that ends a recording", "entry_timeout": "Wait for digits",
    "confirm": "Read back for confirmation",
    # routes
    "next": "Then", "on_fail": "When it fails", "on_cancel": "When the caller cancels",
    "timeout_route": "When no key is pressed", "on_busy": "When every agent is busy", "open": "In working hours",
    "closed": "After hours", "holiday": "On rest days and holidays", "blocked": "For a blocked number",
}
SETTING_LABELS = {
    "language": "Language at the start", "menu_timeout": "Wait for a key at a menu",
    "max_retries": "Attempts at a menu", "invalid_prompt": "Prompt after a wrong key",
    "emergency_contact": "Emergency contact (night menu)", "duty_mobile": "Duty phone (rest days)",
    "office_hours": "People answer only in working hours", "working_hours": "Working hours",
    "rest_days": "Rest days and holidays", "skills": "Skill queues the menu uses",
    "weekends_open": "Weekends staffed (versions before the rest-day setting)",
}
UNITS = {"timeout": "seconds", "min_seconds": "seconds", "max_seconds": "seconds", "silence_seconds": "seconds",
         "entry_timeout": "seconds", "menu_timeout": "seconds", "max_retries": "times"}
REST_DAYS = (("staffed", "Rest days and holidays: as working days."),
             ("forward", "Rest days and holidays: forwarded to the duty phone."),
             ("closed", "Rest days and holidays: night menu."))
KEY_NAMES = {"*": "star", "#": "hash"}  # form field names for the keys that are not digits
PHONE_KEYS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "*", "#")


def bool_text(value) -> str:
    return "true" if value is True else "false" if value is False else ""


def prompt_options(prompts: dict[str, str], current: str) -> list[tuple[str, str]]:
    """(key, wording) for every prompt, by wording; an unknown current key is kept (the problems list it)."""
    options = sorted(((key, text if len(text) <= 40 else text[:39] + "…") for key, text in prompts.items()),
                     key=lambda pair: pair[1])
    if current and current not in prompts:
        options.insert(0, (current, current))
    return [("", "")] + options


def node_field(name: str, value, is_route: bool, prompts, tree, node_ids, node_names) -> dict:
    """One row of the node form: its label, the control that fits and the options, in the page's language."""
    from caseflow.values import TICKET_TYPES
    from ivr.edit import BOOL_FIELDS, INT_FIELDS
    from ivr.tree import REPEAT
    from webui.i18n import gettext

    lang = g.get("lang") or "zh"
    field = {"name": name, "label": gettext(FIELD_LABELS.get(name, name)), "value": value, "options": [],
             "unit": gettext(UNITS[name]) if name in UNITS else "", "control": "text"}
    nodes = [("", "")] + [(nid, node_names[nid]) for nid in node_ids]
    if name == "keys":
        keys = value if isinstance(value, dict) else {}
        field.update(control="keys", options=[("", "")] + [(REPEAT, gettext("Repeat this menu"))] + nodes[1:],
                     rows=[(key, KEY_NAMES.get(key, key), gettext("Key %(key)s", key=key), keys.get(key, ""))
                           for key in PHONE_KEYS])
    elif is_route:
        field.update(control="select", options=nodes)
    elif name in ("prompt", "invalid_prompt"):  # the options are what callers hear, as recorded: data
        field.update(control="select", options=prompt_options(prompts, str(value or "")), data_options=True)
    elif name in BOOL_FIELDS:
        field.update(control="select", value=bool_text(value),
                     options=[("", gettext("Default")), ("true", gettext("Yes")), ("false", gettext("No"))])
    elif name in INT_FIELDS:
        field["control"] = "number"
    elif name == "lang":
        field.update(control="select", options=[("", ""), ("zh", gettext("Mandarin")), ("en", gettext("English"))])
    elif name == "ticket_type":
        field.update(control="select", options=[("", "")] + [
            (code, pair[0] if lang == "zh" else pair[1]) for code, pair in TICKET_TYPES.items()])
    elif name == "setting":
        field.update(control="select", options=[("", "")] + [
            (key, gettext(SETTING_LABELS.get(key, key))) for key, v in tree.settings.items()
            if isinstance(v, str) and v.strip().lstrip("+").isdigit()])
    if field["control"] == "select" and field["value"] not in {v for v, _ in field["options"]} and field["value"]:
        field["options"].insert(1, (field["value"], str(field["value"])))
    field["value"] = "" if field["value"] is None else field["value"]
    return field


def setting_field(name: str, value, prompts) -> dict:
    """One row of the settings form (typed control, label and unit; unknown settings keep their name)."""
    from webui.i18n import gettext

    setting = {"name": name, "label": gettext(SETTING_LABELS[name]) if name in SETTING_LABELS else "",
               "value": value, "options": [], "unit": gettext(UNITS[name]) if name in UNITS else "",
               "control": "text", "hint": ""}
    if isinstance(value, bool) or name in ("office_hours", "weekends_open"):
        setting.update(control="select", value=bool_text(value),
                       options=[("", gettext("Not set")), ("true", gettext("Yes")), ("false", gettext("No"))])
    elif name == "rest_days":
        setting.update(control="select", options=[("", gettext("Not set"))] + [
            (code, gettext(text)) for code, text in REST_DAYS])
    elif name == "language":
        setting.update(control="select", options=[("zh", gettext("Mandarin")), ("en", gettext("English"))])
    elif name == "invalid_prompt":
        setting.update(control="select", options=prompt_options(prompts, str(value or "")), data_options=True)
    elif isinstance(value, int):
        setting["control"] = "number"
    elif isinstance(value, (list, tuple)):
        setting["value"] = ", ".join(map(str, value))
    if name == "working_hours":
        setting["hint"] = gettext("Two times, the earlier first: 08:00, 20:00")
    if setting["control"] == "select" and setting["value"] not in {v for v, _ in setting["options"]}:
        setting["options"].insert(0, (setting["value"], str(setting["value"])))
    return setting


def keys_from_form(form) -> str | None:
    """The node form's one-select-per-key rows as "1=target" lines (None when the form has no such rows)."""
    if not any(f"key_{KEY_NAMES.get(key, key)}" in form for key in PHONE_KEYS):
        return None
    return "\n".join(f"{key}={form[f'key_{KEY_NAMES.get(key, key)}']}" for key in PHONE_KEYS
                     if form.get(f"key_{KEY_NAMES.get(key, key)}", "").strip())
