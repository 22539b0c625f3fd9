"""Administrator pages for the phone menu: the tree drawn as a flow chart, node edits that become new
versions, activation refused with the reasons, prompt texts (re-rendered with real TTS) and uploaded
recordings, opinion polls, and the IVR trace of each call."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, send_file, url_for
from markupsafe import Markup

from ivr import polls as polls_service
from ivr import prompts as ivr_prompts
from ivr.chart import KIND_NAMES, node_lines, render_svg
from ivr.edit import SCHEDULE_SETTINGS, EditError, edit_node, edit_settings, editable_fields, format_keys
from ivr.schedule import describe
from ivr.models import IvrTrace, IvrTreeVersion, Poll, PollAnswer, PollQuestion
from ivr.store import TreeStore, prompt_overrides, set_prompt_text
from ivr.tree import NODE_KINDS, TreeError, parse_tree
from webui.app import NavItem
from webui.blueprints.common import TRACE_ROLES, own_messages
from webui.i18n import error_text
from webui.security import audit, require_roles
from webui.views import get_or_404
from webui.ivr_forms import keys_from_form, node_field, setting_field

bp = Blueprint("ivr_admin", __name__, url_prefix="/admin/ivr")

NAV = [NavItem("Phone menu", "ivr_admin.index", frozenset({"admin"}), order=65),
       NavItem("Outbound calls", "ivr_admin.campaigns", frozenset({"centre", "centre_leader"}), order=66),
       NavItem("Call traces", "ivr_admin.traces", frozenset({"team_lead"}), order=67)]
MESSAGES = own_messages({"zh": {
    "Phone menu": "语音导航", "Menu tree": "导航树", "Prompts": "语音提示", "Polls": "民意调查",
    "Call traces": "通话轨迹", "Version": "版本", "Active": "启用中", "Activate": "启用此版本",
    "Saved by": "保存人", "Comment": "说明", "Problems": "问题", "No problems: this version can be activated.":
    "没有问题，可以启用此版本。", "Activation refused": "拒绝启用",
    "Activation refused: %(n)s problems, listed under the chart.": "拒绝启用：有 %(n)s 个问题，见流程图下方的列表。", "Activated version %(v)s.": "已启用版本 %(v)s。",
    "Saved as version %(v)s (not active yet).": "已保存为版本 %(v)s（尚未启用）。", "Node": "节点",
    "Kind": "类型", "Edit node": "编辑节点", "Save as new version": "保存为新版本", "Tree source (TOML)":
    "导航树源文件（TOML）", "Settings": "参数设置", "Text (Mandarin)": "中文文本", "Text (English)": "英文文本",
    "Listen": "试听", "Change text and render": "修改文本并重新合成", "Upload a recording (WAV)": "上传录音（WAV）",
    "Upload": "上传", "Prompt rendered again.": "提示音已重新合成。", "Recording installed.":
    "录音已替换。", "Title": "标题",
    "Questions, one per line: the question, a bar, then the keys to press, e.g. “Were you satisfied? Press 1 for "
    "yes, 2 for no | 12”": "问题（每行一个：问题、竖线、可按的键，例如“满意吗？满意按1，不满意按2 | 12”）", "Create poll": "新建调查",
    "Make active": "设为当前调查", "Answers": "回答数", "Caller": "来电号码", "Started": "开始时间",
    "Call outcome": "通话结果", "Tickets": "工单", "Time": "时间", "What": "事件", "Keys": "按键", "Trace of call %(uuid)s":
    "通话 %(uuid)s 的导航轨迹", "No trace for this call.": "此通话没有导航轨迹。", "Versions": "版本列表",
    "Show": "查看", "Poll created.": "调查已创建。", "Question": "问题", "Choices": "按键选项",
    "Results": "结果统计", "Recent IVR calls": "最近的自助语音通话", "Field": "字段", "Value": "值",
    "Outbound calls": "外呼", "Group call": "自动群呼", "Satisfaction call-backs": "自动回访（满意度按键）",
    "Message (spoken by TTS)": "通知内容（语音合成播放）", "Phone numbers (one per line)": "电话号码（每行一个）",
    "Parallel calls": "并发路数", "Attempts": "尝试次数", "Start": "开始", "Pause": "暂停", "Resume": "继续",
    "Campaign created.": "外呼任务已创建。", "Phone": "电话", "Attempt state": "状态", "Acceptance number": "受理号",
    "Call back the citizens of every approved ticket": "为所有待回访工单自动外呼回访",
    "No approved tickets await a call-back.": "没有待回访的工单。", "Pending": "待呼", "Done": "完成",
    "Answering": "接听时间", "People answer 24 hours a day.": "人工全天24小时接听。",
    "People answer %(hours)s on working days (night menu outside).": "工作日 %(hours)s 人工接听（其余时间进入夜服菜单）。",
    "Rest days and holidays: as working days.": "休息日和节假日：与工作日相同。",
    "Rest days and holidays: forwarded to the duty phone.": "休息日和节假日：转接值班电话。",
    "Rest days and holidays: night menu.": "休息日和节假日：夜服菜单。",
    "This version predates the rest-day setting: declared holidays are forwarded to the duty phone, other rest "
    "days %(weekends)s. Choose “Rest days and holidays” below to treat them alike.":
    "此版本早于休息日设置：法定节假日转接值班电话，其他休息日%(weekends)s。请在下方选择“休息日和节假日”，使两者按同一规则处理。",
    "staffed": "有人接听", "night menu": "进入夜服菜单",
    # The chart (ivr.chart's words: kind names, routes)
    "Announcement": "播放提示", "Key menu": "按键菜单", "Number entry": "号码输入", "Recorded request": "录音诉求",
    "Message box": "留言信箱", "Voicemail": "语音留言", "Ticket status query": "工单进度查询",
    "Self-service answers": "自助咨询", "Opinion poll": "民意调查", "To an agent": "转人工坐席", "Transfer": "转接",
    "Office hours check": "工作时间判断", "Blocked numbers check": "黑名单判断", "Language choice": "语言选择",
    "Fax": "传真", "Satisfaction rating": "满意度评价", "Hang up": "挂机", "No key pressed": "无按键",
    "Failed": "失败", "Busy": "忙", "Cancelled": "取消", "Blocked": "黑名单号码", "Open": "工作时间",
    "After hours": "非工作时间", "Holiday": "节假日", "Key %(key)s": "按 %(key)s", "Off": "已关闭",
    "Must hear": "必听", "Transfer to %(number)s": "转 %(number)s", "Language: %(language)s": "语言：%(language)s",
    "Mandarin": "普通话", "English": "英语", "%(n)s callers at this node now": "%(n)s 位来电者在此节点", "Problem": "问题",
    "IVR flow chart": "语音导航流程图", "Solid: caller action · orange: automatic · dashed: back":
    "实线：来电者按键或录音 · 橙色：自动 · 虚线：返回", "Zoom in": "放大", "Zoom out": "缩小", "Fit": "适应宽度",
    "Actual size": "原始大小",
    # The node and settings forms (webui.ivr_forms: FIELD_LABELS, SETTING_LABELS, UNITS)
    "Node title": "节点名称", "Prompt": "提示音", "Text to speak": "播报文本", "Switched on": "启用",
    "Heard to the end (keys ignored)": "必须听完（期间按键无效）", "Keys": "按键", "Wait for a key": "等待按键",
    "Attempts": "尝试次数", "Prompt after a wrong key": "按错键时的提示音", "Ticket type": "工单类型",
    "Shortest recording": "最短录音", "Longest recording": "最长录音", "Reason noted": "记录原因",
    "Skill queue": "技能队列", "Number to transfer to": "转接号码", "Number from the settings": "参数中的号码",
    "Language": "语言", "Silence that ends a recording": "静音多久结束录音", "Wait for digits": "等待输入",
    "Read back for confirmation": "复述确认", "Then": "然后", "When it fails": "失败时",
    "When the caller cancels": "来电者取消时", "When no key is pressed": "无按键时",
    "When every agent is busy": "坐席全忙时", "In working hours": "工作时间", "On rest days and holidays":
    "休息日和节假日", "For a blocked number": "黑名单号码", "Language at the start": "默认语言",
    "Wait for a key at a menu": "菜单等待按键", "Attempts at a menu": "菜单尝试次数",
    "Emergency contact (night menu)": "紧急联系人（夜服菜单）", "Duty phone (rest days)": "值班电话（休息日）",
    "People answer only in working hours": "仅工作时间人工接听", "Working hours": "工作时间段",
    "Rest days and holidays": "休息日和节假日", "Skill queues the menu uses": "导航使用的技能队列",
    "Weekends staffed (versions before the rest-day setting)": "周末有人接听（休息日设置之前的版本）",
    "seconds": "秒", "times": "次", "Repeat this menu": "重听本菜单", "Default": "默认", "Yes": "是", "No": "否",
    "Not set": "未设置", "Two times, the earlier first: 08:00, 20:00": "两个时间，先早后晚，例如 08:00, 20:00",
    "Node changed: %(name)s": "修改节点：%(name)s", "Settings changed": "修改参数设置", "Source edited":
    "修改源文件", "Shipped default tree": "系统默认导航树", "System": "系统",
    "Where it is heard": "使用位置", "Read out by the system (numbers, digits)": "系统播报（号码、数字等）",
}})

ADMIN = ("admin",)
COMMENT_LIMIT = 255  # IvrTreeVersion.comment


def _state():
    return current_app.extensions["hotline"]


def _trees() -> TreeStore:
    """The running product's tree store (run.py), or one for this app's sounds (tests, tools)."""
    state = _state()
    trees = state.services.trees
    if trees is None:
        trees = TreeStore(prompt_keys=ivr_prompts.prompt_keys(state.config.sounds_dir))
        state.services.trees = trees
    return trees


def _live():
    """The running IVR's live call registry (an empty one when this app runs no IVR: tests, tools)."""
    from ivr.live import LiveCalls

    services = _state().services
    if services.ivr_live is None:
        services.ivr_live = LiveCalls()
    return services.ivr_live


