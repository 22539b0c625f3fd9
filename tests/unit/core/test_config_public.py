"""HOTLINE_PORTAL_*, HOTLINE_CHAT_* and HOTLINE_OPEN311_*: settings like every other (environment, instance file,
documented defaults), checked at start and handed to the web app."""
from __future__ import annotations

import datetime as dt

import pytest

from acd.chat import ChatSettings
from caseflow.portal import Limits
from channels.verify import SendLimits
from core.config import ConfigError, load_config, setting_names


def test_defaults_are_the_packages_own():
    """Should default to the limits the public website, the SMS codes and online chat use by default."""
    config = load_config({})
    assert (config.portal_per_address, config.portal_per_phone) == (Limits().per_address, Limits().per_phone)
    assert (dt.timedelta(seconds=config.portal_code_gap), config.portal_codes_per_phone,
            config.portal_codes_per_ip) == (SendLimits().gap, SendLimits().per_phone, SendLimits().per_address)
    chat = ChatSettings()
    assert (config.chat_rate_messages, config.chat_rate_seconds, config.chat_idle_seconds, config.chat_gone_seconds,
            config.chat_starts_per_ip) == (chat.rate_messages, chat.rate_window, chat.idle_timeout, chat.gone_after,
                                           chat.starts_per_address)
    assert (config.portal_lookup_limit, config.portal_captcha_failures_per_ip, config.portal_sms_codes) == (
        10, 20, True)
    assert (config.open311_jurisdiction, config.open311_per_address, config.open311_posts_per_hour) == (
        "12345", 60, 200)


def test_environment_and_instance_file_set_them(tmp_path):
    """Should read the HOTLINE_* environment names and the instance file's lower-case keys."""
    instance = tmp_path / "hotline.toml"
    instance.write_text('portal_per_phone = 2\nopen311_jurisdiction = "hz12345.gov.cn"\nchat_idle_seconds = 120\n')
    config = load_config(environ={"HOTLINE_CONFIG": str(instance), "HOTLINE_PORTAL_PER_ADDRESS": "50",
                                  "HOTLINE_PORTAL_SMS_CODES": "0", "HOTLINE_OPEN311_PER_KEY": "7",
                                  "HOTLINE_PORTAL_PAGE_CACHE_SECONDS": "0",
                                  "HOTLINE_VAR_DIR": str(tmp_path)})
    assert (config.portal_per_address, config.portal_per_phone, config.portal_sms_codes) == (50, 2, False)
    assert (config.open311_jurisdiction, config.open311_per_key, config.chat_idle_seconds) == (
        "hz12345.gov.cn", 7, 120.0)
    assert "HOTLINE_PORTAL_PER_ADDRESS" not in config.extra and config.portal_page_cache_seconds == 0


@pytest.mark.parametrize("key, value, message", [
    ("HOTLINE_PORTAL_PER_ADDRESS", "0", "more than 0"),
    ("HOTLINE_PORTAL_LOOKUP_LIMIT", "ten", "whole number"),
    ("HOTLINE_CHAT_GONE_SECONDS", "-1", "more than 0"),
    ("HOTLINE_OPEN311_POSTS_PER_HOUR", "2.5", "whole number"),
    ("HOTLINE_OPEN311_JURISDICTION", " ", "1 to 100 characters"),
    ("HOTLINE_PORTAL_PAGE_CACHE_SECONDS", "-5", "whole number of seconds"),
    ("HOTLINE_PORTAL_PAGE_CACHE_SECONDS", "soon", "whole number of seconds"),
])
def test_nonsense_is_refused_at_start(key, value, message):
    """Should refuse a limit that would switch its guard off, and an empty jurisdiction, naming the setting."""
    with pytest.raises(ConfigError, match=message):
        load_config({key: value})


def test_the_web_app_gets_every_one(tmp_path):
    """Should put every public setting into the web app's configuration under its HOTLINE_* name."""
    from webui.app import PUBLIC_SETTINGS, create_app

    config = load_config({"HOTLINE_PORTAL_PER_PHONE": "3", "HOTLINE_CHAT_STARTS_PER_IP": "4", "mode": "test",
                          "secret_key": "k" * 40, "var_dir": str(tmp_path)})
    app = create_app(config, blueprints=[])
    names = setting_names("HOTLINE_PORTAL_", "HOTLINE_CHAT_", "HOTLINE_OPEN311_")
    assert PUBLIC_SETTINGS == names and len(names) == 21
    assert (app.config["HOTLINE_PORTAL_PER_PHONE"], app.config["HOTLINE_CHAT_STARTS_PER_IP"]) == (3, 4)
    assert all(app.config[name] == getattr(config, field) for name, field in names.items())
