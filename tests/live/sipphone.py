"""SIP phones for live tests, played by sipp (Debian package sip-tester): register an extension with digest
authentication, and answer calls (sipp/answer.xml: an agent's phone answering with G.711 A-law; with
sipp/answer_rtp.xml it also talks, streaming A-law RTP as a desk phone does)."""
from __future__ import annotations

import shutil
import socket
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

SCENARIOS = Path(__file__).parent / "sipp"
# What a talking phone streams (scenarios with exec rtp_stream): raw A-law, 8 kHz, looped by sipp.
VOICE_FILE = "phone-tone.alaw"


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 nobody uses right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def register(sipp: str, workdir: Path, switch_port: int, extension: str, password: str, expires: int,
             port: int, contact_port: int | None = None) -> subprocess.CompletedProcess:
    """One REGISTER transaction with digest auth from 127.0.0.1:port; sipp's exit status tells the outcome.

    contact_port: where the phone takes calls (another sipp acting as the phone's UAS); default ``port``.
    """
    command = [sipp, f"127.0.0.1:{switch_port}", "-sf", str(SCENARIOS / "register.xml"),
               "-s", extension, "-au", extension, "-ap", password, "-key", "expires", str(expires),
               "-key", "contact_port", str(contact_port or port),
               "-i", "127.0.0.1", "-p", str(port), "-m", "1", "-timeout", "15s", "-timeout_error",
               "-nostdin", "-trace_err", "-error_file", str(workdir / "sipp-errors.log")]
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=30)


def write_voice(workdir: Path) -> Path:
    """The A-law "voice" a talking phone streams, in sipp's working directory (needs sox)."""
    path = workdir / VOICE_FILE
    if not path.exists():
        sox = shutil.which("sox")
        if sox is None:
            raise AssertionError("sox is not installed: a talking sipp phone needs it for its RTP stream")
        subprocess.run([sox, "-n", "-r", "8000", "-c", "1", "-e", "a-law", "-t", "raw", str(path),
                        "synth", "5", "sine", "440"], check=True, timeout=30)
    return path


class AgentPhone:
    """An agent's phone: sipp answering `calls` calls with PCMA (sipp/answer.xml), registered as `extension`.

    scenario="answer_rtp.xml": a phone that talks once it answered (A-law RTP until the BYE), as a desk phone
    does; FreeSWITCH runs an application broadcast to a bridged leg (att_xfer) only once that leg has
    read media. scenario="answer_hold.xml": a phone that also accepts re-INVITEs in the call (hold and
    resume)."""

    def __init__(self, sipp: str, workdir: Path, switch_port: int, extension: str, password: str,
                 calls: int = 1, timeout_s: int = 60, scenario: str = "answer.xml"):
        self.sipp, self.workdir, self.switch_port = sipp, workdir, switch_port
        self.extension, self.password = extension, password
        self.port, self.register_port = free_udp_port(), free_udp_port()
        if "rtp_stream=" in (SCENARIOS / scenario).read_text():
            write_voice(workdir)
        self.process = subprocess.Popen(
            [sipp, "-sf", str(SCENARIOS / scenario), "-i", "127.0.0.1", "-p", str(self.port),
             "-mp", str(free_udp_port()), "-m", str(calls),
             "-timeout", f"{timeout_s}s", "-timeout_error", "-nostdin",
             "-trace_msg", "-message_file", str(workdir / f"phone-{extension}-messages.log")],
            cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def register(self, expires: int = 120) -> None:
        """Register (expires > 0) or unregister (0) the phone's contact; AssertionError when refused."""
        done = register(self.sipp, self.workdir, self.switch_port, self.extension, self.password, expires,
                        self.register_port, self.port)
        if done.returncode != 0:
            raise AssertionError(f"sipp REGISTER {self.extension} failed: {done.stdout[-2000:]}")

    def finished(self, timeout: float = 20) -> tuple[int, str]:
        """Wait for the UAS to take its calls and exit: (exit status, output)."""
        output, _ = self.process.communicate(timeout=timeout)
        return self.process.returncode, output

    def close(self) -> None:
        """Unregister and stop the UAS."""
        try:
            self.register(0)
        except (AssertionError, subprocess.SubprocessError, OSError):
            pass
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate(timeout=10)


# --- a citizen calling in over the carrier's trunk (external profile, dialplan/public.xml) ---------------

DTMF_PCAPS = Path("/usr/share/sip-tester")   # sipp's RFC 2833 recordings, dtmf_2833_<digit>.pcap (payload 101)
DTMF_TONES = {"1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "4": (770, 1209), "5": (770, 1336),
              "6": (770, 1477), "7": (852, 1209), "8": (852, 1336), "9": (852, 1477), "*": (941, 1209),
              "0": (941, 1336), "#": (941, 1477)}
DTMF_MODES = ("rfc2833", "info", "inband")
_PCAP_NAMES = {"*": "star", "#": "pound"}


@dataclass(frozen=True)
class Key:
    """One step of a carrier caller: wait until the switch sends it an INFO (the test's cue that the app is
    listening), then talk for ``talk_s`` seconds (A-law RTP, a tone) if asked, and send ``digit`` in each of
    ``modes``."""
    digit: str
    modes: tuple[str, ...]
    talk_s: int = 0


def _inband_file(workdir: Path, digit: str) -> str:
    """Raw A-law (payload 8) holding the digit's two tones between silences, for sipp's rtp_stream."""
    name = f"dtmf-{_PCAP_NAMES.get(digit, digit)}.alaw"
    path = workdir / name
    if not path.exists():
        low, high = DTMF_TONES[digit]
        subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-e", "a-law", "-t", "raw", str(path),
                        "synth", "0.25", "sine", str(low), "sine", str(high), "channels", "1",
                        "pad", "0.3", "0.3", "vol", "0.5"], check=True, timeout=30)
    return name


