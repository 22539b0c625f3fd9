"""The desk's browser phone in Chromium where it cannot work, on the fake switch (no FreeSWITCH needed; the
live test, tests/live/test_softphone_live.py, takes a real call): each failure is said in words in the page's
language, the seat is never registered without a microphone, and the desk's own buttons keep working;
a desk opened in another window takes the phone with it."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from acd.dispatcher import create_agent, create_queue
from acd.seats import SeatPasswords
from caseflow.accounts import create_user
from core import db as core_db
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, UI_TIMEOUT_MS, login
from tests.browser.telephony import fresh_database, running
from tests.ports import refusing_port

PASSWORD = "desk-pass-1234"
FAKE_MEDIA = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


@pytest.fixture(scope="module")
def media_browser(playwright_session):
    """Chromium with a fake microphone allowed without asking (as an agent's browser once allowed)."""
    chromium = playwright_session.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + FAKE_MEDIA,
                                                  headless=True)
    yield chromium
    chromium.close()


@pytest.fixture
def context(media_browser):
    made = media_browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    made.set_default_timeout(UI_TIMEOUT_MS)
    yield made
    made.close()


@pytest.fixture
def telephony(tmp_path):
    """The desk on the fake switch, with a browser phone whose server is not there (a refusing port)."""
    with refusing_port() as wss_port:
        database, config = fresh_database(tmp_path, "desk.sqlite3", "desk-test-secret-" + "q" * 32,
                                          softphone_wss=f"wss://127.0.0.1:{wss_port}")
        with database.connection_context():
            create_queue("consult", "consult", wrap_up_seconds=600, announce_interval=0, display_name="政策咨询")
            create_agent(create_user("8001", "王芳", PASSWORD, roles="agent", extension="1001"), {"consult": 5})
            create_agent(create_user("8002", "赵敏", PASSWORD, roles="agent", extension="1002"), {"consult": 5})
            SeatPasswords(config.secret_key, lambda: ("1001", "1002"), config.seats_dir).ensure()  # each its own
        with running(config, tmp_path) as thread:
            yield thread
        database.close()


def _desk(context, telephony):
    page = context.new_page()
    login(page, telephony.url, "8001", PASSWORD)
    page.goto(telephony.url + "/desk/")
    return page


def test_no_microphone_no_registration_and_the_desk_still_works(context, telephony):
    """Should, when the browser refuses the microphone, say how to allow it or use the desk phone, never ask
    for the seat's credentials (so the seat is not offered calls it cannot take), and keep the desk usable."""
    context.add_init_script("""navigator.mediaDevices.getUserMedia = () =>
        Promise.reject(new DOMException("Permission denied", "NotAllowedError"));""")
    asked = []
    context.on("request", lambda r: asked.append(r.url) if "/softphone/credentials" in r.url else None)
    page = _desk(context, telephony)
    phone = page.get_by_test_id("softphone")
    expect(phone).to_have_attribute("data-state", "off")
    expect(page.get_by_test_id("sp-state")).to_have_text("未启用：来电振铃您的桌面话机。")
    page.get_by_test_id("sp-on").check()
    expect(phone).to_have_attribute("data-state", "error")
    expect(page.get_by_test_id("sp-state")).to_have_text(
        "浏览器未允许使用麦克风：请在地址栏图标处为本站允许麦克风，或关闭浏览器话机、改用桌面话机。")
    assert asked == []
    expect(page.get_by_test_id("sp-answer")).to_be_disabled()
    expect(page.get_by_test_id("sp-answer")).to_have_text("接听")
    page.click("button[data-act=ready]")
    expect(page.get_by_test_id("agent-status")).to_have_text("就绪")
    # Turned off, it says calls ring the desk phone, and stays off on the next visit.
    page.get_by_test_id("sp-on").uncheck()
    expect(phone).to_have_attribute("data-state", "off")
    page.reload()
    expect(page.get_by_test_id("sp-on")).not_to_be_checked()


def test_unreachable_server_is_said_with_what_to_do(context, telephony):
    """Should say the phone server cannot be reached (down, or its certificate not trusted, with the address
    to open), in English when English is chosen; the answer and mute buttons stay disabled."""
    page = _desk(context, telephony)
    page.get_by_test_id("sp-on").check()
    expect(page.get_by_test_id("softphone")).to_have_attribute("data-state", "error")
    state = page.get_by_test_id("sp-state")
    expect(state).to_contain_text("无法连接话务服务器 wss://127.0.0.1:")
    expect(state).to_contain_text("请先打开 https://127.0.0.1:")
    expect(page.get_by_test_id("sp-mute")).to_be_disabled()
    page.locator("button[name=lang][value=en]").click()
    page.wait_for_load_state()
    expect(page.get_by_test_id("sp-on")).to_be_checked()  # remembered by this browser
    expect(page.get_by_test_id("sp-state")).to_contain_text("Cannot reach the phone server at wss://127.0.0.1:")
    expect(page.get_by_test_id("sp-state")).not_to_contain_text("无法")


