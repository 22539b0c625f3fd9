"""freeswitch-conf/ checked without a FreeSWITCH: it assembles, every reference resolves, and it says
what the product needs (module list, ESL on 127.0.0.1 behind an ACL, 12345 to the app's socket...).

These tests run everywhere (they need no switch); the live suite then starts the real thing.
"""
from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.live import fsconf
from tests.live.fsconf import CONF_DIR, ConfError, assemble, params

# Every module the product loads, and why.  A module in modules.conf.xml that is not here fails a test:
# each extra module is attack surface and start-up time, so adding one is a decision made here.
REQUIRED_MODULES = {
    "mod_console": "log to the console / fs_cli",
    "mod_logfile": "freeswitch.log in the -log directory",
    "mod_event_socket": "the app's inbound control connection and the socket dialplan app",
    "mod_sofia": "SIP: agents' phones and the carrier trunk",
    "mod_loopback": "calls placed by the app and the live tests (loopback/12345)",
    "mod_commands": "originate, uuid_* and the other API commands the app sends",
    "mod_dptools": "answer, playback, record, bridge, eavesdrop, play_and_get_digits...",
    "mod_dialplan_xml": "the XML dialplan",
    "mod_conference": "three-way calls and barge-in",
    "mod_spandsp": "fax (rxfax/txfax) and fax tone detection",
    "mod_sndfile": "WAV prompts and recordings",
    "mod_native_file": "raw native-format sound files",
    "mod_tone_stream": "tone_stream:// (ring-back, beeps)",
    "mod_local_stream": "music on hold (local_stream://moh)",
}


def xml_files() -> list[Path]:
    return sorted(p for p in CONF_DIR.rglob("*.xml*")
                  if p.is_file() and p.suffix != ".md" and not fsconf.is_site_file(p))


@pytest.fixture(scope="module")
def conf():
    return assemble()


def loaded_modules(conf) -> list[str]:
    return [node.get("module") for node in conf.configuration("modules.conf").iter("load")]


def test_every_file_is_well_formed_xml():
    """Should parse each XML file of freeswitch-conf on its own (an <include> wrapper or a single root)."""
    files = xml_files()
    assert len(files) >= 15
    for path in files:
        try:
            ET.parse(path)
        except ET.ParseError as exc:
            pytest.fail(f"{path.relative_to(CONF_DIR)}: {exc}")


def test_assembles_like_freeswitch_without_problems(conf):
    """Should pre-process into one document: every include finds its files, every $${var} is set first."""
    assert conf.problems == []
    root = conf.root()
    assert root.tag == "document"
    assert sorted(s.get("name") for s in root.findall("section")) == ["configuration", "dialplan", "directory"]


def test_every_shipped_xml_file_is_used():
    """Should read every *.xml file in the directory, so that no dead file looks like live configuration (the
    two kinds of seat password read one file each: both together)."""
    conf = assemble()
    shipped = {p.resolve() for p in CONF_DIR.rglob("*.xml") if not fsconf.is_site_file(p)}
    unused = shipped - set(conf.files) - set(assemble(env={"HOTLINE_FS_SEAT_PASSWORDS": "shared"}).files)
    assert unused == set()


def test_comments_hold_no_preprocessor_syntax():
    """Should keep pre-processor commands and $${...} out of comments, where FreeSWITCH would still act on them."""
    hazards = [h for p in xml_files() for h in fsconf.comment_hazards(p)]
    assert hazards == []


def test_modules_are_exactly_the_required_list(conf):
    """Should load every required module and no other."""
    modules = loaded_modules(conf)
    assert len(modules) == len(set(modules)), "a module is loaded twice"
    extra = set(modules) - set(REQUIRED_MODULES)
    missing = set(REQUIRED_MODULES) - set(modules)
    assert not extra, f"modules.conf.xml loads modules not in the required list: {sorted(extra)}"
    assert not missing, f"modules.conf.xml misses required modules: {sorted(missing)}"
    assert modules[:2] == ["mod_console", "mod_logfile"], "loggers load first so module loading is logged"


