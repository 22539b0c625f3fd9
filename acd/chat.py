"""Online chat services (P2 §5.4, ICC 文字交谈): a citizen's chat waits in a chat queue, is offered to a ready
agent under their chat capacity (acd.chat_queue, the call rules' order), answered on the desk, and ends with
its transcript stored with a ticket: the one the agent saved from the desk, or one made from the transcript
(channel "chat") when the citizen leaves, the chat times out or the agent closes it without one.

Every write is here (the web views call these functions); the state lives in the database, so any web
worker's stream sees it and a restart loses nothing. ``sweep`` applies the time limits and ``dispatch``
offers waiting chats; the web layer runs both, throttled, from the open streams (webui.chat_pump).
Errors are ``ChatError`` with a zh / en message and the HTTP status the page answers with.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Optional

import peewee

from acd import chat_queue
from acd.models import Agent, AgentSkill, ChatMessage, ChatQueue, ChatSeat, ChatSession
from acd.strategies import AgentSnapshot, QueueSnapshot, check_strategy
from caseflow import services as case_services
from caseflow.models import Ticket, User
from core.clock import Clock
from core.db import database

log = logging.getLogger(__name__)

MAX_MESSAGE = 2000   # characters; longer messages are refused with this number, never cut
MAX_NAME = 40
OPEN_STATES = ("waiting", "offered", "active")
END_REASONS = {
    "agent": ("话务员结束了交谈", "The agent ended the chat"),
    "citizen": ("您结束了交谈", "You ended the chat"),
    "left": ("市民已离开", "The citizen left"),
    "idle": ("长时间无消息，交谈已结束", "The chat ended after a long silence"),
    "no_agent": ("暂无话务员接入，已为您登记", "No agent was free; your message was recorded"),
}


class ChatError(ValueError):
    """Refused chat input or action; ``str()`` says why (zh / en), ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ChatSettings:
    """Limits (the web layer passes the app's HOTLINE_CHAT_* settings)."""

    rate_messages: int = 10          # messages one side may send ...
    rate_window: float = 30.0        # ... within this many seconds of one chat
    idle_timeout: float = 600.0      # an answered chat with no message for this long is closed
    gone_after: float = 90.0         # the citizen's page has not asked for this long: they left
    starts_per_address: int = 10     # chats one address may open per hour


def _now(clock: Optional[Clock]) -> dt.datetime:
    return case_services.to_db((clock or Clock()).now())


def hash_token(token: str) -> str:
    return hashlib.sha256(f"chat:{token}".encode()).hexdigest()


# ------------------------------------------------------------------------------------------- queues
def create_queue(name: str, skill: str, strategy: str = "least_talk_time", **fields) -> ChatQueue:
    """A chat queue served by the agents holding ``skill``."""
    check_strategy(strategy)
    return ChatQueue.create(name=name, skill=skill, strategy=strategy, **fields)


def open_queues() -> list[ChatQueue]:
    """The active chat queues (the topics a citizen may pick), by name."""
    return list(ChatQueue.select().where(ChatQueue.active == True).order_by(ChatQueue.name))  # noqa: E712


