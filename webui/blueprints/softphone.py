"""The agent desk's browser phone (浏览器话机): the desk registers the agent's seat on FreeSWITCH over a secure
WebSocket (SIP, JsSIP from npm: webui.blueprints.vendor says why that library) and takes the ACD's calls with
WebRTC audio, so an agent needs a browser and a headset only. The ACD rings ``user/<extension>`` as for any
desk phone and hears the registration on the same events; an agent uses either, or both.

What the page needs and when:
- the desk page carries no secret: ``softphone_view()`` (a template helper) gives the partial its addresses and
  words, and only when the browser phone is configured (HOTLINE_SOFTPHONE_WSS; with one shared seat password,
  HOTLINE_FS_SEAT_PASSWORDS=shared, HOTLINE_FS_AGENT_PASSWORD too);
- the seat's SIP credentials come from ``POST /desk/softphone/credentials``, with the CSRF token and the desk's
  claim (agent_desk.DeskClaims): only for a signed-in user with the desk's roles, only their own seat and its
  own password (acd.seats), only to the window holding their desk, never cached. Everyone else gets 403
  (roles), 404 (no seat, or a seat without a password yet) or 409 (another window holds the desk);
- the desk page's Content-Security-Policy lets it open a WebSocket to those addresses and nothing else.
"""
from __future__ import annotations

import json
from urllib.parse import urlsplit

from flask import Blueprint, current_app, g, jsonify, request, url_for

from webui.i18n import gettext
from webui.security import require_roles

bp = Blueprint("softphone", __name__, url_prefix="/desk/softphone")
ROLES = ("agent", "team_lead")  # the desk's roles (agent_desk.ROLES)

MESSAGES = {"zh": {
    "Browser phone": "浏览器话机", "Use the browser phone": "使用浏览器话机",
    "Off: calls ring your desk phone.": "未启用：来电振铃您的桌面话机。",
    "Connecting to the phone server…": "正在连接话务服务器…",
    "Registered: calls ring in this browser.": "已注册：来电在本浏览器振铃。",
    "Registered, but you are signed out: no queue calls are offered to you. Click “Ready” to take calls in this browser.":
        "已注册，但您已签出：不会为您分配排队来电。点击“示闲”后来电在本浏览器振铃。",
    "Registered, but you are on break: no queue calls are offered to you. Click “Ready” to take calls in this browser.":
        "已注册，但您正在示忙：不会为您分配排队来电。点击“示闲”后来电在本浏览器振铃。",
    "Ringing: %(number)s": "来电振铃：%(number)s", "In call: %(number)s": "通话中：%(number)s",
    "On hold": "保持中", "Muted": "已静音", "Call ended.": "通话已结束。",
    "The call stopped ringing before it was answered.": "来电在接听前已停止振铃。",
    "Answer the call": "接听", "Mute": "静音", "Unmute": "取消静音", "Keypad": "拨号盘", "Devices": "设备",
    "Microphone": "麦克风", "Speaker": "扬声器", "Default device": "默认设备",
    "Send the digit %(digit)s": "发送按键 %(digit)s",
    "The browser phone is not set up on this server.": "本系统未配置浏览器话机。",
    "You are not set up as an agent.": "您尚未配置为话务员。",
    "Your seat has no SIP password yet: ask the administrator.": "您的座席尚无话机密码，请联系管理员。",
    "This desk was opened in another window: the browser phone works there now.":
        "工作台已在另一个窗口打开，浏览器话机已转到该窗口。",
    "The phone component could not be loaded: ask the administrator.": "话机组件未能加载，请联系管理员。",
    "This browser cannot make calls (no WebRTC): use a current Chrome, Edge or Firefox, or the desk phone.":
        "此浏览器不支持网络通话（无 WebRTC）：请使用新版 Chrome、Edge 或 Firefox，或使用桌面话机。",
    "The browser allows the microphone on a secure page only (https, or this computer).":
        "浏览器仅在安全页面（https 或本机）上允许使用麦克风。",
    "The browser did not allow the microphone: allow it for this site (the icon in the address bar), or turn "
    "the browser phone off and use the desk phone.":
        "浏览器未允许使用麦克风：请在地址栏图标处为本站允许麦克风，或关闭浏览器话机、改用桌面话机。",
    "No microphone was found: plug in a headset, or use the desk phone.": "未找到麦克风：请插入耳麦，或使用桌面话机。",
    "Cannot reach the phone server at %(url)s: it is not running, or this browser does not trust its "
    "certificate (open %(https)s once and accept it). Trying again.":
        "无法连接话务服务器 %(url)s：服务器未运行，或本浏览器不信任其证书（请先打开 %(https)s 并接受）。正在重试。",
    "The connection to the phone server was lost; reconnecting. The call may go on: the desk's buttons "
    "(hold, transfer, hang up) still work.":
        "与话务服务器的连接已断开，正在重连。通话可能仍在继续：工作台上的保持、转接、挂断按钮仍然可用。",
    "The call ended: its audio connection was lost.": "通话已结束：音频连接中断。",
    "The call had ended while the connection was lost.": "通话已结束：在连接中断期间结束。",
    "The phone server refused the seat's password: ask the administrator.": "话务服务器拒绝了座席密码，请联系管理员。",
    "Registration failed; trying again.": "注册失败，正在重试。",
    "The call could not be answered.": "未能接听来电。",
    "The request failed (%(status)s).": "请求失败（%(status)s）。",
    "Network error: the server did not answer.": "网络错误：服务器没有响应。",
}}


