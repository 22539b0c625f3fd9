"""Fixtures for tests against a real FreeSWITCH started with freeswitch-conf/ (see tests/live/README.md).

The switch is named by HOTLINE_TEST_ESL=host:port:password.  When it is unset every test that uses these
fixtures is skipped with that reason (this is how CI runs); tests in this directory that need no switch
(test_freeswitch_conf.py) run everywhere.  When it is set but wrong, the tests fail loudly instead.

Fixtures:
  esl_endpoint   (host, port, password) of the switch, or skip
  esl            an authenticated raw ESL connection (tests/live/eslraw.py), subscribed to nothing
  esl_events     another one subscribed to CHANNEL_*/DTMF/BACKGROUND_JOB/... events
  outbound_listener   a socket server on 127.0.0.1:0 that FreeSWITCH's `socket` app can call into
  place_call     originate loopback/12345/default as a scripted citizen (or fax machine): press digits,
                 speak, hang up
  tone_wav       a short WAV file (a tone), for "speaking" into a recording
  fax_tiff       a one-page G3 fax TIFF, for txfax
  browser_desk   start(wss=None): the product with its browser phone and headless Chromium for demo agent
                 1001's desk (tests/live/desk_browser.py), stopped after the test; skips without Chromium
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid as uuidlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.live.eslraw import EslClient, EslError, OutboundCall

ENV = "HOTLINE_TEST_ESL"
CALL_EVENTS = ("CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE",
               "CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE",
               "CHANNEL_PARK", "DTMF", "BACKGROUND_JOB", "PLAYBACK_START", "PLAYBACK_STOP",
               "RECORD_START", "RECORD_STOP", "DETECTED_TONE")


def parse_endpoint(value: str) -> tuple[str, int, str]:
    """host:port:password -> (host, port, password); ValueError saying what is wrong otherwise."""
    host, sep1, rest = value.partition(":")
    port, sep2, password = rest.partition(":")
    if not (sep1 and sep2 and host and port and password):
        raise ValueError(f"{ENV} must be host:port:password, got {value!r}")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{ENV}: port must be a number from 1 to 65535, got {port!r}")
    return host, int(port), password


@pytest.fixture(scope="session")
def esl_endpoint() -> tuple[str, int, str]:
    """The live switch from HOTLINE_TEST_ESL; skips the test when it is unset."""
    value = os.environ.get(ENV, "").strip()
    if not value:
        pytest.skip(f"{ENV} is not set: no real FreeSWITCH to test against (see tests/live/README.md)")
    try:
        endpoint = parse_endpoint(value)
    except ValueError as exc:
        pytest.fail(str(exc))
    try:
        EslClient.connect(*endpoint).close()
    except (OSError, EslError) as exc:
        pytest.fail(f"{ENV}={endpoint[0]}:{endpoint[1]}:***: cannot use this FreeSWITCH: {exc}")
    return endpoint


@pytest.fixture
def esl(esl_endpoint):
    """An authenticated inbound ESL connection."""
    client = EslClient.connect(*esl_endpoint)
    yield client
    client.close()


@pytest.fixture
def esl_events(esl_endpoint):
    """An authenticated connection subscribed to call events and BACKGROUND_JOB."""
    client = EslClient.connect(*esl_endpoint)
    client.subscribe(*CALL_EVENTS)
    yield client
    client.close()


class OutboundListener:
    """A listening socket on 127.0.0.1:0 standing in for the app's outbound server."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.calls: list[OutboundCall] = []

    @property
    def address(self) -> str:
        host, port = self.sock.getsockname()
        return f"{host}:{port}"

    def accept(self, timeout: float = 10.0) -> OutboundCall:
        """The next call FreeSWITCH brings (socket app); EslError after ``timeout`` seconds."""
        self.sock.settimeout(timeout)
        try:
            conn, _ = self.sock.accept()
        except socket.timeout as exc:
            raise EslError(f"FreeSWITCH did not connect to {self.address} within {timeout} s") from exc
        call = OutboundCall(conn)
        self.calls.append(call)
        return call

    def close(self) -> None:
        for call in self.calls:
            call.close()
        self.sock.close()


@pytest.fixture
def outbound_listener():
    """A test-owned outbound socket server on 127.0.0.1 (random port)."""
    listener = OutboundListener()
    yield listener
    listener.close()


@dataclass
class LiveCall:
    """A citizen's call placed with `originate loopback/12345/default`: the A leg is the citizen's side.

    Digits sent to the A leg, and audio played to it, arrive at the B leg that runs the dialplan (and so
    at the socket the dialplan connects), exactly as a phone's would.
    """

    esl: EslClient
    uuid: str
    job: str
    caller: str
    destination: str
    done: list[str] = field(default_factory=list)

    def press(self, digits: str) -> None:
        """Send DTMF from the citizen's side (RFC 2833-like, as a phone would)."""
        reply = self.esl.api(f"uuid_send_dtmf {self.uuid} {digits}")
        if not reply.startswith("+OK"):
            raise EslError(f"uuid_send_dtmf: {reply.strip()}")

    def speak(self, path: str) -> None:
        """Play a sound file (a WAV, or tone_stream://...) into the call from the citizen's side."""
        reply = self.esl.api(f"uuid_broadcast {self.uuid} {path} aleg")
        if not reply.startswith("+OK"):
            raise EslError(f"uuid_broadcast: {reply.strip()}")

    def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        """The citizen hangs up."""
        self.esl.api(f"uuid_kill {self.uuid} {cause}")

    def exists(self) -> bool:
        return self.esl.api(f"uuid_exists {self.uuid}").strip() == "true"