def test_a_desk_opened_in_another_window_takes_the_phone(context, telephony):
    """Should stop the phone of the window that lost the desk, say where it went, and not let it be turned on
    again there; the newer window's phone starts."""
    first = _desk(context, telephony)
    first.get_by_test_id("sp-on").check()
    expect(first.get_by_test_id("softphone")).to_have_attribute("data-state", "error")  # no server here
    second = context.new_page()
    second.goto(telephony.url + "/desk/")
    expect(second.get_by_test_id("sp-on")).to_be_checked()
    expect(first.get_by_test_id("softphone")).to_have_attribute("data-state", "superseded")
    expect(first.get_by_test_id("sp-state")).to_have_text("工作台已在另一个窗口打开，浏览器话机已转到该窗口。")
    expect(first.get_by_test_id("sp-on")).to_be_disabled()
    expect(second.get_by_test_id("softphone")).not_to_have_attribute("data-state", "superseded")


def test_missing_library_is_said(context, telephony):
    """Should say the phone component could not be loaded when /vendor/jssip.min.js does not come."""
    context.route("**/vendor/jssip.min.js*", lambda route: route.fulfill(status=404, body="missing"))
    page = _desk(context, telephony)
    page.get_by_test_id("sp-on").check()
    expect(page.get_by_test_id("softphone")).to_have_attribute("data-state", "error")
    expect(page.get_by_test_id("sp-state")).to_have_text("话机组件未能加载，请联系管理员。")


# A stand-in for JsSIP served at /vendor/jssip.min.js in the layout test below: a UA that registers at once
# and a call offered by the test (window.__sipUA.offer(number)), so the phone row shows its registered and
# in-call states without a phone server (the live test registers and talks for real).
FAKE_JSSIP = """
window.JsSIP = (function () {
  function on(name, fn) { (this.handlers[name] = this.handlers[name] || []).push(fn); }
  function emit(name, data) { (this.handlers[name] || []).forEach(function (fn) { fn(data || {}); }); }
  function Session(number) {
    this.handlers = {}; this.muted = false; this.connection = null;
    this.remote_identity = {uri: {user: number}, display_name: number};
  }
  Session.prototype = {on: on, emit: emit,
    answer: function () { var s = this; setTimeout(function () { s.emit("accepted"); }, 20); },
    terminate: function () { this.emit("ended"); },
    isOnHold: function () { return {local: false, remote: false}; },
    isMuted: function () { return {audio: this.muted}; },
    mute: function () { this.muted = true; this.emit("muted"); },
    unmute: function () { this.muted = false; this.emit("unmuted"); },
    sendDTMF: function () {}};
  function UA(config) { this.handlers = {}; this.registered = false; window.__sipUA = this; }
  UA.prototype = {on: on, emit: emit,
    start: function () { var ua = this; setTimeout(function () { ua.emit("connected"); ua.registered = true; ua.emit("registered"); }, 20); },
    isRegistered: function () { return this.registered; }, register: function () {},
    stop: function () { this.registered = false; },
    offer: function (number) { var s = new Session(number); this.emit("newRTCSession", {originator: "remote", session: s}); }};
  return {UA: UA, WebSocketInterface: function (url) { this.url = url; },
          C: {causes: {AUTHENTICATION_ERROR: "auth", REJECTED: "rejected", CONNECTION_ERROR: "connection",
                       CANCELED: "canceled", BYE: "bye", USER_DENIED_MEDIA_ACCESS: "media"},
              DTMF_TRANSPORT: {RFC2833: "RFC2833"}}};
}());
"""


def _fake_phone_context(media_browser, **options):
    """A Chinese browser context whose phone library is FAKE_JSSIP (registers at once, calls offered by the test)."""
    made = media_browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", **options)
    made.set_default_timeout(UI_TIMEOUT_MS)
    made.route("**/vendor/jssip.min.js*", lambda route: route.fulfill(
        status=200, body=FAKE_JSSIP, headers={"Content-Type": "text/javascript"}))
    return made


