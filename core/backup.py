"""Online backups of the database and the stored files (recordings, fax, attachments), and their restore.

``python -m core.backup`` writes one folder under HOTLINE_BACKUP_DIR (default var/backups) named by the UTC
time: the database (SQLite through its online backup API, a consistent copy while the product runs;
PostgreSQL through ``pg_dump --format=custom``), every stored file under ``files/<area>/<path>`` and
``manifest.json`` with each file's size and sha256. A file whose hash the previous backup already holds is
hard-linked from there (incremental by hash; every folder stays complete on its own). Only the newest
HOTLINE_BACKUP_KEEP folders are kept. ``python -m core.backup restore <folder> --into <database url>
--var-dir <dir>`` checks every sha256, refuses a database that already holds tables unless ``--force``, and
reports its progress. The product schedules the backup daily (ops.jobs). This module knows only database
URLs and directories, never a model.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Mapping
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger(__name__)

FORMAT = 1
MANIFEST = "manifest.json"
AREAS = ("recordings", "fax", "attachments")
PARTIAL_PREFIX = ".partial-"
CHUNK = 1 << 20
DEFAULT_KEEP = 7
# pg_dump/pg_restore of a large database may take long; a hung one must not block the next day's run.
PG_TIMEOUT = 6 * 3600

Progress = Callable[[str], None]


class BackupError(RuntimeError):
    """A backup or restore that cannot be done; the message says why."""


@dataclass(frozen=True)
class Sources:
    """What a backup copies: the database and each file area's root directory."""

    database_url: str
    areas: Mapping[str, Path]

    @classmethod
    def from_config(cls, config) -> "Sources":
        return cls(config.database_url, {"recordings": Path(config.recordings_dir), "fax": Path(config.fax_dir),
                                         "attachments": Path(config.attachments_dir)})


@dataclass(frozen=True)
class BackupSettings:
    """HOTLINE_BACKUP_DIR, HOTLINE_BACKUP_KEEP (daily folders kept) and HOTLINE_BACKUP_AT (local HH:MM, or
    ``off``: no scheduled backup)."""

    directory: Path
    keep: int = DEFAULT_KEEP
    at: tuple[int, int] | None = (2, 30)

    @classmethod
    def from_config(cls, config) -> "BackupSettings":
        extra = config.extra
        directory = Path(extra.get("HOTLINE_BACKUP_DIR") or Path(config.var_dir) / "backups")
        raw_keep = str(extra.get("HOTLINE_BACKUP_KEEP", DEFAULT_KEEP)).strip()
        if not raw_keep.isascii() or not raw_keep.isdigit() or int(raw_keep) < 1:
            raise ValueError(f"HOTLINE_BACKUP_KEEP: a whole number of at least 1, got {raw_keep!r}")
        return cls(directory, int(raw_keep), parse_at(str(extra.get("HOTLINE_BACKUP_AT", "02:30"))))


def parse_at(text: str) -> tuple[int, int] | None:
    """``HH:MM`` (local time of the daily run) -> (hour, minute); ``off`` -> None."""
    text = text.strip().lower()
    if text == "off":
        return None
    hour, sep, minute = text.partition(":")
    if sep and hour.isascii() and minute.isascii() and hour.isdigit() and minute.isdigit() \
            and len(minute) == 2 and 0 <= int(hour) < 24 and 0 <= int(minute) < 60:
        return int(hour), int(minute)
    raise ValueError(f"HOTLINE_BACKUP_AT: a time like 02:30 or 'off', got {text!r}")


@dataclass
class Result:
    """What one backup wrote."""

    folder: Path
    files: int = 0
    copied: int = 0
    linked: int = 0
    bytes: int = 0
    removed: list[Path] = field(default_factory=list)


# ---------------------------------------------------------------------- databases
def _sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///"):])
    return None


