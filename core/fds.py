"""File descriptors: raise the process's open-file limit at start, count the descriptors in use.

Every call, web connection and database file takes one; when the process runs out (EMFILE) new calls get
no answer, so the web server leaves a reserve to the call path (``webui.server``) and /healthz shows both.
"""
from __future__ import annotations

import logging
import os

try:
    import resource
except ImportError:  # not on this platform: no limit to read or raise
    resource = None

log = logging.getLogger(__name__)


def raise_open_file_limit() -> tuple[int, int] | None:
    """Raise the soft RLIMIT_NOFILE to the hard limit (the most an unprivileged process may); log it.

    Returns (soft, hard) in force afterwards, or None where the platform has no such limit.
    """
    if resource is None:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:
        # Linux refuses an infinite soft limit above fs.nr_open; a million descriptors is plenty.
        target = max(soft, 1 << 20) if soft != resource.RLIM_INFINITY else soft
    if target != soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            log.info("open-file limit raised from %d to %d", soft, target)
            soft = target
        except (ValueError, OSError) as error:
            log.warning("open-file limit stays %d (hard %d): %s", soft, hard, error)
    else:
        log.info("open-file limit %d (already the hard limit)", soft)
    return soft, hard


def fd_limit() -> int | None:
    """The soft open-file limit now in force, or None where unknown or unlimited."""
    if resource is None:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def fds_in_use() -> int | None:
    """How many descriptors the process holds (Linux /proc, else /dev/fd), or None where it cannot tell."""
    for directory in ("/proc/self/fd", "/dev/fd"):
        try:
            # listdir opens the directory itself: one descriptor more than the process holds otherwise.
            return len(os.listdir(directory)) - 1
        except OSError:
            continue
    return None


def fds_free() -> int | None:
    """Descriptors the process may still open before EMFILE, or None where unknown."""
    limit, used = fd_limit(), fds_in_use()
    if limit is None or used is None:
        return None
    return limit - used
