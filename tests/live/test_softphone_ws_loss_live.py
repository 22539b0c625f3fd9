"""The desk's browser phone losing its WebSocket mid-call, on the real FreeSWITCH (skipped unless HOTLINE_TEST_ESL
is set): headless Chromium with fake media answers a queue call in the browser (as test_softphone_live.py does),
then its secure WebSocket is cut and new connections are refused for a few seconds, as a network glitch does. The
desk must say the connection was lost and that the call may go on, register again by itself once the server is
back, and show the call's fate as the switch has it: still in the call while the switch's leg lives and audio
flows, ended once the call is over (the desk's hang-up); and ended meanwhile, never in a call again, when the
caller hung up while the connection was down: the switch's BYE cannot reach the browser then, but the desk hears
the ACD over its own event stream (softphone.js).

The cut is made by a TCP relay of the test's own between the browser and the switch's WSS port (the browser's
TLS passes through it untouched): closing its connections is what a dropped network does to both ends.
"""
from __future__ import annotations

from dataclasses import dataclass

import gevent
import pytest
from gevent import socket as gsocket
from gevent.server import StreamServer

from tests.live.desk_browser import BrowserThread, sign_in_to_desk, wss_address
from tests.live.product import AppLeg, wait_until
from tests.live.test_softphone_live import _LOUDNESS

pytestmark = [pytest.mark.live, pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]

# Every text the phone's state line shows, in order (window.__said): a message shown for a few seconds is not
# missed by a check that comes later.
_RECORD_STATE_LINE = """() => {
  window.__said = [];
  const el = document.querySelector('[data-testid="sp-state"]');
  new MutationObserver(() => window.__said.push(el.textContent)).observe(el, {childList: true, characterData: true, subtree: true});
}"""


class Relay:
    """127.0.0.1:port 0 -> ``target``, byte for byte; ``cut()`` drops every connection, ``blocked`` refuses
    (closes at once) the new ones."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.blocked = False
        self.pairs: list[tuple] = []
        self.accepted = 0
        self.server = StreamServer(("127.0.0.1", 0), self._serve)

    def start(self) -> int:
        self.server.start()
        return self.server.server_port

    def _serve(self, client, _address):
        self.accepted += 1
        if self.blocked:
            client.close()
            return
        try:
            upstream = gsocket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)  # an idle WebSocket is no reason to drop it
        pair = (client, upstream)
        self.pairs.append(pair)
        pumps = [gevent.spawn(self._pump, client, upstream), gevent.spawn(self._pump, upstream, client)]
        gevent.joinall(pumps, count=1)
        self._close(pair)
        gevent.killall(pumps)

    @staticmethod
    def _pump(source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    return
                sink.sendall(data)
        except OSError:
            return

    def _close(self, pair) -> None:
        for sock in pair:
            try:
                sock.shutdown(gsocket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        if pair in self.pairs:
            self.pairs.remove(pair)

    def cut(self) -> int:
        """Drop every open connection; how many there were."""
        pairs = list(self.pairs)
        for pair in pairs:
            self._close(pair)
        return len(pairs)

    def stop(self) -> None:
        self.cut()
        self.server.stop(timeout=2)


@dataclass
class CallInBrowser:
    """A queue call answered in the desk's browser phone, its WebSocket through ``relay``."""

    product: object
    browser: BrowserThread
    relay: Relay
    citizen: object
    leg: AppLeg
    caller: str
    agent_leg: str
    agent_id: int


@pytest.fixture
def call_in_browser(browser_desk, esl, esl_events, place_call):
    """Demo agent 1001's desk (seat 1000) with the browser phone registered through a relay, ready, and a citizen's
    call from the queue answered in the browser."""
    from playwright.sync_api import expect

    host, wss_port = wss_address(esl).rsplit(":", 1)
    relay = Relay((host, int(wss_port)))
    relay_port = relay.start()
    try:
        desk = browser_desk(f"127.0.0.1:{relay_port}")
        product, browser, acd, agent_id, base = desk.product, desk.browser, desk.acd, desk.agent_id, desk.base

        def open_desk(page):
            sign_in_to_desk(page, base)
            page.get_by_test_id("sp-on").check()
            expect(page.get_by_test_id("softphone")).to_have_attribute("data-state", "registered")
            page.click("button[data-act=ready]")
            expect(page.get_by_test_id("agent-status")).to_have_text("就绪")
            page.evaluate(_RECORD_STATE_LINE)
        browser.do(open_desk)
        wait_until(lambda: acd.agents[agent_id].registered, 20, "the ACD to see the browser's registration")
        leg = AppLeg.to_consult_queue(place_call, esl_events, product, "1395")
        citizen, caller = leg.citizen, leg.caller

        def answer(page):
            expect(page.get_by_test_id("softphone")).to_have_attribute("data-state", "ringing")
            page.get_by_test_id("sp-answer").click()
            expect(page.get_by_test_id("softphone")).to_have_attribute("data-state", "in_call")
            expect(page.get_by_test_id("agent-state")).to_have_text("通话中")
        browser.do(answer)
        bridged = leg.wait(lambda ev: ev.get("Event-Name") == "CHANNEL_BRIDGE", "the bridge to the browser")
        agent_leg = bridged.get("Other-Leg-Unique-ID") or bridged.get("Bridge-B-Unique-ID")
        yield CallInBrowser(product, browser, relay, citizen, leg, caller, agent_leg, agent_id)
    finally:
        relay.stop()