def _pg_env(url: str) -> tuple[dict[str, str], str | None]:
    """libpq environment for a postgresql:// URL (no password on a command line), and the schema named by
    an ``options=-csearch_path=...`` parameter (the only one pg_dump then dumps)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise BackupError(f"not a sqlite:/// or postgresql:// database URL: {parts.scheme or url[:20]!r}")
    env = dict(os.environ)
    for key, value in (("PGHOST", parts.hostname), ("PGPORT", parts.port), ("PGUSER", parts.username),
                       ("PGPASSWORD", parts.password), ("PGDATABASE", parts.path.lstrip("/"))):
        if value:
            env[key] = unquote(str(value))
    schema = None
    options = parse_qs(parts.query).get("options")
    if options:
        env["PGOPTIONS"] = options[0]
        for word in options[0].split():
            if word.startswith("-csearch_path="):
                schema = word.split("=", 1)[1].split(",")[0].strip('"') or None
    return env, schema


def _run(args: list[str], env: dict[str, str], what: str) -> None:
    try:
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=PG_TIMEOUT)
    except FileNotFoundError:
        raise BackupError(f"{args[0]} is not installed (Debian package postgresql-client)") from None
    except subprocess.TimeoutExpired:
        raise BackupError(f"{what} took longer than {PG_TIMEOUT} s") from None
    if done.returncode != 0:
        raise BackupError(f"{what} failed: {done.stderr.strip()[-500:]}")


def dump_database(url: str, folder: Path) -> str:
    """Write a consistent copy of the running database into ``folder``; returns the file's name."""
    path = _sqlite_path(url)
    if path is not None:
        if not path.is_file():
            raise BackupError(f"the SQLite database {path} does not exist")
        target = folder / "database.sqlite3"
        # The online backup API copies a consistent snapshot while other connections keep writing.
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as source, \
                sqlite3.connect(target) as copy:
            source.backup(copy)
        source.close()
        copy.close()
        return target.name
    env, schema = _pg_env(url)
    target = folder / "database.pgdump"
    args = ["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={target}"]
    if schema:
        args.append(f"--schema={schema}")
    _run(args, env, "pg_dump")
    return target.name


def database_is_empty(url: str) -> bool:
    """True when the database holds no table (a SQLite file that is missing counts as empty)."""
    path = _sqlite_path(url)
    if path is not None:
        if not path.exists() or path.stat().st_size == 0:
            return True
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            count = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        conn.close()
        return count == 0
    import psycopg2

    env, schema = _pg_env(url)
    conn = psycopg2.connect(url, connect_timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = %s",
                        (schema or "public",))
            return cur.fetchone()[0] == 0
    finally:
        conn.close()


def restore_database(dump: Path, url: str, *, force: bool) -> None:
    """Load a dump written by ``dump_database`` into the database at ``url``."""
    path = _sqlite_path(url)
    if dump.suffix == ".sqlite3":
        if path is None:
            raise BackupError("a SQLite backup restores into a sqlite:/// URL")
        path.parent.mkdir(parents=True, exist_ok=True)
        # The backup API replaces the whole target database, pages and schema, in one step.
        with sqlite3.connect(f"file:{dump}?mode=ro", uri=True) as source, sqlite3.connect(path) as target:
            source.backup(target)
        source.close()
        target.close()
        return
    if path is not None:
        raise BackupError("a PostgreSQL backup restores into a postgresql:// URL")
    env, _schema = _pg_env(url)
    args = ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
            f"--dbname={env.get('PGDATABASE', '')}"]
    if force:
        args += ["--clean", "--if-exists"]
    _run(args + [str(dump)], env, "pg_restore")


# ---------------------------------------------------------------------- files
def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_hashing(source: Path, target: Path) -> tuple[str, int]:
    """Copy and hash the bytes copied (a file still growing is recorded as copied, not as later)."""
    digest, size = hashlib.sha256(), 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with source.open("rb") as reader, target.open("wb") as writer:
        for chunk in iter(lambda: reader.read(CHUNK), b""):
            digest.update(chunk)
            writer.write(chunk)
            size += len(chunk)
    shutil.copystat(source, target)
    return digest.hexdigest(), size


def _files(root: Path):
    """Regular files below ``root`` (relative POSIX paths, sorted); symlinks are not followed."""
    if not root.is_dir():
        return
    for directory, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            path = Path(directory) / name
            if path.is_file() and not path.is_symlink():
                yield path, path.relative_to(root).as_posix()


