"""The query PIN's pure checks (caseflow.pins): which stored values are a plain PIN of an older version, and
how a typed PIN matches a stored one (no database)."""
from __future__ import annotations

import pytest

from caseflow import pins
from caseflow.values import generate_pin
from core import secret_codes

KEYS = pins.PinKeys(b"k" * 40, (b"o" * 40,))
MALFORMED = ["", "12345", "1234567", "12345678", "1", "12a456", "12345 ", " 123456", "123456\n", "１２３４５６",
             "١٢٣٤٥٦", "12-456", "p1", "p1$", "p1$$", "$123456", "123456$"]


def test_a_plain_pin_is_exactly_the_generated_length():
    """Should take as a plain PIN of an older version exactly the digits generate_pin draws (6 ASCII digits),
    and nothing else: no empty, shorter, longer, padded, full-width or otherwise malformed value."""
    assert pins.PIN_LENGTH == 6 and all(len(generate_pin()) == pins.PIN_LENGTH for _ in range(50))
    assert pins.is_plain("012345") and pins.is_plain(generate_pin())
    assert not [value for value in MALFORMED if pins.is_plain(value)]
    assert not pins.is_plain(None) and not pins.is_plain(123456)


@pytest.mark.parametrize("stored", MALFORMED)
def test_a_malformed_stored_value_matches_nothing(stored):
    """Should match no typed value against a stored value that is neither a plain PIN nor a keyed hash, not
    even the same text or its digits."""
    for typed in {stored, pins.digits(stored), "123456", "012345", ""}:
        assert pins.match(stored, typed, KEYS) is None, (stored, typed)


def test_a_plain_pin_matches_only_itself_in_constant_time(monkeypatch):
    """Should match a plain 6-digit PIN with the same digits (as typed or keyed: "012-345#") as stale (worth
    hashing), refuse a near miss, a prefix, a longer run and nothing typed, and compare through the
    constant-time comparison every time."""
    compared, real = [], secret_codes.same

    def same(stored, computed):
        compared.append((stored, computed))
        return real(stored, computed)

    monkeypatch.setattr(pins.secret_codes, "same", same)
    assert pins.match("012345", "012345", KEYS) == "stale"
    assert pins.match("012345", "012-345#", KEYS) == "stale"
    assert [pins.match("012345", typed, KEYS) for typed in ("012346", "01234", "0123456", "", "abc")] == [None] * 5
    assert len(compared) == 7 and all(stored == "012345" for stored, _ in compared)


def test_a_hashed_pin_matches_under_the_current_and_previous_keys():
    """Should match a hash under the current key as current, under a rotated-from key as stale, and a wrong
    PIN or an unlisted key not at all."""
    assert pins.match(pins.hash_pin("012345", KEYS.current), "012345", KEYS) == "current"
    assert pins.match(pins.hash_pin("012345", KEYS.previous[0]), "012345", KEYS) == "stale"
    assert pins.match(pins.hash_pin("012345", KEYS.current), "012346", KEYS) is None
    assert pins.match(pins.hash_pin("012345", b"z" * 40), "012345", KEYS) is None