def test_each_loaded_module_with_settings_has_its_configuration(conf):
    """Should ship the <configuration> of each loaded module that reads one."""
    needs = {"mod_event_socket": "event_socket.conf", "mod_sofia": "sofia.conf", "mod_conference":
             "conference.conf", "mod_spandsp": "spandsp.conf", "mod_local_stream": "local_stream.conf",
             "mod_logfile": "logfile.conf", "mod_console": "console.conf"}
    for module in loaded_modules(conf):
        if module in needs:
            conf.configuration(needs[module])
    conf.configuration("acl.conf")
    conf.configuration("switch.conf")


def test_event_socket_listens_on_loopback_behind_an_acl(conf):
    """Should bind ESL to 127.0.0.1:8021 with the vars password and admit only the esl_allowed list."""
    settings = params(conf.configuration("event_socket.conf").find("settings"))
    assert settings["listen-ip"] == "127.0.0.1"
    assert settings["listen-port"] == "8021"
    assert settings["password"] == conf.variables["esl_password"]
    assert settings["password"] != "ClueCon", "the shipped password must not be the well-known default"
    acl_name = settings["apply-inbound-acl"]
    lists = {node.get("name"): node for node in conf.configuration("acl.conf").iter("list")}
    assert acl_name in lists
    assert lists[acl_name].get("default") == "deny"
    allowed = [n.get("cidr") for n in lists[acl_name].findall("node") if n.get("type") == "allow"]
    assert allowed == ["127.0.0.1/32"]


def test_switch_limits(conf):
    """Should cap sessions at 120 and 30 per second (the 2-core reference machine) and give RTP a port range."""
    settings = params(conf.configuration("switch.conf").find("settings"))
    assert settings["max-sessions"] == "120"
    assert settings["sessions-per-second"] == "30"
    assert int(settings["rtp-start-port"]) < int(settings["rtp-end-port"])


def test_switch_limits_follow_the_environment():
    """Should take HOTLINE_FS_MAX_SESSIONS and HOTLINE_FS_SESSIONS_PER_SECOND (sized to another machine)."""
    sized = assemble(env={"HOTLINE_FS_MAX_SESSIONS": "1200", "HOTLINE_FS_SESSIONS_PER_SECOND": "60"})
    settings = params(sized.configuration("switch.conf").find("settings"))
    assert (settings["max-sessions"], settings["sessions-per-second"]) == ("1200", "60")


def _profiles(conf) -> dict[str, ET.Element]:
    return {p.get("name"): p for p in conf.configuration("sofia.conf").iter("profile")}


def test_internal_profile_authenticates_agents_on_loopback(conf):
    """Should run the internal SIP profile on 127.0.0.1:5060 with authenticated calls into `default`."""
    internal = params(_profiles(conf)["internal"].find("settings"))
    assert internal["sip-ip"] == "127.0.0.1" and internal["rtp-ip"] == "127.0.0.1"
    assert internal["sip-port"] == "5060"
    assert internal["auth-calls"] == "true"
    assert internal["context"] == "default"
    assert internal["hold-music"] == "local_stream://moh"


def test_external_profile_takes_calls_only_from_the_carrier(conf):
    """Should route carrier calls to `public`, behind the carrier ACL, with no gateway enabled by default."""
    external = _profiles(conf)["external"]
    settings = params(external.find("settings"))
    assert settings["context"] == "public"
    assert settings["apply-inbound-acl"] == "carrier_allowed"
    assert settings["sip-ip"] == "127.0.0.1"
    assert external.find("gateways") is not None
    assert list(external.find("gateways")) == [], "the carrier gateway must stay disabled until configured"