def _prompt_words() -> dict[str, str]:
    """Prompt key -> its wording in the page's language (shown in the chart's prompt nodes)."""
    lang = "zh" if g.get("lang", "zh") == "zh" else "en"
    return {**ivr_prompts.load_texts(Path(_state().config.sounds_dir), lang), **prompt_overrides().get(lang, {})}


def _who() -> str:
    return g.user.operator_no if g.get("user") else ""


def _version(version_id) -> IvrTreeVersion:
    if not str(version_id).isdigit():
        abort(404)
    return get_or_404(IvrTreeVersion, IvrTreeVersion.id == version_id)


def _flash_problems(problems) -> None:
    """Activation refused: how many problems; the page lists each under its node's name."""
    from webui.i18n import gettext

    flash(gettext("Activation refused: %(n)s problems, listed under the chart.", n=len(problems)), "error")


# ---------------------------------------------------------------------- the tree
@bp.route("/", methods=["GET"])
@require_roles(*ADMIN)
def index():
    """The shown version (active by default) as a flow chart, its problems, the node editor, the versions."""
    from webui.i18n import gettext

    trees = _trees()
    if not IvrTreeVersion.select().exists():
        trees.ensure_default()
    version = _version(request.args["version"]) if request.args.get("version") else trees.active()
    if version is None:
        version = trees.versions()[0]
    tree = trees.tree_of(version)
    # Each problem's message in the page's language (ivr writes them "中文 / English"), in the list and the chart.
    problems = [replace(p, message=error_text(p.message)) for p in trees.problems(version.source, version.name)]
    node_id = request.args.get("node") or tree.start
    node = tree.nodes.get(node_id) or tree.nodes[tree.start]
    prompts = _prompt_words()
    # Nodes are named by what they say (title, kind, wording), not by their ids, in the pickers too.
    node_names = {nid: " · ".join(node_lines(tree, n, gettext, prompts)) for nid, n in tree.nodes.items()}
    node_ids = sorted(tree.nodes, key=lambda nid: node_names[nid])
    fields = [node_field(name, node.get(name, ""), name in NODE_KINDS[node.kind], prompts, tree, node_ids, node_names)
              for name in editable_fields(node)]
    live = _live().counts(version.id) if version.active else {}
    chart = Markup(render_svg(  # every text escaped, dot's output redrawn from a short list (ivr.chart)
        tree, problems, highlight=node.id, live=live, say=gettext, prompts=prompts,
        href=lambda nid: url_for("ivr_admin.index", version=version.id, node=nid) + "#node-form"))
    # The answering-hours settings a tree saved before them lacks are offered too (blank: left out).
    settings = [setting_field(name, value, prompts)
                for name, value in {**tree.settings,
                                    **{k: "" for k in SCHEDULE_SETTINGS if k not in tree.settings}}.items()]
    return render_template("ivr_admin/tree.html", version=version, tree=tree, problems=problems, chart=chart,
                           node=node, fields=fields, versions=trees.versions(version.name), node_ids=node_ids,
                           node_names=node_names, kind_name=gettext(KIND_NAMES.get(node.kind, node.kind)),
                           settings=settings, answering=describe(tree.settings))


