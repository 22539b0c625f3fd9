"""Ticket attachments stored under Config.attachments_dir with size and sha256 (uploads, letters, faxes)."""
from __future__ import annotations

import hashlib
import logging
import mimetypes
import re
import uuid
from pathlib import Path
from typing import BinaryIO, Optional, Union

from caseflow.models import Attachment, Ticket, User
from core import diskspace
from core.alarms import CRITICAL, raise_alarm
from core.clock import Clock

log = logging.getLogger(__name__)

MAX_SIZE = 50 * 1024 * 1024
CHUNK = 64 * 1024
ALLOWED_KINDS = ("upload", "reply", "letter", "fax", "email", "recording", "file")


class AttachmentError(ValueError):
    """A file was refused (empty, too large, bad name); the message says why."""


class StorageFull(AttachmentError):
    """The attachments' disk is full: nothing was stored (no cut file), an alarm was raised."""

    def __init__(self, detail: str = ""):
        super().__init__("存储空间已满，文件未保存，请联系管理员 / storage full: the file was not saved; tell the "
                         "administrator" + (f" ({detail})" if detail else ""))


def safe_name(filename: str) -> str:
    """The file's base name with path separators and control characters removed (kept for display)."""
    name = Path(str(filename or "").replace("\\", "/")).name
    name = re.sub(r"[\x00-\x1f\x7f/]", "", name).strip().lstrip(".")
    return name[:200] or "file"


def store_file(root: Path, data: Union[bytes, BinaryIO], filename: str, clock: Optional[Clock] = None,
               max_size: int = MAX_SIZE) -> dict:
    """Write ``data`` below ``root``/YYYY/MM/ under a random name; returns filename, path (relative),
    size and sha256. Empty and oversized files are refused and leave nothing behind; a full disk is
    StorageFull (an AttachmentError: the caller shows its message) with the storage_full alarm raised, and
    leaves nothing behind either."""
    clock = clock or Clock()
    name = safe_name(filename)
    now = clock.now()
    rel = Path(f"{now:%Y}") / f"{now:%m}" / f"{uuid.uuid4().hex}{Path(name).suffix.lower()[:10]}"
    target = Path(root) / rel
    digest, size = hashlib.sha256(), 0
    tmp = target.with_name(target.name + ".part")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as out:
            chunks = [data] if isinstance(data, (bytes, bytearray)) else iter(lambda: data.read(CHUNK), b"")
            for chunk in chunks:
                size += len(chunk)
                if size > max_size:
                    raise AttachmentError(f"文件超过{max_size // (1024 * 1024)}MB / file larger than {max_size} bytes")
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise AttachmentError("文件为空 / the file is empty")
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if not diskspace.is_disk_full(exc):
            raise
        detail = f"{name}, {size} B written before the disk filled up"
        log.error("attachment %s not stored under %s: disk full", name, root)
        raise_alarm("storage_full", f"附件存储已满，文件未保存 / attachments disk full: {detail}",
                    subject="attachments", severity=CRITICAL)
        raise StorageFull() from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return {"filename": name, "path": rel.as_posix(), "size": size, "sha256": digest.hexdigest(),
            "content_type": mimetypes.guess_type(name)[0] or "application/octet-stream"}


