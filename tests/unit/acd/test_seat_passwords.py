"""Each seat's own SIP password (acd.seats): derived from the product's key and the seat's stored salt, so the
database alone gives none away; different for every seat, salt and key; typeable on a desk phone."""
from __future__ import annotations

import pytest

from acd.seats import ALPHABET, LENGTH, derive, seat_key

KEY = seat_key("k" * 40)


def test_a_password_is_the_same_for_the_same_seat_salt_and_key():
    """Should give one seat the same password every time (the directory and the desk must agree)."""
    assert derive(KEY, "1001", "aa" * 16) == derive(seat_key("k" * 40), "1001", "aa" * 16)


def test_passwords_differ_by_seat_salt_and_key():
    """Should give another seat, a new salt (a reset) or another product key another password."""
    base = derive(KEY, "1001", "aa" * 16)
    others = {derive(KEY, "1002", "aa" * 16), derive(KEY, "1001", "ab" * 16), derive(seat_key("j" * 40), "1001", "aa" * 16)}
    assert base not in others and len(others) == 3


def test_passwords_are_long_and_typeable():
    """Should be LENGTH characters of letters and digits that cannot be mistaken for one another."""
    for seat in range(1000, 1100):
        password = derive(KEY, str(seat), "cd" * 16)
        assert len(password) == LENGTH == 20 and set(password) <= set(ALPHABET)
    assert not set("0O1lI") & set(ALPHABET)


def test_the_seat_key_is_not_the_secret_key_and_needs_one():
    """Should keep seat passwords apart from the session key, and refuse to work without a key."""
    assert KEY != ("k" * 40).encode() and len(KEY) == 32
    with pytest.raises(ValueError, match="HOTLINE_SECRET_KEY"):
        seat_key("")
