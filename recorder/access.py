"""Who may hear and download which recordings, and who may see which call records.

- The centre (team lead, centre staff and leaders) and city leaders hear every recording.
- An agent hears the calls they answered.
- A department hears only recordings of calls linked to its own tickets (its subtree), P5 §3.7.8.
- Download for the archive (下载备案) is the permission ``recording.download`` (caseflow.roles; by default
  the team lead, the centre and department leaders, the latter for their own tickets only), on top of
  being allowed to hear the recording; agents, handlers and leaders listen in the browser only.
"""
from __future__ import annotations

from caseflow.roles import can
from recorder.models import CallRecord, Recording

ALL_RECORDINGS_ROLES = frozenset({"team_lead", "centre", "centre_leader", "leader"})
OWN_CALL_ROLES = frozenset({"agent"})
DEPARTMENT_ROLES = frozenset({"dept", "dept_leader"})
DOWNLOAD_PERMISSION = "recording.download"
LISTEN_ROLES = ALL_RECORDINGS_ROLES | OWN_CALL_ROLES | DEPARTMENT_ROLES
CALL_RECORD_ROLES = frozenset({"team_lead", "centre", "centre_leader", "leader", "agent"})
MISSED_ROLES = frozenset({"agent", "team_lead", "centre", "centre_leader"})


def _roles(user) -> frozenset[str]:
    if user is None or not getattr(user, "active", True):
        return frozenset()
    return user.role_set


def _department_call_uuids(user):
    """Call UUIDs linked to tickets the department user may see (caseflow's subtree rule)."""
    from caseflow.models import Ticket, TicketCall
    from caseflow.services import visible_tickets

    return TicketCall.select(TicketCall.call_uuid).where(TicketCall.ticket.in_(visible_tickets(user).select(Ticket.id)))


def visible_recordings(user):
    """A query of the recordings ``user`` may hear (empty for anyone else)."""
    roles = _roles(user)
    query = Recording.select()
    if roles & ALL_RECORDINGS_ROLES:
        return query
    conditions = []
    if roles & OWN_CALL_ROLES:
        conditions.append(Recording.agent_no == user.operator_no)
    if roles & DEPARTMENT_ROLES and user.department_id:
        conditions.append(Recording.call_uuid.in_(_department_call_uuids(user)))
    if not conditions:
        return query.where(Recording.id < 0)
    condition = conditions[0]
    for extra in conditions[1:]:
        condition = condition | extra
    return query.where(condition)


def may_listen(user, rec: Recording) -> bool:
    """True if ``user`` may hear ``rec``."""
    if not _roles(user) & LISTEN_ROLES:
        return False
    return visible_recordings(user).where(Recording.id == rec.id).exists()


def may_download(user, rec: Recording) -> bool:
    """True if ``user`` may download ``rec`` (holds recording.download, and may hear the recording)."""
    return can(user, DOWNLOAD_PERMISSION) and may_listen(user, rec)


def visible_call_records(user):
    """Call records ``user`` may see: every one for the centre, an agent's own calls for an agent."""
    roles = _roles(user)
    query = CallRecord.select()
    if roles & (CALL_RECORD_ROLES - OWN_CALL_ROLES):
        return query
    if roles & OWN_CALL_ROLES:
        return query.where(CallRecord.agent_no == user.operator_no)
    return query.where(CallRecord.id < 0)


def note_access(rec: Recording, user, action: str, remote_addr: str = ""):
    """Keep who listened to or downloaded a recording, and from where (the access log of its page)."""
    from recorder.models import RecordingAccess

    return RecordingAccess.create(recording=rec, user=user, user_label=f"{user.operator_no} {user.name}"[:64],
                                  action=action, remote_addr=(remote_addr or "")[:64])
