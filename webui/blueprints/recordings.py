"""Recordings: search by day, agent, caller and ticket; play in the browser (HTTP Range, in slices, never
stored); download (下载备案) for holders of recording.download; every listen and download logged with who did
it; storage per day as server-drawn SVG bars.
"""
from __future__ import annotations

import datetime as dt
import logging
import re

from flask import Blueprint, Response, abort, current_app, g, render_template, request, session
from werkzeug.exceptions import Forbidden

from ops import alarms as ops_alarms
from ops.rules import RECORDING_KINDS
from recorder import access
from recorder.httprange import RangeNotSatisfiable, parse_range
from recorder.models import Recording, RecordingAccess
from recorder.search import RecordingQuery, SearchError, search_recordings
from recorder.storage import RecordingStore, recordings_of_ticket
from webui.app import NavItem
from webui.i18n import error_text
from webui.security import client_ip, require_roles
from webui.views import get_or_404

log = logging.getLogger(__name__)

bp = Blueprint("recordings", __name__, url_prefix="/recordings")
NAV = [NavItem("Recordings", "recordings.index", access.LISTEN_ROLES, order=60)]
PAGE = 25
CHUNK = 64 * 1024
# The most one listening request returns (about a minute of 8 kHz A-law): a player asks for the next
# piece as it plays, so the listening URL never hands over a long recording in one answer.
LISTEN_SLICE = 512 * 1024
LISTEN_ONLY = ('You may listen to this recording in the browser; downloading it for the archive needs the '
               'permission "Download recordings for the archive".')
CHART_DAYS = 14

MESSAGES = {"zh": {
    "Recordings": "通话录音",
    "Search recordings": "录音查询",
    "From": "开始日期",
    "To": "结束日期",
    "Agent (operator no.)": "坐席工号",
    "Caller": "来电号码",
    "Acceptance number": "受理号",
    "Search": "查询",
    "Started": "开始时间",
    "Duration": "时长",
    "Size": "大小",
    "Kind": "类型",
    "Status": "状态",
    "Play": "播放",
    "Download": "下载",
    "Next": "下一页",
    "Previous": "上一页",
    "No recordings match.": "没有符合条件的录音。",
    "Storage per day": "每日录音存储",
    "Recording": "录音",
    "Linked tickets": "关联工单",
    "Access log": "收听/下载记录",
    "Listened or downloaded by": "操作人",
    "Action": "操作",
    "Time": "时间",
    "Alerts": "告警",
    "recording_kind:conversation": "通话录音",
    "recording_kind:ivr_message": "自助留言录音",
    "recording_kind:voicemail": "语音留言",
    "recording_kind:ivr": "自助录音",
    "recording_status:ok": "正常",
    "recording_status:failed": "失败",
    "recording_status:recording": "录音中",
    "access:listen": "收听",
    "access:download": "下载",
    "Archived": "已归档",
    "This recording could not be stored: %(reason)s": "该录音未能保存：%(reason)s",
    "Recordings of ticket %(number)s": "工单 %(number)s 的录音",
    "%(count)s recordings, %(size)s": "%(count)s 条，%(size)s",
    "Your browser cannot play this recording.": "您的浏览器无法播放该录音。",
    LISTEN_ONLY: "您可以在浏览器中收听该录音；下载备案需要“下载录音备案”权限。",
}, "en": {
    "recording_kind:conversation": "Conversation", "recording_kind:ivr_message": "IVR message",
    "recording_kind:voicemail": "Voicemail", "recording_kind:ivr": "IVR recording", "recording_status:ok": "OK", "recording_status:failed": "Failed",
    "recording_status:recording": "Recording", "access:listen": "Listened", "access:download": "Downloaded",
}}


def _store() -> RecordingStore:
    return RecordingStore.from_config(current_app.extensions["hotline"].config)


