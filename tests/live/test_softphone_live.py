"""The agent desk's browser phone on the real FreeSWITCH (skipped unless HOTLINE_TEST_ESL is set): headless
Chromium with fake media devices opens /desk as demo agent 1001 (seat 1000), registers over the internal
profile's secure WebSocket, and takes a citizen's call to 12345 from the queue as a desk phone would: it rings
in the browser, is answered there, audio flows both ways over DTLS-SRTP (the browser hears the caller, the
switch counts the browser's RTP), the keypad's digit reaches the switch, the desk's hold and hang-up act on
it, a second caller is blind-transferred from the desk to a desk phone, and turning the phone off
unregisters the seat.

The product runs in this thread's gevent hub (as run.py runs it; gevent's subprocesses need the main loop);
Chromium (Playwright's sync API) runs in a thread of its own, each step handed to it and waited for off the
hub, so the product serves the desk meanwhile.

The switch must run freeswitch-conf with the wss binding and a certificate (scripts/dev-cert.sh var/certs,
then restart it); the test says so when the binding is missing.
"""
from __future__ import annotations


import pytest

from tests.live.desk_browser import sign_in_to_desk
from tests.live.product import AppLeg, in_thread, wait_until
from tests.live.sipphone import AgentPhone

pytestmark = pytest.mark.live


def _event(esl_events, predicate, what: str, timeout: float = 30.0):
    try:
        return in_thread(esl_events.wait_event, predicate, timeout)
    except Exception as exc:  # noqa: BLE001 - say which step it was
        raise AssertionError(f"waiting for {what}: {exc}") from exc


