"""switch.commands: the command strings the app sends, and the one escaping rule, on their own."""
import pytest

from switch import commands as c
from switch.commands import CommandError
from switch.inbound import Channel

U = "6f1c2a9e-1d3b-4c55-9a7e-2b1f0c9d8e7a"
HOSTILE = ["", " ", "a b", "a,b", "a|b", "x'y", 'x"y', "a{b", "a}b", "a[b", "a]b", "a\nb", "a\rb", "a\x00b",
           "a\\b", "a^b", "a<b", "a>b", "١٢٣", "１２３", "123\n", "ab;cd", "a/b"]


@pytest.mark.parametrize("bad", HOSTILE + ["x" * 65, "-abc", None, 12])
def test_uuid_refuses_anything_but_letters_digits_dashes(bad):
    """Should refuse a channel uuid with a separator, a non-ASCII digit, a trailing newline or >64 chars."""
    with pytest.raises(CommandError, match="channel uuid"):
        c.uuid(bad)


def test_uuid_accepts_switch_and_short_ids():
    """Should accept FreeSWITCH's uuids and the short ids the app and its tests choose."""
    assert c.uuid(U) == U
    assert c.uuid("leg-x") == "leg-x"


@pytest.mark.parametrize("bad", ["", "12a", "+1000", "١٠٠٠", "１０００", "1000\n", "10 00", "1" * 33])
def test_extension_is_ascii_digits_only(bad):
    """Should refuse an extension that is not ASCII digits (Arabic-Indic and full-width digits too)."""
    with pytest.raises(CommandError, match="extension"):
        c.extension(bad)


def test_phone_allows_a_leading_plus_only():
    """Should take +8613800138000 and refuse a plus elsewhere or other characters."""
    assert c.phone("+8613800138000") == "+8613800138000"
    for bad in ("86+1", "++1", "138-0013", "1380013800\n", "١٣٨"):
        with pytest.raises(CommandError, match="phone number"):
            c.phone(bad)


@pytest.mark.parametrize("bad", ["", "1abc", "-ab", "a b", "a=b", "a\n", "a,b", "a.b", "变量"])
def test_variable_name_rule(bad):
    """Should refuse variable names that are not [A-Za-z_][A-Za-z0-9_-]*."""
    with pytest.raises(CommandError, match="variable name"):
        c.name(bad)


@pytest.mark.parametrize("bad", HOSTILE[2:18])
def test_value_refuses_what_the_switch_splits_at(bad):
    """Should refuse a variable value holding a comma, quote, bracket, brace, pipe, caret, backslash or
    control character (a space is allowed: originate quotes it)."""
    if bad == "a b":
        assert c.value(bad) == bad
        return
    with pytest.raises(CommandError, match="variable value"):
        c.value(bad)


def test_value_allows_expansions_but_not_a_broken_one():
    """Should let ${name} and ${a${b}} through (FreeSWITCH expands them) and refuse a lone brace."""
    assert c.value("${peer_password}") == "${peer_password}"
    assert c.value("${hotline_op_${bridge_uuid}}") == "${hotline_op_${bridge_uuid}}"
    assert c.value(30) == "30"
    for bad in ("${a,b}", "${", "$}x}", "${a}}"):
        with pytest.raises(CommandError):
            c.value(bad)


def test_scrub_and_text_clean_outside_data():
    """Should keep only safe characters of a caller id (64 at most) and blank the separators of free text."""
    assert c.scrub("+86 138-0013,8000}'") == "+86138-00138000"
    assert c.scrub(None) == ""
    assert len(c.scrub("1" * 100)) == 64
    assert c.text("Hot'line, {12345}\n|x") == "Hot line   12345   x"
    assert c.scrub_path("/a b/c,d$[e].wav") == "/ab/cde.wav"


def test_originate_quotes_spaces_and_keeps_the_shapes_sent_today():
    """Should build originate lines byte for byte as the modules sent them, quoting what has spaces."""
    assert c.originate(c.user("1000"), c.app("eavesdrop", U), {"origination_uuid": U, "originate_timeout": 30}) \
        == f"originate {{origination_uuid={U},originate_timeout=30}}user/1000 &eavesdrop({U})"
    line = c.originate(c.user("1000"), c.app("socket", "127.0.0.1:8084 async full"), {"hotline_attempt": 7})
    assert line == "originate {hotline_attempt=7}user/1000 '&socket(127.0.0.1:8084 async full)'"
    assert c.originate("user/1000", "&txfax(/x.tif)", [("fax_header", "12345 Hotline")]) \
        == "originate {fax_header='12345 Hotline'}user/1000 &txfax(/x.tif)"
    assert c.originate("user/1000", "&park()") == "originate user/1000 &park()"


