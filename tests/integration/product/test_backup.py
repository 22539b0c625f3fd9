"""Backup and restore (core.backup) of a populated instance, on SQLite and on PostgreSQL."""
from __future__ import annotations

import datetime as dt
import io
import os
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from core import backup as bk
from core import db as core_db


def _populate(var: Path) -> None:
    """Tickets with history rows, an attachment, a recording and a fax file."""
    from caseflow import services
    from caseflow.attachments import add_attachment
    from recorder.models import Recording

    for n in range(3):
        ticket = services.create_ticket(f"第{n}号诉求：路灯不亮", citizen_phone="13800138000")
    add_attachment(ticket, var / "attachments", b"%PDF-1.4\n%\xe2\xe3\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n",
                   "photo.pdf")
    audio = var / "recordings" / "2026" / "03" / "01" / "call-1.wav"
    audio.parent.mkdir(parents=True)
    audio.write_bytes(b"RIFF" + os.urandom(4000))
    Recording.create(call_uuid="call-1", path="2026/03/01/call-1.wav", day=dt.date(2026, 3, 1), size=4004)
    (var / "fax").mkdir()
    (var / "fax" / "in-1.tiff").write_bytes(b"II*\x00" + os.urandom(500))


def _rows(query_one) -> dict:
    from caseflow.models import Attachment, Ticket, TicketHistory
    from recorder.models import Recording

    return {model._meta.table_name: query_one(f'SELECT * FROM "{model._meta.table_name}" ORDER BY id')
            for model in (Ticket, TicketHistory, Attachment, Recording)}


def _sqlite_rows(path: Path) -> dict:
    conn = sqlite3.connect(path)
    try:
        return _rows(lambda sql: conn.execute(sql).fetchall())
    finally:
        conn.close()


def _pg_rows(url: str) -> dict:
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        def query(sql):
            with conn.cursor() as cur:
                cur.execute(sql)
                return [tuple(row) for row in cur.fetchall()]
        return _rows(query)
    finally:
        conn.close()


@pytest.fixture
def empty_target(db, db_url, tmp_path):
    """A database URL of an empty instance of the same kind (PostgreSQL: a fresh database, dropped after, with
    the test's schema on its search path)."""
    if core_db.is_sqlite(db):
        yield f"sqlite:///{tmp_path / 'restored' / 'hotline.sqlite3'}", None
        return
    import psycopg2

    name = f"hotline_restore_{os.getpid()}"
    parts = urlsplit(db_url)
    admin = psycopg2.connect(db_url.split("?")[0])
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cur.execute(f'CREATE DATABASE "{name}"')
    target = parts._replace(path="/" + name).geturl()
    yield target, name
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.close()


def test_backup_restores_into_an_empty_instance(db, db_url, tmp_path, empty_target):
    """Should restore every ticket, history row, attachment and recording row and every file byte for byte."""
    var = tmp_path / "var"
    with db.connection_context():
        _populate(var)
    sources = bk.Sources(db_url, {area: var / area for area in bk.AREAS})
    lines = []
    result = bk.backup(sources, tmp_path / "backups", keep=3, progress=lines.append)
    assert result.files == 3 and result.copied == 3
    target_url, _name = empty_target
    target_var = tmp_path / "restored-var"
    out = io.StringIO()
    assert bk.main(["restore", str(result.folder), "--into", target_url, "--var-dir", str(target_var)], out=out) == 0
    assert "restore of" in out.getvalue() and "verified 3/3 files" in out.getvalue()

    if core_db.is_sqlite(db):
        before, after = _sqlite_rows(Path(db_url[len("sqlite:///"):])), _sqlite_rows(Path(target_url[10:]))
    else:
        before, after = _pg_rows(db_url), _pg_rows(target_url)
    assert len(before["ticket"]) == 3 and sum(len(rows) for rows in before.values()) >= 3 + 4 + 1 + 1
    assert after == before
    for area in bk.AREAS:
        originals = sorted(p.relative_to(var / area) for p in (var / area).rglob("*") if p.is_file())
        assert originals, area
        for rel in originals:
            assert (target_var / area / rel).read_bytes() == (var / area / rel).read_bytes()

    # A second restore into the now populated instance is refused without --force.
    with pytest.raises(bk.BackupError, match="already holds tables"):
        bk.restore(result.folder, target_url, target_var)


