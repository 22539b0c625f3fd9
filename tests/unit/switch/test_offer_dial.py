"""switch.offer_dial: the bridge dial string that offers a caller to agents, written from the ACD's choices."""
from __future__ import annotations

import pytest

from switch import offer_dial
from switch.commands import CommandError
from switch.offer_dial import AgentLeg, offer_dial_string

CALLER = "4912fe94-2272-4959-94d6-a442bda1eb6c"


def leg(agent_id: int, **overrides) -> AgentLeg:
    fields = dict(agent_id=agent_id, leg_uuid=f"leg-{agent_id}", template="user/{extension}",
                  extension=str(1000 + agent_id))
    fields.update(overrides)
    return AgentLeg(**fields)


def test_ring_all_rings_every_leg_at_once_with_the_callers_number():
    """Should give every leg its own uuid, agent and ring timeout, ring them at once (','), and show the
    caller's number (scrubbed) as caller id."""
    dial = offer_dial_string(CALLER, "139 0000,1111", "consult", 20, [leg(1), leg(2)])
    assert dial == ("{ignore_early_media=true,origination_caller_id_number=13900001111,"
                    "origination_caller_id_name=13900001111,originate_timeout=20,acd_queue=consult}"
                    "[origination_uuid=leg-1,leg_timeout=20,acd_agent=1]user/1001,"
                    "[origination_uuid=leg-2,leg_timeout=20,acd_agent=2]user/1002")


def test_a_caller_without_a_number_shows_unknown():
    """Should show 'unknown' for a caller whose number is empty or nothing but bad characters."""
    for number in (None, "", "{},|"):
        assert "origination_caller_id_number=unknown," in offer_dial_string(CALLER, number, "q", 20, [leg(1)])


def test_delayed_legs_ring_their_full_time_and_the_originate_waits_for_the_last():
    """Should start a delayed leg after its delay with ring timeout + delay (FreeSWITCH counts leg_timeout
    from the originate's start), and let the originate last until the last leg has rung its full time."""
    dial = offer_dial_string(CALLER, "13900001111", "q", 6, [leg(1), leg(2, delay=5), leg(3, delay=10)])
    assert "originate_timeout=16," in dial
    assert "[origination_uuid=leg-1,leg_timeout=6,acd_agent=1]" in dial
    assert "[origination_uuid=leg-2,leg_timeout=11,acd_agent=2,leg_delay_start=5]" in dial
    assert "[origination_uuid=leg-3,leg_timeout=16,acd_agent=3,leg_delay_start=10]" in dial


def test_a_leg_to_another_server_answers_its_challenge_as_the_peer_user():
    """Should add the peer user and the switch's own ${peer_password} to a leg rung on another server (none
    through a gateway, which has credentials of its own), and nothing to a local one."""
    far = offer_dial_string(CALLER, "1", "q", 20, [leg(1, template="sofia/internal/{extension}@10.0.0.2:5060",
                                                       peer=True)])
    assert (f"acd_agent=1,sip_auth_username={offer_dial.PEER_USER},sip_auth_password=${{peer_password}}]"
            "sofia/internal/1001@10.0.0.2:5060") in far
    gateway = offer_dial_string(CALLER, "1", "q", 20, [leg(1, template="sofia/gateway/gw/{extension}", peer=True)])
    assert "sip_auth" not in gateway and "sip_auth" not in offer_dial_string(CALLER, "1", "q", 20, [leg(1)])


def test_each_leg_stores_its_operator_prompt_on_the_caller_when_answered():
    """Should have each answered leg store its agent's prompt (or silence for an agent without one) on the
    caller under the leg's own name, which the caller's bridge plays (ANSWERED_LEG_PROMPT); nothing when the
    ACD plays no operator numbers."""
    dial = offer_dial_string(CALLER, "1", "q", 20, [leg(1, operator_prompt="/sounds/op 1001.wav"),
                                                     leg(2, operator_prompt="")])
    assert f"api_on_answer=uuid_setvar {CALLER} acd_operator_prompt_leg-1 /sounds/op1001.wav]" in dial
    assert f"api_on_answer=uuid_setvar {CALLER} acd_operator_prompt_leg-2 silence_stream://20]" in dial
    assert "api_on_answer" not in offer_dial_string(CALLER, "1", "q", 20, [leg(1)])
    assert offer_dial.ANSWERED_LEG_PROMPT == "${acd_operator_prompt_${bridge_uuid}}"


def test_a_bad_extension_or_leg_uuid_is_refused():
    """Should refuse an extension that is not digits and a leg uuid FreeSWITCH would split at."""
    with pytest.raises(CommandError):
        offer_dial_string(CALLER, "1", "q", 20, [leg(1, extension="10,01")])
    with pytest.raises(CommandError):
        offer_dial_string(CALLER, "1", "q", 20, [leg(1, leg_uuid="a,b")])
