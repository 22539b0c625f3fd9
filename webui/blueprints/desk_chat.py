"""The agent desk's chat panel (issue 11 item 5): the agent's chat capacity, the chats offered to them and
those they hold, with the citizen's earlier tickets (the screen pop's lookup by phone), messages both ways
over server-sent events, knowledge-base answers sent into a chat, and the close. The ticket form of the desk
saves the chat's ticket (agent_desk.save_ticket with chat_id). Writes are acd.chat's; answers and ends are
audited. Agents and team leads only, each reaching only the chats the ACD gave them.
"""
from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request

from acd import chat
from acd.dispatcher import AcdError
from caseflow import privacy
from webui import chat_pump
from webui.i18n import error_text
from webui.security import audit, require_roles

bp = Blueprint("desk_chat", __name__, url_prefix="/desk/chat")
ROLES = ("agent", "team_lead")
MESSAGES = {"zh": {
    "Online chats": "在线交谈", "Chats I take beside calls": "同时接待交谈数", "Answer chat": "接入交谈",
    "End chat": "结束交谈", "Send in chat": "发送到交谈", "No chats.": "暂无交谈。", "Offered": "待接入",
    "Topic": "主题", "Earlier tickets": "历史工单", "Save ticket for this chat": "为本次交谈保存工单",
    "Chat queues": "交谈队列", "Chats waiting": "等待交谈", "In chat": "交谈中", "Active chats": "进行中交谈",
    "Capacity": "接待上限",
}}


@bp.app_context_processor
def _ticket_chats():
    def ticket_chats(ticket) -> list[dict]:
        """The ticket's chat transcripts with the ticket page's masking for this user (tickets/_chat.html)."""
        return chat.shown_chats(ticket, privacy.may_see_contact(g.get("user"), ticket))

    def chat_end_label(reason: str) -> str:
        zh, en = chat.END_REASONS.get(reason, (reason, reason))
        return zh if (g.get("lang") or "zh") == "zh" else en

    return {"ticket_chats": ticket_chats, "chat_end_label": chat_end_label}


def _agent():
    acd = current_app.extensions["hotline"].services.acd
    if acd is None:
        return None
    try:
        return acd.agent_for_user(g.user.id)
    except AcdError:
        return None


def _error(error: chat.ChatError):
    return jsonify({"ok": False, "error": error_text(error)}), error.status


def chat_view(session) -> dict:
    """What the desk shows of one chat: who, topic, state, and the citizen's profile by phone: in full with their
    earlier tickets when the citizen confirmed the number by an SMS code at the start, else masked and without
    tickets (a typed number unmasks nobody)."""
    from webui.blueprints.agent_desk import screen_pop

    return {"id": session.id, "state": session.state, "topic": session.queue.display_name or session.queue.name,
            "name": session.citizen_name, "phone": session.citizen_phone, "verified": session.phone_verified,
            "created_at": session.created_at.isoformat(timespec="seconds"),
            "ticket": session.ticket.number if session.ticket_id else "",
            "history": screen_pop(session.citizen_phone, full=session.phone_verified) if session.citizen_phone
            else None}


@bp.route("/state")
@require_roles(*ROLES)
def state():
    """The agent's capacity and open chats with their messages (the panel on load)."""
    agent = _agent()
    if agent is None:
        return jsonify({"error": "not an agent"}), 404
    chats = [dict(chat_view(s), messages=[chat.message_view(m) for m in chat.messages_after(s.id)])
             for s in chat.agent_chats(agent.id)]
    return jsonify({"capacity": chat.capacity(agent.id), "chats": chats})


@bp.route("/capacity", methods=["POST"])
@require_roles(*ROLES)
def capacity():
    """Set how many chats this agent takes beside calls."""
    agent = _agent()
    if agent is None:
        return jsonify({"ok": False, "error": "not an agent"}), 404
    try:
        number = chat.set_capacity(agent.id, request.form.get("capacity", ""), chat_pump.clock())
    except chat.ChatError as error:
        return _error(error)
    audit("chat_capacity", "agent", agent.id, str(number))
    chat_pump.pump(force=True)
    return jsonify({"ok": True, "capacity": number})


