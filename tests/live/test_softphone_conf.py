"""freeswitch-conf's part of the desk's browser phone, checked without a FreeSWITCH (runs everywhere): the
internal profile's secure WebSocket, where its certificate is read, the WebRTC candidate lists; the second
test instance keeps its own port; and scripts/dev-cert.sh makes a development certificate FreeSWITCH reads."""
from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.live import fsconf
from tests.live.fsconf import assemble, params

ROOT = Path(__file__).resolve().parents[2]


def _internal(conf):
    return next(p for p in conf.configuration("sofia.conf").iter("profile") if p.get("name") == "internal")


def test_internal_profile_takes_secure_websockets_beside_udp():
    """Should bind wss on the agents' address at internal_wss_port (7443), read wss.pem from var/certs, and let
    WebRTC audio go to candidates on this host, its networks and private addresses (FreeSWITCH's own default,
    wan.auto, would refuse every browser on the office LAN); the phones' UDP/TCP binding is unchanged."""
    conf = assemble()
    profile = _internal(conf)
    settings = params(profile.find("settings"))
    assert settings["wss-binding"] == "127.0.0.1:7443"
    assert settings["sip-ip"] == "127.0.0.1" and settings["sip-port"] == "5060"
    assert settings["tls-cert-dir"] == str(fsconf.CONF_DIR / ".." / "var" / "certs")
    candidates = [p.get("value") for p in profile.find("settings").findall("param")
                  if p.get("name") == "apply-candidate-acl"]
    assert candidates == ["loopback.auto", "localnet.auto", "rfc1918.auto"]
    assert "ws-binding" not in settings  # never plain WebSocket: the SIP password and the call ride on it


def test_websocket_port_certificates_and_candidates_are_site_settings(tmp_path):
    """Should take the port, the candidate list from local/ and the certificate folder from the environment."""
    site = fsconf.shipped_copy(tmp_path / "conf")
    (site / "local" / "site.xml").write_text(
        '<include>\n'
        '  <X-PRE-PROCESS cmd="set" data="hotline_sip_ip=10.9.8.1"/>\n'
        '  <X-PRE-PROCESS cmd="set" data="internal_wss_port=8443"/>\n'
        '  <X-PRE-PROCESS cmd="set" data="webrtc_candidate_acl=agents_lan"/>\n'
        '</include>\n')
    conf = assemble(site, site_files=True, env={"HOTLINE_FS_CERTS_DIR": "/etc/hotline/tls"})
    settings = _internal(conf).find("settings")
    assert params(settings)["wss-binding"] == "10.9.8.1:8443"
    assert params(settings)["tls-cert-dir"] == "/etc/hotline/tls"
    assert [p.get("value") for p in settings.findall("param") if p.get("name") == "apply-candidate-acl"][-1] \
        == "agents_lan"


def test_second_test_instance_has_its_own_websocket_port():
    """Should give the cross-server test's second switch (same address) a wss port of its own: two bindings
    on one port would stop its internal profile altogether."""
    text = (Path(__file__).parent / "instance-b" / "instance-b.xml").read_text()
    assert 'data="internal_wss_port=7445"' in text


@pytest.fixture
def openssl():
    path = shutil.which("openssl")
    if path is None:
        pytest.skip("openssl is not installed")
    return path


def test_dev_cert_makes_a_private_pem_once(tmp_path, openssl):
    """Should write wss.pem (the certificate, then its key, readable by its owner only) and wss.crt for
    localhost, 127.0.0.1 and ::1, whose key matches; a second run keeps the file (a real one put there too)."""
    folder = tmp_path / "certs"
    done = subprocess.run([str(ROOT / "scripts" / "dev-cert.sh"), str(folder)], capture_output=True, text=True,
                          timeout=60, check=True)
    assert "development only" in done.stdout
    pem = folder / "wss.pem"
    text = pem.read_text()
    assert text.index("BEGIN CERTIFICATE") < text.index("PRIVATE KEY")
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    shown = subprocess.run([openssl, "x509", "-in", str(folder / "wss.crt"), "-noout", "-ext", "subjectAltName"],
                           capture_output=True, text=True, timeout=30, check=True).stdout
    assert "DNS:localhost" in shown and "IP Address:127.0.0.1" in shown
    public = [subprocess.run([openssl, kind, "-in", str(pem), "-noout", "-pubkey"] if kind == "x509" else
                             [openssl, "pkey", "-in", str(pem), "-pubout"], capture_output=True, text=True,
                             timeout=30, check=True).stdout for kind in ("x509", "pkey")]
    assert public[0] == public[1]
    before = pem.read_bytes()
    subprocess.run([str(ROOT / "scripts" / "dev-cert.sh"), str(folder)], timeout=60, check=True)
    assert pem.read_bytes() == before


def test_dev_cert_names_the_servers_address(tmp_path, openssl):
    """Should put the names given (the switch's LAN address, its host name) into the certificate."""
    folder = tmp_path / "certs"
    subprocess.run([str(ROOT / "scripts" / "dev-cert.sh"), str(folder), "fs1.hotline.lan", "10.1.2.3"],
                   timeout=60, check=True, capture_output=True)
    shown = subprocess.run([openssl, "x509", "-in", str(folder / "wss.crt"), "-noout", "-ext", "subjectAltName"],
                           capture_output=True, text=True, timeout=30, check=True).stdout
    assert "DNS:fs1.hotline.lan" in shown and "IP Address:10.1.2.3" in shown and "127.0.0.1" not in shown
