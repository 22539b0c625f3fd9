"""deploy/systemd: the units pass ``systemd-analyze verify`` (skipped where it does not exist), and the example
/etc/hotline/hotline.env names only settings the product reads, with placeholders production mode refuses."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import ConfigError, _ENV_KEYS, load_config

ROOT = Path(__file__).resolve().parents[3]
SYSTEMD = ROOT / "deploy" / "systemd"
PRODUCT_PACKAGES = ("acd", "caseflow", "channels", "core", "hotline", "ivr", "ops", "recorder", "stats", "switch",
                    "webui")
# What replaces each placeholder in the test of a filled-in file.
REAL = {"HOTLINE_SECRET_KEY": "s" * 40, "HOTLINE_RECORD_KEY": "r" * 40}


def read_env(path: Path) -> dict[str, str]:
    """NAME=value lines of an EnvironmentFile (no quoting is used in the shipped one)."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep and re.fullmatch(r"HOTLINE_[A-Z0-9_]+", name), line
            values[name] = value
    return values


def product_source() -> str:
    return "\n".join(path.read_text(errors="replace") for package in PRODUCT_PACKAGES
                     for path in (ROOT / package).rglob("*.py")) + (ROOT / "run.py").read_text()


def test_every_setting_of_the_env_file_is_read_by_the_product():
    """Should name only settings core.config knows (its HOTLINE_* table) or the product reads from its extra
    settings by name: a misspelt name would be silently ignored in production."""
    source = product_source()
    names = read_env(SYSTEMD / "hotline.env")
    unknown = [name for name in names if name not in _ENV_KEYS and f'"{name}"' not in source
               and not name.startswith("HOTLINE_PAIR_CHECK_")]
    assert not unknown, f"hotline.env names settings nothing reads: {unknown}"
    # The pair's two are read by a composed name (core.leader.PairSettings): read them through it.
    from core.leader import PairSettings

    pair = PairSettings.from_extra({"HOTLINE_PAIR_CHECK_INTERVAL": "0.7", "HOTLINE_PAIR_CHECK_TIMEOUT": "1.3"})
    assert (pair.check_interval, pair.check_timeout) == (0.7, 1.3)


def _environ(values: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {**values, "HOTLINE_CONFIG": str(tmp_path / "none.toml")}


def test_production_refuses_the_placeholders(tmp_path):
    """Should refuse to start with the shipped file as it is, and with each placeholder left alone while the
    others are filled in: the secret key, the record key, the switches' ESL password."""
    values = read_env(SYSTEMD / "hotline.env")
    assert values["HOTLINE_MODE"] == "production"
    with pytest.raises(ConfigError):
        load_config(environ=_environ(values, tmp_path))
    filled = {**values, **REAL, "HOTLINE_ESL": values["HOTLINE_ESL"].replace("change-this-esl-password", "x7-esl")}
    load_config(environ=_environ(filled, tmp_path))  # filled in: it loads
    for name, message in (("HOTLINE_SECRET_KEY", "HOTLINE_SECRET_KEY"), ("HOTLINE_RECORD_KEY", "HOTLINE_RECORD_KEY"),
                          ("HOTLINE_ESL", "ESL password")):
        with pytest.raises(ConfigError, match=message):
            load_config(environ=_environ({**filled, name: values[name]}, tmp_path))


@pytest.fixture
def unit_dir(tmp_path):
    """The units with this checkout's paths for /opt/hotline and the env file, Debian's kamailio.service (when
    installed) and a stand-in freeswitch.service of the SignalWire package's form, with our drop-ins."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    for unit in ("hotline.service", "hotline-web@.service", "hotline-web.target"):
        text = (SYSTEMD / unit).read_text().replace("/opt/hotline/.venv/bin/python", sys.executable)
        text = text.replace("/opt/hotline", str(ROOT)).replace("/etc/hotline/", f"{tmp_path}/")
        (tmp_path / unit).write_text(text)
    (tmp_path / "hotline.env").write_text("")
    (tmp_path / "freeswitch.env").write_text("")
    debian = Path("/lib/systemd/system/kamailio.service")
    units = [tmp_path / "hotline.service", tmp_path / "hotline-web@8091.service"]
    for name, original in (("kamailio", debian if debian.is_file() else None), ("freeswitch", None)):
        if original is not None:
            shutil.copy(original, tmp_path / f"{name}.service")
        else:
            (tmp_path / f"{name}.service").write_text(
                "[Unit]\nDescription=stand-in\n[Service]\nType=forking\nPIDFile=/run/freeswitch/freeswitch.pid\n"
                "ExecStart=/bin/true ${DAEMON_OPTS}\n[Install]\nWantedBy=multi-user.target\n")
        dropins = tmp_path / f"{name}.service.d"
        shutil.copytree(SYSTEMD / f"{name}.service.d", dropins)
        for dropin in dropins.iterdir():
            dropin.write_text(dropin.read_text().replace("/etc/hotline/", f"{tmp_path}/"))
        units.append(tmp_path / f"{name}.service")
    return tmp_path, units


def test_units_verify(unit_dir):
    """Should pass systemd-analyze verify with no warning: every key known, every path executable, the
    drop-ins read with their units."""
    folder, units = unit_dir
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", *map(str, units)], capture_output=True,
                          text=True, timeout=60, env={"SYSTEMD_UNIT_PATH": f"{folder}:", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_call_process_unit_restarts_a_fenced_active():
    """Should restart on exit 75 (the active that lost its lock comes back as the standby, run.py) and on any
    death, but not loop on a configuration error (exit 2)."""
    text = (SYSTEMD / "hotline.service").read_text()
    assert "\nRestart=always\n" in text and "\nRestartPreventExitStatus=2\n" in text
    assert "EnvironmentFile=/etc/hotline/hotline.env" in text and "\nUser=hotline\n" in text
    # run.py is read, not imported: importing it monkey-patches the test process.
    assert "\nEXIT_LOST_LOCK = 75\n" in (ROOT / "run.py").read_text() and "Exit 75" in text
