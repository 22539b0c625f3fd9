"""Files every node sees: recordings, faxes, prompts and attachments under one shared path.

With HOTLINE_SHARED_DIR set (an NFS mount in a deployment of several nodes), the recordings, fax, attachments
and sounds (prompts) directories default to folders of it, so the call processes of a pair, the web workers
and FreeSWITCH (switch_*_dir when it mounts the share elsewhere) read and write the same files. Each part
keeps its own containment check inside its directory (recorder.storage, caseflow.attachments, the prompt
files); ``check`` adds, for the directories themselves:

- the shared path is absolute, a directory, and writable (a probe file is written and removed);
- every one of the four resolves (symbolic links followed) inside the shared path: a link pointing out of
  it would put one node's files where the others cannot see them;
- a marker file, ``.hotline-storage``, names the database the files belong to. The call process writes it
  when it is absent; a web worker (``create=False``) refuses a path without it: that is a local folder, not
  the share the call process writes to. A marker naming another database is refused by both (a share of
  another hotline, or of a test install).

Without HOTLINE_SHARED_DIR the directories stay under HOTLINE_VAR_DIR as before and nothing here runs.
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from core.config import ConfigError

MARKER = ".hotline-storage"
FOLDERS = {"recordings_dir": "recordings", "fax_dir": "fax", "attachments_dir": "attachments",
           "sounds_dir": "sounds"}


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def check(config, identity: str, *, create: bool) -> list[str]:
    """Check the shared path of ``config`` for the database named by ``identity``; returns what was done
    (directories made, the marker written). Raises ConfigError saying what is wrong and what to do."""
    root = config.shared_dir
    if root is None:
        return []
    root = Path(root)
    done: list[str] = []
    if not root.is_absolute():
        raise ConfigError(f"HOTLINE_SHARED_DIR must be an absolute path, got {str(root)!r}")
    if not root.is_dir():
        raise ConfigError(f"HOTLINE_SHARED_DIR {root} is not a directory: mount the shared storage there "
                          "(NFS, docs/deploy.md) before starting")
    probe = root / f".probe-{uuid.uuid4().hex}"
    try:
        probe.write_bytes(b"x")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"HOTLINE_SHARED_DIR {root} is not writable by this process: {exc}") from None
    for name, folder in FOLDERS.items():
        path = Path(getattr(config, name))
        if not _inside(path, root):
            raise ConfigError(f"{name} {path} is outside HOTLINE_SHARED_DIR {root} (or a link leads out of it): "
                              "every node must see the same files; leave it unset to use "
                              f"{root / folder}")
        if create and not path.exists():
            path.mkdir(parents=True, exist_ok=True)
            done.append(f"made {path}")
    marker = root / MARKER
    try:
        found = marker.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        found = None
    except OSError as exc:
        raise ConfigError(f"cannot read {marker}: {exc}") from None
    if found is None:
        if not create:
            raise ConfigError(f"HOTLINE_SHARED_DIR {root} holds no {MARKER}: it is not the shared storage the call "
                              "process (run.py) writes to. Mount the same share on this node")
        marker.write_text(identity + "\n", encoding="utf-8")
        done.append(f"wrote {marker}")
    elif found != identity:
        raise ConfigError(f"HOTLINE_SHARED_DIR {root} belongs to another database ({found}), not to this one "
                          f"({identity}): wrong share, or a copy from another install")
    return done


def seed_sounds(shipped: Path, target: Path) -> int:
    """Copy the shipped prompt texts and recordings (sounds/) into the shared sounds folder, file by file,
    where absent (an administrator's edits are kept). Returns how many files were copied."""
    shipped, target = Path(shipped), Path(target)
    if not shipped.is_dir() or shipped.resolve() == target.resolve():
        return 0
    copied = 0
    for source in shipped.rglob("*"):
        relative = source.relative_to(shipped)
        if source.is_dir() or relative.parts[0].startswith("."):
            continue  # the rendering cache is made again where it is needed
        destination = target / relative
        if destination.exists():
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)
        copied += 1
    return copied


def database_identity(db) -> str:
    """Names the database the files belong to: PostgreSQL's system identifier, database and schema; the
    SQLite file's absolute path."""
    import peewee

    if isinstance(db, peewee.PostgresqlDatabase):
        row = db.execute_sql("SELECT (SELECT system_identifier FROM pg_control_system())::text, "
                             "current_database(), current_schema()").fetchone()
        return "postgresql:" + "/".join(str(part) for part in row)
    return "sqlite:" + os.path.abspath(db.database)