@bp.route("/save", methods=["POST"])
@require_roles(*ADMIN)
def save():
    """Save edited source, a node edit, or changed settings as a new (inactive) version."""
    from webui.i18n import gettext

    trees = _trees()
    base = _version(request.form.get("version", ""))
    what = request.form.get("what", "source")
    node_id = request.form.get("node", "")
    try:
        if what == "node":
            tree = trees.tree_of(base)
            node = tree.nodes.get(node_id) or abort(404)
            changes = {name: request.form.get(f"f_{name}", "") for name in editable_fields(node)
                       if f"f_{name}" in request.form}
            keys = keys_from_form(request.form)
            if keys is not None and "keys" in editable_fields(node) and "f_keys" not in request.form:
                changes["keys"] = keys
            source = edit_node(tree, node_id, changes)
        elif what == "settings":
            tree = trees.tree_of(base)
            source = edit_settings(tree, {k[2:]: v for k, v in request.form.items() if k.startswith("s_")})
        else:
            source = request.form.get("source", "")
        comment = request.form.get("comment", "").strip()
        if len(comment) > COMMENT_LIMIT:
            raise EditError(f"说明超过{COMMENT_LIMIT}字 / the comment is longer than {COMMENT_LIMIT} characters")
        comment = comment or _default_comment(what, base, node_id)
        version = trees.add_version(source, base.name, comment, _who())
    except (EditError, TreeError) as error:
        flash(error_text(error), "error")
        return redirect(url_for("ivr_admin.index", version=base.id, node=node_id or None), code=303)
    audit("ivr_tree_save", "ivr_tree_version", version.id, comment)
    flash(gettext("Saved as version %(v)s (not active yet).", v=version.version), "info")
    return redirect(url_for("ivr_admin.index", version=version.id, node=node_id or None), code=303)