def test_carrier_gateway_template_resolves_once_enabled(tmp_path):
    """Should, once carrier.xml.disabled is copied to carrier.xml, define gateway `carrier` from vars."""
    site = fsconf.shipped_copy(tmp_path / "conf")
    gateways = site / "sip_profiles" / "external"
    shutil.copy(gateways / "carrier.xml.disabled", gateways / "carrier.xml")
    (site / "local" / "carrier.xml").write_text(
        '<include>\n  <X-PRE-PROCESS cmd="set" data="carrier_proxy=sip.carrier.example:5060"/>\n'
        '  <X-PRE-PROCESS cmd="set" data="carrier_realm=sip.carrier.example"/>\n</include>\n')
    conf = assemble(site, site_files=True)
    assert conf.problems == []
    external = {p.get("name"): p for p in conf.configuration("sofia.conf").iter("profile")}["external"]
    (gateway,) = external.find("gateways").findall("gateway")
    settings = params(gateway)
    assert gateway.get("name") == "carrier"
    assert settings["proxy"] == "sip.carrier.example:5060"
    assert settings["realm"] == settings["from-domain"] == "sip.carrier.example"
    assert settings["extension"] == "auto_to_user"
    assert settings["register"] == "false"
    assert settings["context"] == "public"


def _extension(conf, context: str, name: str) -> ET.Element:
    dialplan = conf.root().find("section[@name='dialplan']")
    for ctx in dialplan.iter("context"):
        if ctx.get("name") == context:
            for ext in ctx.findall("extension"):
                if ext.get("name") == name:
                    return ext
    raise AssertionError(f"no extension {name!r} in context {context!r}")


def _actions(ext: ET.Element) -> list[tuple[str, str]]:
    return [(a.get("application"), a.get("data")) for a in ext.iter("action")]


def test_12345_goes_to_the_apps_outbound_socket(conf):
    """Should hand 12345 to `socket ${hotline_outbound} async full`, and refuse the call if that fails."""
    ext = _extension(conf, "default", "hotline")
    (condition,) = ext.findall("condition")
    assert condition.get("field") == "destination_number"
    assert re.fullmatch(condition.get("expression"), "12345")
    actions = _actions(ext)
    assert ("socket", "${hotline_outbound} async full") in actions
    app, data = actions[-1]
    assert app == "hangup"
    assert data == "${cond(${answered_time} > 0 ? NORMAL_CLEARING : NORMAL_TEMPORARY_FAILURE)}"
    assert conf.variables["hotline_outbound"] == "127.0.0.1:8084"


def test_pair_dialplan_tries_the_standby_then_once_more_after_the_wait(conf):
    """Should, after the app's socket, try the pair's other app, then the hotline-failover extension, then
    hang up; the failover extension runs only for a hotline caller the app never bridged to anyone: it waits
    hotline_failover_wait and tries both addresses again. The carrier's extension does the same."""
    for context in ("default", "public"):
        actions = [a for a in _actions(_extension(conf, context, "hotline")) if a != RESUME]
        start = actions.index(("socket", "${hotline_outbound} async full"))
        assert actions[start + 1:start + 3] == [("socket", "${hotline_outbound_standby} async full"),
                                                 ("execute_extension", "hotline-failover XML default")]
        assert actions[start + 3][0] == "hangup" and len(actions) == start + 4
    failover = _extension(conf, "default", "hotline-failover")
    fields = [(c.get("field"), c.get("expression")) for c in failover.findall("condition")]
    assert fields == [("destination_number", "^hotline-failover$"), ("${hotline_entry}", "^(internal|carrier)$"),
                      ("${last_bridge_to}", "^$")]
    assert [a for a in _actions(failover) if a != RESUME] == [
        ("sleep", "5000"),  # $${hotline_failover_wait}, expanded when read
        ("socket", "${hotline_outbound} async full"),
        ("socket", "${hotline_outbound_standby} async full")]
    names = [e.get("name") for e in conf.root().iter("extension")]
    assert names.index("hotline-failover") < names.index("unknown-number")
    assert conf.variables["hotline_outbound_standby"] == "127.0.0.1:8085"
    assert conf.variables["hotline_failover_wait"] == "5000"
    assert assemble(env={"HOTLINE_OUTBOUND_STANDBY": "10.0.0.12:8084"}).variables[
        "hotline_outbound_standby"] == "10.0.0.12:8084"


