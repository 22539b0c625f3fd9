"""The seats' SIP passwords (座席密码), an administrator's page: every seat of the directory with its agent, when
its password last changed and by whom, and a reset. The new password is shown once, on the answer to the reset
(for a desk phone's settings; the browser phone fetches its own), never again and never in the log; the reset is
audited. acd.seats makes, keeps and publishes the passwords; this page needs the process that runs the switch
connections (Services.seats; a web worker passes it on, webui.forward)."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, g, render_template

from acd.models import Agent
from caseflow.models import User
from webui.app import NavItem
from webui.blueprints.common import own_messages
from webui.i18n import gettext
from webui.security import audit, require_roles

bp = Blueprint("admin_seats", __name__, url_prefix="/admin/seats")
NAV = [NavItem("Seat passwords", "admin_seats.index", frozenset({"admin"}), order=62)]
MESSAGES = own_messages({"zh": {
    "Seat passwords": "座席密码", "Seat": "座席（分机）", "Agent": "话务员", "Password changed": "密码更新时间",
    "Changed by": "操作人", "the system": "系统", "Reset the password": "重置密码",
    "Reset the SIP password of seat %(seat)s? Its phone must register again with the new one.":
        "确定重置座席 %(seat)s 的话机密码？该座席的话机须用新密码重新注册。",
    "New password of seat %(seat)s, shown only now (for a desk phone's settings; the browser phone fetches its "
    "own):": "座席 %(seat)s 的新密码（仅此一次显示，用于设置桌面话机；浏览器话机自动获取）：",
    "Each seat registers with its own SIP password, made by the system. The agent's browser phone gets only "
    "its own seat's.": "每个座席使用系统生成的独立话机密码注册，浏览器话机只获取本人座席的密码。",
    "Every seat shares one SIP password here (HOTLINE_FS_SEAT_PASSWORDS=shared): set in FreeSWITCH, not here.":
        "本系统所有座席共用一个话机密码（HOTLINE_FS_SEAT_PASSWORDS=shared），在 FreeSWITCH 中设置，不在此处。",
    "The call process is not running here: passwords cannot be reset now.": "本进程未运行话务服务，暂不能重置密码。",
    "No seats.": "尚无座席。", "not yet": "尚未生成",
    "The new password is on the switches but could not be written for Kamailio, where the old one still works: "
    "check Kamailio's database (the product tries again every minute).":
        "新密码已写入交换机，但未能写入 Kamailio（其中旧密码暂时仍然有效）：请检查 Kamailio 的数据库（系统每分钟重试）。",
}})


def _seats():
    return current_app.extensions["hotline"].services.seats


def _page(new: tuple[str, str] | None = None, status: int = 200):
    """The list; ``new`` = (seat, password) just reset, shown once."""
    seats = _seats()
    config = current_app.extensions["hotline"].config
    rows = []
    if seats is not None:
        by_seat = {row.extension: row for row in seats.rows()}
        agents = {a.extension: a for a in Agent.select(Agent, User).join(User)}
        for extension in sorted(seats.seats(), key=lambda e: (len(e), e)):
            rows.append({"seat": extension, "agent": agents.get(extension), "secret": by_seat.get(extension)})
    response = current_app.make_response((render_template(
        "admin_seats/index.html", rows=rows, shared=config.seat_passwords == "shared", running=seats is not None,
        new=new), status))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/")
@require_roles("admin")
def index():
    """Every seat with its agent and when its password changed."""
    return _page()


@bp.route("/<extension>/reset", methods=["POST"])
@require_roles("admin")
def reset(extension):
    """A new password for the seat: written into FreeSWITCH's directory, shown once, audited."""
    from acd.seats import CredentialsNotWritten, UnknownSeat

    seats = _seats()
    if seats is None:
        flash(gettext("The call process is not running here: passwords cannot be reset now."), "error")
        return _page(status=409)
    try:
        password = seats.reset(extension, g.user.operator_no or "")
    except UnknownSeat:
        abort(404)
    except CredentialsNotWritten as failure:
        # Changed on the switches all the same: audited and shown, with what is still to do.
        audit("seat_password_reset", "seat", extension, "not written for Kamailio")
        flash(gettext("The new password is on the switches but could not be written for Kamailio, where the old "
                      "one still works: check Kamailio's database (the product tries again every minute)."), "error")
        return _page(new=(extension, failure.password), status=502)
    audit("seat_password_reset", "seat", extension)
    return _page(new=(extension, password))