def _default_comment(what: str, base: IvrTreeVersion, node_id: str) -> str:
    """What a version saved without a comment changed, in words (the saver's language), never an id."""
    from webui.i18n import gettext

    if what == "node":
        tree = _trees().tree_of(base)
        name = " · ".join(node_lines(tree, tree.nodes[node_id], gettext, _prompt_words()))
        return gettext("Node changed: %(name)s", name=name)[:255]
    return gettext("Settings changed") if what == "settings" else gettext("Source edited")


# Comments and authors the product writes itself (ivr.store), shown in the page's language.
SYSTEM_WORDS = {"shipped default tree": "Shipped default tree", "system": "System"}


@bp.app_template_filter("ivr_words")
def ivr_words(text) -> str:
    from webui.i18n import gettext

    return gettext(SYSTEM_WORDS[text]) if text in SYSTEM_WORDS else text


@bp.route("/activate", methods=["POST"])
@require_roles(*ADMIN)
def activate():
    """Make a version the one new calls take; refused with every reason while it has problems."""
    from webui.i18n import gettext

    version = _version(request.form.get("version", ""))
    try:
        _trees().activate(version.id, _who())
    except TreeError as error:
        _flash_problems(error.problems)
        return redirect(url_for("ivr_admin.index", version=version.id), code=303)
    audit("ivr_tree_activate", "ivr_tree_version", version.id, f"v{version.version}")
    flash(gettext("Activated version %(v)s.", v=version.version), "info")
    return redirect(url_for("ivr_admin.index", version=version.id), code=303)


@bp.route("/source/<int:version_id>.toml", methods=["GET"])
@require_roles(*ADMIN)
def source(version_id: int):
    """A version's source file, to download and keep."""
    version = _version(version_id)
    return current_app.response_class(version.source, mimetype="text/plain; charset=utf-8", headers={
        "Content-Disposition": f"attachment; filename=ivr-{version.name}-v{version.version}.toml"})


# ---------------------------------------------------------------------- prompts
@bp.route("/prompts", methods=["GET"])
@require_roles(*ADMIN)
def prompt_list():
    """Every prompt in both languages, with its text, a player and the forms to change it."""
    sounds = Path(_state().config.sounds_dir)
    overrides = prompt_overrides()
    rows = []
    texts = {lang: {**ivr_prompts.load_texts(sounds, lang), **overrides.get(lang, {})} for lang in ("zh", "en")}
    used = _prompt_uses()
    for key in sorted(texts["zh"]):
        rows.append({"key": key, "zh": texts["zh"].get(key, ""), "en": texts["en"].get(key, ""),
                     "used": used.get(key, []),
                     "has": {lang: ivr_prompts.wav_path(sounds, lang, key).is_file() for lang in ("zh", "en")}})
    return render_template("ivr_admin/prompts.html", rows=rows)


