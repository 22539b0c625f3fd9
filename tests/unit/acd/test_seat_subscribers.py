"""acd.seats hands every seat's password to Kamailio's credentials table (SeatPasswords ``subscribers``): at each
publish, after the directory file; a reset that cannot reach the table fails instead of looking done."""
from __future__ import annotations

import pytest

from acd.seats import CredentialsNotWritten, SeatPasswords


def test_publish_and_reset_hand_every_password_to_the_subscribers(db, tmp_path):
    """Should give the table writer every seat's current password at each publish, even when the directory file
    did not change, and the new one after a reset."""
    handed = []
    seats = SeatPasswords("k" * 40, lambda: ("1001", "1002"), tmp_path, subscribers=handed.append)
    seats.ensure()
    assert seats.publish() is True and seats.publish() is False
    expected = {"1001": seats.password("1001"), "1002": seats.password("1002")}
    assert handed == [expected, expected]
    new = seats.reset("1001", "0001")
    assert handed[-1] == {"1001": new, "1002": expected["1002"]} and new != expected["1001"]


def test_a_reset_whose_table_write_fails_raises_after_the_directory(db, tmp_path):
    """Should write the directory and tell the switches, then raise the table's failure to the caller, with the
    new password (live on the switches) for the administrator; a publish raises it as it is."""
    reloads = []

    def refuse(passwords):
        raise OSError("database away")

    seats = SeatPasswords("k" * 40, lambda: ("1001",), tmp_path, reload=lambda: reloads.append(1),
                          subscribers=refuse)
    seats.ensure()
    with pytest.raises(CredentialsNotWritten) as failure:
        seats.reset("1001", "0001")
    assert isinstance(failure.value.__cause__, OSError) and failure.value.password == seats.password("1001")
    assert reloads == [1] and seats.password("1001") in (tmp_path / "seats.xml").read_text()
    with pytest.raises(OSError, match="database away"):
        seats.publish()


def test_catch_up_writes_the_table_again_only_after_a_failed_write(db, tmp_path):
    """Should do nothing while the table is up to date, and after a failed write hand the current passwords over
    again on the next catch_up, then stop."""
    handed, failing = [], [True]

    def write(passwords):
        if failing[0]:
            raise OSError("database away")
        handed.append(passwords)

    seats = SeatPasswords("k" * 40, lambda: ("1001",), tmp_path, subscribers=write)
    seats.ensure()
    with pytest.raises(OSError):
        seats.publish()
    assert seats.subscribers_behind
    with pytest.raises(OSError):
        seats.catch_up()
    failing[0] = False
    assert seats.catch_up() is True and handed == [{"1001": seats.password("1001")}]
    assert not seats.subscribers_behind and seats.catch_up() is False and len(handed) == 1