@pytest.mark.parametrize("pairs", [{"a": "x,acd_agent=9"}, {"a": "x}sofia/gateway/evil/1"}, {"a b": "1"},
                                   {"a": "x'y"}, {"a": "1\nbgapi originate"}])
def test_originate_refuses_hostile_variables(pairs):
    """Should refuse values or names that would add variables, end the block or start a new ESL line."""
    with pytest.raises(CommandError):
        c.originate("user/1000", "&park()", pairs)


def test_originate_refuses_hostile_dial_or_app():
    """Should refuse a dial string with a space and an application with a line end or quote."""
    with pytest.raises(CommandError):
        c.originate("user/1000 &park()", "&park()")
    with pytest.raises(CommandError):
        c.originate("user/1000", "&park()\nbgapi x")
    with pytest.raises(CommandError):
        c.app("socket", "x' '&y")


def test_dial_strings():
    """Should build user/, gateway, template, per-leg, ring-all and sequential dial strings."""
    assert c.user("1000") == "user/1000"
    assert c.gateway("carrier", "+8613800138000") == "sofia/gateway/carrier/+8613800138000"
    assert c.from_template("sofia/internal/{extension}@10.0.0.2:5080", extension="1001") \
        == "sofia/internal/1001@10.0.0.2:5080"
    assert c.from_template("sofia/gateway/carrier/{number}", number="13800138000") \
        == "sofia/gateway/carrier/13800138000"
    assert c.from_template("[hotline_outbound=127.0.0.1:8084,x=1]loopback/{number}/default", number="12345") \
        == "[hotline_outbound=127.0.0.1:8084,x=1]loopback/12345/default"
    legs = [c.leg({"origination_uuid": "a-1", "leg_timeout": 20}, "user/1000"), c.leg({}, "user/1001")]
    assert c.ring_all(legs) == "[origination_uuid=a-1,leg_timeout=20]user/1000,user/1001"
    assert c.one_after_another(legs) == "[origination_uuid=a-1,leg_timeout=20]user/1000|user/1001"
    assert c.leg({"api_on_answer": c.uuid_setvar(U, "hotline_op_a", "/p/1.wav")}, "user/1") \
        == f"[api_on_answer=uuid_setvar {U} hotline_op_a /p/1.wav]user/1"
    assert c.variables({"sip_auth_password": "${peer_password}"}) == "{sip_auth_password=${peer_password}}"


@pytest.mark.parametrize("template,fields", [
    ("user/{extension}", {"extension": "1000,user/1001"}), ("user/{extension}", {"extension": "1000|x"}),
    ("sofia/gateway/c/{number}", {"number": "1 2"}), ("user/{extension}", {}),
    ("user/{extension} &park()", {"extension": "1"}), ("user/{extension}", {"ext": "1"})])
def test_from_template_refuses_hostile_fields_and_templates(template, fields):
    """Should refuse a field that would add a leg, a space, or a field left unfilled or unknown."""
    with pytest.raises(CommandError):
        c.from_template(template, **fields)