def _config():
    return current_app.extensions["hotline"].config


def configured() -> bool:
    config = _config()
    return bool(config.softphone_wss and (config.seat_passwords == "product" or config.agent_sip_password))


def sip_domain(url: str) -> str:
    """The SIP domain the seat registers in: the WebSocket's host (the internal profile puts every
    registration into its one directory domain whatever the phone names, force-register-domain)."""
    host = urlsplit(url).hostname or ""
    return f"[{host}]" if ":" in host else host


def softphone_view() -> dict | None:
    """What the desk's phone partial shows (no secret), or None when the browser phone is not configured."""
    if not configured():
        return None
    from webui.blueprints.vendor import version_of

    urls = _config().softphone_wss
    https = "https://" + urls[0][len("wss://"):]
    names = ("Connecting to the phone server…", "Registered: calls ring in this browser.",
             "Registered, but you are signed out: no queue calls are offered to you. Click “Ready” to take calls in this browser.",
             "Registered, but you are on break: no queue calls are offered to you. Click “Ready” to take calls in this browser.",
             "Ringing: %(number)s",
             "In call: %(number)s", "On hold", "Muted", "Call ended.",
             "The call stopped ringing before it was answered.",
             "Mute", "Unmute", "Off: calls ring your desk phone.",
             "This desk was opened in another window: the browser phone works there now.",
             "The phone component could not be loaded: ask the administrator.",
             "This browser cannot make calls (no WebRTC): use a current Chrome, Edge or Firefox, or the desk phone.",
             "The browser allows the microphone on a secure page only (https, or this computer).",
             "The browser did not allow the microphone: allow it for this site (the icon in the address bar), or "
             "turn the browser phone off and use the desk phone.",
             "No microphone was found: plug in a headset, or use the desk phone.",
             "The connection to the phone server was lost; reconnecting. The call may go on: the desk's buttons "
             "(hold, transfer, hang up) still work.",
             "The call ended: its audio connection was lost.",
             "The call had ended while the connection was lost.",
             "The phone server refused the seat's password: ask the administrator.",
             "Registration failed; trying again.", "The call could not be answered.",
             "The request failed (%(status)s).", "Network error: the server did not answer.")
    words = {name: gettext(name) for name in names}
    words["unreachable"] = gettext(
        "Cannot reach the phone server at %(url)s: it is not running, or this browser does not trust its "
        "certificate (open %(https)s once and accept it). Trying again.", url=", ".join(urls), https=https)
    return {"credentials": url_for("softphone.credentials"),
            "library": url_for("vendor.asset", name="jssip.min.js", v=version_of("jssip.min.js")),
            "words": json.dumps(words, ensure_ascii=False)}


@bp.app_context_processor
def _template_helpers():
    return {"softphone_view": softphone_view}


@bp.after_app_request
def _allow_websocket(response):
    """The desk's pages (the desk, and the desk again after a refused ticket) may open the phone's WebSocket to
    the phone servers; the app's policy allows connections to itself only."""
    if request.blueprint == "agent_desk" and response.mimetype == "text/html" and configured():
        base = current_app.config["HOTLINE_CSP"]
        origins = " ".join(dict.fromkeys(_origin(url) for url in _config().softphone_wss))
        response.headers["Content-Security-Policy"] = f"{base}; connect-src 'self' {origins}"
    return response


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _refused(message: str, status: int, **extra):
    response = jsonify({"ok": False, "error": gettext(message), **extra})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/credentials", methods=["POST"])
@require_roles(*ROLES)
def credentials():
    """The signed-in agent's own seat: SIP address, user, password and the WebSocket addresses. Only to the
    window holding the agent's desk (form field ``desk``, the claim the desk page took)."""
    from acd.models import Agent
    from webui.blueprints.agent_desk import claims

    if not configured():
        return _refused("The browser phone is not set up on this server.", 404)
    agent = Agent.get_or_none(Agent.user == g.user.id)
    if agent is None or not agent.extension:
        return _refused("You are not set up as an agent.", 404)
    if not claims().holds(agent.id, (request.form.get("desk") or "")[:40]):
        return _refused("This desk was opened in another window: the browser phone works there now.", 409,
                        superseded=True)
    config = _config()
    password = config.agent_sip_password
    if config.seat_passwords == "product":
        from acd.seats import password_for

        password = password_for(config.secret_key, agent.extension)
        if password is None:
            return _refused("Your seat has no SIP password yet: ask the administrator.", 404)
    domain = sip_domain(config.softphone_wss[0])
    response = jsonify({"ok": True, "uri": f"sip:{agent.extension}@{domain}", "user": agent.extension,
                        "password": password, "sockets": list(config.softphone_wss),
                        "display_name": g.user.operator_no or agent.extension})
    response.headers["Cache-Control"] = "no-store"
    return response
