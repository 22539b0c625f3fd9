"""The district map's boundaries (区县边界) under the organisation pages: an administrator uploads a GeoJSON
FeatureCollection whose features name the configured districts (stats.boundaries checks it strictly; a
refused file stores nothing and lists every problem in the page's language), sees which districts have a
shape, downloads any stored version and may withdraw the map (the command screen then shows its bar chart).

Only the admin role with the admin.org right (as the region tree itself); anyone else gets a 403, audited.
Uploads, refusals and withdrawals are audited."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from markupsafe import Markup

from caseflow.models import Region
from caseflow.roles import can
from stats import boundaries
from webui.security import audit, login_required

bp = Blueprint("admin_regions", __name__, url_prefix="/admin/org/regions")

MESSAGES = {"zh": {
    "District map": "区县地图",
    "District boundaries": "区县边界",
    "The command screen draws today's tickets on a map of the districts when boundaries are stored here, and a "
    "bar chart otherwise.": "此处存有区县边界时，指挥大屏在区县地图上显示今日工单，否则显示柱状图。",
    "Upload a %(fc)s with one %(polygon)s or %(multi)s feature per district. A feature names its district "
    "by the property %(code)s (the region code, e.g. %(example_code)s) or, without a code, by the property "
    "%(name)s (the district's name, e.g. %(example_name)s). Positions are [longitude, latitude] in degrees "
    "(%(wgs)s); every ring must be closed. At most %(mb)s MB, %(features)s features and %(positions)s points.":
        "请上传 %(fc)s，每个区县一个 %(polygon)s 或 %(multi)s 要素。要素用 %(code)s 属性（区域编码，如 "
        "%(example_code)s）指明区县；没有编码时用 %(name)s 属性（区县名称，如 %(example_name)s）。坐标为"
        "[经度, 纬度]，单位为度（%(wgs)s）；每个环须首尾闭合。文件不超过 %(mb)s MB、%(features)s 个要素、"
        "%(positions)s 个坐标点。",
    "Boundary file": "边界文件",
    "Upload": "上传",
    "The file was not stored:": "文件未保存：",
    "Choose a file first.": "请先选择文件。",
    "Boundaries version %(version)s stored: %(count)s districts.": "已保存第 %(version)s 版边界：%(count)s 个区县。",
    "The map is withdrawn: the command screen shows the bar chart.": "地图已撤下，指挥大屏改为显示柱状图。",
    "No boundaries are stored: the command screen shows the bar chart.": "尚未保存区县边界，指挥大屏显示柱状图。",
    "Withdraw the map": "撤下地图",
    "Shown now: version %(version)s": "当前使用：第 %(version)s 版",
    "District": "区县",
    "Region code": "区域编码",
    "On the map": "地图上",
    "Has a shape": "有边界",
    "No shape: its tickets are listed beside the map": "无边界：其工单列在地图旁",
    "Not active": "已停用",
    "Versions": "历史版本",
    "Version": "版本",
    "Uploaded by": "上传人",
    "Uploaded at": "上传时间",
    "Districts": "区县数",
    "File": "文件",
    "Note": "说明",
    "State": "状态",
    "Current": "当前使用",
    "Replaced": "已替换",
    "Withdrawn %(time)s": "已于 %(time)s 撤下",
    "Download": "下载",
    "System": "系统",
    "demo: generated shapes, not real borders": "演示数据：程序生成的示意形状，并非真实边界",
    "No district is configured yet: add districts under Categories and regions first.":
        "尚未配置区县，请先在“分类与区域”中添加区县。",
}}


def _allowed() -> None:
    """The admin role with the admin.org right; anyone else is refused with a 403, audited."""
    user = g.user
    if "admin" not in user.role_set or not can(user, "admin.org"):
        audit("region_map_denied", "region_map", request.path, request.method)
        abort(403)


def _clock():
    return current_app.extensions["hotline"].services.clock


def _help() -> Markup:
    """The upload rules, the file format's own words (property names, geometry types) marked as code."""
    from webui.i18n import gettext

    def code(word: str) -> Markup:
        return Markup('<code translate="no">%s</code>') % word

    mb = boundaries.MAX_BYTES // (1024 * 1024)
    return Markup(gettext(
        "Upload a %(fc)s with one %(polygon)s or %(multi)s feature per district. A feature names its district "
        "by the property %(code)s (the region code, e.g. %(example_code)s) or, without a code, by the property "
        "%(name)s (the district's name, e.g. %(example_name)s). Positions are [longitude, latitude] in degrees "
        "(%(wgs)s); every ring must be closed. At most %(mb)s MB, %(features)s features and %(positions)s points.")
    ) % {"fc": code("GeoJSON FeatureCollection"), "polygon": code("Polygon"), "multi": code("MultiPolygon"),
         "code": code("code"), "name": code("name"), "example_code": code("R-DH"), "example_name": code("东湖区"),
         "wgs": code("WGS 84"), "mb": mb, "features": boundaries.MAX_FEATURES,
         "positions": boundaries.MAX_POSITIONS}


def _page(problems: list[str] | None = None, status: int = 200):
    row = boundaries.current()
    drawn = set(row.codes.split(",")) if row is not None and row.codes else set()
    districts = list(Region.select().where(Region.level == 1).order_by(Region.code))
    return render_template("admin_org/regions_map.html", current=row, drawn=drawn, districts=districts,
                           versions=boundaries.history(), problems=problems or [], rules=_help()), status


@bp.route("/", methods=["GET"])
@login_required
def index():
    """The boundaries shown now, which districts have a shape, the versions, the upload form."""
    _allowed()
    return _page()


@bp.route("/", methods=["POST"])
@login_required
def upload():
    """Store an uploaded GeoJSON file as the new version, or show why it was refused (nothing stored)."""
    from webui.i18n import gettext

    _allowed()
    upload_file = request.files.get("file")
    if upload_file is None or not upload_file.filename:
        return _page([gettext("Choose a file first.")], 400)
    raw = upload_file.stream.read(boundaries.MAX_BYTES + 1)
    name = upload_file.filename[:200]
    try:
        row = boundaries.save(raw, g.user, filename=name, at=_clock().now())
    except boundaries.BoundaryError as error:
        audit("region_map_refused", "region_map", "", f"{name}: {error.problems[0][1]}"[:500])
        return _page(error.lines(g.get("lang") or "zh"), 400)
    audit("region_map_upload", "region_map", row.version,
          f"{name}: {row.features} districts ({row.codes}), {len(raw)} B sha256 {row.sha256}")
    flash(gettext("Boundaries version %(version)s stored: %(count)s districts.", version=row.version,
                  count=row.features), "info")
    return redirect(url_for("admin_regions.index"), code=303)


@bp.route("/withdraw", methods=["POST"])
@login_required
def withdraw():
    """Stop drawing the map; the version stays in the history."""
    from webui.i18n import gettext

    _allowed()
    row = boundaries.withdraw(g.user, at=_clock().now())
    if row is not None:
        audit("region_map_withdraw", "region_map", row.version, row.filename)
        flash(gettext("The map is withdrawn: the command screen shows the bar chart."), "info")
    return redirect(url_for("admin_regions.index"), code=303)


@bp.route("/<int:version>.geojson")
@login_required
def download(version: int):
    """A stored version as it was accepted (each feature with its district's code)."""
    _allowed()
    row = boundaries.stored(version)
    if row is None:
        abort(404)
    response = current_app.response_class(row.geojson, mimetype="application/geo+json")
    response.headers["Content-Disposition"] = f'attachment; filename="districts-v{row.version}.geojson"'
    return response