def test_channel_commands():
    """Should build every uuid_ command the app sends, in FreeSWITCH's argument order."""
    assert c.uuid_kill(U) == f"uuid_kill {U}"
    assert c.uuid_kill(U, "NORMAL_CLEARING") == f"uuid_kill {U} NORMAL_CLEARING"
    assert c.uuid_hold(U) == f"uuid_hold {U}"
    assert c.uuid_hold(U, "off") == f"uuid_hold off {U}"
    assert c.uuid_hold(U, "toggle") == f"uuid_hold toggle {U}"
    assert c.uuid_transfer(U, "1000") == f"uuid_transfer {U} 1000 XML default"
    assert c.uuid_transfer(U, "conference:r1@hotline", leg="-both", dialplan="inline") \
        == f"uuid_transfer {U} -both conference:r1@hotline inline"
    assert c.uuid_transfer(U, "1000", leg="-bleg") == f"uuid_transfer {U} -bleg 1000 XML default"
    assert c.uuid_setvar(U, "bridge_pre_execute_app") == f"uuid_setvar {U} bridge_pre_execute_app"
    assert c.uuid_setvar(U, "d", "${a${b}}") == f"uuid_setvar {U} d ${{a${{b}}}}"
    assert c.uuid_getvar(U, "fax_tone_detected") == f"uuid_getvar {U} fax_tone_detected"
    assert c.uuid_record(U, "start", "/r/a.wav") == f"uuid_record {U} start /r/a.wav"
    assert c.uuid_record(U, "stop", "/r/a.wav") == f"uuid_record {U} stop /r/a.wav"
    assert c.uuid_broadcast(U, "att_xfer", "{a=1}user/1000") == f"uuid_broadcast {U} att_xfer::{{a=1}}user/1000 aleg"
    assert c.uuid_bridge(U, "leg-b") == f"uuid_bridge {U} leg-b"
    assert c.uuid_break(U) == f"uuid_break {U} all"
    assert c.uuid_send_info(U, "cue") == f"uuid_send_info {U} cue"
    assert "\n" not in c.uuid_send_info(U, "cue\napi status")  # a line end would start a second command
    assert c.transfer_data("12345") == "12345 XML default"
    assert c.conference_room("acd3w_1_ab-1", "hotline") == "acd3w_1_ab-1@hotline"
    assert c.inline("conference", "r1@hotline") == "conference:r1@hotline"
    assert c.global_getvar("hotline_peer_uri") == "global_getvar hotline_peer_uri"
    assert c.sofia_registrations("internal") == "sofia status profile internal reg"


@pytest.mark.parametrize("build", [
    lambda: c.uuid_kill(U, "normal clearing"), lambda: c.uuid_kill(U + " x"), lambda: c.uuid_hold(U, "of"),
    lambda: c.uuid_transfer(U, "1000 XML evil"), lambda: c.uuid_transfer(U, "1000", leg="-aleg"),
    lambda: c.uuid_transfer(U, "conf x", dialplan="inline"), lambda: c.uuid_transfer(U, "1000", "ctx;x"),
    lambda: c.uuid_setvar(U, "v", "x\napi status"), lambda: c.uuid_setvar(U, "v", ""),
    lambda: c.uuid_setvar(U, "a b", "1"), lambda: c.uuid_record(U, "begin", "/a"),
    lambda: c.uuid_record(U, "start", "/a b.wav"), lambda: c.uuid_broadcast(U, "playback", "/a b"),
    lambda: c.uuid_broadcast(U, "playback", "/a", "cleg"), lambda: c.uuid_bridge(U, "x\ny"),
    lambda: c.conference_room("r 1", "hotline"), lambda: c.conference_room("r,1", "hotline"),
    lambda: c.inline("conference", "r@p inline"), lambda: c.inline("conference", ""), lambda: c.sofia_registrations("internal reg\n"),
])
def test_channel_commands_refuse_hostile_arguments(build):
    """Should refuse arguments that would add words, lines or change the command."""
    with pytest.raises(CommandError):
        build()


class _Conn:
    def __init__(self):
        self.sent = []

    def api(self, command, timeout=None):
        self.sent.append((command, timeout))
        return "+OK\n"


def test_channel_handle_sends_one_command_per_verb():
    """Should send each verb's command with the handle's timeout and return the reply text."""
    conn = _Conn()
    ch = Channel(conn, U, timeout=7.0)
    assert ch.hold() == "+OK\n"
    ch.unhold(), ch.kill("NORMAL_CLEARING"), ch.transfer("12345"), ch.setvar("a", "1"), ch.getvar("a")
    ch.broadcast("att_xfer", "user/1000"), ch.record_start("/r.wav"), ch.record_stop("/r.wav"), ch.bridge("leg-b")
    ch.stop_playback()
    assert [cmd for cmd, _ in conn.sent] == [
        f"uuid_hold {U}", f"uuid_hold off {U}", f"uuid_kill {U} NORMAL_CLEARING", f"uuid_transfer {U} 12345 XML default",
        f"uuid_setvar {U} a 1", f"uuid_getvar {U} a", f"uuid_broadcast {U} att_xfer::user/1000 aleg",
        f"uuid_record {U} start /r.wav", f"uuid_record {U} stop /r.wav", f"uuid_bridge {U} leg-b", f"uuid_break {U} all"]
    assert {t for _, t in conn.sent} == {7.0}


def test_channel_handle_refuses_a_bad_uuid_before_sending():
    """Should raise CommandError for a hostile uuid and send nothing."""
    conn = _Conn()
    with pytest.raises(CommandError):
        Channel(conn, "x y\napi status")
    assert conn.sent == []