def test_incremental_backup_links_unchanged_files_and_rotates(db, db_url, tmp_path):
    """Should hard-link files the previous backup holds, copy new ones, and keep only the newest N folders."""
    var = tmp_path / "var"
    with db.connection_context():
        _populate(var)
    sources = bk.Sources(db_url, {area: var / area for area in bk.AREAS})
    root = tmp_path / "backups"
    start = dt.datetime(2026, 3, 1, 2, 30, tzinfo=dt.timezone.utc)
    first = bk.backup(sources, root, keep=2, now=start)
    (var / "fax" / "in-2.tiff").write_bytes(b"II*\x00second")
    second = bk.backup(sources, root, keep=2, now=start + dt.timedelta(days=1))
    assert (second.copied, second.linked) == (1, 3)
    linked = second.folder / "files" / "fax" / "in-1.tiff"
    assert linked.stat().st_ino == (first.folder / "files" / "fax" / "in-1.tiff").stat().st_ino
    third = bk.backup(sources, root, keep=2, now=start + dt.timedelta(days=2))
    assert third.removed == [first.folder] and bk.backups(root) == [second.folder, third.folder]
    assert linked.read_bytes() == (var / "fax" / "in-1.tiff").read_bytes()  # the link outlives the first folder


def test_restore_refuses_a_damaged_backup(db, db_url, tmp_path):
    """Should refuse to restore when a file's sha256 differs, naming the file, and write nothing."""
    var = tmp_path / "var"
    with db.connection_context():
        _populate(var)
    result = bk.backup(bk.Sources(db_url, {area: var / area for area in bk.AREAS}), tmp_path / "backups")
    (result.folder / "files" / "fax" / "in-1.tiff").write_bytes(b"tampered")
    target = tmp_path / "restored" / "hotline.sqlite3"
    with pytest.raises(bk.BackupError, match="fax/in-1.tiff: sha256 differs"):
        bk.restore(result.folder, f"sqlite:///{target}", tmp_path / "restored-var")
    assert not target.exists() and not (tmp_path / "restored-var").exists()


def test_manifest_paths_cannot_escape(tmp_path):
    """Should refuse manifest paths that are absolute or climb out of the area."""
    for bad in ("/etc/passwd", "../x", "a/../../x", "", "a//b"):
        with pytest.raises(bk.BackupError, match="unsafe path"):
            bk.safe_relative(bad)
    assert str(bk.safe_relative("2026/03/a.wav")) == "2026/03/a.wav"


def test_settings_are_checked():
    """Should read HOTLINE_BACKUP_DIR/KEEP/AT with var/backups, 7 and 02:30 by default and refuse bad values."""
    from core.config import load_config

    config = load_config({"var_dir": "/srv/hotline"})
    settings = bk.BackupSettings.from_config(config)
    assert (settings.directory, settings.keep, settings.at) == (Path("/srv/hotline/backups"), 7, (2, 30))
    config = load_config({"HOTLINE_BACKUP_KEEP": "14", "HOTLINE_BACKUP_AT": "off", "HOTLINE_BACKUP_DIR": "/b"})
    assert bk.BackupSettings.from_config(config) == bk.BackupSettings(Path("/b"), 14, None)
    for key, value in (("HOTLINE_BACKUP_KEEP", "0"), ("HOTLINE_BACKUP_KEEP", "٣"), ("HOTLINE_BACKUP_AT", "25:00"),
                       ("HOTLINE_BACKUP_AT", "2:3")):
        with pytest.raises(ValueError, match=key):
            bk.BackupSettings.from_config(load_config({key: value}))