def _record_access(rec: Recording, action: str) -> None:
    access.note_access(rec, g.user, action, client_ip())
    log.info("recording %s %s by %s", rec.id, action, g.user.operator_no)


def _visible_or_404(rec_id: int) -> Recording:
    """The recording if this user may hear it; 404 otherwise (not even its existence is revealed)."""
    rec = get_or_404(Recording, Recording.id == rec_id)
    if not access.may_listen(g.user, rec):
        abort(404)
    return rec


def human_size(size: int) -> str:
    """1.2 MB style sizes for the page."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def storage_bars(rows, width: int = 560, height: int = 140) -> list[dict]:
    """SVG bar geometry for [(day, count, bytes)]: one bar per day, scaled to the largest day."""
    if not rows:
        return []
    largest = max(total for _, _, total in rows) or 1
    step = width / len(rows)
    bars = []
    for index, (day, count, total) in enumerate(rows):
        bar_height = max(1.0, (height - 20) * total / largest) if total else 0.0
        bars.append({"x": round(index * step + 2, 1), "width": round(max(step - 4, 1), 1),
                     "y": round(height - 16 - bar_height, 1), "height": round(bar_height, 1),
                     "label": day.strftime("%m-%d"), "title": f"{day.isoformat()}: {count} · {human_size(total)}",
                     "text_x": round(index * step + step / 2, 1)})
    return bars


@bp.route("/")
@require_roles(*access.LISTEN_ROLES)
def index():
    """Search form, results and storage per day."""
    error = ""
    try:
        query = RecordingQuery.parse(request.args)
    except SearchError as exc:
        error, query = error_text(exc), RecordingQuery()
    page_raw = request.args.get("page", "1")
    page = int(page_raw) if page_raw.isdigit() and 0 < int(page_raw) < 100000 else 1
    rows, more = search_recordings(access.visible_recordings(g.user), query, PAGE, (page - 1) * PAGE)
    store = _store()
    clock = current_app.extensions["hotline"].services.clock
    today = clock.now().date() if clock else dt.date.today()
    per_day = store.storage_per_day(today - dt.timedelta(days=CHART_DAYS - 1), today) \
        if g.user.role_set & access.ALL_RECORDINGS_ROLES else []
    # The recorder's open alarms (ops.alarms: the one store; all of them on the alarm page).
    alerts = ops_alarms.shown(10, kinds=RECORDING_KINDS) if g.user.role_set & access.ALL_RECORDINGS_ROLES else []
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template("recordings/index.html", rows=rows, more=more, page=page, args=args, error=error,
                           query=query, bars=storage_bars(per_day), per_day=per_day, alerts=alerts,
                           human_size=human_size, may_download=lambda r: access.may_download(g.user, r)), \
        (400 if error else 200)


@bp.route("/<int:rec_id>")
@require_roles(*access.LISTEN_ROLES)
def detail(rec_id: int):
    """One recording: player, details, linked tickets, and who heard it (for the centre)."""
    from recorder.storage import tickets_of_recording

    rec = _visible_or_404(rec_id)
    accesses = []
    if g.user.role_set & access.ALL_RECORDINGS_ROLES:
        accesses = list(RecordingAccess.select().where(RecordingAccess.recording == rec)
                        .order_by(RecordingAccess.at.desc()).limit(100))
    return render_template("recordings/detail.html", rec=rec, tickets=tickets_of_recording(rec),
                           accesses=accesses, may_download=access.may_download(g.user, rec), human_size=human_size)


@bp.route("/ticket/<number>")
@require_roles(*access.LISTEN_ROLES)
def for_ticket(number: str):
    """The recordings of a ticket's calls (linked from the ticket page)."""
    from caseflow.models import Ticket

    if not re.fullmatch(r"[0-9]{8}", number):
        abort(404)
    from caseflow.services import may_view

    ticket = Ticket.get_or_none(Ticket.number == number)
    # The same 404 for a ticket the user may not see as for none at all: no probing of numbers.
    if ticket is None or not may_view(g.user, ticket):
        abort(404)
    rows = [r for r in recordings_of_ticket(ticket) if access.may_listen(g.user, r)]
    return render_template("recordings/ticket.html", ticket=ticket, rows=rows, human_size=human_size,
                           may_download=lambda r: access.may_download(g.user, r))


