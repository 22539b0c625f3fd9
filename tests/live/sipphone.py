"""SIP phones for live tests, played by sipp (Debian package sip-tester): register an extension with digest
authentication, and answer calls (sipp/answer.xml: an agent's phone answering with G.711 A-law; with
sipp/answer_rtp.xml it also talks, streaming A-law RTP as a desk phone does)."""
from __future__ import annotations

import shutil
import socket
import subprocess
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
