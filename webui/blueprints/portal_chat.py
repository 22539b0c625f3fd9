"""Online chat on the public website (issue 11 item 5, P2 §5.4 文字交谈): the citizen picks a topic (a chat
queue), optionally gives a name and phone, solves the portal's picture code, and waits in the chat queue;
messages go both ways over server-sent events (webui.chat_pump), and when the chat ends (the agent closes it,
the citizen leaves or a time limit) the acceptance number of the ticket holding the transcript is shown.

While the SMS channel has a gateway, a citizen who gives a mobile number may confirm it with an SMS code
(channels.verify, purpose "chat": 6 digits, 10 minutes, 5 tries, the portal's send limits) instead of the picture
code; only a confirmed number shows the agent the citizen's profile and earlier tickets (ChatSession.phone_verified).

The citizen reaches only their own chat: its id and unguessable token live in this browser's signed session
cookie, never in a URL. The frame (CSP without inline script, language, errors, CAPTCHA) is the portal's.
Every start and end is audited with the address.
"""
from __future__ import annotations

from flask import Blueprint, abort, g, jsonify, redirect, render_template, request, session, url_for

from acd import chat
from caseflow.privacy import mask_phone
from channels import verify
from webui import chat_pump, security
from webui.blueprints import portal as frame
from webui.i18n import error_text
from webui.security import audit, client_ip, public

bp = Blueprint("portal_chat", __name__, url_prefix="/chat")
bp.before_request(frame._language)
bp.after_request(frame._headers)
bp.register_error_handler(404, frame._not_found)


@bp.errorhandler(413)
def _too_large(_error):
    audit("chat_refused", "web", "", f"request too large ({request.content_length} B)", user=None)
    return jsonify({"ok": False, "error": error_text(f"消息不能超过 {chat.MAX_MESSAGE} 字 / a message may hold at "
                                                     f"most {chat.MAX_MESSAGE} characters")}), 413


CHAT_KEY = "portal_chat"
# A message is at most 2,000 characters (6 KB in UTF-8): a body up to 2 MB is read (a 100 KB text is 900 KB
# form-encoded), so an over-long message gets the clear "at most 2,000 characters" answer; a larger body is
# refused unread with a 413 saying the same.
MAX_BODY = 2 * 1024 * 1024

MESSAGES = {"zh": {
    "Online chat": "在线咨询", "Chat with an agent of the 12345 hotline.": "与 12345 热线话务员在线文字交谈。",
    "Topic": "咨询主题", "Start the chat": "开始交谈", "Online chat is not open at the moment.": "在线咨询暂未开放。",
    "Waiting for an agent…": "正在等待话务员接入…", "Position in the queue": "排队位置",
    "Type your message": "请输入消息", "End the chat": "结束交谈", "The chat has ended.": "交谈已结束。",
    "Your acceptance number": "您的受理号", "Chatting with agent %(agent)s": "话务员 %(agent)s 正在为您服务",
    "Write down the acceptance number: follow the case with your phone number on this website, or call 12345.":
        "请记下受理号：可凭电话号码在本网站查询办理进度，或拨打 12345。",
    "If you leave, what you wrote is recorded and you get an acceptance number.":
        "如您离开，已写内容将登记为工单并给出受理号。",
    "Start a new chat": "重新开始交谈", "Send message": "发送",  # "at most %(n)s characters": the portal's
    "The connection was lost; reconnecting…": "连接中断，正在重新连接…",
    "Me": "我", "Agent": "话务员", "System": "系统", "The request failed (%(status)s).": "请求失败（%(status)s）。",
    "Network error: the message was not sent.": "网络错误，消息未发出。",
    "With a mobile number confirmed by an SMS code the agent sees your earlier cases; otherwise type the picture "
    "code.": "填写手机号码并输入短信验证码的，话务员可查看您以往的诉求；否则请输入图片验证码。",
}}


def _limit_body(_endpoint, _values):
    request.max_content_length = MAX_BODY


bp.url_value_preprocessor(_limit_body)


def _mine():
    """This browser's chat (id and token from the session cookie), or None."""
    held = session.get(CHAT_KEY)
    if not isinstance(held, dict):
        return None
    return chat.find(held.get("id"), held.get("token"))


def _refuse(error: chat.ChatError, detail: str = ""):
    audit("chat_refused", "chat", detail, str(error)[:300], user=None)
    return jsonify({"ok": False, "error": error_text(error)}), error.status


