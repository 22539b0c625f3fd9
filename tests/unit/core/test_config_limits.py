"""HOTLINE_HTTP_* and HOTLINE_DB_* limits: defaults, parsing, and refusal of values that would disable them."""
from __future__ import annotations

import pytest

from core.config import ConfigError, load_config
from core.db import DbTimeouts
from webui.server import HttpLimits


def test_defaults_match_the_limits_objects():
    """Should default to the documented limits, the same the server and the database use by default."""
    config = load_config({})
    assert HttpLimits.from_config(config) == HttpLimits(max_connections=512, idle_timeout=30.0,
                                                        header_timeout=10.0, fd_reserve=256)
    assert DbTimeouts.from_config(config) == DbTimeouts(connect=10.0, statement=30.0, lock=10.0)


def test_environment_names_parse_into_numbers():
    """Should read the HOTLINE_* names as numbers."""
    config = load_config({"HOTLINE_HTTP_MAX_CONNECTIONS": "20", "HOTLINE_HTTP_IDLE_TIMEOUT": "1.5",
                          "HOTLINE_HTTP_HEADER_TIMEOUT": "2", "HOTLINE_HTTP_FD_RESERVE": "64",
                          "HOTLINE_DB_CONNECT_TIMEOUT": "3", "HOTLINE_DB_STATEMENT_TIMEOUT": "45",
                          "HOTLINE_DB_LOCK_TIMEOUT": "0.5"})
    assert HttpLimits.from_config(config) == HttpLimits(20, 1.5, 2.0, 64)
    assert DbTimeouts.from_config(config) == DbTimeouts(3.0, 45.0, 0.5)


@pytest.mark.parametrize("key, value, message", [
    ("HOTLINE_HTTP_MAX_CONNECTIONS", "0", "more than 0"),
    ("HOTLINE_HTTP_FD_RESERVE", "-5", "more than 0"),
    ("HOTLINE_HTTP_MAX_CONNECTIONS", "2.5", "whole number"),
    ("HOTLINE_DB_STATEMENT_TIMEOUT", "soon", "is not a number"),
    ("HOTLINE_DB_LOCK_TIMEOUT", "nan", "more than 0"),
    ("HOTLINE_HTTP_IDLE_TIMEOUT", "", "is not a number"),
])
def test_nonsense_is_refused_with_the_setting_named(key, value, message):
    """Should refuse zero, negative, fractional connection counts and words, naming the setting."""
    with pytest.raises(ConfigError, match=message):
        load_config({key: value})
