"""The operations jobs: the alarm check (a snapshot of switches, agents, queues and disks through the pure
rules), the record-chain check and the daily backup, each raising its alarm on failure.

The product (hotline.product) builds one ``Checks`` and calls ``register_jobs`` with its scheduler.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from core import backup as backups
from core import diskspace
from core.jobguard import database_unavailable
from core.config import PROJECT_ROOT
from ops.alarms import AlarmService
from ops.rules import CRITICAL, SNAPSHOT_KINDS, Snapshot, Thresholds, evaluate

log = logging.getLogger(__name__)

CHECK_SECONDS = 15
CHAIN_MINUTES = 60


def disk_usage(paths: Mapping[str, Path]) -> dict[str, tuple[int, int]]:
    """Free and total bytes of the file system holding each area (its nearest existing parent). Areas on one
    file system are one entry named after all of them ("recordings+fax"): one disk, one alarm."""
    by_device: dict[int, tuple[list[str], tuple[int, int]]] = {}
    for area, path in paths.items():
        probe = diskspace.existing(path)
        try:
            device = os.stat(probe).st_dev
            figures = diskspace.usage(probe)
        except OSError as exc:
            log.warning("disk usage of %s (%s): %s", area, probe, exc)
            continue
        by_device.setdefault(device, ([], figures))[0].append(area)
    return {"+".join(areas): figures for areas, figures in by_device.values()}


@dataclass
class Checks:
    """The periodic checks of one running product. ``switch_status()`` is the pool's status (or None when no
    switch is wired), ``acd`` the dispatcher (queue_stats, agent_stats, queues), ``verify_chain()`` returns
    the record chain's problems, ``run_backup()`` makes one backup (raising on failure)."""

    service: AlarmService
    thresholds: Thresholds = field(default_factory=Thresholds)
    switch_status: Optional[Callable[[], Mapping[str, Any]]] = None
    acd: Any = None
    storage: Mapping[str, Path] = field(default_factory=dict)
    verify_chain: Optional[Callable[[], list]] = None
    run_backup: Optional[Callable[[], object]] = None

    def snapshot(self) -> Snapshot:
        acd = self.acd
        ring = max((q.ring_timeout or 0 for q in acd.queues.values()), default=20) if acd is not None else 20
        return Snapshot(switches=dict(self.switch_status()) if self.switch_status else {},
                        agents=tuple(acd.agent_stats()) if acd is not None else (),
                        queues=tuple(acd.queue_stats()) if acd is not None else (),
                        ring_seconds=float(ring), disk=disk_usage(self.storage))

    def check(self) -> list:
        """Evaluate the rules on a fresh snapshot and reconcile the alarms; returns the findings."""
        findings = evaluate(self.snapshot(), self.thresholds)
        self.service.reconcile(findings, SNAPSHOT_KINDS)
        return findings

    def chain(self) -> list:
        """Verify the call-record chain; alarm on any problem (and on a check that cannot run), clear when sound."""
        try:
            problems = list(self.verify_chain()) if self.verify_chain else []
        except Exception as exc:  # noqa: BLE001 - a check that cannot run is itself worth an alarm
            if database_unavailable(exc):
                raise  # not the chain's fault, and no alarm could be stored: the scheduler logs the outage
            log.exception("call-record chain check failed")
            self.service.raise_alarm("chain_broken", f"话单校验无法运行 / record check failed: {exc}"[:255],
                                     severity=CRITICAL)
            return [exc]
        if problems:
            first = problems[0]
            where = getattr(first, "where", "") or getattr(first, "call_uuid", "")
            self.service.raise_alarm(
                "chain_broken", f"话单签封链校验发现 {len(problems)} 处问题 / call-record chain: {len(problems)} "
                                f"problem(s), first {where}: {getattr(first, 'reason', first)}"[:255],
                severity=CRITICAL)
        else:
            self.service.clear("chain_broken")
        return problems

    def backup(self) -> object:
        """Run the daily backup; a failure raises the backup_failed alarm (it never propagates)."""
        try:
            result = self.run_backup() if self.run_backup else None
        except Exception as exc:  # noqa: BLE001 - alarmed; the next day's run tries again
            log.exception("backup failed")
            self.service.raise_alarm("backup_failed", f"备份失败 / backup failed: {exc}"[:255], severity=CRITICAL)
            return None
        self.service.clear("backup_failed")
        return result


def chain_verifier(config) -> Callable[[], list]:
    """The recorder's public chain check with the product's record key: a list of problems."""
    def verify() -> list:
        from recorder.integrity import record_key, verify_database

        report = verify_database(record_key(config.secret_key, config.extra))
        return list(getattr(report, "problems", report))
    return verify


def backup_runner(config, python: str = sys.executable) -> Callable[[], str]:
    """One backup with the configured settings, as a child process (``python -m core.backup``): the copy and
    the hashing never hold up calls, and pg_dump needs a process anyway. Raises BackupError on failure."""
    settings = backups.BackupSettings.from_config(config)
    # The child reads the same places from its environment (the database URL is kept off its command line).
    env = {**os.environ, "HOTLINE_DATABASE_URL": config.database_url, "HOTLINE_VAR_DIR": str(config.var_dir),
           "HOTLINE_RECORDINGS_DIR": str(config.recordings_dir), "HOTLINE_FAX_DIR": str(config.fax_dir),
           "HOTLINE_ATTACHMENTS_DIR": str(config.attachments_dir), "HOTLINE_MODE": config.mode,
           "HOTLINE_SECRET_KEY": config.secret_key}

    def run() -> str:
        try:
            done = subprocess.run([python, "-m", "core.backup", "backup", "--into", str(settings.directory),
                                   "--keep", str(settings.keep)], env=env, cwd=str(PROJECT_ROOT),
                                  capture_output=True, text=True, timeout=backups.PG_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise backups.BackupError(f"no result after {backups.PG_TIMEOUT} s") from None
        if done.returncode != 0:
            raise backups.BackupError((done.stderr.strip() or f"exit status {done.returncode}")[-300:])
        lines = done.stdout.strip().splitlines()
        return lines[-1] if lines else ""
    return run


def register_jobs(scheduler, checks: Checks, *, settings: backups.BackupSettings, tz,
                  wrap: Callable[[Callable], Callable] = lambda func: func,
                  check_seconds: float = CHECK_SECONDS, chain_minutes: float = CHAIN_MINUTES) -> list[str]:
    """Add the alarm check, the record-chain check and the daily backup (unless HOTLINE_BACKUP_AT=off)."""
    scheduler.add_job(wrap(checks.check), "interval", seconds=check_seconds, id="ops-alarm-check",
                      max_instances=1, coalesce=True)
    scheduler.add_job(wrap(checks.chain), "interval", minutes=chain_minutes, id="ops-record-chain",
                      max_instances=1, coalesce=True)
    ids = ["ops-alarm-check", "ops-record-chain"]
    if settings.at is not None:
        hour, minute = settings.at
        scheduler.add_job(wrap(checks.backup), "cron", hour=hour, minute=minute, timezone=tz, id="ops-backup",
                          max_instances=1, coalesce=True, misfire_grace_time=3600)
        ids.append("ops-backup")
    return ids