def _voice_file(workdir: Path, seconds: int) -> str:
    """Raw A-law of a 300 Hz tone, the caller's voice in a recording."""
    name = f"voice-{seconds}s.alaw"
    if not (workdir / name).exists():
        subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-e", "a-law", "-t", "raw", str(workdir / name),
                        "synth", str(seconds), "sine", "300", "vol", "0.5"], check=True, timeout=30)
    return name


def carrier_scenario(workdir: Path, keys: list[Key], telephone_event: bool) -> Path:
    """A sipp UAC scenario for a carrier's caller: INVITE (PCMA, with or without telephone-event 101, and
    X-FS-Support: send_info so the switch may cue it), ACK, then per Key: take the switch's INFO, answer
    it, and send the digit as RFC 2833 events (sipp's pcaps), SIP INFO (application/dtmf-relay) and/or
    tones in the A-law audio; finally take the switch's BYE. It sends no RTP except those digits and that talk."""
    payloads = "8 101" if telephone_event else "8"
    te_map = "a=rtpmap:101 telephone-event/8000\n      a=fmtp:101 0-16\n      " if telephone_event else ""
    steps, cseq = [], 2
    for key in keys:
        if key.digit not in DTMF_TONES or not key.modes or set(key.modes) - set(DTMF_MODES):
            raise ValueError(f"bad key {key}")
        steps.append(_RECV_CUE)
        if key.talk_s:
            steps.append(f'  <nop><action><exec rtp_stream="{_voice_file(workdir, key.talk_s)},1,8"/></action></nop>\n'
                         f'  <pause milliseconds="{key.talk_s * 1000 + 300}"/>\n')
        actions = []
        if "rfc2833" in key.modes:
            pcap = DTMF_PCAPS / f"dtmf_2833_{_PCAP_NAMES.get(key.digit, key.digit)}.pcap"
            actions.append(f'<exec play_pcap_audio="{pcap}"/>')
        if "inband" in key.modes:
            actions.append(f'<exec rtp_stream="{_inband_file(workdir, key.digit)},1,8"/>')
        if actions:
            steps.append(f"  <nop><action>{''.join(actions)}</action></nop>\n")
        if "info" in key.modes:
            steps.append(_SEND_INFO.replace("@CSEQ@", str(cseq)).replace("@DIGIT@", key.digit))
            cseq += 1
    text = (_CARRIER_HEAD.replace("@PAYLOADS@", payloads).replace("@TE_MAP@", te_map)
            + "".join(steps) + _CARRIER_TAIL)
    path = workdir / f"carrier-{uuid.uuid4().hex[:8]}.xml"
    path.write_text(text)
    return path