@bp.route("/", methods=["GET", "POST"])
@public
def start():
    """The chat form: topic, name and phone (optional), an SMS code for the phone or the picture code."""
    queues = chat.open_queues()
    current = _mine()
    if request.method == "GET" and current is not None and current.state != "closed":
        return redirect(url_for("portal_chat.room"), code=303)
    values = {key: request.form.get(key, "")[:60] for key in ("queue", "name", "phone")}
    codes = frame._codes_on()

    def again(message, status=400, field="", notice=""):
        if message:
            audit("chat_refused", "web", "", f"start: {message}"[:300], user=None)
        return render_template("portal/chat_start.html", queues=queues, form=values, error=message, codes=codes,
                               error_field=field, notice=notice), status

    if request.method == "GET":
        return again(None, 200)
    if not queues:
        return again(frame._t("Online chat is not open at the moment."), 503)
    if request.form.get("website"):  # the honeypot
        return again(frame._t("The form has expired. Please reload the page and try again."))
    if codes and request.form.get("action") == "send_code":
        notice, error, status = frame._send_code("chat", values["phone"])
        return again(error, status, "phone" if error else "", notice)
    ip, now = client_ip(), security.now_utc()
    verified = None
    if codes and request.form.get("sms_code", "").strip():
        # The typed code confirms the phone and stands for the picture (one code, one chat).
        try:
            verified = verify.confirm(values["phone"], "chat", request.form.get("sms_code", ""),
                                      key=frame._code_key(), clock=frame._clock())
        except verify.VerifyError as error:
            audit("portal_code_failed", "web", "", f"chat {mask_phone(values['phone'])}", user=None)
            return again(error_text(error), error.status, "sms_code")
    else:
        if len(security.audit_failures("portal_captcha_failed", now - frame.CAPTCHA_WINDOW, ip=ip)) >= frame._setting(
                "HOTLINE_PORTAL_CAPTCHA_FAILURES_PER_IP"):
            return again(frame._t("Too many wrong picture codes from this address. Please try again later."), 429)
        if frame._check_captcha(request.form.get("captcha", "")) is None:
            audit("portal_captcha_failed", "web", "", "chat", user=None)
            return again(frame._t("The picture code is wrong or has expired. Please type the new one."))
    try:
        opened, token = chat.start(values["queue"], name=values["name"],
                                   phone=verified.phone if verified is not None else values["phone"], ip=ip,
                                   clock=chat_pump.clock(), settings=chat_pump.settings(),
                                   phone_verified=verified is not None)
    except chat.ChatError as error:
        return again(error_text(error), error.status)
    session[CHAT_KEY] = {"id": opened.id, "token": token}
    shown = mask_phone(opened.citizen_phone) if opened.citizen_phone else "-"
    audit("chat_start", "chat", opened.id,
          f"{opened.queue.name} {shown}{' verified' if opened.phone_verified else ''}", user=None)
    chat_pump.pump(force=True)
    return redirect(url_for("portal_chat.room"), code=303)


@bp.route("/room")
@public
def room():
    """The chat window (the script, portal/chat.js, does the talking)."""
    current = _mine()
    if current is None:
        return redirect(url_for("portal_chat.start"), code=303)
    return render_template("portal/chat_room.html", chat=current, max_message=chat.MAX_MESSAGE,
                           topic=current.queue.display_name or current.queue.name)


def _state(current) -> dict:
    data = {"state": current.state, "position": chat.position(current),
            "agent": current.agent.user.operator_no if current.agent_id and current.state == "active" else ""}
    if current.state == "closed":
        data |= {"reason": current.end_reason, "number": current.ticket.number if current.ticket_id else ""}
    return data


@bp.route("/events")
@public
def events():
    """Server-sent events of this browser's chat: state (waiting, position, agent, ended with the acceptance
    number) and messages (id = message id, so a reconnecting EventSource continues where it stopped)."""
    current = _mine()
    if current is None:
        abort(404)
    chat_id = current.id
    limit = chat_pump.stream_limit(request.args.get("max_seconds"))
    after = request.headers.get("Last-Event-ID") or request.args.get("after") or "0"
    after = int(after) if after.isdigit() and len(after) <= 12 else 0
    shown = None

    def look():
        """One look at this chat: new messages (id = message id), the state when it changed; over once closed."""
        nonlocal after, shown
        fresh = chat.ChatSession.get_by_id(chat_id)
        chat.seen(fresh, chat_pump.clock())
        for message in chat.messages_after(chat_id, after):
            after = message.id
            yield chat_pump.event("message", _shown_message(message), message.id)
        state = _state(fresh)
        if state != shown:
            shown = state
            yield chat_pump.event("state", state)
        return fresh.state == "closed"

    return chat_pump.event_stream(look, limit)


def _shown_message(message) -> dict:
    """A message as the citizen's page shows it: the system's notices ("中文 / English") in the page's language."""
    from webui.i18n import one_language

    view = chat.message_view(message)
    if message.sender == "system":
        view["text"] = one_language(view["text"], g.get("lang") or "zh")
    return view


@bp.route("/send", methods=["POST"])
@public
def send():
    """The citizen's message (JSON answer; refused: too long, empty, too many, chat ended)."""
    current = _mine()
    if current is None:
        abort(404)
    try:
        message = chat.post(current, "citizen", request.form.get("text", ""), clock=chat_pump.clock(),
                            settings=chat_pump.settings())
    except chat.ChatError as error:
        return _refuse(error, str(current.id))
    return jsonify({"ok": True, "message": chat.message_view(message)})


@bp.route("/leave", methods=["POST"])
@public
def leave():
    """The citizen ends the chat (the button, or the page closing): the answer holds the acceptance number."""
    current = _mine()
    if current is None:
        abort(404)
    ended = chat.close(current, "citizen", chat_pump.clock())
    if ended is not None:
        audit("chat_end", "chat", ended.id, f"citizen; ticket {ended.ticket.number}", user=None)
        current = ended
    else:
        current = chat.ChatSession.get_by_id(current.id)
    return jsonify({"ok": True, **_state(current)})


@bp.route("/new", methods=["POST"])
@public
def new():
    """Forget an ended chat in this browser, to start another."""
    current = _mine()
    if current is not None and current.state != "closed":
        return jsonify({"ok": False, "error": error_text("交谈尚未结束 / the chat has not ended")}), 409
    session.pop(CHAT_KEY, None)
    return redirect(url_for("portal_chat.start"), code=303)
