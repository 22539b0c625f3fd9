"""The dial string a waiting caller's ``bridge`` runs to offer the call to agents (pure, no I/O).

acd.offers decides who is offered, in which order, by which route and with which operator-number prompt;
this writes what FreeSWITCH reads of it (with switch.commands' escaping): the caller's number as caller id,
our own leg uuids (``origination_uuid``), the ring timeouts, the delays of ring-progressively, the far
server's challenge answered as the hotline's peer user, and each leg's ``api_on_answer`` that stores the
answering agent's prompt on the caller for ``bridge_pre_execute_data`` (``ANSWERED_LEG_PROMPT``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from switch import commands

# The caller's variable (prefix + agent leg uuid) that an answering agent's leg fills with its operator-number
# prompt (自动报工号), and what it holds for an agent without one.
OPERATOR_PROMPT_PREFIX = "acd_operator_prompt_"
NO_OPERATOR_PROMPT = "silence_stream://20"
# What the caller plays as its bridge starts (bridge_pre_execute_data): the prompt the winning leg stored,
# FreeSWITCH having set bridge_uuid to that leg. Left for FreeSWITCH to expand when the bridge runs.
ANSWERED_LEG_PROMPT = f"${{{OPERATOR_PROMPT_PREFIX}${{bridge_uuid}}}}"

# The directory user the hotline's servers call each other's agents as (freeswitch-conf/directory/agents.xml),
# and the shipped placeholder of its password (vars.xml peer_password).
PEER_USER = "hotline-peer"
PEER_PASSWORD_PLACEHOLDER = "change-this-peer-password"


def peer_leg_variables(template: str) -> list[tuple[str, str]]:
    """Leg variables answering the far server's digest challenge as PEER_USER, for a cross-server template.

    ``${peer_password}`` is left for the caller's FreeSWITCH, which expands it from its own global of that name
    when the ``bridge`` runs (as it expands every application's arguments): the app never holds the secret. A
    gateway answers with its own credentials (FreeSWITCH would prefer these to them, sofia_reg.c
    sofia_reg_handle_sip_r_challenge), so none there.
    """
    if template.startswith("sofia/gateway/"):
        return []
    return [("sip_auth_username", PEER_USER), ("sip_auth_password", "${peer_password}")]


@dataclass(frozen=True)
class AgentLeg:
    """One agent's leg of an offer, as the ACD chose it.

    ``template`` is the dial template that reaches the agent's phone (filled with ``extension``); ``peer``:
    it rings on another hotline server, whose challenge the leg answers; ``delay``: seconds after the offer's
    start that this leg starts ringing; ``operator_prompt``: the file the caller hears when this agent
    answers ("" for an agent without one), None when the ACD plays no operator numbers."""

    agent_id: int
    leg_uuid: str
    template: str
    extension: str
    delay: int = 0
    peer: bool = False
    operator_prompt: str | None = None


def offer_dial_string(caller_uuid: str, caller_number: str | None, queue_name: str, ring_timeout: int,
                      legs: Iterable[AgentLeg]) -> str:
    """The bridge target for an offer: caller id, ring timeout, our leg uuids, delays for progressive.

    FreeSWITCH counts leg_timeout from the start of the whole originate, delayed legs included
    (switch_ivr_originate.c check_per_channel_timeouts), so a leg added after d seconds gets
    ring_timeout + d and the originate as a whole lasts until the last leg has rung its full time.
    """
    legs = list(legs)
    number = commands.scrub(caller_number) or "unknown"
    common = commands.variables([
        ("ignore_early_media", "true"), ("origination_caller_id_number", number),
        ("origination_caller_id_name", number),
        ("originate_timeout", ring_timeout + max((one.delay for one in legs), default=0)),
        ("acd_queue", commands.scrub(queue_name))])
    return common + commands.ring_all(_leg(caller_uuid, ring_timeout, one) for one in legs)


def _leg(caller_uuid: str, ring_timeout: int, one: AgentLeg) -> str:
    pairs = [("origination_uuid", one.leg_uuid), ("leg_timeout", ring_timeout + one.delay),
             ("acd_agent", one.agent_id)]
    if one.delay:
        pairs.append(("leg_delay_start", one.delay))
    if one.peer:
        pairs += peer_leg_variables(one.template)
    if one.operator_prompt is not None:
        prompt = commands.scrub_path(one.operator_prompt) or NO_OPERATOR_PROMPT
        pairs.append(("api_on_answer",
                      commands.uuid_setvar(caller_uuid, f"{OPERATOR_PROMPT_PREFIX}{one.leg_uuid}", prompt)))
    return commands.leg(pairs, commands.from_template(one.template, extension=one.extension))
