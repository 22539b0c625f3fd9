"""Team-lead actions (acd/supervisor.py) and agent controls (acd/agent_controls.py) on a real bridged call.

Skipped unless HOTLINE_TEST_ESL is set (and without sipp).  The app side is the product's own parts (the
LiveLine of test_acd_live.py: a SwitchPool on the live switch, the Acd, an OutboundServer that queues
every call); agents' and team leads' phones are sipp UAS processes registered on the internal profile;
the caller is a loopback call to 12345.  Each test checks what the switch itself reports: the eavesdrop
channel and its variables, the hang-up and its cause, who the caller ends up bridged to, hold events.

Extensions used here (others are taken by the other live modules, which may run at the same time on
another worker): 1002-1009, 1014, 1018; the attended-transfer, three-way and back-to-IVR tests share
1010-1013 and 1015-1017 with other modules, so run the live suite one test at a time (-p no:xdist).
"""
from __future__ import annotations

import contextlib

import pytest

from acd.agent_controls import AgentControls
from acd.dispatcher import create_queue
from acd.models import SupervisorAction
from caseflow.models import User
from tests.live.sipphone import AgentPhone
from tests.live.product import in_thread, wait_until
from tests.live.test_acd_live import LiveLine, _agent

pytestmark = pytest.mark.live


def _event(esl_events, predicate, timeout: float, what: str) -> dict:
    try:
        return in_thread(esl_events.wait_event, predicate, timeout)
    except Exception as exc:  # noqa: BLE001 - say which step it was
        raise AssertionError(f"waiting for {what}: {exc}") from exc


@contextlib.contextmanager
def _bridged_call(esl_endpoint, esl, esl_events, sipp, place_call, tmp_path, *, extension: str, seat: str,
                  caller: str, scenario: str = "answer_rtp.xml", others: tuple[tuple[str, str, int], ...] = (),
                  announce: bool = False):
    """A caller queued and bridged to a registered agent (seat, extension).

    announce: the ACD voices its prompts as the product does (自动报工号 included), and the call is handed
    over once the caller has heard the agent's operator number, as an agent starts talking after it.

    Phones talk (sipp/answer_rtp.xml streams A-law once answered) as desk phones do: FreeSWITCH runs an
    application broadcast to a bridged leg (att_xfer) only after that leg has read media.
    others: (extension, operator number or "" for a bare team-lead phone, calls it answers) for further
    phones; an operator number makes that phone an agent's (known to the ACD, logged out).  Yields a dict: line, agent, phones, citizen, call (the app's leg), leg (the agent's leg).
    """
    password = esl.api("global_getvar agent_password").strip()
    sip_port = int(esl.api("global_getvar internal_sip_port").strip())
    create_queue("consult", "consult", strategy="fixed_order", wrap_up_seconds=0, announce_interval=0,
                 ring_timeout=15)
    agent = _agent(seat, extension, "consult")
    phones = {extension: AgentPhone(sipp, tmp_path, sip_port, extension, password, scenario=scenario)}
    for other_ext, other_seat, calls in others:
        phones[other_ext] = AgentPhone(sipp, tmp_path, sip_port, other_ext, password, calls=calls,
                                       scenario="answer_rtp.xml")
        if other_seat:
            _agent(other_seat, other_ext, "consult")
    line = None
    try:
        for phone in phones.values():
            in_thread(phone.register)
        line = LiveLine(esl_endpoint, "consult", prompts=_prompts(tmp_path) if announce else None)
        line.acd.transition(agent.id, "login")
        line.acd.transition(agent.id, "ready")
        citizen = place_call(caller=caller, outbound=line.address)
        bridged = _event(esl_events, lambda ev: ev.get("Event-Name") == "CHANNEL_BRIDGE"
                         and ev.get("Caller-Caller-ID-Number") == caller
                         and ev.get("Unique-ID") != citizen.uuid, 40, "the caller bridged to the agent")
        call, leg = bridged["Unique-ID"], bridged["Other-Leg-Unique-ID"]
        assert esl.api(f"uuid_getvar {leg} dialed_user").strip() == extension
        wait_until(lambda: line.acd.agents[agent.id].state == "in_call"
              and line.acd.agents[agent.id].leg_uuid == leg, 10, "the agent in the call")
        if announce:
            _event(esl_events, lambda ev: ev.get("Event-Name") == "PLAYBACK_STOP" and ev.get("Unique-ID") == call
                   and f"/operator_{seat}.wav" in ev.get("Playback-File-Path", ""), 30,
                   "the caller to hear the operator number")
        yield {"line": line, "agent": agent, "phones": phones, "citizen": citizen, "call": call, "leg": leg}
    finally:
        if line is not None:
            line.close()
        for phone in phones.values():
            in_thread(phone.close)