def _prompt_uses() -> dict[str, list[str]]:
    """Prompt key -> where the active tree plays it (node titles or kinds; the settings' wrong-key prompt)."""
    from webui.i18n import gettext

    trees = _trees()
    if not IvrTreeVersion.select().exists():
        trees.ensure_default()
    version = trees.active() or trees.versions()[0]
    tree = trees.tree_of(version)
    uses: dict[str, list[str]] = {}
    for node_id, key in tree.prompt_refs():
        node = tree.nodes[node_id]
        name = str(node.get("title") or "").strip() or gettext(KIND_NAMES.get(node.kind, node.kind))
        if name not in uses.setdefault(key, []):
            uses[key].append(name)
    if isinstance(tree.settings.get("invalid_prompt"), str):
        uses.setdefault(tree.settings["invalid_prompt"], []).append(gettext("Prompt after a wrong key"))
    return uses


@bp.route("/prompts/text", methods=["POST"])
@require_roles(*ADMIN)
def prompt_text():
    """Change a prompt's wording and render it again with the TTS voice."""
    from webui.i18n import gettext

    config = _state().config
    lang, key = request.form.get("lang", ""), request.form.get("key", "")
    try:
        set_prompt_text(config.sounds_dir, lang, key, request.form.get("text", ""), _who(), config.prompt_rate)
    except (ivr_prompts.PromptError, OSError) as error:
        flash(error_text(error), "error")
    else:
        audit("ivr_prompt_text", "prompt", f"{lang}/{key}", request.form.get("text", "")[:200])
        flash(gettext("Prompt rendered again."), "info")
    return redirect(url_for("ivr_admin.prompt_list") + f"#p-{key}", code=303)


@bp.route("/prompts/upload", methods=["POST"])
@require_roles(*ADMIN)
def prompt_upload():
    """Install an uploaded recording in place of the TTS prompt (format and length checked)."""
    from webui.i18n import gettext

    config = _state().config
    lang, key = request.form.get("lang", ""), request.form.get("key", "")
    upload = request.files.get("file")
    try:
        if upload is None or not upload.filename:
            raise ivr_prompts.PromptError("请先选择文件 / choose a file first")
        ivr_prompts.install_upload(config.sounds_dir, lang, key, upload.read(), config.prompt_rate)
    except (ivr_prompts.PromptError, OSError) as error:
        flash(error_text(error), "error")
    else:
        audit("ivr_prompt_upload", "prompt", f"{lang}/{key}", upload.filename[:200])
        flash(gettext("Recording installed."), "info")
    return redirect(url_for("ivr_admin.prompt_list") + f"#p-{key}", code=303)


@bp.route("/prompts/<lang>/<key>.wav", methods=["GET"])
@require_roles(*ADMIN)
def prompt_audio(lang: str, key: str):
    """The rendered (or uploaded) prompt, to listen to."""
    sounds = Path(_state().config.sounds_dir)
    if lang not in ivr_prompts.LANGUAGES or not key.replace("_", "").isalnum():
        abort(404)
    path = ivr_prompts.wav_path(sounds, lang, key)
    if not path.is_file():
        abort(404)
    return send_file(path, mimetype="audio/wav")


# ---------------------------------------------------------------------- polls
@bp.route("/polls", methods=["GET", "POST"])
@require_roles(*ADMIN)
def polls():
    """Opinion polls: create one, choose the active one, see the results."""
    from webui.i18n import gettext

    if request.method == "POST":
        what = request.form.get("what", "")
        if what == "create":
            try:
                poll = polls_service.create_poll(request.form.get("title", ""), request.form.get("questions", ""))
            except ValueError as error:
                flash(error_text(error), "error")
                return redirect(url_for("ivr_admin.polls"), code=303)
            audit("ivr_poll_create", "poll", poll.id, poll.title)
            flash(gettext("Poll created."), "info")
        elif what == "activate":
            poll = get_or_404(Poll, Poll.id == request.form.get("poll", "0"))
            polls_service.activate_poll(poll)
            audit("ivr_poll_activate", "poll", poll.id, poll.title)
        return redirect(url_for("ivr_admin.polls"), code=303)
    rows = []
    for poll in Poll.select().order_by(Poll.id.desc()):
        questions = []
        for q in poll.questions.order_by(PollQuestion.position):
            counts = {c: 0 for c in q.choices}
            for answer in PollAnswer.select().where(PollAnswer.question == q):
                counts[answer.answer] = counts.get(answer.answer, 0) + 1
            questions.append((q, counts))
        rows.append((poll, questions))
    return render_template("ivr_admin/polls.html", polls=rows)