def test_hotline_calls_record_unbuffered(conf):
    """Should set enable_file_write_buffering=false on every hotline call before the app's socket (internal
    and carrier): FreeSWITCH's `record` otherwise holds ~64 KB before its first write, so a switch killed
    while a caller records a complaint would leave only the WAV header (issue 16; test_faults_live)."""
    for context in ("default", "public"):
        actions = _actions(_extension(conf, context, "hotline"))
        setting = actions.index(("set", "enable_file_write_buffering=false"))
        assert setting < actions.index(("socket", "${hotline_outbound} async full")), context


RESUME = ("set", "socket_resume=true")


def test_hotline_calls_go_on_when_the_app_never_takes_them(conf):
    """Should set socket_resume=true right before every socket of the hotline (internal, carrier, failover),
    and false once the call is answered (only the app answers it): in async mode the socket app otherwise
    parks a channel for ever once its listener ends before `connect` (an app that accepts and closes, or stays
    silent), and the next address is never tried (issue 15 item 2; test_pair_live)."""
    for context, name in (("default", "hotline"), ("public", "hotline"), ("default", "hotline-failover")):
        actions = _actions(_extension(conf, context, name))
        sockets = [i for i, (app, _) in enumerate(actions) if app == "socket"]
        assert len(sockets) == 2 and all(actions[i - 1] == RESUME for i in sockets), (context, name)
        if name == "hotline":
            assert actions.index(("set", "execute_on_answer_hotline_resume=set socket_resume=false")) < sockets[0]


def test_outbound_address_follows_the_environment():
    """Should take HOTLINE_OUTBOUND from the switch's environment, like the app does."""
    conf = assemble(env={"HOTLINE_OUTBOUND": "127.0.0.1:9999", "HOTLINE_FS_ESL_PASSWORD": "s3cret"})
    assert conf.variables["hotline_outbound"] == "127.0.0.1:9999"
    settings = params(conf.configuration("event_socket.conf").find("settings"))
    assert settings["password"] == "s3cret"


def test_local_override_wins_over_shipped_default(tmp_path):
    """Should let a local/*.xml file override a vars.xml default (it is included last)."""
    site = fsconf.shipped_copy(tmp_path / "conf")
    (site / "local" / "site.xml").write_text(
        '<include>\n'
        '  <X-PRE-PROCESS cmd="set" data="esl_allowed_cidrs=127.0.0.1/32,10.9.8.7/32"/>\n'
        '  <X-PRE-PROCESS cmd="set" data="hotline_sip_ip=10.9.8.1"/>\n'
        '</include>\n')
    conf = assemble(site, site_files=True)
    assert conf.problems == []
    acl = {n.get("name"): n for n in conf.configuration("acl.conf").iter("list")}["esl_allowed"]
    assert [n.get("cidr") for n in acl.findall("node")] == ["127.0.0.1/32,10.9.8.7/32"]
    # Values derived from an overridden one follow it (they are set after the overrides are read).
    internal = {p.get("name"): p for p in conf.configuration("sofia.conf").iter("profile")}["internal"]
    assert params(internal.find("settings"))["sip-ip"] == "10.9.8.1"
    assert conf.root().find("section[@name='directory']/domain").get("name") == "10.9.8.1"