def _prompts(tmp_path):
    """The ACD's announcements as the product voices them (自动报工号 included), where FreeSWITCH reads them."""
    from acd.prompts import AcdPrompts
    from ivr.prompts import call_time_renderer

    sounds = tmp_path / "sounds"
    sounds.mkdir(exist_ok=True)
    return AcdPrompts(sounds, render=call_time_renderer("zh", 8000))


def _lead(no: str, extension: str) -> User:
    return User.create(operator_no=no, name=f"班长{no}", password_hash="x", roles="team_lead",
                       extension=extension)


def _partners(esl, a: str, b: str) -> bool:
    """Whether the switch has legs a and b bridged to each other (each one's signal_bond names the other)."""
    return esl.api(f"uuid_getvar {a} signal_bond").strip() == b and \
        esl.api(f"uuid_getvar {b} signal_bond").strip() == a


def _exists(esl, uuid: str) -> bool:
    return esl.api(f"uuid_exists {uuid}").strip() == "true"


def test_team_lead_monitor_whisper_and_barge_eavesdrop_on_the_agent_leg(db, esl_endpoint, esl, esl_events,
                                                                       sipp, place_call, tmp_path):
    """Should ring the team lead's phone and, once answered, eavesdrop on the agent's leg: monitor with no
    extra variables, whisper with eavesdrop_whisper_aleg, barge with both bridge flags; the conversation
    goes on when the lead hangs up, and every action is recorded with who did it."""
    from acd.supervisor import Supervisor

    with _bridged_call(esl_endpoint, esl, esl_events, sipp, place_call, tmp_path, extension="1002",
                       seat="8201", caller="13933330001", others=(("1003", "", 3),)) as c:
        lead = _lead("9201", "1003")
        supervisor = Supervisor(c["line"].acd)
        expected = {"monitor": {"eavesdrop_whisper_aleg": "", "eavesdrop_bridge_aleg": ""},
                    "whisper": {"eavesdrop_whisper_aleg": "true", "eavesdrop_bridge_aleg": ""},
                    "barge": {"eavesdrop_bridge_aleg": "true", "eavesdrop_bridge_bleg": "true"}}
        for mode, variables in expected.items():
            lead_leg = getattr(supervisor, mode)(lead, c["agent"].id)
            started = _event(esl_events, lambda ev: ev.get("Event-Name") == "CHANNEL_EXECUTE"
                             and ev.get("Unique-ID") == lead_leg and ev.get("Application") == "eavesdrop",
                             40, f"the {mode} eavesdrop on the lead's leg")
            assert started["Application-Data"] == c["leg"]
            assert esl.api(f"uuid_getvar {lead_leg} dialed_user").strip() == "1003"
            for name, value in variables.items():
                got = esl.api(f"uuid_getvar {lead_leg} {name}").strip()
                assert got == (value or "_undef_"), (mode, name, got)
            esl.api(f"uuid_kill {lead_leg}")              # the lead puts the phone down
            _event(esl_events, lambda ev: ev.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE"
                   and ev.get("Unique-ID") == lead_leg, 20, "the lead's leg to end")
            assert _exists(esl, c["call"]) and _exists(esl, c["leg"])
            assert c["line"].acd.agents[c["agent"].id].state == "in_call"
        actions = [(a.action, a.actor_label, a.target_agent_id, a.call_uuid, a.ok)
                   for a in SupervisorAction.select().order_by(SupervisorAction.id)]
        assert actions == [(m, "9201", c["agent"].id, c["call"], True) for m in expected]
        esl.api(f"uuid_kill {c['leg']}")
        wait_until(lambda: c["line"].acd.agents[c["agent"].id].state == "idle", 20, "the agent back to idle")