class _SippCall:
    """One sipp process placing one call on the carrier profile (127.0.0.1:port) as ``caller``, its SIP
    messages logged in the working directory."""

    finish_timeout = 60.0  # how long finished() waits by default

    def __init__(self, sipp: str, workdir: Path, port: int, caller: str, scenario: Path, log_name: str,
                 number: str, timeout_s: int):
        self.log = workdir / log_name
        self.process = subprocess.Popen(
            [sipp, f"127.0.0.1:{port}", "-sf", str(scenario), "-s", number, "-key", "caller", caller,
             "-i", "127.0.0.1", "-p", str(free_udp_port()), "-mp", str(free_udp_port()), "-m", "1",
             "-timeout", f"{timeout_s}s", "-timeout_error", "-nostdin",
             "-trace_msg", "-message_file", str(self.log)],
            cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def finished(self, timeout: float | None = None) -> tuple[int, str]:
        """Wait for sipp to end its call: (exit status, output and the SIP messages' tail)."""
        output, _ = self.process.communicate(timeout=self.finish_timeout if timeout is None else timeout)
        messages = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
        return self.process.returncode, output[-2000:] + messages

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate(timeout=10)


class CarrierCaller(_SippCall):
    """sipp calling ``number`` on the carrier profile (127.0.0.1:port) as caller ``caller``, per
    carrier_scenario; messages logged in the working directory."""

    def __init__(self, sipp: str, workdir: Path, port: int, caller: str, keys: list[Key],
                 telephone_event: bool, number: str = "12345", timeout_s: int = 120):
        super().__init__(sipp, workdir, port, caller, carrier_scenario(workdir, keys, telephone_event),
                         f"carrier-{caller}-messages.log", number, timeout_s)


_CARRIER_HEAD = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="carrier caller">
  <send retrans="500">
    <![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[caller]@[local_ip]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:[caller]@[local_ip]:[local_port]>
      X-FS-Support: send_info
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=- 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP @PAYLOADS@
      a=rtpmap:8 PCMA/8000
      @TE_MAP@a=ptime:20

    ]]>
  </send>

  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rrs="true"/>

  <send>
    <![CDATA[

      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[caller]@[local_ip]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
"""


def _answer_ok(request: str) -> str:
    """Wait for the switch's ``request`` (INFO, BYE) and answer it 200 OK."""
    return f"""
  <recv request="{request}"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
"""


_RECV_CUE = _answer_ok("INFO")

_SEND_INFO = """
  <send retrans="500">
    <![CDATA[

      INFO [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[caller]@[local_ip]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: @CSEQ@ INFO
      Max-Forwards: 70
      Content-Type: application/dtmf-relay
      Content-Length: [len]

      Signal=@DIGIT@
      Duration=160

    ]]>
  </send>
  <recv response="200"/>
"""

_CARRIER_TAIL = _answer_ok("BYE") + """
  <timewait milliseconds="500"/>
</scenario>
"""


class CarrierTalker(_SippCall):
    """A citizen on the carrier's trunk (sipp/carrier_call.xml) calling ``number`` as ``caller`` at a switch or
    at Kamailio in front of it: talks once answered, and hangs up when the switch sends it a SIP INFO
    (``uuid_send_info``, the test's cue) unless the switch hangs up first."""

    finish_timeout = 30.0

    def __init__(self, sipp: str, workdir: Path, port: int, caller: str, number: str = "12345",
                 timeout_s: int = 90):
        write_voice(workdir)
        super().__init__(sipp, workdir, port, caller, SCENARIOS / "carrier_call.xml", f"talker-{caller}-messages.log",
                         number, timeout_s)
