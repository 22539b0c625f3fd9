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

    def variable(self, name):
        return self.variables.get(name, "")


class Session:
    """Just enough of switch.session.CallSession: the fax tone shows up with the first playback result."""

    uuid, caller, destination = "6f1c2a9e-1d3b-4c55-9a7e-2b1f0c9d8e7a", "13800138000", "12345"

    def __init__(self):
        self.channel_data = {}
        self.played, self.commands = [], []

    def answer(self):
        self.commands.append("answer")

    def playback(self, path, timeout=120.0, terminators=None):
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


class MenuToneSession(Session):
    """No tone during the welcome; a fax machine starts while the main menu waits for a key (its CNG is no
    key, so the menu ends empty) and the dialplan's detector has set the channel variable by then."""

    def __init__(self, tone_after_menus: int):
        super().__init__()
        self.menus, self.tone_after_menus, self.asked = 0, tone_after_menus, []

    def playback(self, path, timeout=120.0, terminators=None):
        self.played.append(path.rsplit("/", 1)[-1])
        return Result({})

    def play_and_get_digits(self, *args, **kw):
        self.menus += 1
        return super().play_and_get_digits(*args, **kw)

    def api(self, command, timeout=10.0):
        self.asked.append(command)
        return "true" if self.tone_after_menus and self.menus >= self.tone_after_menus else "_undef_"


def test_tone_in_the_middle_of_a_menu_goes_to_fax(tmp_path):
    """Should, when a menu ends with no key and the channel says a fax tone was heard, receive the fax
    instead of taking the menu's timeout route (a fax machine started mid-menu: bad input for a menu)."""
    session, services = MenuToneSession(tone_after_menus=1), Services()
    engine = IvrCall(session, services, _config(tmp_path)).run()
    assert services.faxes == [session.uuid]
    assert engine.outcome == "fax"
    assert session.played == ["welcome.wav", "main_menu.wav", "fax_start.wav"]
    assert session.asked == [f"uuid_getvar {session.uuid} fax_tone_detected"]


def test_a_silent_menu_without_a_tone_takes_its_timeout_route(tmp_path):
    """Should ask the switch once after the empty main menu and, with no fax tone, take the menu's timeout
    route (a person: the human-service menu) as before."""
    from switch.errors import CallHangup

    class HangsUpInSecondMenu(MenuToneSession):
        def play_and_get_digits(self, *args, **kw):
            if self.menus == 1:
                self.played.append(args[5].rsplit("/", 1)[-1])
                raise CallHangup("caller hung up")
            return super().play_and_get_digits(*args, **kw)

    session, services = HangsUpInSecondMenu(tone_after_menus=0), Services()
    services.time_state = lambda action: "open"
    IvrCall(session, services, _config(tmp_path)).run()
    assert services.faxes == []
    assert session.played == ["welcome.wav", "main_menu.wav", "human_menu.wav"]
    assert session.asked == [f"uuid_getvar {session.uuid} fax_tone_detected"]
