"""core.secret_codes: the keyed hash of the codes citizens type."""
from __future__ import annotations

import hashlib
import hmac

import pytest

from core import secret_codes


def test_the_digest_is_an_hmac_of_the_parts_under_the_key():
    """Should be HMAC-SHA256 of the parts joined by ':' (the form SMS codes were stored in before this
    module: a code sent just before an upgrade still confirms), and differ under another key."""
    expected = hmac.new(b"k" * 40, b"7.ab12:13700001111:follow:123456", hashlib.sha256).hexdigest()
    assert secret_codes.keyed_digest(b"k" * 40, "7.ab12", "13700001111", "follow", "123456") == expected
    assert secret_codes.keyed_digest(b"j" * 40, "7.ab12", "13700001111", "follow", "123456") != expected


def test_an_empty_key_is_refused():
    """Should refuse to hash without a key (anybody could recompute that hash)."""
    with pytest.raises(ValueError):
        secret_codes.keyed_digest(b"", "code")


def test_same_compares_whole_values_and_takes_any_text():
    """Should be equal only for equal values, and answer False (not raise) for a non-ASCII stored value."""
    digest = secret_codes.keyed_digest(b"k" * 40, "x")
    assert secret_codes.same(digest, digest) and not secret_codes.same(digest, digest[:-1])
    assert not secret_codes.same("码" + digest[1:], digest) and not secret_codes.same("", digest)


def test_salts_differ():
    """Should give a new 16-hex-digit salt each time."""
    salts = {secret_codes.new_salt() for _ in range(20)}
    assert len(salts) == 20 and all(len(s) == 16 and int(s, 16) >= 0 for s in salts)
