"""Live: each seat's own SIP password (acd.seats) on the real FreeSWITCH. The product's seat directory, written
for seats 1095 and 1096 of this test alone and read by the switch after reloadxml, lets a phone (sipp) register
on seat 1095 with that seat's password and refuses it with seat 1096's; after an administrator's reset the old
password is refused and the new one works.

The shipped live setup keeps seats 1000-1019 on one test password (seat_passwords=shared, tests/live/README.md):
the file then goes into the switch's local directory/ folder, included in the same agents group; with
seat_passwords=product into its hotline_seats_dir, beside the product's own file. Either way it is removed and the
switch reloaded afterwards. Skipped without HOTLINE_TEST_ESL or sipp.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from acd.seats import SeatPasswords
from switch.directory import reload_directory
from tests.live.eslraw import EslClient
from tests.live.sipphone import free_udp_port, register

pytestmark = pytest.mark.live

SEATS = ("1095", "1096")  # this module's alone (no other live module registers them)
FILE_NAME = "zz-live-seat-passwords.xml"


@pytest.fixture
def sip_events(esl_endpoint):
    client = EslClient.connect(*esl_endpoint)
    client.subscribe("CUSTOM", "sofia::register", "sofia::register_failure")
    yield client
    client.close()


@pytest.fixture
def seat_folder(esl) -> Path:
    """Where this switch reads seats from: its hotline_seats_dir with per-seat passwords, else its local
    directory/ folder."""
    if esl.api("global_getvar seat_passwords").strip() == "product":
        return Path(esl.api("global_getvar hotline_seats_dir").strip())
    return Path(esl.api("global_getvar hotline_local_dir").strip()) / "directory"


@pytest.fixture
def seats(db, esl, seat_folder):
    """The product's seat passwords for this test's seats, published to the live switch; removed after."""
    switch = SimpleNamespace(name="live", api=esl.api)

    def reload():
        assert reload_directory([switch]) == [], "the switch did not reload its XML"

    made = SeatPasswords("live-test-key-" + "s" * 32, lambda: SEATS, seat_folder, reload=reload, file_name=FILE_NAME)
    made.ensure()
    made.publish()
    yield made
    (seat_folder / FILE_NAME).unlink(missing_ok=True)
    reload()


def _register(sipp, tmp_path, esl, extension: str, password: str, port: int, expires: int = 60):
    internal_port = int(esl.api("global_getvar internal_sip_port").strip())
    return register(sipp, tmp_path, internal_port, extension, password, expires, port)


def test_a_seat_registers_with_its_own_password_only(sipp, esl, sip_events, seats, tmp_path):
    """Should register seat 1095 with its own password (and list it), refuse it with seat 1096's, and after a
    reset refuse the old password and take the new one."""
    own, other = seats.password("1095"), seats.password("1096")
    assert own != other
    port = free_udp_port()
    try:
        refused = _register(sipp, tmp_path, esl, "1095", other, port)
        assert refused.returncode != 0
        sip_events.wait_event(lambda e: e.get("Event-Subclass") == "sofia::register_failure"
                              and e.get("to-user") == "1095", timeout=10)
        assert f"127.0.0.1:{port}" not in esl.api("sofia status profile internal reg")

        done = _register(sipp, tmp_path, esl, "1095", own, port)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        sip_events.wait_event(lambda e: e.get("Event-Subclass") == "sofia::register"
                              and e.get("from-user") == "1095", timeout=10)
        assert f"127.0.0.1:{port}" in esl.api("sofia status profile internal reg")

        new = seats.reset("1095", "0001")
        assert new != own
        assert _register(sipp, tmp_path, esl, "1095", own, port).returncode != 0
        done = _register(sipp, tmp_path, esl, "1095", new, port)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    finally:
        _register(sipp, tmp_path, esl, "1095", seats.password("1095"), port, expires=0)