# Leading bytes of the file kinds we can tell by content (the name may lie; the content decides).
_MAGIC = ((b"%PDF-", "application/pdf"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
          (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"), (b"PK\x03\x04", "application/zip"),
          (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"))
SNIFF_BYTES = 512


def sniff(head: bytes) -> str:
    """The kind of a file from its first bytes: a type of _MAGIC, text/html for markup, text/plain for
    UTF-8 text without NULs, else application/octet-stream."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.reason != "unexpected end of data":  # only a character cut at the end is still text
            return "application/octet-stream"
        text = head[:error.start].decode("utf-8")
    if "\x00" in text:
        return "application/octet-stream"
    if text.lstrip("\ufeff \t\r\n")[:1] == "<":
        return "text/html"  # HTML, SVG, XML: never served as a harmless document
    return "text/plain"


def checked_type(path: Path, filename: str, allowed: dict[str, tuple[str, str]]) -> str:
    """The content type to store for the file at ``path`` named ``filename``: its extension must be one of
    ``allowed`` ({".pdf": (sniffed kind, type to store)}) and its content must be that kind."""
    ext = Path(filename).suffix.lower()
    if ext not in allowed:
        raise AttachmentError(f"不支持的文件类型 {ext or '(无扩展名)'}，可上传 {' '.join(sorted(allowed))} / "
                              f"file type {ext or '(none)'} not accepted: use {', '.join(sorted(allowed))}")
    with Path(path).open("rb") as handle:
        kind = sniff(handle.read(SNIFF_BYTES))
    expected, stored = allowed[ext]
    if kind != expected:
        raise AttachmentError(f"文件内容与扩展名 {ext} 不符 / the content of the file is not a {ext} file ({kind})")
    return stored


def store_checked(root: Path, data, filename: str, allowed: dict[str, tuple[str, str]],
                  clock: Optional[Clock] = None, max_size: int = MAX_SIZE) -> dict:
    """``store_file`` plus ``checked_type``: the stored dict with ``content_type`` read from the content
    (which must agree with the name); a refused file leaves nothing behind."""
    info = store_file(root, data, filename, clock, max_size)
    stored = Path(root) / info["path"]
    try:
        info["content_type"] = checked_type(stored, info["filename"], allowed)
    except BaseException:
        stored.unlink(missing_ok=True)
        raise
    return info


def discard(root: Path, infos) -> None:
    """Remove files stored by ``store_file`` that will not be attached after all."""
    for info in infos:
        (Path(root) / info["path"]).unlink(missing_ok=True)


def attach_stored(ticket: Ticket, info: dict, actor: Optional[User] = None, kind: str = "upload",
                  clock: Optional[Clock] = None, actor_label: str = "") -> Attachment:
    """Attach a file already stored by ``store_file``/``store_checked`` to ``ticket`` with a history row
    (the caller has checked who may write; call inside the transaction that creates the ticket, if any)."""
    from caseflow import services

    if kind not in ALLOWED_KINDS:
        raise AttachmentError(f"unknown attachment kind {kind!r}")
    clock = clock or Clock()
    with Attachment._meta.database.atomic():
        row = Attachment.create(ticket=ticket, kind=kind, filename=info["filename"], path=info["path"],
                                content_type=info["content_type"], size=info["size"], sha256=info["sha256"],
                                uploaded_by=actor, created_at=services.to_db(clock.now()))
        services._history(ticket, actor, "attach", ticket.status, ticket.status,
                          f"{info['filename']} ({info['size']} B)", services.to_db(clock.now()),
                          label=actor_label or ("" if actor else services.SYSTEM))
    return row


def add_attachment(ticket: Ticket, root: Path, data, filename: str, actor: Optional[User] = None,
                   kind: str = "upload", clock: Optional[Clock] = None, max_size: int = MAX_SIZE) -> Attachment:
    """Store a file and attach it to ``ticket`` with a history row; the actor must be allowed to write to it
    (services.may_write: NotFound when they cannot see it, PermissionDenied when they may only look)."""
    from caseflow import services

    if kind not in ALLOWED_KINDS:
        raise AttachmentError(f"unknown attachment kind {kind!r}")
    if actor is not None:
        services.require_write(actor, ticket)
    clock = clock or Clock()
    info = store_file(root, data, filename, clock, max_size)
    return attach_stored(ticket, info, actor, kind, clock)


def resolve(root: Path, attachment: Attachment) -> Path:
    """Absolute path of a stored attachment, refusing anything that escapes ``root``."""
    base = Path(root).resolve()
    path = (base / attachment.path).resolve()
    if base != path and base not in path.parents:
        raise AttachmentError("attachment path escapes the storage root")
    return path