def test_carrier_numbers_reach_the_same_app(conf):
    """Should route the hotline's DIDs from the carrier to the same socket, and nothing else."""
    ext = _extension(conf, "public", "hotline")
    expression = ext.find("condition").get("expression")
    for number in ("12345", "057112345", "01012345", "+8657112345", "8657112345", "+8612345"):
        assert re.fullmatch(expression, number), number
    for number in ("110", "123456", "12345678", "1234", "55512345", "0012345", "+86012345"):
        assert not re.fullmatch(expression, number), number
    assert ("socket", "${hotline_outbound} async full") in _actions(ext)
    assert _actions(_extension(conf, "public", "unknown-number")) == [("hangup", "UNALLOCATED_NUMBER")]


def test_fax_detection_is_on_by_default_and_starts_at_answer(conf):
    """Should arm spandsp fax detection on the hotline numbers by default (hotline_fax_detect=true, for a
    minute) for when the app answers (execute_on_answer: started on the ringing call it would pre-answer
    it), before the socket, from the dialplan only: the app starts no detector of its own."""
    for context in ("default", "public"):
        names = [ext.get("name") for ctx in conf.root().iter("context") if ctx.get("name") == context
                 for ext in ctx.findall("extension")]
        assert names.index("hotline-fax-detect") < names.index("hotline")
        ext = _extension(conf, context, "hotline-fax-detect")
        assert ext.get("continue") == "true"
        first = ext.findall("condition")[0]
        assert first.get("field") == "${hotline_fax_detect}" and first.get("expression") == "^true$"
        (app, data), = _actions(ext)
        assert app == "set"
        name, _, value = data.partition("=")
        assert name.startswith("execute_on_answer_")
        assert value.split() == ["spandsp_start_fax_detect", "set", "fax_tone_detected=true",
                                 "${hotline_fax_detect_seconds}"]
    assert conf.variables["hotline_fax_detect"] == "true"
    assert int(conf.variables["hotline_fax_detect_seconds"]) >= 60
    app_code = "\n".join(path.read_text(encoding="utf-8") for package in ("ivr", "recorder", "switch", "acd")
                         for path in (CONF_DIR.parent / package).rglob("*.py"))
    assert "spandsp_start_fax_detect" not in app_code, "one detector per channel: the dialplan's"


def test_every_sip_profile_paces_playback_by_its_own_clock(conf):
    """Should set rtp-timer-name=soft on every SIP profile, so a caller who sends no RTP still hears each
    prompt end and reaches the menu (without it playback is paced by the caller's packets)."""
    profiles = _profiles(conf)
    assert sorted(profiles) == ["external", "internal"]
    for name, profile in profiles.items():
        assert params(profile.find("settings")).get("rtp-timer-name") == "soft", name


def test_carrier_profile_takes_one_dtmf_kind_per_call(conf):
    """Should take RFC 2833 from a carrier that offers telephone-event and SIP INFO from one that does
    not (FreeSWITCH's rtp_info_when_no_2833 is left on), never both (liberal-dtmf off)."""
    settings = params(_profiles(conf)["external"].find("settings"))
    assert settings["dtmf-type"] == "rfc2833" and settings["rfc2833-pt"] == "101"
    assert settings["liberal-dtmf"] == "false"
    assert "rtp_info_when_no_2833" not in ET.tostring(conf.root(), encoding="unicode")


