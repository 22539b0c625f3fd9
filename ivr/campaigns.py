"""Outbound IVR campaigns: result notifications with a satisfaction key-press (P2 §2.2) and group calls
(P5 §3.6.7). Creating them, what a placed call plays, and what its answer does to the ticket."""
from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path
from typing import Iterable

from ivr.models import OutboundAttempt, OutboundCampaign
from ivr.tree import Tree, load_tree

log = logging.getLogger(__name__)

TREES = {"satisfaction": Path(__file__).resolve().parent / "outbound_satisfaction.toml",
         "group": Path(__file__).resolve().parent / "outbound_group.toml"}
SATISFACTION_KEYS = {"1": "satisfied", "2": "basic", "3": "unsatisfied"}
PHONE_RE = re.compile(r"^\+?[0-9]{3,20}\Z")
MAX_TARGETS = 10000


class CampaignError(ValueError):
    """A campaign that cannot be created; the message says why."""


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def parse_phones(text: str) -> list[str]:
    """Numbers separated by lines, commas or spaces; duplicates dropped; malformed ones refused by name."""
    phones, bad = [], []
    for raw in re.split(r"[\s,，;；]+", text or ""):
        if not raw:
            continue
        number = re.sub(r"[-()]", "", raw)
        (phones if PHONE_RE.match(number) else bad).append(number if PHONE_RE.match(number) else raw)
    if bad:
        shown = ", ".join(bad[:5]) + (" ..." if len(bad) > 5 else "")
        raise CampaignError(f"不是电话号码：{shown} / not phone numbers: {shown}")
    unique = list(dict.fromkeys(phones))
    if not unique:
        raise CampaignError("没有填写电话号码 / no phone numbers given")
    if len(unique) > MAX_TARGETS:
        raise CampaignError(f"每个任务最多 {MAX_TARGETS} 个号码 / at most {MAX_TARGETS} numbers per campaign")
    return unique


def create_group_campaign(title: str, message: str, phones: Iterable[str], created_by=None, max_parallel: int = 10,
                          max_attempts: int = 3) -> OutboundCampaign:
    """A group call speaking ``message`` to every number."""
    title, message = (title or "").strip(), (message or "").strip()
    if not title or len(title) > 200:
        raise CampaignError("标题须为1-200字 / title: 1 to 200 characters")
    if not message or len(message) > 1000:
        raise CampaignError("通知内容须为1-1000字 / message: 1 to 1000 characters")
    if not 1 <= int(max_parallel) <= 500 or not 1 <= int(max_attempts) <= 10:
        raise CampaignError("并发路数须为1-500，尝试次数1-10 / parallel calls 1-500, attempts 1-10")
    phones = list(phones)
    with OutboundCampaign._meta.database.atomic():
        campaign = OutboundCampaign.create(kind="group", title=title, prompt_text=message, created_by=created_by,
                                           max_parallel=int(max_parallel), max_attempts=int(max_attempts))
        for phone in phones:
            OutboundAttempt.create(campaign=campaign, phone=phone)
    return campaign


def satisfaction_due(actor) -> list:
    """The approved tickets with a phone that ``actor`` may call back: only with ticket.callback, and only
    tickets caseflow's visibility rule shows them (a campaign reads each citizen's number and result)."""
    from caseflow.models import Ticket
    from caseflow.roles import can
    from caseflow.visibility import visible_tickets

    if not can(actor, "ticket.callback"):
        raise CampaignError("您没有回访权限 / you may not call citizens back (ticket.callback)")
    return list(visible_tickets(actor).where((Ticket.status == "approved") & (Ticket.citizen_phone != ""))
                .order_by(Ticket.id))


def create_satisfaction_campaign(tickets, created_by, title: str = "", max_parallel: int = 10) -> OutboundCampaign:
    """Call the citizens of completed tickets, tell them the result and ask for their rating."""
    rows = [t for t in tickets if t.citizen_phone]
    if not rows:
        raise CampaignError("这些工单都没有可拨打的电话号码 / none of these tickets has a phone number to call")
    with OutboundCampaign._meta.database.atomic():
        campaign = OutboundCampaign.create(kind="satisfaction", title=title or f"回访 {len(rows)}",
                                           created_by=created_by, max_parallel=max_parallel)
        for ticket in rows:
            OutboundAttempt.create(campaign=campaign, phone=ticket.citizen_phone, ticket_number=ticket.number)
    return campaign