# ---------------------------------------------------------------------- outbound campaigns
@bp.route("/campaigns", methods=["GET", "POST"])
@require_roles("admin", "centre", "centre_leader")
def campaigns():
    """Outbound IVR: group calls and satisfaction call-backs, with attempts and outcomes per number."""
    from ivr import campaigns as campaign_service
    from ivr.campaigns import CampaignError, create_group_campaign, create_satisfaction_campaign, parse_phones
    from ivr.models import OutboundAttempt, OutboundCampaign
    from webui.i18n import gettext

    if request.method == "POST":
        what = request.form.get("what", "")
        try:
            if what == "group":
                campaign = create_group_campaign(
                    request.form.get("title", ""), request.form.get("message", ""),
                    parse_phones(request.form.get("phones", "")), created_by=g.user,
                    max_parallel=_int(request.form.get("max_parallel"), 10),
                    max_attempts=_int(request.form.get("max_attempts"), 3))
            elif what == "satisfaction":
                due = campaign_service.satisfaction_due(g.user)
                if not due:
                    raise CampaignError(gettext("No approved tickets await a call-back."))
                campaign = create_satisfaction_campaign(due, g.user)
            elif what in ("pause", "resume"):
                campaign = get_or_404(OutboundCampaign, OutboundCampaign.id == request.form.get("campaign", "0"))
                campaign_service.set_paused(campaign, what == "pause")
            else:
                abort(400)
        except CampaignError as error:
            flash(error_text(error), "error")
            return redirect(url_for("ivr_admin.campaigns"), code=303)
        audit(f"ivr_campaign_{what}", "outbound_campaign", campaign.id, campaign.title)
        if what in ("group", "satisfaction"):
            flash(gettext("Campaign created."), "info")
        return redirect(url_for("ivr_admin.campaigns"), code=303)
    rows = []
    for campaign in OutboundCampaign.select().order_by(OutboundCampaign.id.desc()).limit(50):
        attempts = list(campaign.targets.order_by(OutboundAttempt.id).limit(500))
        rows.append((campaign, attempts))
    return render_template("ivr_admin/campaigns.html", campaigns=rows)


def _int(value, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


# ---------------------------------------------------------------------- traces
@bp.route("/traces", methods=["GET"])
@require_roles(*TRACE_ROLES)
def traces():
    """The most recent IVR calls (the IVR channels watched, P2 §5.6)."""
    rows = list(IvrTrace.select().order_by(IvrTrace.started_at.desc(), IvrTrace.id.desc()).limit(100))
    return render_template("ivr_admin/traces.html", traces=rows)


@bp.route("/traces/<call_uuid>", methods=["GET"])
@require_roles(*TRACE_ROLES)
def trace(call_uuid: str):
    """The nodes one call visited, with times and keys (linked from call and ticket pages)."""
    from ivr.privacy import steps_for

    rows = list(IvrTrace.select().where(IvrTrace.call_uuid == call_uuid[:64]).order_by(IvrTrace.id))
    # Typed numbers (acceptance numbers, phone numbers) masked for roles that do not need them.
    steps = {row.id: steps_for(row.steps, g.get("user")) for row in rows}
    return render_template("ivr_admin/trace.html", call_uuid=call_uuid[:64], traces=rows, steps=steps)


LIVE_ROLES = ("admin", "team_lead", "centre", "centre_leader")


@bp.route("/live.json", methods=["GET"])
@require_roles(*LIVE_ROLES)
def live_json():
    """Callers in the IVR now: per tree version and node, with the longest time at each node (JSON)."""
    from flask import jsonify

    snapshot = _live().snapshot()
    versions = {v.id: v for v in IvrTreeVersion.select().where(
        IvrTreeVersion.id.in_([row["version_id"] for row in snapshot["versions"] if row["version_id"]]))}
    for row in snapshot["versions"]:
        version = versions.get(row["version_id"])
        row["version"] = version.version if version is not None else None
        row["active"] = bool(version.active) if version is not None else None
    response = jsonify(snapshot)
    response.headers["Cache-Control"] = "no-store"
    return response


def tree_preview(source: str) -> str:
    """Chart of unsaved source (used by tests and tools); raises TreeError."""
    return render_svg(parse_tree(source))