def test_inband_dtmf_only_when_chosen_for_g711_carrier_calls_without_rfc2833(conf):
    """Should, with carrier_dtmf_without_2833=inband (shipped: info), turn SIP INFO off and arm in-band DTMF
    detection for the answer on a carrier call to the hotline numbers only when no RFC 2833 was negotiated
    and the codec is G.711, before the socket; never on the internal context."""
    assert conf.variables["carrier_dtmf_without_2833"] == "info"
    ext = _extension(conf, "public", "hotline-inband-dtmf")
    assert ext.get("continue") == "true"
    number, choice, codec, dtmf = ext.findall("condition")
    assert number.get("field") == "destination_number"
    assert number.get("expression") == _extension(conf, "public", "hotline").find("condition").get("expression")
    assert choice.get("field") == "${carrier_dtmf_without_2833}" and choice.get("expression") == "^inband$"
    assert codec.get("field") == "${rtp_use_codec_name}" and re.fullmatch(codec.get("expression"), "PCMA")
    assert re.fullmatch(codec.get("expression"), "PCMU") and not re.fullmatch(codec.get("expression"), "G729")
    assert dtmf.get("field") == "${dtmf_type}"
    assert re.fullmatch(dtmf.get("expression"), "info") and not re.fullmatch(dtmf.get("expression"), "rfc2833")
    assert [(a.get("application"), a.get("data")) for a in dtmf.findall("action")] == [
        ("set", "dtmf_type=none"), ("set", "execute_on_answer_hotline_dtmf=spandsp_start_dtmf")]
    names = [e.get("name") for ctx in conf.root().iter("context") if ctx.get("name") == "public"
             for e in ctx.findall("extension")]
    assert names.index("hotline-inband-dtmf") < names.index("hotline")
    with pytest.raises(AssertionError):
        _extension(conf, "default", "hotline-inband-dtmf")


def test_three_way_conferences_use_the_shipped_profile(conf):
    """Should define the conference profile the agent controls name (acd.agent_controls.CONFERENCE_PROFILE):
    8 kHz, no caller DTMF controls, hold music, a member limit."""
    from acd.agent_controls import CONFERENCE_PROFILE

    profiles = {p.get("name"): params(p) for p in conf.configuration("conference.conf").iter("profile")}
    assert CONFERENCE_PROFILE in profiles
    profile = profiles[CONFERENCE_PROFILE]
    assert profile["rate"] == "8000" and profile["caller-controls"] == "none"
    assert profile["moh-sound"] == "local_stream://moh" and profile["max-members"] == "6"


def _agent_users(conf) -> dict[str, ET.Element]:
    directory = conf.root().find("section[@name='directory']")
    return {u.get("id"): u for u in directory.find("domain/groups/group[@name='agents']").iter("user")}


def test_seats_have_their_own_passwords_by_default(tmp_path):
    """Should, as shipped, give the agents group exactly the seats the product writes into hotline_seats_dir
    (each its own password, HOTLINE_FS_SEATS_DIR, the app's setting of the same name) and no shared one."""
    from switch.directory import seats_xml, write_seats

    conf = assemble()
    assert conf.problems == [] and conf.variables["seat_passwords"] == "product"
    assert conf.variables["hotline_seats_dir"] == f"{CONF_DIR}/../var/seats"
    assert _agent_users(conf) == {}  # nothing until the product has written its file
    seats = tmp_path / "seats"
    write_seats(seats, seats_xml({"1000": "first-seat-secret-1", "1001": "second-seat-secret"}))
    site = fsconf.shipped_copy(tmp_path / "conf")
    written = assemble(site, env={"HOTLINE_FS_SEATS_DIR": str(seats)}, site_files=True)
    assert written.problems == []
    users = _agent_users(written)
    assert sorted(users) == ["1000", "1001"]
    assert params(users["1000"].find("params"))["password"] == "first-seat-secret-1"
    assert params(users["1001"].find("params"))["password"] == "second-seat-secret"
    assert params(users["1001"].find("variables"), "variable")["effective_caller_id_number"] == "1001"
    assert conf.variables["agent_password"] not in {"first-seat-secret-1", "second-seat-secret"}


def test_agents_1000_to_1019_share_the_vars_password():
    """Should, with seat_passwords=shared (development, the live tests), define exactly the agent extensions
    1000-1019, each with the agent_password variable."""
    conf = assemble(env={"HOTLINE_FS_SEAT_PASSWORDS": "shared"})
    assert conf.problems == []
    directory = conf.root().find("section[@name='directory']")
    users = {u.get("id"): u for u in directory.find("domain/groups/group[@name='agents']").iter("user")}
    assert sorted(users) == [str(n) for n in range(1000, 1020)]
    for uid, user in users.items():
        assert params(user.find("params"))["password"] == conf.variables["agent_password"]
        variables = params(user.find("variables"), "variable")
        assert variables["effective_caller_id_number"] == uid
    (domain,) = directory.findall("domain")
    assert domain.get("name") == conf.variables["domain"] == "127.0.0.1"


