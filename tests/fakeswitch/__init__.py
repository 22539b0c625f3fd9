"""A protocol-level fake FreeSWITCH for tests: inbound event socket, outbound `socket` calls with scripted
callers, scripted agents, conferences, and replay of the real captures. Independent of switch/."""
from .outbound import FakeCall
from .script import Hangup, Press, ScriptError, SendFax, Speak, Wait, WaitAnswered, WaitBridged, WaitFor
from .server import Agent, FakeSwitch

__all__ = ["FakeSwitch", "FakeCall", "Agent", "Press", "Speak", "Wait", "WaitFor", "Hangup", "SendFax",
           "WaitAnswered", "WaitBridged", "ScriptError"]