def _held(chat_id):
    agent = _agent()
    if agent is None:
        raise chat.ChatError("您尚未配置为话务员 / you are not set up as an agent", 404)
    return agent, chat.held_by(chat_id, agent)


@bp.route("/<chat_id>/answer", methods=["POST"])
@require_roles(*ROLES)
def answer(chat_id):
    """Answer a chat offered to this agent."""
    try:
        agent, session = _held(chat_id)
        session = chat.answer(session, agent, chat_pump.clock())
    except chat.ChatError as error:
        return _error(error)
    audit("chat_answer", "chat", session.id, session.queue.name)
    return jsonify({"ok": True, "chat": chat_view(session)})


@bp.route("/<chat_id>/send", methods=["POST"])
@require_roles(*ROLES)
def send(chat_id):
    """The agent's message (typed, or a knowledge-base answer) into their chat."""
    try:
        agent, session = _held(chat_id)
        message = chat.post(session, "agent", request.form.get("text", ""), agent=agent, clock=chat_pump.clock(),
                            settings=chat_pump.settings())
    except chat.ChatError as error:
        return _error(error)
    return jsonify({"ok": True, "message": chat.message_view(message)})


@bp.route("/<chat_id>/close", methods=["POST"])
@require_roles(*ROLES)
def close(chat_id):
    """End the chat; its transcript stays with the ticket (saved from the form, or made from it now)."""
    try:
        _agent_row, session = _held(chat_id)
    except chat.ChatError as error:
        return _error(error)
    ended = chat.close(session, "agent", chat_pump.clock())
    if ended is None:
        return _error(chat.ChatError("交谈已结束 / the chat has ended", 409))
    audit("chat_end", "chat", ended.id, f"agent; ticket {ended.ticket.number}")
    chat_pump.pump(force=True)
    return jsonify({"ok": True, "ticket": ended.ticket.number})


@bp.route("/events")
@require_roles(*ROLES)
def events():
    """Server-sent events of this agent's chats: ``chats`` (the list changed: offered, answered, ended) and
    ``message`` (a new line in one of them, with its chat id)."""
    agent = _agent()
    if agent is None:
        return jsonify({"error": "not an agent"}), 404
    agent_id = agent.id
    limit = chat_pump.stream_limit(request.args.get("max_seconds"))

    last: dict[int, int] = {}
    shown = None

    def look():
        """One look at the agent's chats: the list when it changed (an ended chat's last lines and its end
        first), and each chat's new lines."""
        nonlocal shown
        sessions = chat.agent_chats(agent_id)
        listing = [(s.id, s.state) for s in sessions]
        if listing != shown:
            gone = {chat_id for chat_id, _ in shown or []} - {chat_id for chat_id, _ in listing}
            shown = listing
            for chat_id in sorted(gone):
                # Ended (the citizen left, a time limit): its last lines, then the end with the ticket.
                for message in chat.messages_after(chat_id, last.pop(chat_id, 0)):
                    yield chat_pump.event("message", dict(chat.message_view(message), chat=chat_id))
                ended = chat.ChatSession.get_by_id(chat_id)
                yield chat_pump.event("ended", {"chat": chat_id, "reason": ended.end_reason or "offer",
                                                "ticket": ended.ticket.number if ended.ticket_id else ""})
            yield chat_pump.event("chats", [chat_view(s) for s in sessions])
        for session in sessions:
            for message in chat.messages_after(session.id, last.get(session.id, 0)):
                last[session.id] = message.id
                yield chat_pump.event("message", dict(chat.message_view(message), chat=session.id))
        return False

    return chat_pump.event_stream(look, limit)
