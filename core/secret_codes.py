"""Keyed hashes of the short secret codes citizens type: the website's query code, the SMS verification codes.

A short code under a fast unkeyed hash falls to a copy of the database: a GPU tries billions of SHA-256 a
second, and a 10-character query code (~49 bits) is found within a day. An HMAC-SHA256 under the product's
secret key (HOTLINE_SECRET_KEY, which production mode requires, core.config) can be checked only by whoever
holds the key: a dump alone tests nothing, and guesses through the website meet its look-up throttles.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets


def new_salt() -> str:
    """A random salt for one stored code (16 hex digits): the same code hashes differently in two rows."""
    return secrets.token_hex(8)


def keyed_digest(key: bytes, *parts: str) -> str:
    """HMAC-SHA256 (hex) under ``key`` of ``parts`` joined by ':'. An empty key is refused: its hash would be
    one anybody could recompute."""
    if not key:
        raise ValueError("a code's hash needs the product's secret key")
    return hmac.new(key, ":".join(parts).encode(), hashlib.sha256).hexdigest()


def same(stored: str, computed: str) -> bool:
    """True if the two hashes are equal, compared in constant time (as bytes: a stored value with a non-ASCII
    character is simply unequal, where ``hmac.compare_digest`` on text would raise)."""
    return hmac.compare_digest(str(stored).encode(), str(computed).encode())


def previous_keys(extra) -> tuple[bytes, ...]:
    """The keys HOTLINE_SECRET_KEY was rotated from (HOTLINE_SECRET_KEY_PREVIOUS in ``extra``, the
    configuration's other values, comma-separated): codes hashed under one still verify, and are hashed again
    under the current key."""
    listed = str((extra or {}).get("HOTLINE_SECRET_KEY_PREVIOUS", ""))
    return tuple(key.strip().encode() for key in listed.split(",") if key.strip())