def test_team_lead_force_release_ends_the_call(db, esl_endpoint, esl, esl_events, sipp, place_call, tmp_path):
    """Should hang up the caller's channel and the agent's leg at once (强拆), free the agent, and keep the
    queue entry as answered by that agent."""
    from acd.models import QueueEntry
    from acd.supervisor import Supervisor

    with _bridged_call(esl_endpoint, esl, esl_events, sipp, place_call, tmp_path, extension="1004",
                       seat="8202", caller="13933330002") as c:
        lead = _lead("9202", "")
        Supervisor(c["line"].acd).force_release(lead, c["agent"].id)
        ended = {}
        for uuid in (c["call"], c["leg"]):
            ended[uuid] = _event(esl_events, lambda ev, u=uuid: ev.get("Event-Name") == "CHANNEL_HANGUP"
                                 and ev.get("Unique-ID") == u, 20, f"{uuid} to hang up")
        assert ended[c["call"]]["Hangup-Cause"] == "NORMAL_CLEARING"
        assert not _exists(esl, c["call"]) and not _exists(esl, c["leg"])
        wait_until(lambda: c["line"].outcomes, 20, "the queue outcome")
        entry = QueueEntry.get(QueueEntry.call_uuid == c["call"])
        assert (entry.state, entry.agent_id) == ("bridged", c["agent"].id), (entry.state, entry.end_reason)
        assert entry.answered_at is not None and entry.ended_at is not None
        wait_until(lambda: c["line"].acd.agents[c["agent"].id].state == "idle", 20, "the agent back to idle")
        assert c["line"].acd.stuck_agents() == []
        action = SupervisorAction.get(SupervisorAction.action == "force_release")
        assert (action.actor_label, action.target_agent_id, action.ok) == ("9202", c["agent"].id, True)


def test_force_release_is_recorded_with_the_call(db, esl_endpoint, esl, esl_events, sipp, place_call, tmp_path):
    """Should record the force release with the call it ended, as every team-lead action is."""
    from acd.supervisor import Supervisor

    with _bridged_call(esl_endpoint, esl, esl_events, sipp, place_call, tmp_path, extension="1018",
                       seat="8208", caller="13933330008") as c:
        Supervisor(c["line"].acd).force_release(_lead("9208", ""), c["agent"].id)
        action = SupervisorAction.get(SupervisorAction.action == "force_release")
        assert action.call_uuid == c["call"]


def test_team_lead_intercept_moves_the_caller_to_the_lead(db, esl_endpoint, esl, esl_events, sipp, place_call,
                                                           tmp_path):
    """Should ring the lead's phone and, once answered, bridge the caller to the lead (拦截): the agent's leg
    is hung up and the agent freed, the caller's channel stays up talking to the lead."""
    from acd.supervisor import Supervisor

    with _bridged_call(esl_endpoint, esl, esl_events, sipp, place_call, tmp_path, extension="1005",
                       seat="8203", caller="13933330003", others=(("1006", "", 1),)) as c:
        lead = _lead("9203", "1006")
        lead_leg = Supervisor(c["line"].acd).intercept(lead, c["agent"].id)
        _event(esl_events, lambda ev: ev.get("Event-Name") == "CHANNEL_HANGUP" and ev.get("Unique-ID") == c["leg"],
               40, "the agent's leg to be released")
        _event(esl_events, lambda ev: ev.get("Event-Name") == "CHANNEL_BRIDGE"
               and {ev.get("Unique-ID"), ev.get("Other-Leg-Unique-ID")} == {lead_leg, c["call"]},
               20, "the caller bridged to the lead")
        wait_until(lambda: c["line"].acd.agents[c["agent"].id].state == "idle", 20, "the agent back to idle")
        # the caller still talks to the lead: the app, its bridge over, only waits for the caller's channel to
        # go (Acd.wait_channel_gone) and hangs nothing up behind them
        wait_until(lambda: c["call"] in c["line"].acd._gone, 20, "the app leaving the caller to the lead")
        assert _exists(esl, c["call"]) and _exists(esl, lead_leg)
        assert esl.api(f"uuid_getvar {c['call']} signal_bond").strip() == lead_leg
        esl.api(f"uuid_kill {lead_leg}")