# ---------------------------------------------------------------------------------------- citizen side
def start(queue_id, *, name: str = "", phone: str = "", ip: str = "", clock: Optional[Clock] = None,
          settings: ChatSettings = ChatSettings(), phone_verified: bool = False) -> tuple[ChatSession, str]:
    """Open a chat in the queue (topic) ``queue_id``: (session, token). The token is the citizen's only key to
    the chat; it is returned once and stored hashed. ``phone_verified``: the caller confirmed ``phone`` by an
    SMS code (the desk then shows the citizen's history)."""
    now = _now(clock)
    queue = (ChatQueue.get_or_none((ChatQueue.id == int(queue_id)) & (ChatQueue.active == True))  # noqa: E712
             if str(queue_id).isdigit() and len(str(queue_id)) <= 9 else None)
    if queue is None:
        raise ChatError("请选择咨询主题 / choose a topic")
    name = (name or "").strip()
    if len(name) > MAX_NAME:
        raise ChatError(f"姓名不能超过 {MAX_NAME} 字 / the name must be at most {MAX_NAME} characters")
    try:
        phone = case_services.clean_phone(phone or "")
    except case_services.TicketInputError as error:
        raise ChatError(str(error)) from None
    if phone_verified and not phone:
        raise ValueError("a verified chat needs the phone it verified")
    since = now - dt.timedelta(hours=1)
    if ip and ChatSession.select().where((ChatSession.ip == ip[:64]) & (ChatSession.created_at > since)).count() \
            >= settings.starts_per_address:
        raise ChatError("本地址开启交谈过于频繁，请稍后再试 / too many chats from this address: try again later", 429)
    token = secrets.token_urlsafe(32)
    with database.atomic():
        session = ChatSession.create(queue=queue, token_hash=hash_token(token), citizen_name=name,
                                     citizen_phone=phone, phone_verified=bool(phone_verified), ip=(ip or "")[:64],
                                     created_at=now, last_activity=now,
                                     citizen_seen=now)
        ChatMessage.create(session=session, sender="system", text="已进入排队，请稍候 / you are in the queue",
                           at=now)
    log.info("chat %s started in %s", session.id, queue.name)
    return session, token


def find(session_id, token) -> Optional[ChatSession]:
    """The chat whose token this is, or None (a wrong id and a wrong token look the same)."""
    if not str(session_id).isdigit() or len(str(session_id)) > 12 or not isinstance(token, str) or not token:
        return None
    session = ChatSession.get_or_none(ChatSession.id == int(session_id))
    if session is None or not hmac.compare_digest(session.token_hash, hash_token(token[:100])):
        return None
    return session


def seen(session: ChatSession, clock: Optional[Clock] = None) -> None:
    """The citizen's page is still there (written at most every 5 seconds)."""
    now = _now(clock)
    if session.state != "closed" and (now - session.citizen_seen).total_seconds() >= 5:
        ChatSession.update(citizen_seen=now).where(ChatSession.id == session.id).execute()
        session.citizen_seen = now


def position(session: ChatSession) -> int:
    """1 + the chats waiting in the same queue before this one (0 once it is no longer waiting)."""
    if session.state not in ("waiting", "offered"):
        return 0
    return 1 + ChatSession.select().where((ChatSession.queue == session.queue_id)
                                          & (ChatSession.state.in_(("waiting", "offered")))
                                          & (ChatSession.id < session.id)).count()


# ---------------------------------------------------------------------------------------- messages
def post(session: ChatSession, sender: str, text, *, agent: Optional[Agent] = None, clock: Optional[Clock] = None,
         settings: ChatSettings = ChatSettings()) -> ChatMessage:
    """Add a message of the citizen or of the chat's agent. Refused: an ended chat, an agent's message before
    the chat is answered or in another agent's chat, an empty or over-long text, too many messages."""
    if sender not in ("citizen", "agent"):
        raise ValueError(f"unknown chat sender {sender!r}")
    if not isinstance(text, str):
        raise ChatError("消息必须是文字 / a message must be text")
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise ChatError("消息不能为空 / the message is empty")
    if len(text) > MAX_MESSAGE:
        raise ChatError(f"消息不能超过 {MAX_MESSAGE} 字（现为 {len(text)} 字）/ a message may hold at most "
                        f"{MAX_MESSAGE} characters (this one has {len(text)})", 413)
    fresh = ChatSession.get_by_id(session.id)
    if fresh.state == "closed":
        raise ChatError("交谈已结束 / the chat has ended", 409)
    if sender == "agent" and (agent is None or fresh.agent_id != agent.id or fresh.state != "active"):
        raise ChatError("这不是您正在进行的交谈 / this is not a chat you are in", 409)
    now = _now(clock)
    since = now - dt.timedelta(seconds=settings.rate_window)
    recent = ChatMessage.select().where((ChatMessage.session == fresh.id) & (ChatMessage.sender == sender)
                                        & (ChatMessage.at > since)).count()
    if recent >= settings.rate_messages:
        raise ChatError("发送过于频繁，请稍候再发 / too many messages: wait a moment", 429)
    author = ""
    if agent is not None:
        author = f"{agent.user.operator_no}"[:64]
    with database.atomic():
        message = ChatMessage.create(session=fresh, sender=sender, author=author, text=text, at=now)
        changes = {ChatSession.last_activity: now}
        if sender == "citizen":
            changes[ChatSession.citizen_seen] = now
        ChatSession.update(changes).where(ChatSession.id == fresh.id).execute()
    return message


