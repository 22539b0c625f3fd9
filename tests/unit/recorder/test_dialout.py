"""recorder.dialout's pure rules: Chinese number classes, +86 normalisation, rules per purpose and role, caps."""
from __future__ import annotations

import pytest

from recorder.dialout import DialPolicy, classify, decide, normalise, parse_rules


@pytest.mark.parametrize("raw, number", [
    ("+8613800001111", "13800001111"), ("008613800001111", "13800001111"), ("+86 10 8888 7777", "01088887777"),
    ("+86-571-8888-7777", "057188887777"), ("0086057188887777", "057188887777"), ("+12025550100", "0012025550100"),
    ("(010) 8888-7777", "01088887777"), ("12345", "12345")])
def test_normalise(raw, number):
    """Should drop separators, make +86/0086 national (0 before an area code) and any other + into 00."""
    assert normalise(raw) == number


@pytest.mark.parametrize("bad", ["", "abc", "1380000x111", "+", "１３８００００１１１１", "13800001111\n", "1" * 25])
def test_normalise_refuses_what_is_not_a_number(bad):
    """Should refuse letters, full-width or other scripts' digits, line ends and over-long input."""
    with pytest.raises(ValueError):
        normalise(bad)


@pytest.mark.parametrize("number, kind", [
    ("1001", "internal"), ("9001", "internal"), ("110", "emergency"), ("119", "emergency"), ("120", "emergency"),
    ("122", "emergency"), ("114", "premium"), ("10086", "premium"), ("12345", "premium"), ("95555", "premium"),
    ("96777", "premium"), ("116114", "premium"), ("16001234", "premium"), ("1690123456", "premium"),
    ("075516812345", "premium"), ("13800001111", "mobile"), ("19912345678", "mobile"), ("88887777", "local"),
    ("6888777", "local"), ("01088887777", "domestic"), ("057188887777", "domestic"), ("4008123123", "domestic"),
    ("8008101234", "domestic"), ("0012025550100", "international"), ("00441234567890", "international"),
    ("12800001111", "unknown"), ("0123", "internal"), ("5555555555555", "unknown")])
def test_classify_chinese_numbering(number, kind):
    """Should class seats, 110/119/120/122, short codes and 95/96/160/168/169 lines, mobiles 1[3-9]x,
    0-prefixed long distance, 400/800 and 00 international."""
    assert classify(number) == kind


def test_own_area_code_is_local():
    """Should count the centre's own area code as local, another one as long distance."""
    assert classify("057188887777", area_code="0571") == "local"
    assert classify("01088887777", area_code="0571") == "domestic"


def test_shipped_default_allows_only_domestic_numbers():
    """Should allow seats, emergency, local, mobile and long distance, and refuse international, premium
    and unrecognised numbers, with the reason in zh-CN and English."""
    policy = DialPolicy()
    for raw in ("1001", "110", "88887777", "13800001111", "+8613800001111", "01088887777"):
        assert decide(policy, raw, "outbound", ("agent",)).allowed, raw
    for raw, kind in (("+12025550100", "international"), ("0012025550100", "international"),
                      ("16001234", "premium"), ("95555", "premium"), ("12800001111", "unknown")):
        decision = decide(policy, raw, "transfer", ("team_lead",))
        assert not decision.allowed and decision.number_class == kind and " / " in decision.reason
    assert not decide(policy, "13800;hangup", "outbound", ("agent",)).allowed


def test_rules_per_purpose_and_role_most_specific_wins():
    """Should take purpose/role over purpose/* over */role over */*, union over a person's roles."""
    policy = DialPolicy(rules=parse_rules("*/*=internal,mobile;transfer/*=internal;transfer/team_lead="
                                          "internal,mobile,international;*/system=local"))
    assert policy.classes_for("outbound", ("agent",)) == {"internal", "mobile"}
    assert policy.classes_for("transfer", ("agent",)) == {"internal"}
    assert policy.classes_for("transfer", ("agent", "team_lead")) == {"internal", "mobile", "international"}
    assert policy.classes_for("overflow", ()) == {"local"}
    assert decide(policy, "+12025550100", "transfer", ("team_lead",)).allowed


def test_daily_cap_counts_external_calls_only():
    """Should refuse the call over the cap, but never a seat or an emergency number."""
    policy = DialPolicy()
    assert decide(policy, "13800001111", "outbound", ("agent",), used_today=4, cap=5).allowed
    refused = decide(policy, "13800001111", "outbound", ("agent",), used_today=5, cap=5)
    assert not refused.allowed and "cap of 5" in refused.reason
    assert decide(policy, "1002", "outbound", ("agent",), used_today=5, cap=5).allowed
    assert decide(policy, "110", "outbound", ("agent",), used_today=5, cap=5).allowed


@pytest.mark.parametrize("text", ["outbound=mobile", "nosuch/*=mobile", "*/*=mobile,satellite", "*/agent"])
def test_bad_rules_are_refused_by_name(text):
    """Should refuse a malformed rule, an unknown purpose and an unknown class, saying which."""
    with pytest.raises(ValueError, match="HOTLINE_DIALOUT_RULES"):
        parse_rules(text)


def test_policy_from_config():
    """Should read rules, caps, template and area code from the settings, and refuse bad values by name."""
    class Config:
        tz = "Asia/Shanghai"
        extra = {"HOTLINE_DIALOUT_RULES": "transfer/team_lead=international", "HOTLINE_DIALOUT_DAILY_CAP": "7",
                 "HOTLINE_DIALOUT_TEMPLATE": "sofia/gateway/pstn/{number}", "HOTLINE_AREA_CODE": "0571"}

    policy = DialPolicy.from_config(Config)
    assert policy.daily_cap == 7 and policy.template == "sofia/gateway/pstn/{number}" and policy.area_code == "0571"
    assert policy.classes_for("transfer", ("team_lead",)) == {"international"}
    assert "mobile" in policy.classes_for("outbound", ("agent",))
    for name, value in (("HOTLINE_DIALOUT_DAILY_CAP", "many"), ("HOTLINE_DIALOUT_TEMPLATE", "sofia/gateway/x"),
                        ("HOTLINE_AREA_CODE", "571")):
        Config.extra = {name: value}
        with pytest.raises(ValueError, match=name):
            DialPolicy.from_config(Config)