def test_agent_holds_and_resumes_then_hangs_up(db, esl_endpoint, esl, esl_events, sipp, place_call, tmp_path):
    """Should put the agent's leg on hold (the phone re-INVITEd, the call HELD), take it off hold, then hang the agent's
    side up with NORMAL_CLEARING, leaving the agent idle and nobody stuck."""
    esl_events.subscribe("CHANNEL_HOLD", "CHANNEL_UNHOLD")
    with _bridged_call(esl_endpoint, esl, esl_events, sipp, place_call, tmp_path, extension="1007",
                       seat="8204", caller="13933330004", scenario="answer_hold.xml") as c:
        controls = AgentControls(c["line"].acd)
        agent_id = c["agent"].id
        assert controls.hold(agent_id, c["call"]).on_hold
        held = _event(esl_events, lambda ev: ev.get("Event-Name") == "CHANNEL_HOLD"
                      and ev.get("Unique-ID") == c["leg"], 20, "the agent's leg on hold")
        assert held["Channel-Call-State"] == "HELD"
        assert not controls.resume(agent_id, c["call"]).on_hold
        _event(esl_events, lambda ev: ev.get("Event-Name") == "CHANNEL_UNHOLD"
               and ev.get("Unique-ID") == c["leg"], 20, "the agent's leg off hold")
        assert _exists(esl, c["call"]) and c["line"].acd.agents[agent_id].state == "in_call"
        controls.hangup(agent_id, c["call"])
        ended = _event(esl_events, lambda ev: ev.get("Event-Name") == "CHANNEL_HANGUP"
                       and ev.get("Unique-ID") == c["leg"], 20, "the agent's leg to hang up")
        assert ended["Hangup-Cause"] == "NORMAL_CLEARING"
        wait_until(lambda: c["line"].acd.agents[agent_id].state == "idle", 20, "the agent back to idle")
        assert c["line"].acd.stuck_agents() == []
        assert [a.action for a in SupervisorAction.select().order_by(SupervisorAction.id)] == \
            ["hold", "resume", "hangup"]
        status, output = in_thread(c["phones"]["1007"].finished, 20)
        assert status == 0, output[-2000:]


def test_agent_blind_transfer_to_another_agent(db, esl_endpoint, esl, esl_events, sipp, place_call, tmp_path):
    """Should hand the caller to the other agent's phone (uuid_transfer to the extension): the caller is
    bridged to 1009, the first agent's leg is gone and that agent is free again."""
    with _bridged_call(esl_endpoint, esl, esl_events, sipp, place_call, tmp_path, extension="1008",
                       seat="8205", caller="13933330005", others=(("1009", "8206", 1),)) as c:
        line = c["line"]
        assert any(a.extension == "1009" and a.registered for a in line.acd.agents.values())
        AgentControls(line.acd).blind_transfer(c["agent"].id, c["call"], "agent", "1009")
        bridged = _event(esl_events, lambda ev: ev.get("Event-Name") == "CHANNEL_BRIDGE"
                         and ev.get("Unique-ID") == c["call"] and ev.get("Other-Leg-Unique-ID") != c["leg"],
                         40, "the caller bridged to the second agent")
        assert esl.api(f"uuid_getvar {bridged['Other-Leg-Unique-ID']} dialed_user").strip() == "1009"
        assert not _exists(esl, c["leg"])
        wait_until(lambda: line.acd.agents[c["agent"].id].state == "idle", 20, "the first agent free")
        action = SupervisorAction.get(SupervisorAction.action == "blind_transfer")
        assert action.detail == "agent:1009"
        esl.api(f"uuid_kill {bridged['Other-Leg-Unique-ID']}")


def test_force_released_call_outcome_is_answered(db, esl_endpoint, esl, esl_events, sipp, place_call, tmp_path):
    """Should report to the IVR that the force-released caller was answered by the agent (not abandoned)."""
    from acd.supervisor import Supervisor

    with _bridged_call(esl_endpoint, esl, esl_events, sipp, place_call, tmp_path, extension="1014",
                       seat="8207", caller="13933330007") as c:
        Supervisor(c["line"].acd).force_release(_lead("9207", ""), c["agent"].id)
        wait_until(lambda: c["line"].outcomes, 20, "the queue outcome")
        outcome = c["line"].outcomes[c["call"]]
        assert (outcome.outcome, outcome.agent_id) == ("answered", c["agent"].id)


def _operator_prompts_played(esl_events, call: str) -> list[str]:
    """The operator-number prompts (自动报工号) the caller's leg started playing, among the events read so far
    and not taken by a wait (wait_event keeps the others)."""
    return [ev.get("Playback-File-Path", "") for ev in esl_events.events
            if ev.get("Event-Name") == "PLAYBACK_START" and ev.get("Unique-ID") == call
            and "/operator_" in ev.get("Playback-File-Path", "")]