def _lose_connection(call: CallInBrowser) -> int:
    """Cut the browser's WebSocket and refuse new ones; check the desk says so. The relay's count of
    connections so far."""
    from playwright.sync_api import expect

    call.relay.blocked = True
    assert call.relay.cut() >= 1, "the browser's WebSocket did not go through the relay"

    def loss_said(page):
        expect(page.get_by_test_id("sp-state")).to_contain_text("与话务服务器的连接已断开，正在重连")
        expect(page.get_by_test_id("sp-state")).to_contain_text("通话可能仍在继续")
        expect(page.get_by_test_id("softphone")).to_have_attribute("data-state", "in_call")
    call.browser.do(loss_said)
    return call.relay.accepted


def _registered_again(call: CallInBrowser, esl, accepted: int) -> None:
    """Let connections through again: the phone registers again over a new one, seen by the switch and the ACD."""
    call.relay.blocked = False
    acd = call.product.parts["acd"]
    wait_until(lambda: call.relay.accepted > accepted and call.relay.pairs, 60, "a new WebSocket after the cut")
    wait_until(lambda: "1000@" in esl.api("sofia status profile internal reg"), 60, "the seat registered again")
    wait_until(lambda: acd.agents[call.agent_id].registered, 30, "the ACD to see the seat registered")


def test_the_call_goes_on_through_a_lost_websocket_live(call_in_browser, esl):
    """Should say the connection was lost (the call may go on, the desk's buttons work), register again once the
    server is back and say the call goes on, which the switch confirms (the browser's leg lives, the caller is
    heard); then show the call ended once the desk hangs up."""
    from playwright.sync_api import expect

    call = call_in_browser
    accepted = _lose_connection(call)
    call.browser.do(lambda page: expect(page.locator("button[data-act=hangup]")).to_be_enabled())
    gevent.sleep(3)                                          # the network stays down a moment
    _registered_again(call, esl, accepted)

    def goes_on(page):
        expect(page.get_by_test_id("sp-state")).to_have_text(f"通话中：{call.caller}", timeout=30_000)
        expect(page.get_by_test_id("softphone")).to_have_attribute("data-state", "in_call")
        return page.evaluate("window.__said")
    said = call.browser.do(goes_on, timeout=60)
    back = said[max(i for i, text in enumerate(said) if text.startswith("与话务服务器的连接已断开")) + 1:]
    assert back == [f"通话中：{call.caller}"], said
    assert esl.api(f"uuid_exists {call.agent_leg}").strip() == "true", "the switch ended the call at the cut"
    call.citizen.speak("tone_stream://%(2000,0,600);loops=5")
    loudness = call.browser.do(lambda page: page.evaluate(_LOUDNESS))
    assert loudness > 0.01, f"the desk says the call goes on, but the browser hears nothing ({loudness})"
    call.browser.do(lambda page: expect(page.get_by_test_id("softphone")).to_have_attribute("data-state", "in_call"))

    def hang_up(page):
        page.click("button[data-act=hangup]")
        expect(page.get_by_test_id("agent-state")).to_have_text("话后处理")
    call.browser.do(hang_up)
    call.leg.wait(lambda ev: ev.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE"
                  and ev.get("Unique-ID") == call.agent_leg, "the browser's leg to end", timeout=30)

    said = call.browser.do(_ended, timeout=90)
    assert said[-1] == "通话已结束。", said  # the switch's BYE reached the browser over its new connection


def test_a_call_that_ended_while_the_websocket_was_down_is_shown_ended_live(call_in_browser, esl):
    """Should, when the caller hangs up while the phone's connection is down (the switch's BYE cannot reach the
    browser), say at once that the call ended meanwhile, as the ACD told the desk, and never again that it goes
    on once the phone is back; the desk's state follows the ACD (after-call work)."""
    from playwright.sync_api import expect

    call = call_in_browser
    accepted = _lose_connection(call)
    call.citizen.hangup()
    call.leg.wait(lambda ev: ev.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE"
                  and ev.get("Unique-ID") == call.agent_leg, "the browser's leg to end", timeout=30)
    call.browser.do(lambda page: expect(page.get_by_test_id("softphone")).not_to_have_attribute(
        "data-state", "in_call"))                           # said while the connection is still down
    _registered_again(call, esl, accepted)

    call.browser.do(lambda page: expect(page.get_by_test_id("agent-state")).to_have_text("话后处理"))
    said = call.browser.do(_ended, timeout=90)
    lost = max(i for i, text in enumerate(said) if text.startswith("与话务服务器的连接已断开"))
    # Never "in a call" again once the connection was lost: the desk heard from the ACD that the call ended, and
    # the phone says it ended meanwhile, before it is even back.
    assert said[lost + 1:] == ["通话已结束：在连接中断期间结束。"], said


def _ended(page) -> list[str]:
    """Wait until the phone is out of the call and has said the call ended; what its state line said since the
    desk opened, up to that."""
    from playwright.sync_api import expect

    expect(page.get_by_test_id("softphone")).not_to_have_attribute("data-state", "in_call", timeout=60_000)
    page.wait_for_function("window.__said.some(t => t.startsWith('通话已结束'))", timeout=60_000)
    said = page.evaluate("window.__said")
    print("the phone's state line:", " | ".join(dict.fromkeys(said)))
    last = max(i for i, text in enumerate(said) if text.startswith("通话已结束"))
    return said[:last + 1]