# What the browser hears: the loudest sample of the phone's audio element within 10 s (sooner once it is
# clearly the caller's tone), measured in the page.
_LOUDNESS = """async () => {
  const el = document.getElementById("sp-audio");
  if (!el.srcObject) { return -1; }
  const ctx = new AudioContext();
  const analyser = ctx.createAnalyser();
  ctx.createMediaStreamSource(el.srcObject).connect(analyser);
  const data = new Float32Array(analyser.fftSize);
  let peak = 0;
  for (let i = 0; i < 200 && peak < 0.1; i++) {
    await new Promise(r => setTimeout(r, 50));
    analyser.getFloatTimeDomainData(data);
    for (const v of data) { peak = Math.max(peak, Math.abs(v)); }
  }
  ctx.close();
  return peak;
}"""


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_browser_phone_takes_a_queue_call_live(browser_desk, esl, esl_events, place_call, sipp, tmp_path):
    """Should register the desk's browser phone over WSS, ring it with the ACD's offer, answer it in the
    browser, carry audio both ways, send a keypad digit, hold and resume and hang up from the desk; answer a
    second caller and blind-transfer them from the desk to another agent's desk phone; and unregister when
    the agent turns it off."""
    from playwright.sync_api import expect

    desk = browser_desk()
    product, browser, acd, agent_id, base, password = (desk.product, desk.browser, desk.acd, desk.agent_id,
                                                       desk.base, desk.password)

    def open_desk(page):
        sign_in_to_desk(page, base)
        expect(page.get_by_test_id("softphone")).to_have_attribute("data-state", "off")
        assert password not in page.content()  # the page never carries the seat's password
        page.get_by_test_id("sp-on").check()
        expect(page.get_by_test_id("softphone")).to_have_attribute("data-state", "registered")
        # Signed out, the ACD offers no queue call: the line says so, not that calls ring here.
        expect(page.get_by_test_id("sp-state")).to_have_text(
            "已注册，但您已签出：不会为您分配排队来电。点击“示闲”后来电在本浏览器振铃。")
    browser.do(open_desk)
    wait_until(lambda: acd.agents[agent_id].registered, 20, "the ACD to see the browser's registration")
    assert "transport=ws" in acd.agents[agent_id].contact

    def ready(page):
        page.click("button[data-act=ready]")
        expect(page.get_by_test_id("agent-status")).to_have_text("就绪")
        expect(page.get_by_test_id("sp-state")).to_have_text("已注册：来电在本浏览器振铃。")
    browser.do(ready)

    leg = AppLeg.to_consult_queue(place_call, esl_events, product, "1397")
    citizen, caller = leg.citizen, leg.caller

    def answer(page):
        expect(page.get_by_test_id("softphone")).to_have_attribute("data-state", "ringing")
        expect(page.get_by_test_id("sp-state")).to_contain_text("来电振铃")
        expect(page.get_by_test_id("sp-answer")).to_be_enabled()
        page.keyboard.press("Alt+a")                    # the desk's shortcut for Answer
        expect(page.get_by_test_id("softphone")).to_have_attribute("data-state", "in_call")
    browser.do(answer)
    bridged = leg.wait(lambda ev: ev.get("Event-Name") == "CHANNEL_BRIDGE", "the bridge to the browser")
    agent_leg = bridged.get("Other-Leg-Unique-ID") or bridged.get("Bridge-B-Unique-ID")
    # A WebRTC leg to the browser's WebSocket registration, as user/1000 dials it.
    assert esl.api(f"uuid_getvar {agent_leg} media_webrtc").strip() == "true"
    assert esl.api(f"uuid_getvar {agent_leg} sip_req_uri").strip().endswith(";transport=ws")

    def in_call(page):
        expect(page.get_by_test_id("pop-number")).to_have_text(caller)
        expect(page.get_by_test_id("agent-state")).to_have_text("通话中")
    browser.do(in_call)

    # The caller speaks: the browser hears it (SRTP decrypted and played into the page).
    citizen.speak("tone_stream://%(2000,0,600);loops=5")
    loudness = browser.do(lambda page: page.evaluate(_LOUDNESS))
    assert loudness > 0.01, f"the browser heard nothing of the caller ({loudness})"

    # A keypad digit goes to the switch as RFC 2833 on the browser's leg.
    def press_5(page):
        page.get_by_text("拨号盘").click()
        page.get_by_test_id("sp-digit-5").click()
    browser.do(press_5)
    digit = _event(esl_events, lambda ev: ev.get("Event-Name") == "DTMF" and ev.get("Unique-ID") == agent_leg,
                   "the keypad's digit on the browser's leg")
    assert digit.get("DTMF-Digit") == "5"

    def mute_hold_resume(page):
        mute = page.get_by_test_id("sp-mute")
        mute.click()
        expect(mute).to_have_attribute("aria-pressed", "true")
        expect(page.get_by_test_id("sp-state")).to_contain_text("已静音")
        mute.click()
        expect(mute).to_have_attribute("aria-pressed", "false")
        # The desk's hold: the ACD holds the browser's leg (a re-INVITE to it), then resumes it.
        page.get_by_test_id("hold-toggle").click()
        expect(page.get_by_test_id("sp-state")).to_contain_text("保持中")
        expect(page.get_by_test_id("hold-toggle")).to_have_text("恢复")
        page.get_by_test_id("hold-toggle").click()
        expect(page.get_by_test_id("sp-state")).not_to_contain_text("保持中")
        page.wait_for_timeout(1000)                     # a second of talk after resuming
        page.click("button[data-act=hangup]")           # the desk's hang-up
    browser.do(mute_hold_resume)
    ended = _event(esl_events, lambda ev: ev.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE"
                   and ev.get("Unique-ID") == agent_leg, "the browser's leg to end")
    received = int(ended.get("variable_rtp_audio_in_media_packet_count") or 0)
    sent = int(ended.get("variable_rtp_audio_out_media_packet_count") or 0)
    print(f"RTP on the browser's leg: {received} packets in, {sent} out")
    assert received > 50 and sent > 50, (received, sent)  # RTP both ways on the switch's counters
    assert ended.get("variable_rtp_use_codec_name") in ("PCMA", "PCMU")

    def after(page):
        expect(page.get_by_test_id("softphone")).to_have_attribute("data-state", "registered")
        expect(page.get_by_test_id("sp-state")).to_have_text("通话已结束。")
        expect(page.get_by_test_id("agent-state")).to_have_text("话后处理")
        page.click("button[data-act=end_wrap_up]")
        expect(page.get_by_test_id("agent-state")).to_have_text("空闲")
    browser.do(after)

    # A second caller, answered in the browser and blind-transferred from the desk to demo agent 1002's
    # desk phone (sipp, seat 1001): the browser's call ends, the caller talks to the desk phone.
    sip_port = int(esl.api("global_getvar internal_sip_port").strip())
    desk_phone = AgentPhone(sipp, tmp_path, sip_port, "1001", password, scenario="answer_rtp.xml")
    try:
        in_thread(desk_phone.register)
        other = acd.by_extension["1001"]
        wait_until(lambda: acd.agents[other].registered, 20, "the desk phone registered")
        leg = AppLeg.to_consult_queue(place_call, esl_events, product, "1396")
        citizen, caller = leg.citizen, leg.caller
        browser.do(answer)
        bridged = leg.wait(lambda ev: ev.get("Event-Name") == "CHANNEL_BRIDGE", "the bridge to the browser")
        agent_leg = bridged.get("Other-Leg-Unique-ID") or bridged.get("Bridge-B-Unique-ID")
        acd.transition(other, "login")
        acd.transition(other, "ready")

        def transfer(page):
            expect(page.get_by_test_id("agent-state")).to_have_text("通话中")
            page.get_by_test_id("target-agent").select_option("1001")
            page.click("button[data-act=transfer]")
            expect(page.get_by_test_id("softphone")).to_have_attribute("data-state", "registered")
            expect(page.get_by_test_id("sp-state")).to_have_text("通话已结束。")
        browser.do(transfer)
        _event(esl_events, lambda ev: ev.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE"
               and ev.get("Unique-ID") == agent_leg, "the browser's leg to end")
        moved = leg.wait(lambda ev: ev.get("Event-Name") == "CHANNEL_BRIDGE"
                         and (ev.get("Other-Leg-Unique-ID") or ev.get("Bridge-B-Unique-ID")) != agent_leg,
                         "the caller bridged to the desk phone")
        assert moved.get("Other-Leg-Destination-Number", "1001") == "1001"
        citizen.hangup()
    finally:
        in_thread(desk_phone.close)

    def off(page):
        page.get_by_test_id("sp-on").uncheck()       # off: the seat unregisters
        expect(page.get_by_test_id("softphone")).to_have_attribute("data-state", "off")
    browser.do(off)
    wait_until(lambda: not acd.agents[agent_id].registered, 20, "the ACD to see the browser unregister")