def dialled_attempt(attempt_id: str, call_uuid: str) -> OutboundAttempt | None:
    """The attempt the dialer is calling on ``call_uuid`` (its originate's uuid), else None.

    A call's ``hotline_attempt`` is a claim of whoever connected to the socket: only an attempt in
    "calling" whose last originate used this very uuid (a random one the app chose) is the app's own.
    """
    attempt_id, call_uuid = str(attempt_id or ""), str(call_uuid or "")
    attempt = (OutboundAttempt.get_or_none(OutboundAttempt.id == int(attempt_id))
               if attempt_id.isascii() and attempt_id.isdigit() and len(attempt_id) <= 18 else None)
    if attempt is None or attempt.state != "calling" or not call_uuid or attempt.last_call_uuid != call_uuid:
        log.warning("call %s: attempt %r is not one the dialer is calling on it (%s)", call_uuid[:64],
                    attempt_id[:32], "unknown" if attempt is None else f"{attempt.state}, dialled on "
                    f"{attempt.last_call_uuid or 'nothing'}")
        return None
    return attempt


def call_plan(attempt_id: str, call_uuid: str) -> tuple[Tree, dict[str, str], OutboundAttempt] | None:
    """What an answered outbound call plays: (tree, variables, attempt); None unless the dialer placed this
    call for that attempt (dialled_attempt)."""
    from caseflow.models import Ticket

    attempt = dialled_attempt(attempt_id, call_uuid)
    if attempt is None:
        return None
    campaign = attempt.campaign
    variables = {}
    if campaign.kind == "group":
        variables["message"] = campaign.prompt_text
    elif attempt.ticket_number:
        ticket = Ticket.get_or_none(Ticket.number == attempt.ticket_number)
        if ticket is not None and ticket.reply:
            variables["result"] = f"处理结果：{ticket.reply[:300]}"
    return load_tree(TREES[campaign.kind]), variables, attempt


def finish_call(attempt_id: str, answers: dict[str, str], outcome: str, call_uuid: str) -> None:
    """Keep how an answered call ended; a satisfaction key becomes the ticket's call-back rating.

    Only for the call the dialer placed for the attempt (dialled_attempt), and only once."""
    attempt = dialled_attempt(attempt_id, call_uuid)
    if attempt is None:
        return
    key = answers.get("satisfaction") or answers.get("ack")
    attempt.state = "done"
    attempt.outcome = f"key:{key}" if key else ("hangup" if outcome == "hangup" else "no_key")
    attempt.last_call_uuid = call_uuid[:64]
    attempt.save()
    if attempt.campaign.kind == "satisfaction" and key in SATISFACTION_KEYS and attempt.ticket_number:
        _rate(attempt, SATISFACTION_KEYS[key], call_uuid)
    _maybe_done(attempt.campaign)


def _rate(attempt: OutboundAttempt, satisfaction: str, call_uuid: str) -> None:
    """Apply the rating through the workflow in the campaign owner's name; else leave it as a note."""
    from caseflow import services
    from caseflow.models import Ticket
    from caseflow.workflow import WorkflowError

    ticket = Ticket.get_or_none(Ticket.number == attempt.ticket_number)
    if ticket is None:
        return
    owner = attempt.campaign.created_by if attempt.campaign.created_by_id else None
    note = f"自动回访按键评价 / IVR satisfaction call {call_uuid}"
    try:
        if owner is None:
            raise WorkflowError("no campaign owner to act for", "no_actor")
        services.call_back(ticket, owner, satisfaction, note)
        services.link_call(ticket, call_uuid, "callback")
    except (WorkflowError, PermissionError, services.TicketInputError) as exc:
        # Not in a state for a call-back (or no rights): the centre sees the rating and decides.
        log.info("satisfaction %s for %s kept as a note: %s", satisfaction, ticket.number, exc)
        services.add_note(ticket, f"{note}: {satisfaction}", actor=None, actor_label="ivr")


def set_paused(campaign: OutboundCampaign, paused: bool) -> None:
    """Pause or resume a running or paused campaign (a finished one stays as it is)."""
    if campaign.status in ("running", "paused"):
        campaign.status = "paused" if paused else "running"
        campaign.save(only=[OutboundCampaign.status])


def note_failed_attempt(attempt: OutboundAttempt, cause: str) -> None:
    """An originate that did not reach the citizen: retry later or give up after max_attempts."""
    attempt.outcome = cause[:32]
    attempt.state = "failed" if attempt.attempts >= attempt.campaign.max_attempts else "pending"
    attempt.save()
    _maybe_done(attempt.campaign)


def _maybe_done(campaign: OutboundCampaign) -> None:
    open_ = OutboundAttempt.select().where((OutboundAttempt.campaign == campaign)
                                           & OutboundAttempt.state.in_(("pending", "calling"))).exists()
    if not open_ and campaign.status == "running":
        campaign.status = "done"
        campaign.save()