class CallPlacer:
    """place_call on the switch at ``endpoint`` (a test may place calls on a second one too); ``close`` hangs
    up the calls left up and disconnects."""

    def __init__(self, endpoint):
        self.client = EslClient.connect(*endpoint)
        self.placed: list[LiveCall] = []

    def __call__(self, caller: str = "13800138000", destination: str = "12345", outbound: str | None = None,
                 variables: dict[str, str] | None = None, context: str = "default", app: str = "park") -> LiveCall:
        call_uuid = str(uuidlib.uuid4())
        chan_vars = {"origination_uuid": call_uuid, "origination_caller_id_number": caller,
                     "origination_caller_id_name": caller, "originate_timeout": "30"}
        if outbound:
            chan_vars["hotline_outbound"] = outbound
        chan_vars.update(variables or {})
        for name, value in chan_vars.items():
            if any(c in str(value) for c in ",{} '\n"):
                raise ValueError(f"channel variable {name}={value!r}: no commas, braces, spaces or quotes")
        var_text = ",".join(f"{k}={v}" for k, v in chan_vars.items())
        job = self.client.bgapi(f"originate {{{var_text}}}loopback/{destination}/{context} &{app}")
        call = LiveCall(self.client, call_uuid, job, caller, destination)
        self.placed.append(call)
        return call

    def close(self) -> None:
        for call in self.placed:
            try:
                if call.exists():
                    call.hangup()
            except (OSError, EslError):
                pass
        self.client.close()


@pytest.fixture
def place_call(esl_endpoint):
    """Factory: place_call(caller=..., destination="12345", outbound="127.0.0.1:PORT", variables={...},
    context="default", app="park").

    `outbound` overrides ${hotline_outbound} for this call only (a channel variable wins over the global
    one), so a test can bring the call to its own listener; without it the switch's configured address
    is used.  `app` runs on the citizen's side once answered: park (the default), or e.g.
    txfax(/path/page.tif) for a fax machine calling.  The call is originated with bgapi; its Job-UUID is in
    .job (result as BACKGROUND_JOB once the B leg answers or fails).  Calls left up are killed at teardown.
    """
    placer = CallPlacer(esl_endpoint)
    yield placer
    placer.close()


@pytest.fixture
def tone_wav(tmp_path_factory) -> Path:
    """A 2-second 8 kHz mono WAV (440 Hz) FreeSWITCH can play as the citizen's voice (needs sox)."""
    sox = shutil.which("sox")
    if sox is None:
        pytest.skip("sox is not installed (make test installs it)")
    path = tmp_path_factory.mktemp("live-audio") / "voice.wav"
    subprocess.run([sox, "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "synth", "2", "sine", "440"],
                   check=True, timeout=30)
    path.chmod(0o644)
    return path


@pytest.fixture
def fax_tiff(tmp_path_factory) -> Path:
    """A one-page G3 fax TIFF (1728 pixels wide, 204x196 dpi) with a few black bars (needs libtiff-tools)."""
    ppm2tiff, tiffset, tiffcp = shutil.which("ppm2tiff"), shutil.which("tiffset"), shutil.which("tiffcp")
    if ppm2tiff is None or tiffset is None or tiffcp is None:
        pytest.skip("libtiff-tools (ppm2tiff, tiffset, tiffcp) is not installed")
    folder = tmp_path_factory.mktemp("live-fax")
    width, height = 1728, 400
    row_bytes = width // 8
    rows = []
    for y in range(height):
        black = (y // 40) % 2 == 1          # alternate 40-line bands
        rows.append((b"\xff" if black else b"\x00") * row_bytes)
    pbm = folder / "page.pbm"
    pbm.write_bytes(b"P4\n%d %d\n" % (width, height) + b"".join(rows))
    plain = folder / "page-plain.tif"
    subprocess.run([ppm2tiff, "-R", "204", str(pbm), str(plain)], check=True, timeout=30)
    # Fine resolution is 204x196 dpi; ppm2tiff sets one value for both axes, so fix YResolution (tag 283).
    subprocess.run([tiffset, "-s", "283", "196", str(plain)], check=True, timeout=30)
    tiff = folder / "page.tif"
    subprocess.run([tiffcp, "-c", "g3:2d:fill", str(plain), str(tiff)], check=True, timeout=30)
    tiff.chmod(0o644)
    return tiff


@pytest.fixture
def configured_outbound(esl):
    """A listener on the switch's configured hotline_outbound (SIP calls cannot override it per call)."""
    configured = esl.api("global_getvar hotline_outbound").strip()
    host, _, port = configured.rpartition(":")
    if host not in ("127.0.0.1", "localhost"):
        pytest.skip(f"hotline_outbound is {configured}, not on this machine")
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        server.bind((host, int(port)))
    except OSError:
        server.close()
        pytest.skip(f"{configured} is in use (the app is probably running there)")
    server.listen(4)
    yield server
    server.close()


@pytest.fixture
def sipp():
    """The sipp binary that plays SIP phones; the test skips where it is not installed (Debian sip-tester)."""
    path = shutil.which("sipp")
    if path is None:
        pytest.skip("sipp is not installed (Debian package sip-tester)")
    return path


@pytest.fixture
def browser_desk(esl_endpoint, esl, db, db_url, tmp_path, rendered_sounds):
    """Call it (``start(wss=None)``, wss host:port, the switch's own by default) for the product with its browser
    phone and a Chromium thread (tests/live/desk_browser.DeskInBrowser); both stopped after the test."""
    from tests.live.desk_browser import DeskStarter

    starter = DeskStarter(esl_endpoint, esl, db_url, tmp_path, rendered_sounds)
    yield starter
    starter.stop()
