"""The alarm rules: pure functions of a snapshot of the running centre (no I/O, no gevent, no peewee).

``evaluate(snapshot, thresholds)`` returns the conditions that hold now; ``ops.alarms.reconcile`` raises them
and clears the alarms of the checked kinds that no longer hold.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

CRITICAL, WARNING = "critical", "warning"

# Kinds the periodic snapshot check decides (raised and cleared by it); the others are events (backup_failed)
# or have their own job (chain_broken).
SNAPSHOT_KINDS = ("switch_down", "switch_silent", "agent_stuck", "queue_waiting", "answer_rate", "disk_low")
# Events raised through core.alarms by the floors below ops (over once seen): the recorder's storage and
# faxes, the case engine's attachment store and a ticket's receipt, the SMS channel, a call the IVR failed on,
# SQLite's full-text merging thread.
RECORDING_KINDS = ("recording_storage", "recording_start", "recording_archive", "recording_cut_off", "fax_failed",
                   "fax_timeout", "calls_cut_off", "seal_turn_stuck")
EVENT_KINDS = RECORDING_KINDS + ("storage_full", "sms_gave_up", "overload", "receipt_failed", "ivr_failed",
                                  "fts_merging")
KINDS = SNAPSHOT_KINDS + ("backup_failed", "chain_broken") + EVENT_KINDS


@dataclass(frozen=True)
class Thresholds:
    """When a condition becomes an alarm (HOTLINE_ALARM_* settings)."""

    ring_margin: float = 30.0       # seconds over the longest ring time an agent may stay reserved/ringing
    queue_waiting: int = 10         # callers waiting in one queue
    answer_rate: float = 80.0       # per cent of today's answered calls within 15 s
    answer_min_calls: int = 20      # answered calls today before the rate is judged
    disk_free_mb: int = 1024        # free space for recordings and attachments

    @classmethod
    def from_extra(cls, extra: Mapping[str, str]) -> "Thresholds":
        """Read HOTLINE_ALARM_RING_MARGIN, _QUEUE_WAITING, _ANSWER_RATE, _ANSWER_MIN_CALLS, _DISK_FREE_MB."""
        values = {}
        for name, key, kind in (("ring_margin", "RING_MARGIN", float), ("queue_waiting", "QUEUE_WAITING", int),
                                ("answer_rate", "ANSWER_RATE", float),
                                ("answer_min_calls", "ANSWER_MIN_CALLS", int),
                                ("disk_free_mb", "DISK_FREE_MB", int)):
            raw = extra.get(f"HOTLINE_ALARM_{key}")
            if raw is None:
                continue
            text = str(raw).strip()
            try:
                if not text.isascii():
                    raise ValueError
                value = kind(text)
            except ValueError:
                raise ValueError(f"HOTLINE_ALARM_{key}: a {'whole ' if kind is int else ''}number, "
                                 f"got {raw!r}") from None
            if value < 0 or (name == "answer_rate" and value > 100):
                raise ValueError(f"HOTLINE_ALARM_{key}: out of range: {raw!r}")
            values[name] = value
        return cls(**values)


@dataclass(frozen=True)
class Snapshot:
    """What the check saw: every switch's status dict (switch.inbound: state, heartbeat_age,
    heartbeat_timeout), the agents and queues as the console shows them (acd.dispatcher.agent_stats /
    queue_stats), the longest ring time of any queue, and free/total bytes per storage area."""

    switches: Mapping[str, Any] = field(default_factory=dict)
    agents: tuple[Mapping[str, Any], ...] = ()
    queues: tuple[Mapping[str, Any], ...] = ()
    ring_seconds: float = 20.0
    disk: Mapping[str, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    """A condition that holds now."""

    kind: str
    subject: str
    severity: str
    text: str


def switch_findings(switches: Mapping[str, Any]) -> list[Finding]:
    """A FreeSWITCH not connected, or connected but silent past its HEARTBEAT limit."""
    found = []
    for name, status in sorted(switches.items()):
        status = status if isinstance(status, Mapping) else {"state": status}
        state = status.get("state")
        if state != "connected":
            error = status.get("last_error") or ""
            found.append(Finding("switch_down", name, CRITICAL,
                                 f"FreeSWITCH {name} 未连接 / not connected ({state}{': ' + error if error else ''})"))
            continue
        age, limit = status.get("heartbeat_age"), status.get("heartbeat_timeout")
        if age is not None and limit and age > limit:
            found.append(Finding("switch_silent", name, CRITICAL,
                                 f"FreeSWITCH {name} 无心跳 {age:.0f} 秒 / silent for {age:.0f} s"))
    return found


def agent_findings(agents, ring_seconds: float, margin: float) -> list[Finding]:
    """Agents reserved or ringing longer than the longest ring time plus the margin."""
    limit = ring_seconds + margin
    found = []
    for agent in agents:
        if agent.get("state") in ("reserved", "ringing") and agent.get("seconds_in_state", 0) > limit:
            who = f"{agent.get('operator_no', '')} {agent.get('name', '')}".strip() or str(agent.get("agent_id"))
            found.append(Finding("agent_stuck", str(agent.get("operator_no") or agent.get("agent_id")), WARNING,
                                 f"坐席 {who} 处于 {agent['state']} 已 {agent['seconds_in_state']} 秒 / "
                                 f"agent stuck {agent['state']} for {agent['seconds_in_state']} s"))
    return found


def queue_findings(queues, waiting_limit: int) -> list[Finding]:
    """Queues with more callers waiting than the limit."""
    return [Finding("queue_waiting", str(q.get("queue")), WARNING,
                    f"队列 {q.get('display_name') or q.get('queue')} 排队 {q['waiting']} 人 / {q['waiting']} callers "
                    f"waiting (limit {waiting_limit})")
            for q in queues if waiting_limit and q.get("waiting", 0) > waiting_limit]


def answer_rate_finding(queues, target: float, min_calls: int) -> list[Finding]:
    """Today's 15-second answer rate over all queues below the target (once enough calls were answered)."""
    answered = sum(q.get("answered_today") or 0 for q in queues)
    if answered == 0 or answered < min_calls:
        return []
    within = sum((q.get("answer_rate_15s") or 0) * (q.get("answered_today") or 0) / 100.0 for q in queues)
    rate = 100.0 * within / answered
    if rate >= target:
        return []
    return [Finding("answer_rate", "", WARNING,
                    f"今日15秒接通率 {rate:.1f}% 低于目标 {target:.0f}% / 15-second answer rate {rate:.1f}% "
                    f"below {target:.0f}% ({answered} answered)")]


def disk_findings(disk: Mapping[str, tuple[int, int]], free_mb: int) -> list[Finding]:
    """Storage areas with less free space than the threshold."""
    found = []
    for area, (free, _total) in sorted(disk.items()):
        if free < free_mb * 1024 * 1024:
            found.append(Finding("disk_low", area, CRITICAL,
                                 f"{area} 磁盘剩余 {free // (1024 * 1024)} MB / disk low: {free // (1024 * 1024)} MB "
                                 f"free (threshold {free_mb} MB)"))
    return found


def evaluate(snapshot: Snapshot, thresholds: Thresholds) -> list[Finding]:
    """Every condition of SNAPSHOT_KINDS that holds in ``snapshot``."""
    return (switch_findings(snapshot.switches)
            + agent_findings(snapshot.agents, snapshot.ring_seconds, thresholds.ring_margin)
            + queue_findings(snapshot.queues, thresholds.queue_waiting)
            + answer_rate_finding(snapshot.queues, thresholds.answer_rate, thresholds.answer_min_calls)
            + disk_findings(snapshot.disk, thresholds.disk_free_mb))