def test_agent_to_agent_dialling_matches_only_seats(conf):
    """Should bridge 1000-1019 to the dialled seat and nothing outside that range."""
    ext = _extension(conf, "default", "agent-to-agent")
    expression = ext.find("condition").get("expression")
    assert re.fullmatch(expression, "1000") and re.fullmatch(expression, "1019")
    assert not re.fullmatch(expression, "1020") and not re.fullmatch(expression, "999")
    assert ("bridge", "user/$1@127.0.0.1") in _actions(ext)


def test_peer_account_reaches_only_agents_seats(conf):
    """Should let the hotline's other servers in as hotline-peer (peer_password), into a context that
    bridges a seat's extension to its phone and refuses everything else."""
    directory = conf.root().find("section[@name='directory']")
    (peer,) = directory.findall("domain/groups/group[@name='peers']/users/user")
    assert peer.get("id") == "hotline-peer"
    assert params(peer.find("params"))["password"] == conf.variables["peer_password"] \
        == "change-this-peer-password"
    assert params(peer.find("variables"), "variable")["user_context"] == "hotline_peer"
    # ... and only from the other servers' addresses, whatever the password.
    acl = params(peer.find("params"))["auth-acl"]
    lists = {node.get("name"): node for node in conf.configuration("acl.conf").iter("list")}
    assert lists[acl].get("default") == "deny"
    assert [n.get("cidr") for n in lists[acl].findall("node") if n.get("type") == "allow"] \
        == [conf.variables["peer_cidrs"]] == ["127.0.0.1/32"]
    ext = _extension(conf, "hotline_peer", "peer-to-agent")
    expression = ext.find("condition").get("expression")
    assert expression == _extension(conf, "default", "agent-to-agent").find("condition").get("expression")
    for number in ("1000", "1019"):
        assert re.fullmatch(expression, number)
    for number in ("12345", "1020", "057112345", "13800138000", "hotline-peer"):
        assert not re.fullmatch(expression, number), number
    assert ("bridge", "user/$1@127.0.0.1") in _actions(ext)
    assert [app for app, _ in _actions(ext)] == ["set", "set", "bridge"]
    assert _actions(_extension(conf, "hotline_peer", "unknown-number")) == [("hangup", "UNALLOCATED_NUMBER")]


def test_peer_uri_follows_the_internal_profile(tmp_path):
    """Should tell the other servers (hotline_peer_uri) the internal profile's own address and port."""
    conf = assemble()
    assert conf.variables["hotline_peer_uri"] == "sofia/internal/{extension}@127.0.0.1:5060"
    site = fsconf.shipped_copy(tmp_path / "conf")
    (site / "local" / "site.xml").write_text(
        '<include>\n'
        '  <X-PRE-PROCESS cmd="set" data="hotline_sip_ip=10.9.8.1"/>\n'
        '  <X-PRE-PROCESS cmd="set" data="internal_sip_port=5070"/>\n'
        '</include>\n')
    assert assemble(site, site_files=True).variables["hotline_peer_uri"] == \
        "sofia/internal/{extension}@10.9.8.1:5070"
    assert assemble(env={"HOTLINE_FS_PEER_PASSWORD": "p33r"}).variables["peer_password"] == "p33r"


