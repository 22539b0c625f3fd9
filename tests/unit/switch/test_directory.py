"""The seats' part of FreeSWITCH's directory the product writes (switch.directory): well-formed user entries with
each seat's own password, refused input named, written atomically and only when it changed, and reloadxml asked
of each connected switch once per change (the others when they connect)."""
from __future__ import annotations

import stat
import xml.etree.ElementTree as ET

import pytest

from switch.directory import DirectoryError, DirectoryReloads, reload_directory, seats_xml, write_seats


def _users(text: str) -> dict[str, dict[str, str]]:
    root = ET.fromstring(text)
    assert root.tag == "include"
    return {user.get("id"): {p.get("name"): p.get("value") for p in user.iter("param")} for user in root.iter("user")}


def test_each_seat_gets_its_own_password_in_extension_order():
    """Should write one user per seat, in numeric order, with its password and caller id."""
    text = seats_xml({"1010": "tenth-seat-secret", "1001": "first-seat-secret", "999": "short-seat-secret"})
    assert _users(text) == {"999": {"password": "short-seat-secret"}, "1001": {"password": "first-seat-secret"},
                            "1010": {"password": "tenth-seat-secret"}}
    root = ET.fromstring(text)
    assert [u.get("id") for u in root.iter("user")] == ["999", "1001", "1010"]
    variables = {v.get("name"): v.get("value") for v in root.find("user[@id='1001']").iter("variable")}
    assert variables == {"effective_caller_id_name": "Agent 1001", "effective_caller_id_number": "1001"}
    assert "$" not in text and "X-PRE-PROCESS" not in text  # nothing FreeSWITCH's pre-processor would act on
    assert _users(seats_xml({})) == {}


@pytest.mark.parametrize("seats, named", [
    ({"10a1": "first-seat-secret"}, "10a1"), ({"1": "first-seat-secret"}, "'1'"),
    ({"1001": "short"}, "1001"), ({"1001": "has$dollar-in-it"}, "1001"), ({"1001": 'quote"in-it-x'}, "1001"),
    ({"1001": "x" * 65}, "1001"), ({"1001": ""}, "1001"), ({"1001\n": "first-seat-secret"}, "1001"),
])
def test_refuses_what_cannot_go_into_the_directory(seats, named):
    """Should refuse a seat that is not digits or a password that is short, long or holds a character the
    pre-processor or the XML would take, naming the seat."""
    with pytest.raises(DirectoryError, match=named):
        seats_xml(seats)


def test_writes_atomically_and_only_when_changed(tmp_path):
    """Should make the folder, write the file readable by the switch's group only, say whether it changed, and
    leave no temporary file behind."""
    folder = tmp_path / "a" / "seats"
    text = seats_xml({"1001": "first-seat-secret"})
    assert write_seats(folder, text) is True
    path = folder / "seats.xml"
    assert path.read_text() == text and stat.S_IMODE(path.stat().st_mode) == 0o640
    assert write_seats(folder, text) is False
    assert write_seats(folder, seats_xml({"1001": "another-seat-secret"})) is True
    assert [p.name for p in folder.iterdir()] == ["seats.xml"]


class _Conn:
    def __init__(self, name, state="connected", reply="+OK [Success]\n"):
        self.name, self.state, self.reply, self.asked, self.callbacks = name, state, reply, [], []

    def api(self, command):
        self.asked.append(command)
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply

    def on_connected(self, callback):
        self.callbacks.append(callback)


class _Pool:
    def __init__(self, *conns):
        self.conns = conns

    def all(self):
        return list(self.conns)


def test_reload_reports_the_switches_that_could_not():
    """Should ask each switch to reloadxml and name those that refused or could not be reached."""
    good, refused, down = _Conn("a"), _Conn("b", reply="-ERR no\n"), _Conn("c", reply=OSError("gone"))
    assert reload_directory([good, refused, down]) == ["b", "c"]
    assert good.asked == refused.asked == down.asked == ["reloadxml"]


def test_a_switch_away_during_a_change_reloads_when_it_connects():
    """Should reload the connected switches at once, once per change, and one that was away when it
    connects again; a failed reload is tried again on the next connect."""
    up, away = _Conn("up"), _Conn("away", state="disconnected")
    reloads = DirectoryReloads(_Pool(up, away))
    reloads.changed()
    assert up.asked == ["reloadxml"] and away.asked == []
    for callback in up.callbacks:
        callback()                        # a reconnect without a change since: nothing to do
    assert up.asked == ["reloadxml"]
    away.state, away.reply = "connected", "-ERR busy\n"
    away.callbacks[0]()
    assert away.asked == ["reloadxml"]
    away.reply = "+OK\n"
    away.callbacks[0]()
    away.callbacks[0]()
    assert away.asked == ["reloadxml", "reloadxml"]