def safe_relative(text: str) -> PurePosixPath:
    """A manifest path: relative, no '..', no empty part (a tampered manifest must not write elsewhere)."""
    path = PurePosixPath(text)
    if not text or path.is_absolute() or any(part in ("", "..", ".") for part in text.split("/")) \
            or "\\" in text or "\x00" in text:
        raise BackupError(f"unsafe path in the manifest: {text!r}")
    return path


# ---------------------------------------------------------------------- backup
def backups(root: Path) -> list[Path]:
    """Complete backup folders under ``root``, oldest first."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                  and (p / MANIFEST).is_file())


def read_manifest(folder: Path) -> dict:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupError(f"{folder} is not a backup folder: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{folder}: unknown manifest format")
    return manifest


def backup(sources: Sources, root: Path, *, keep: int = DEFAULT_KEEP, now: dt.datetime | None = None,
           progress: Progress | None = None) -> Result:
    """Write one complete backup folder under ``root`` and keep only the newest ``keep`` folders."""
    progress = progress or (lambda line: None)
    now = now or dt.datetime.now(dt.timezone.utc)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    folder = root / stamp
    if folder.exists():
        raise BackupError(f"{folder} exists already")
    previous = backups(root)
    known: dict[str, Path] = {}
    if previous:
        last = previous[-1]
        for entry in read_manifest(last).get("files", []):
            known[entry["sha256"]] = last / "files" / entry["area"] / entry["path"]
    work = Path(tempfile.mkdtemp(prefix=PARTIAL_PREFIX + stamp + "-", dir=root))
    result = Result(folder)
    try:
        progress("database …")
        db_file = dump_database(sources.database_url, work)
        entries = []
        for area in AREAS:
            source_root = sources.areas.get(area)
            if source_root is None:
                continue
            for path, rel in _files(Path(source_root)):
                target = work / "files" / area / rel
                digest = sha256_of(path)
                earlier = known.get(digest)
                size = path.stat().st_size
                if earlier is not None and earlier.is_file():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    try:
                        os.link(earlier, target)
                        result.linked += 1
                    except OSError:  # another file system, or links not allowed: copy instead
                        digest, size = _copy_hashing(path, target)
                        result.copied += 1
                else:
                    digest, size = _copy_hashing(path, target)
                    result.copied += 1
                entries.append({"area": area, "path": rel, "size": size, "sha256": digest})
                result.files += 1
                result.bytes += size
                if result.files % 500 == 0:
                    progress(f"files {result.files} …")
        manifest = {"format": FORMAT, "created_at": now.isoformat(timespec="seconds"),
                    "database": {"file": db_file, "kind": "sqlite" if db_file.endswith(".sqlite3") else "postgresql",
                                 "sha256": sha256_of(work / db_file)},
                    "files": entries}
        (work / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
        os.rename(work, folder)  # a folder with a manifest is complete: readers never see a half backup
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    result.removed = rotate(root, keep)
    progress(f"backup {folder}: {result.files} files ({result.copied} copied, {result.linked} linked), "
             f"{result.bytes} bytes")
    log.info("backup %s: database and %d files (%d copied, %d hard-linked from the previous backup)", folder,
             result.files, result.copied, result.linked)
    return result


def rotate(root: Path, keep: int) -> list[Path]:
    """Remove all but the newest ``keep`` complete backups and any partial folder left by a crash."""
    complete = backups(root)
    doomed = complete[:-keep] if keep > 0 else []
    doomed += [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PARTIAL_PREFIX)
               and p.stat().st_mtime < dt.datetime.now().timestamp() - 24 * 3600]
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    return doomed


# ---------------------------------------------------------------------- restore
def verify(folder: Path, progress: Progress | None = None) -> dict:
    """Check the database dump and every file against the manifest; returns the manifest or raises with
    every problem listed."""
    progress = progress or (lambda line: None)
    manifest = read_manifest(folder)
    problems = []
    database = manifest.get("database") or {}
    db_file = folder / str(safe_relative(str(database.get("file", ""))))
    if not db_file.is_file() or sha256_of(db_file) != database.get("sha256"):
        problems.append(f"database dump {db_file.name}: missing or sha256 differs")
    files = manifest.get("files", [])
    for number, entry in enumerate(files, 1):
        if entry.get("area") not in AREAS:
            raise BackupError(f"unknown file area in the manifest: {entry.get('area')!r}")
        path = folder / "files" / entry["area"] / safe_relative(str(entry.get("path", "")))
        if not path.is_file():
            problems.append(f"{entry['area']}/{entry['path']}: missing")
        elif sha256_of(path) != entry.get("sha256"):
            problems.append(f"{entry['area']}/{entry['path']}: sha256 differs")
        if number % 500 == 0 or number == len(files):
            progress(f"verified {number}/{len(files)} files")
    if problems:
        raise BackupError(f"{folder} is damaged: " + "; ".join(problems[:20])
                          + (f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""))
    return manifest


def restore(folder: Path, database_url: str, var_dir: Path, *, force: bool = False,
            progress: Progress | None = None) -> int:
    """Restore ``folder`` into the database at ``database_url`` and the file areas under ``var_dir``
    (recordings/, fax/, attachments/); returns the number of files restored."""
    progress = progress or (lambda line: None)
    folder, var_dir = Path(folder), Path(var_dir)
    manifest = verify(folder, progress)
    if not force and not database_is_empty(database_url):
        raise BackupError("the target database already holds tables; restore into an empty one, or pass "
                          "--force to replace it")
    progress("database …")
    restore_database(folder / manifest["database"]["file"], database_url, force=force)
    files = manifest.get("files", [])
    for number, entry in enumerate(files, 1):
        rel = safe_relative(entry["path"])
        target = var_dir / entry["area"] / rel
        if target.is_file() and sha256_of(target) == entry["sha256"]:
            continue
        if target.exists() and not force:
            raise BackupError(f"{target} exists with other content; pass --force to replace it")
        temporary = target.with_name(target.name + ".restoring")
        digest, _size = _copy_hashing(folder / "files" / entry["area"] / rel, temporary)
        if digest != entry["sha256"]:
            temporary.unlink(missing_ok=True)
            raise BackupError(f"{entry['area']}/{entry['path']}: changed while being restored")
        os.replace(temporary, target)
        if number % 500 == 0 or number == len(files):
            progress(f"restored {number}/{len(files)} files")
    progress(f"restore of {folder.name} done: database and {len(files)} files")
    return len(files)


# ---------------------------------------------------------------------- command line
def main(argv: list[str] | None = None, out=None) -> int:
    """``python -m core.backup [backup|list|restore]``; returns the exit status."""
    out = out or sys.stdout
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-"):
        argv.insert(0, "backup")
    parser = argparse.ArgumentParser(prog="python -m core.backup", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("backup", help="back up now (the default)")
    make.add_argument("--into", help="backup directory (default HOTLINE_BACKUP_DIR, var/backups)")
    make.add_argument("--keep", type=int, help="complete backups kept (default HOTLINE_BACKUP_KEEP, 7)")
    commands.add_parser("list", help="list the complete backups")
    back = commands.add_parser("restore", help="restore a backup folder into an empty instance")
    back.add_argument("folder")
    back.add_argument("--into", required=True, metavar="DATABASE_URL", help="the database to restore into")
    back.add_argument("--var-dir", required=True, help="recordings/, fax/ and attachments/ go below it")
    back.add_argument("--force", action="store_true", help="replace a database that already holds tables")
    args = parser.parse_args(argv)

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    try:
        if args.command == "restore":
            restore(Path(args.folder), args.into, Path(args.var_dir), force=args.force, progress=say)
            return 0
        from core.config import load_config

        config = load_config()
        settings = BackupSettings.from_config(config)
        root = Path(args.into) if getattr(args, "into", None) else settings.directory
        if args.command == "list":
            for folder in backups(root):
                manifest = read_manifest(folder)
                say(f"{folder}  {manifest['created_at']}  {len(manifest.get('files', []))} files")
            return 0
        backup(Sources.from_config(config), root, keep=args.keep or settings.keep, progress=say)
        return 0
    except (BackupError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.exit(main())