def _consultation(line, agent_id: int, esl_events):
    """The agent's consultation leg, once the switch says the target answered it."""
    consult = line.acd.consultations.for_agent(agent_id)
    assert consult is not None
    _event(esl_events, lambda ev: ev.get("Event-Name") == "CHANNEL_ANSWER" and ev.get("Unique-ID") == consult.leg,
           40, "the target to answer the consultation")
    wait_until(lambda: consult.answered, 10, "the ACD to see the target answer")
    return consult


def test_attended_transfer_completed_bridges_the_caller_to_the_target(db, esl_endpoint, esl, esl_events, sipp,
                                                                      place_call, tmp_path):
    """Should ring the target from the agent's leg (att_xfer, our consultation leg uuid, the hotline's caller
    id) and, on 完成转接, hang the agent's leg up so that FreeSWITCH bridges the caller to the target; the agent
    is free, the caller stays up talking to the target."""
    with _bridged_call(esl_endpoint, esl, esl_events, sipp, place_call, tmp_path, extension="1010",
                       seat="8209", caller="13933330010", others=(("1011", "8210", 1),), announce=True) as c:
        line, agent_id = c["line"], c["agent"].id
        controls = AgentControls(line.acd)
        controls.attended_transfer(agent_id, c["call"], "agent", "1011")
        consult = _consultation(line, agent_id, esl_events)
        assert esl.api(f"uuid_getvar {consult.leg} dialed_user").strip() == "1011"
        assert esl.api(f"uuid_getvar {consult.leg} origination_caller_id_number").strip() == "12345"
        controls.complete_transfer(agent_id, c["call"])
        _event(esl_events, lambda ev: ev.get("Event-Name") == "CHANNEL_BRIDGE"
               and {ev.get("Unique-ID"), ev.get("Other-Leg-Unique-ID")} == {consult.leg, c["call"]},
               20, "the caller bridged to the target")
        assert not _exists(esl, c["leg"])
        wait_until(lambda: line.acd.agents[agent_id].state != "in_call", 20, "the agent's call over")
        # the app, the caller's bridge over, only waits for the caller's channel to go: it hangs nothing up
        wait_until(lambda: c["call"] in line.acd._gone, 20, "the app leaving the caller to the target")
        assert _exists(esl, c["call"]) and _exists(esl, consult.leg)
        assert line.acd.consultations.for_agent(agent_id) is None
        assert [a.action for a in SupervisorAction.select().order_by(SupervisorAction.id)] == \
            ["attended_transfer", "complete_transfer"]
        # 自动报工号 once, for the agent who answered: not again when FreeSWITCH bridges the caller on
        assert [p.rpartition("/")[2] for p in _operator_prompts_played(esl_events, c["call"])] == \
            ["operator_8209.wav"]
        esl.api(f"uuid_kill {consult.leg}")


def test_attended_transfer_cancelled_goes_back_to_the_caller(db, esl_endpoint, esl, esl_events, sipp, place_call,
                                                             tmp_path):
    """Should hang the consultation leg up on 取消转接 and have FreeSWITCH bridge the agent back to the caller
    (without announcing the agent's operator number again); the agent is still in the call and can hang it
    up as usual."""
    with _bridged_call(esl_endpoint, esl, esl_events, sipp, place_call, tmp_path, extension="1012",
                       seat="8211", caller="13933330011", others=(("1013", "8212", 1),), announce=True) as c:
        line, agent_id = c["line"], c["agent"].id
        controls = AgentControls(line.acd)
        controls.attended_transfer(agent_id, c["call"], "agent", "1013")
        consult = _consultation(line, agent_id, esl_events)
        controls.cancel_transfer(agent_id, c["call"])
        _event(esl_events, lambda ev: ev.get("Event-Name") == "CHANNEL_HANGUP" and ev.get("Unique-ID") == consult.leg,
               20, "the consultation leg to hang up")
        # att_xfer puts the agent back with the caller: uuid_bridge once the consultation bridge had begun;
        # when the target left before it began (a cancel right on the answer), the caller's bridge goes on.
        wait_until(lambda: _partners(esl, c["leg"], c["call"]), 20, "the agent back with the caller")
        wait_until(lambda: line.acd.consultations.for_agent(agent_id) is None, 10, "the consultation over")
        # the app has settled: either the caller's socket app ended with att_xfer and it only waits for the
        # caller's channel to go, or (a cancel before the consultation bridge began) its bridge goes on
        waiter = line.acd.waiters.get(c["call"])
        wait_until(lambda: c["call"] in line.acd._gone or (waiter is not None and waiter.step == "bridge"), 20,
                   "the app waiting for the end of the call")
        assert _exists(esl, c["call"]) and _exists(esl, c["leg"])
        assert line.acd.agents[agent_id].state == "in_call"
        controls.hangup(agent_id, c["call"])
        _event(esl_events, lambda ev: ev.get("Event-Name") == "CHANNEL_HANGUP" and ev.get("Unique-ID") == c["leg"],
               20, "the agent's leg to hang up")
        wait_until(lambda: line.acd.agents[agent_id].state == "idle", 20, "the agent back to idle")
        # 自动报工号 once: not again when FreeSWITCH bridged the agent back to the caller
        assert [p.rpartition("/")[2] for p in _operator_prompts_played(esl_events, c["call"])] == \
            ["operator_8211.wav"]


