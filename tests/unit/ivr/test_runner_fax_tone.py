"""The runner notices a fax tone reported with a playback's result and sends the call to the fax node."""
from __future__ import annotations

from types import SimpleNamespace

from ivr import engine as e
from ivr.runner import IvrCall
from ivr.tree import load_tree


class Result:
    def __init__(self, event):
        self._event = event
        self.variables = {k[9:]: v for k, v in event.items() if k.startswith("variable_")}


class Session:
    """Just enough of switch.session.CallSession: the fax tone shows up with the first playback result."""

    uuid, caller, destination = "6f1c2a9e-1d3b-4c55-9a7e-2b1f0c9d8e7a", "13800138000", "12345"

    def __init__(self):
        self.channel_data = {}
        self.played, self.commands = [], []

    def answer(self):
        self.commands.append("answer")

    def playback(self, path, timeout=120.0):
        self.played.append(path.rsplit("/", 1)[-1])
        tone = "true"  # the detector heard the fax machine during the welcome
        return Result({"variable_fax_tone_detected": tone} if tone else {})

    def play_and_get_digits(self, *args, **kw):
        self.played.append(args[5].rsplit("/", 1)[-1])
        return ""

    def hangup(self):
        self.commands.append("hangup")


class Services:
    def __init__(self):
        self.faxes, self.traces = [], []

    def active_tree(self):
        return 1, load_tree()

    def is_blacklisted(self, phone):
        return False

    def receive_fax(self, session):
        self.faxes.append(session.uuid)
        return True, "20260001"

    def save_trace(self, record):
        self.traces.append(record)

    def knowledge_text(self, item):
        return None


def _config(tmp_path):
    return SimpleNamespace(sounds_dir=str(tmp_path), switch_sounds_dir="", recordings_dir=str(tmp_path),
                           switch_recordings_dir="", prompt_rate=8000, extra={})


def test_tone_during_welcome_goes_to_fax(tmp_path):
    """Should stop the menu walk and receive a fax once a playback result says a fax tone was heard."""
    session, services = Session(), Services()
    engine = IvrCall(session, services, _config(tmp_path)).run()
    assert services.faxes == [session.uuid]
    assert engine.outcome == "fax" and engine.tickets == ["20260001"]
    assert session.played == ["welcome.wav", "fax_start.wav"]
    assert any(t.what == "fax tone detected" for t in engine.trace)


def test_tone_ignored_without_a_fax_node(tmp_path):
    """Should carry on normally when the tree has no fax node."""
    engine = e.IvrEngine(load_tree())
    engine.tree = type(engine.tree)(engine.tree.name, engine.tree.start, engine.tree.settings,
                                    {k: v for k, v in engine.tree.nodes.items() if v.kind != "fax"})
    engine.feed(e.CallStarted("1"))
    assert engine.feed(e.FaxToneDetected()) == []