def _note_once(rec: Recording, action: str, start: int) -> None:
    """One log row per playback (its first byte) or download, and also the first request of this session for
    the recording whatever its range: a client asking for "bytes=1-" must not listen unrecorded."""
    heard = session.get("recordings_heard", [])
    if start == 0 or rec.id not in heard:
        _record_access(rec, action)
        if rec.id not in heard:
            session["recordings_heard"] = (heard + [rec.id])[-200:]


def _stream(rec: Recording, store: RecordingStore, start: int, length: int):
    handle = store.open_file(rec)
    handle.seek(start)

    def pieces():
        remaining = length
        with handle:
            while remaining > 0:
                piece = handle.read(min(CHUNK, remaining))
                if not piece:
                    break
                remaining -= len(piece)
                yield piece

    return pieces()


def _size_or_404(store: RecordingStore, rec: Recording) -> int:
    try:
        return store.file_size(rec)
    except OSError:
        abort(404)


# Neither the browser's cache nor a proxy keeps a copy of what was only heard (or downloaded).
_NO_STORE = {"Cache-Control": "no-store", "Content-Type": "audio/wav", "X-Content-Type-Options": "nosniff"}


def _send_listen(rec: Recording) -> Response:
    """Listening: always 206, at most LISTEN_SLICE bytes from where the player asks (from the start when it
    names no range), inline, never the whole file in one answer and never a download disposition."""
    store = _store()
    size = _size_or_404(store, rec)
    headers = {"Accept-Ranges": "bytes", **_NO_STORE}
    try:
        wanted = parse_range(request.headers.get("Range"), size)
        if wanted is None and size == 0:
            raise RangeNotSatisfiable(size)
    except RangeNotSatisfiable as exc:
        headers["Content-Range"] = f"bytes */{exc.size}"
        return Response(b"", status=416, headers=headers)
    start, end = wanted if wanted else (0, size - 1)
    end = min(end, start + LISTEN_SLICE - 1)
    _note_once(rec, "listen", start)
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1)
    return Response(_stream(rec, store, start, end - start + 1), status=206, headers=headers,
                    direct_passthrough=True)


def _send_download(rec: Recording) -> Response:
    """Downloading (下载备案): the whole file as an attachment, every download logged."""
    store = _store()
    size = _size_or_404(store, rec)
    _note_once(rec, "download", 0)
    name = f"{rec.day.isoformat()}_{rec.call_uuid}.wav" if hasattr(rec.day, "isoformat") else f"{rec.call_uuid}.wav"
    headers = {**_NO_STORE, "Content-Disposition": f'attachment; filename="{name}"', "Content-Length": str(size)}
    return Response(_stream(rec, store, 0, size), status=200, headers=headers, direct_passthrough=True)


@bp.route("/<int:rec_id>/audio")
@require_roles(*access.LISTEN_ROLES)
def audio(rec_id: int):
    """The WAV for the browser's player: 206 with one slice of the asked range, 416 for a range past the end."""
    rec = _visible_or_404(rec_id)
    if rec.status != "ok":
        abort(404)
    return _send_listen(rec)


@bp.route("/<int:rec_id>/download")
@require_roles(*access.LISTEN_ROLES)
def download(rec_id: int):
    """The WAV as a file for the archive (下载备案), for roles that may download."""
    rec = _visible_or_404(rec_id)
    if not access.may_download(g.user, rec):
        error = Forbidden(LISTEN_ONLY)
        error.hotline_message = LISTEN_ONLY
        raise error
    if rec.status != "ok":
        abort(404)
    return _send_download(rec)