def messages_after(session_id: int, after: int = 0, limit: int = 200) -> list[ChatMessage]:
    """The chat's messages with an id above ``after``, oldest first."""
    return list(ChatMessage.select().where((ChatMessage.session == session_id) & (ChatMessage.id > after))
                .order_by(ChatMessage.id).limit(limit))


def message_view(message: ChatMessage) -> dict:
    """What a page shows of a message (text as stored: the pages insert it as text)."""
    return {"id": message.id, "sender": message.sender, "author": message.author, "text": message.text,
            "at": message.at.isoformat(timespec="seconds")}


def transcript(session: ChatSession, clock: Optional[Clock] = None) -> str:
    """The chat as plain text lines (time, who, text), for the ticket made from it."""
    clock = clock or Clock()
    who = {"citizen": "市民", "agent": "话务员", "system": "系统"}
    lines = []
    for message in ChatMessage.select().where(ChatMessage.session == session.id).order_by(ChatMessage.id):
        if message.sender == "system":
            continue
        stamp = clock.local(message.at).strftime("%H:%M:%S")
        author = f" {message.author}" if message.author else ""
        lines.append(f"[{stamp}] {who[message.sender]}{author}：{message.text}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- agent side
def capacity(agent_id: int) -> int:
    """How many chats the agent takes beside calls."""
    seat = ChatSeat.get_or_none(ChatSeat.agent == agent_id)
    return seat.capacity if seat is not None else chat_queue.DEFAULT_CAPACITY


def set_capacity(agent_id: int, value, clock: Optional[Clock] = None) -> int:
    """Set the agent's chat capacity (0..MAX_CAPACITY); open chats stay, new ones follow the new number."""
    error = chat_queue.capacity_error(value)
    if error:
        raise ChatError(error)
    number = int(str(value).strip())
    now = _now(clock)
    with database.atomic():
        updated = ChatSeat.update(capacity=number, updated_at=now).where(ChatSeat.agent == agent_id).execute()
        if not updated:
            ChatSeat.create(agent=agent_id, capacity=number, updated_at=now)
    return number


def loads() -> dict[int, chat_queue.ChatLoad]:
    """Every agent's open chats and capacity (agents without either are left out: the default applies)."""
    counts = {row.agent_id: row.n for row in ChatSession.select(ChatSession.agent, peewee.fn.COUNT(ChatSession.id)
                                                                    .alias("n"))
              .where(ChatSession.state.in_(("offered", "active")) & ChatSession.agent.is_null(False))
              .group_by(ChatSession.agent)}
    seats = {row.agent_id: row.capacity for row in ChatSeat.select()}
    return {agent_id: chat_queue.ChatLoad(counts.get(agent_id, 0), seats.get(agent_id, chat_queue.DEFAULT_CAPACITY))
            for agent_id in set(counts) | set(seats)}


def agent_chats(agent_id: int) -> list[ChatSession]:
    """The agent's offered and active chats, oldest first."""
    return list(ChatSession.select().where((ChatSession.agent == agent_id)
                                           & ChatSession.state.in_(("offered", "active"))).order_by(ChatSession.id))


def held_by(session_id, agent: Agent) -> ChatSession:
    """The agent's own open chat, or ChatError 404 (another agent's chat looks like none)."""
    session = (ChatSession.get_or_none(ChatSession.id == int(session_id))
               if str(session_id).isdigit() and len(str(session_id)) <= 12 else None)
    if session is None or session.agent_id != agent.id:
        raise ChatError("没有这个交谈 / no such chat", 404)
    return session


def answer(session: ChatSession, agent: Agent, clock: Optional[Clock] = None) -> ChatSession:
    """The agent takes the chat offered to them."""
    now = _now(clock)
    with database.atomic():
        taken = ChatSession.update(state="active", answered_at=now, last_activity=now).where(
            (ChatSession.id == session.id) & (ChatSession.state == "offered") & (ChatSession.agent == agent.id)
        ).execute()
        if not taken:
            raise ChatError("该交谈已不再等待您接入 / this chat is no longer offered to you", 409)
        ChatMessage.create(session=session, sender="system", at=now,
                           text=f"话务员 {agent.user.operator_no} 已接入 / agent {agent.user.operator_no} joined")
    return ChatSession.get_by_id(session.id)


def link_ticket(session: ChatSession, ticket: Ticket) -> None:
    """Store the chat's transcript with ``ticket`` (saved from the desk form while the chat was open)."""
    ChatSession.update(ticket=ticket).where(ChatSession.id == session.id).execute()


def close(session: ChatSession, reason: str, clock: Optional[Clock] = None) -> Optional[ChatSession]:
    """End an open chat for ``reason`` (END_REASONS): a notice to both sides, and the ticket the transcript is
    stored with (made from it, channel chat, unless the agent saved one). None if it had ended already."""
    if reason not in END_REASONS:
        raise ValueError(f"unknown chat end reason {reason!r}")
    clock = clock or Clock()
    now = _now(clock)
    with database.atomic():
        ended = ChatSession.update(state="closed", ended_at=now, end_reason=reason).where(
            (ChatSession.id == session.id) & ChatSession.state.in_(OPEN_STATES)).execute()
        if not ended:
            return None
        fresh = ChatSession.get_by_id(session.id)
        zh, en = END_REASONS[reason]
        ticket = fresh.ticket
        if ticket is None:
            ticket = _ticket_from(fresh, clock)
            fresh.ticket = ticket
            fresh.save(only=[ChatSession.ticket])
        ChatMessage.create(session=fresh, sender="system", at=now,
                           text=f"{zh}。受理号 {ticket.number} / {en}. Acceptance number {ticket.number}")
    log.info("chat %s closed (%s), ticket %s", fresh.id, reason, ticket.number)
    return fresh


def _ticket_from(session: ChatSession, clock: Clock) -> Ticket:
    text = transcript(session, clock) or "（市民未留言 / nothing was written）"
    topic = session.queue.display_name or session.queue.name
    content = f"在线交谈 {topic}\n{text}"[:case_services.MAX_CONTENT]
    return case_services.create_ticket(content, type="consult", channel="chat",
                                       citizen_phone=session.citizen_phone, citizen_name=session.citizen_name,
                                       title=f"在线交谈：{topic}"[:40], actor_label="在线交谈 chat", clock=clock,
                                       note="在线交谈 / online chat")


# ---------------------------------------------------------------------------------------- time and offers
def sweep(clock: Optional[Clock] = None, settings: ChatSettings = ChatSettings()) -> list[ChatSession]:
    """Apply the time limits: an unanswered offer goes back to waiting (not to that agent again); a citizen
    whose page stopped asking has left; an answered chat silent for too long and a chat nobody answered
    within its queue's maximum wait are closed. Returns the chats closed now."""
    now = _now(clock)
    closed: list[ChatSession] = []
    for session in ChatSession.select(ChatSession, ChatQueue).join(ChatQueue).where(
            ChatSession.state.in_(OPEN_STATES)):
        reason = ""
        if (now - session.citizen_seen).total_seconds() > settings.gone_after:
            reason = "left"
        elif session.state == "active" and (now - session.last_activity).total_seconds() > settings.idle_timeout:
            reason = "idle"
        elif session.state in ("waiting", "offered") and session.queue.max_wait and \
                (now - session.created_at).total_seconds() > session.queue.max_wait:
            reason = "no_agent"
        elif session.state == "offered" and session.offered_at is not None and \
                (now - session.offered_at).total_seconds() > session.queue.offer_timeout:
            ChatSession.update(state="waiting", agent=None, offered_at=None).where(
                (ChatSession.id == session.id) & (ChatSession.state == "offered")).execute()
        if reason:
            ended = close(session, reason, clock)
            if ended is not None:
                closed.append(ended)
    return closed


def _snapshot(agent: Agent, level: int, position: int, seat: int, today: dt.date) -> AgentSnapshot:
    idle = agent.idle_since or agent.since
    current = agent.counters_date == today
    return AgentSnapshot(id=agent.id, status=agent.status, state=agent.state, registered=agent.registered,
                         server=agent.server, calls_today=agent.calls_today if current else 0,
                         talk_seconds_today=agent.talk_seconds_today if current else 0,
                         idle_since=idle.timestamp() if idle else 0.0, skill_level=level,
                         tier_position=position, seat=seat)


def dispatch(agents: dict[int, Agent], clock: Optional[Clock] = None) -> list[ChatSession]:
    """Offer waiting chats (oldest first) to eligible agents; ``agents`` is the ACD's live agent table
    (status as the desk shows it). Returns the chats offered now."""
    clock = clock or Clock()
    now, today = _now(clock), clock.today()
    waiting = list(ChatSession.select(ChatSession, ChatQueue).join(ChatQueue)
                   .where(ChatSession.state == "waiting").order_by(ChatSession.id))
    if not waiting or not agents:
        return []
    current = loads()
    skills: dict[str, dict[int, tuple[int, int]]] = {}
    for row in AgentSkill.select().where(AgentSkill.skill.in_({s.queue.skill for s in waiting})):
        skills.setdefault(row.skill, {})[row.agent_id] = (row.level, row.position)
    offered: list[ChatSession] = []
    for session in waiting:
        queue = session.queue
        skilled = skills.get(queue.skill, {})
        snapshots = [_snapshot(agents[a], level, pos, agents[a].position or a, today)
                     for a, (level, pos) in skilled.items() if a in agents]
        base = QueueSnapshot(queue.name, strategy=queue.strategy, last_agent_id=queue.last_agent_id,
                             exclude=frozenset(session.offered_ids()))
        order = chat_queue.choose_chat_agent(base, snapshots, current, queue.strategy)
        if not order and session.offered_ids():
            # Everyone eligible had it once: offer it round again rather than let it wait for nobody.
            base = QueueSnapshot(queue.name, strategy=queue.strategy, last_agent_id=queue.last_agent_id)
            order = chat_queue.choose_chat_agent(base, snapshots, current, queue.strategy)
        if not order:
            continue
        agent_id = order[0]
        tried = ",".join(str(i) for i in sorted(set(session.offered_ids()) | {agent_id}))
        with database.atomic():
            taken = ChatSession.update(state="offered", agent=agent_id, offered_at=now, offered_agents=tried).where(
                (ChatSession.id == session.id) & (ChatSession.state == "waiting")).execute()
            if taken:
                ChatQueue.update(last_agent_id=agent_id).where(ChatQueue.id == queue.id).execute()
        if not taken:
            continue  # another worker's pass took it
        queue.last_agent_id = agent_id
        load = current.get(agent_id) or chat_queue.ChatLoad()
        current[agent_id] = chat_queue.ChatLoad(load.open_chats + 1, load.capacity)
        offered.append(ChatSession.get_by_id(session.id))
    return offered


# ---------------------------------------------------------------------------------------- console
def queue_stats(clock: Optional[Clock] = None) -> list[dict]:
    """Per chat queue: chats waiting (offered ones included), the longest wait in seconds, chats active."""
    now = _now(clock)
    rows = []
    for queue in ChatQueue.select().order_by(ChatQueue.name):
        open_chats = list(ChatSession.select(ChatSession.state, ChatSession.created_at)
                          .where((ChatSession.queue == queue) & ChatSession.state.in_(OPEN_STATES)))
        waiting = [s for s in open_chats if s.state in ("waiting", "offered")]
        rows.append({"queue": queue.name, "display_name": queue.display_name or queue.name, "skill": queue.skill,
                     "strategy": queue.strategy, "active": queue.active, "waiting": len(waiting),
                     "longest_wait": int(max(((now - s.created_at).total_seconds() for s in waiting), default=0)),
                     "in_chat": len(open_chats) - len(waiting)})
    return rows


def agent_stats() -> list[dict]:
    """Per agent with a chat or a capacity set: active chats, offered chats, capacity."""
    rows = {}
    for session in ChatSession.select(ChatSession.agent, ChatSession.state).where(
            ChatSession.state.in_(("offered", "active")) & ChatSession.agent.is_null(False)):
        row = rows.setdefault(session.agent_id, {"active": 0, "offered": 0})
        row[session.state] += 1
    out = []
    for agent in Agent.select(Agent, User).join(User).where(Agent.id.in_(list(rows) or [0])).order_by(User.operator_no):
        out.append({"agent_id": agent.id, "operator_no": agent.user.operator_no, "name": agent.user.name,
                    "capacity": capacity(agent.id), **rows[agent.id]})
    return out


def ticket_chats(ticket: Ticket) -> list[tuple[ChatSession, list[ChatMessage]]]:
    """The chats stored with a ticket, each with its messages (the ticket page's transcript)."""
    return [(s, list(s.messages.order_by(ChatMessage.id)))
            for s in ChatSession.select().where(ChatSession.ticket == ticket).order_by(ChatSession.id)]


def shown_content(ticket: Ticket, full: bool) -> str:
    """The ticket's content as a reader sees it: a chat ticket's content is the chat's transcript (or what
    the agent wrote from it), so without ``full`` (caseflow.privacy's contact rule) it is masked as the
    transcript is (shown_chats); other channels' content is shown as written."""
    from caseflow import privacy

    if full or ticket.channel != "chat":
        return ticket.content
    people = [(s.citizen_phone, s.citizen_name) for s in ChatSession.select().where(ChatSession.ticket == ticket)]
    return privacy.mask_typed(ticket.content, ticket, people)


def shown_chats(ticket: Ticket, full: bool) -> list[dict]:
    """The ticket's chats as a reader sees them. ``full`` is caseflow.privacy's contact rule for that reader
    (the ticket page's): without it the citizen's name and phone, of the chat and of the ticket, and any
    phone number or e-mail address typed into a message are masked, as SMS and e-mail on the same page are
    (the acceptance number stays readable)."""
    from caseflow import privacy

    def text_of(message: ChatMessage, session: ChatSession) -> str:
        if full:
            return message.text
        return privacy.mask_typed(message.text, ticket, [(session.citizen_phone, session.citizen_name)])

    shown = []
    for session, messages in ticket_chats(ticket):
        if full:
            name, phone = session.citizen_name, session.citizen_phone
        elif ticket.anonymous:
            name, phone = ("匿名" if session.citizen_name else ""), privacy.mask_phone(session.citizen_phone)
        else:
            name, phone = privacy.mask_name(session.citizen_name), privacy.mask_phone(session.citizen_phone)
        shown.append({"id": session.id, "topic": session.queue.display_name or session.queue.name,
                      "name": name, "phone": phone, "masked": not full, "started": session.created_at,
                      "ended": session.ended_at, "end_reason": session.end_reason,
                      "agent": session.agent.user.operator_no if session.agent_id else "",
                      "messages": [{"sender": m.sender, "author": m.author, "at": m.at, "text": text_of(m, session)}
                                   for m in messages]})
    return shown