def test_desk_with_the_phone_row_fits_1366x768_registered_and_in_a_call(media_browser, telephony, tmp_path):
    """Should keep the desk one screen at 1366x768 with the browser phone's row shown, registered and then in a
    call the ACD offered: nothing overflows or is cut (tests/browser/test_layout.py's measure), no page scroll,
    and the call controls (answer, mute, hold, hang up, transfer) and the phone's state line are in the window."""
    from tests.browser.test_layout import MEASURE, _shots_dir

    shots = _shots_dir(tmp_path)
    context = _fake_phone_context(media_browser, viewport={"width": 1366, "height": 768})
    try:
        page = _desk(context, telephony)
        page.get_by_test_id("sp-on").check()
        expect(page.get_by_test_id("softphone")).to_have_attribute("data-state", "registered")

        def fits(state: str) -> None:
            page.screenshot(path=str(shots / f"desk-softphone-{state}-1366x768.png"))
            assert page.evaluate(MEASURE) == [], state
            assert page.evaluate("document.documentElement.scrollHeight") <= 768, state
            for selector in ("[data-testid=sp-state]", "[data-testid=sp-answer]", "[data-testid=sp-mute]",
                             "[data-testid=hold-toggle]", "button[data-act=hangup]", "button[data-act=transfer]",
                             "[data-testid=call-timer]", "#ticket-form"):
                box = page.locator(selector).first.bounding_box()
                assert box is not None and box["x"] >= 0 and box["y"] >= 0, (state, selector)
                assert box["x"] + box["width"] <= 1366 and box["y"] + min(box["height"], 40) <= 768, (state, selector, box)

        fits("registered")
        page.click("button[data-act=ready]")
        expect(page.get_by_test_id("agent-status")).to_have_text("就绪")
        call = telephony.run_in_hub(lambda: telephony.fs.place_call(telephony.outbound.address,
                                                                    caller="13912345678", destination="12345"))
        expect(page.get_by_test_id("agent-state")).to_have_text("通话中")
        page.evaluate("window.__sipUA.offer('13912345678')")
        expect(page.get_by_test_id("softphone")).to_have_attribute("data-state", "ringing")
        page.get_by_test_id("sp-answer").click()
        expect(page.get_by_test_id("softphone")).to_have_attribute("data-state", "in_call")
        expect(page.get_by_test_id("sp-state")).to_have_text("通话中：13912345678")
        expect(page.get_by_test_id("call-timer")).not_to_have_text("00:00", timeout=5000)
        expect(page.get_by_test_id("call-waiting")).to_have_text("您的队列中等待：政策咨询 0")  # the name, not the code
        fits("in-call")
        save = page.locator("#ticket-form button[type=submit]").bounding_box()  # 保存 in sight without scrolling
        assert save["y"] + save["height"] <= 768, save
        telephony.run_in_hub(lambda: None if call.channel.hung_up else call.hangup())
    finally:
        context.close()


SIGNED_OUT = "已注册，但您已签出：不会为您分配排队来电。点击“示闲”后来电在本浏览器振铃。"


def test_registered_line_says_when_no_queue_call_comes(media_browser, telephony):
    """Should not say calls ring in this browser while the agent is signed out or on break (the ACD offers
    them no queue call): the line says so and how to take calls, follows the desk's status both ways, and
    reads in the agent's language (English for an agent who chose it)."""
    from caseflow.models import User

    with core_db.database.connection_context():
        User.update(language="en").where(User.operator_no == "8002").execute()
    context = _fake_phone_context(media_browser)
    try:
        page = _desk(context, telephony)
        page.get_by_test_id("sp-on").check()
        expect(page.get_by_test_id("softphone")).to_have_attribute("data-state", "registered")
        state = page.get_by_test_id("sp-state")
        expect(state).to_have_text(SIGNED_OUT)
        page.click("button[data-act=ready]")
        expect(page.get_by_test_id("agent-status")).to_have_text("就绪")
        expect(state).to_have_text("已注册：来电在本浏览器振铃。")
        page.click("button[data-act=not_ready]")
        expect(state).to_have_text("已注册，但您正在示忙：不会为您分配排队来电。点击“示闲”后来电在本浏览器振铃。")
        page.click("button[data-act=logout]")
        expect(state).to_have_text(SIGNED_OUT)
    finally:
        context.close()
    context = _fake_phone_context(media_browser)
    try:
        english = context.new_page()
        login(english, telephony.url, "8002", PASSWORD)
        english.goto(telephony.url + "/desk/")
        english.get_by_test_id("sp-on").check()
        expect(english.get_by_test_id("sp-state")).to_have_text(
            "Registered, but you are signed out: no queue calls are offered to you. Click “Ready” to take calls "
            "in this browser.")
    finally:
        context.close()
