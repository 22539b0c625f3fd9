"""Free space on the file systems the product writes to (recordings, faxes, attachments, var/).

A write that meets a full disk must fail loudly, never leave a silently cut file: ``ensure_free`` refuses
to start one below a minimum, ``is_disk_full`` tells a full disk from other write errors, and ``DiskFull``
carries a message an operator and a caller can read.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path

MB = 1024 * 1024
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class DiskFull(OSError):
    """Not enough free space to write (the message names the place and the figures)."""

    def __init__(self, message: str):
        super().__init__(errno.ENOSPC, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def existing(path: Path | str) -> Path:
    """``path`` or its nearest existing parent (a folder not created yet lives on its parent's disk)."""
    probe = Path(path)
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return probe


def usage(path: Path | str) -> tuple[int, int]:
    """(free bytes an unprivileged writer may use, total bytes) of the file system holding ``path``."""
    st = os.statvfs(existing(path))
    return st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize


def free_bytes(path: Path | str) -> int:
    return usage(path)[0]


def ensure_free(path: Path | str, minimum: int, what: str = "") -> int:
    """The free bytes at ``path``; raises DiskFull when fewer than ``minimum`` are left."""
    free = free_bytes(path)
    if free < minimum:
        place = what or str(path)
        raise DiskFull(f"磁盘空间不足 / disk full: {place} has {free // MB} MB free, at least "
                       f"{max(minimum // MB, 1)} MB needed")
    return free


def is_disk_full(exc: BaseException) -> bool:
    """True for an error a full disk (or an exhausted quota) caused: ENOSPC/EDQUOT, or a tool's message
    saying so (sox and other child processes report it as text)."""
    if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
        return True
    text = str(exc)
    return "No space left on device" in text or "Disk quota exceeded" in text