def test_a_second_instance_reads_its_own_override_folder(tmp_path):
    """Should read HOTLINE_FS_LOCAL_DIR instead of local/ (a second FreeSWITCH from the same directory):
    its variables, and extra seats in its directory/ folder, dialled through agent_extensions."""
    site = fsconf.shipped_copy(tmp_path / "conf")
    (site / "local" / "first.xml").write_text(
        '<include>\n  <X-PRE-PROCESS cmd="set" data="esl_listen_port=8021"/>\n</include>\n')
    # The example shipped for the cross-server live test (tests/live/README.md, "Two switches").
    other = Path(__file__).resolve().parent / "instance-b"
    conf = assemble(site, env={"HOTLINE_FS_LOCAL_DIR": str(other)}, site_files=True)
    assert conf.problems == []
    assert params(conf.configuration("event_socket.conf").find("settings"))["listen-port"] == "8031"
    assert params(conf.configuration("switch.conf").find("settings"))["rtp-start-port"] == "40000"
    assert conf.variables["hotline_peer_uri"] == "sofia/internal/{extension}@127.0.0.1:5062"
    agents = conf.root().find("section[@name='directory']/domain/groups/group[@name='agents']")
    assert {f"10{n}" for n in range(50, 60)} <= {u.get("id") for u in agents.iter("user")}
    expression = _extension(conf, "hotline_peer", "peer-to-agent").find("condition").get("expression")
    assert re.fullmatch(expression, "1050")
    # Without the variable, local/ is read as before.
    first = assemble(site, site_files=True)
    assert params(first.configuration("event_socket.conf").find("settings"))["listen-port"] == "8021"


def test_music_on_hold_and_fax_spool_point_into_the_app_tree(conf):
    """Should play sounds/moh for hold music and spool faxes under var/fax, next to this directory."""
    (directory,) = conf.configuration("local_stream.conf").findall("directory")
    assert directory.get("name") == "moh"
    assert Path(directory.get("path")).resolve() == (CONF_DIR.parent / "sounds" / "moh").resolve()
    fax = params(conf.configuration("spandsp.conf").find("fax-settings"))
    assert fax["use-ecm"] == "true" and fax["disable-v17"] == "false" and fax["enable-t38"] == "false"
    assert Path(fax["spool-dir"]).resolve() == (CONF_DIR.parent / "var" / "fax").resolve()
    profile = conf.configuration("conference.conf").find("profiles/profile")
    assert params(profile)["rate"] == "8000"


def test_checker_reports_an_undefined_variable(tmp_path):
    """Should report a $${name} used before it is set (FreeSWITCH would silently use an empty string)."""
    site = fsconf.shipped_copy(tmp_path / "conf")
    acl = site / "autoload_configs" / "acl.conf.xml"
    acl.write_text(acl.read_text().replace("$${esl_allowed_cidrs}", "$${esl_alowed_cidrs}"))
    problems = assemble(site, site_files=True).problems
    assert len(problems) == 1 and "esl_alowed_cidrs" in problems[0] and "acl.conf.xml" in problems[0]


def test_checker_reports_an_include_that_finds_nothing(tmp_path):
    """Should report an include whose pattern matches no file."""
    site = fsconf.shipped_copy(tmp_path / "conf")
    shutil.rmtree(site / "directory")
    problems = assemble(site, site_files=True).problems
    assert any("directory/*.xml" in p for p in problems)


def test_checker_reports_broken_xml(tmp_path):
    """Should refuse an assembled document that is not well formed."""
    site = fsconf.shipped_copy(tmp_path / "conf")
    dialplan = site / "dialplan" / "default.xml"
    dialplan.write_text(dialplan.read_text().replace("</context>", ""))
    with pytest.raises(ConfError):
        assemble(site, site_files=True).root()


def test_checker_flags_preprocessor_syntax_in_comments(tmp_path):
    """Should flag a commented-out pre-processor line, which FreeSWITCH would still execute."""
    bad = tmp_path / "bad.xml"
    bad.write_text('<include>\n  <!-- <X-PRE-PROCESS cmd="set" data="a=b"/> -->\n</include>\n')
    assert len(fsconf.comment_hazards(bad)) == 1