def test_three_way_puts_caller_agent_and_third_party_in_one_conference(db, esl_endpoint, esl, esl_events, sipp,
                                                                       place_call, tmp_path):
    """Should move the caller and the agent into a conference and call the third party into it (三方通话),
    a room of the shipped hotline profile (8 kHz, at most 6 members); the agent stays busy until their own
    leg hangs up."""
    with _bridged_call(esl_endpoint, esl, esl_events, sipp, place_call, tmp_path, extension="1015",
                       seat="8213", caller="13933330012", others=(("1016", "", 1),)) as c:
        line, agent_id = c["line"], c["agent"].id
        AgentControls(line.acd).three_way(agent_id, c["call"], "number", "1016")
        room = f"acd3w_{agent_id}_{c['call'][:8]}"

        def members():
            listing = esl.api(f"conference {room} list")
            return {row.split(";")[2] for row in listing.splitlines() if row.count(";") > 3}

        wait_until(lambda: len(members()) == 3, 40, "three members in the conference")
        assert {c["call"], c["leg"]} <= members()
        # The room runs on the profile freeswitch-conf ships (conference.conf.xml), not an undefined one.
        settings = {name: esl.api(f"conference {room} get {name}").strip()
                    for name in ("profile_name", "rate", "max_members")}
        assert settings == {"profile_name": "hotline", "rate": "8000", "max_members": "6"}, settings
        assert line.acd.agents[agent_id].state == "in_call"
        esl.api(f"uuid_kill {c['leg']}")
        wait_until(lambda: line.acd.agents[agent_id].state == "idle", 20, "the agent free after leaving")
        esl.api(f"conference {room} hup all")


def test_back_to_ivr_sends_the_caller_into_the_app_again(db, esl_endpoint, esl, esl_events, sipp, place_call,
                                                         tmp_path):
    """Should mark the caller's channel with the IVR node and transfer it to the hotline number, so that it
    reaches the app's socket again (人工转自动); the agent's leg is released."""
    from acd.models import QueueEntry

    with _bridged_call(esl_endpoint, esl, esl_events, sipp, place_call, tmp_path, extension="1017",
                       seat="8214", caller="13933330013") as c:
        line, agent_id = c["line"], c["agent"].id
        controls = AgentControls(line.acd)
        controls.not_ready(agent_id, "小休")  # not offered the same caller again when it comes back
        controls.to_ivr(agent_id, c["call"], "satisfaction")
        _event(esl_events, lambda ev: ev.get("Event-Name") == "CHANNEL_HANGUP" and ev.get("Unique-ID") == c["leg"],
               20, "the agent's leg released")
        assert esl.api(f"uuid_getvar {c['call']} hotline_ivr_node").strip() == "satisfaction"
        wait_until(lambda: QueueEntry.select().where(QueueEntry.call_uuid == c["call"]).count() == 2, 20,
              "the caller back in the app")
        assert _exists(esl, c["call"])
        wait_until(lambda: line.acd.agents[agent_id].state == "idle", 20, "the agent free")
        esl.api(f"uuid_kill {c['call']}")
