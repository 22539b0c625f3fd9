"""The district boundaries page (/admin/org/regions/) on SQLite and PostgreSQL: an administrator uploads a
GeoJSON file, each version is kept with who and when, the command screen gets the map; a bad file is refused
with every problem in the user's language and nothing stored; only the admin role with the admin.org right
gets in (other roles and department users get a 403, audited); uploads, refusals and withdrawals are audited."""
from __future__ import annotations

import io
import json

import pytest

from caseflow import org, roles
from caseflow.accounts import hash_password
from caseflow.models import Region, User
from stats import boundaries
from stats.models import RegionMap
from tests.integration.webui.test_one_language import findings
from webui.models import AuditLog

from .conftest import PASSWORD

SQUARE = [[120.0, 30.0], [120.1, 30.0], [120.1, 30.1], [120.0, 30.1], [120.0, 30.0]]
WEST = [[119.9, 30.0], [120.0, 30.0], [120.0, 30.1], [119.9, 30.1], [119.9, 30.0]]


def geojson(*features) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}, ensure_ascii=False).encode()


def shape(properties, ring=SQUARE):
    return {"type": "Feature", "properties": properties, "geometry": {"type": "Polygon", "coordinates": [ring]}}


GOOD = geojson(shape({"code": "E-D"}), shape({"name": "西城区"}, WEST))


@pytest.fixture
def places(world):
    """Two districts (东城区 E-D with a street, 西城区 W-D) and an east department leader."""
    world.east_district = org.create_region("E-D", "东城区")
    world.east_street = org.create_region("E-D-1", "东城街道", world.east_district)
    world.west_district = org.create_region("W-D", "西城区")
    world.east_leader = User.create(operator_no="7002", name="郑区长", password_hash=hash_password(PASSWORD),
                                    roles="dept_leader,dept", department=world.east)
    return world


def upload(client, raw: bytes, name: str = "districts.geojson"):
    return client.post_form("/admin/org/regions/", {"file": (io.BytesIO(raw), name)},
                            content_type="multipart/form-data")


def last_audit() -> AuditLog:
    return AuditLog.select().order_by(AuditLog.id.desc()).first()


def test_an_administrator_uploads_boundaries_and_the_screen_draws_them(places, login):
    """Should store the file as version 1 (who, when, districts), show it on the page, give the command
    screen its map with the districts' names, and audit the upload."""
    admin = login(places.admin)
    page = admin.get("/admin/org/regions/").get_data(as_text=True)
    assert "尚未保存区县边界" in page and "东城区" in page and "区县地图" in page
    assert 'enctype="multipart/form-data"' in page and 'name="csrf_token"' in page
    response = upload(admin, GOOD)
    assert response.status_code == 303
    row = RegionMap.get()
    assert (row.version, row.features, row.codes, row.current) == (1, 2, "E-D,W-D", True)
    assert row.uploaded_by_id == places.admin.id and row.uploaded_at is not None
    assert row.filename == "districts.geojson" and len(row.sha256) == 64
    audited = last_audit()
    assert (audited.action, audited.obj_type, audited.obj_id) == ("region_map_upload", "region_map", "1")
    assert "2 districts (E-D,W-D)" in audited.detail and audited.user_id == places.admin.id
    page = admin.get("/admin/org/regions/").get_data(as_text=True)
    assert "已保存第 1 版边界：2 个区县。" in page and "当前使用：第 1 版" in page
    assert page.count("有边界") == 2 and "用户0001（0001）" in page

    figures = admin.get("/stats/screen/figures.json").get_json()
    assert figures["map"] == {"version": 1, "url": "/stats/screen/map.json?v=1", "names": ["东城区", "西城区"]}
    drawn = admin.get("/stats/screen/map.json?v=1")
    assert drawn.status_code == 200 and drawn.headers["ETag"]
    body = drawn.get_json()
    assert body["version"] == 1
    assert [f["properties"] for f in body["geojson"]["features"]] == [{"code": "E-D", "name": "东城区"},
                                                                      {"code": "W-D", "name": "西城区"}]
    assert body["geojson"]["features"][0]["geometry"] == {"type": "Polygon", "coordinates": [SQUARE]}
    assert admin.get("/stats/screen/map.json", headers={"If-None-Match": drawn.headers["ETag"]}).status_code == 304
    assert 'id="districts-off-map"' in admin.get("/stats/screen/").get_data(as_text=True)

    download = admin.get("/admin/org/regions/1.geojson")
    assert download.status_code == 200 and download.mimetype == "application/geo+json"
    assert "districts-v1.geojson" in download.headers["Content-Disposition"]
    assert json.loads(download.get_data(as_text=True))["features"][1]["properties"] == {"code": "W-D"}


def test_a_new_upload_replaces_the_map_and_keeps_the_history(places, login):
    """Should make version 2 current, keep version 1 as replaced, and show a renamed district by its new
    name on the screen."""
    admin = login(places.admin)
    assert upload(admin, GOOD).status_code == 303
    assert upload(admin, geojson(shape({"code": "W-D"}, WEST)), "west.json").status_code == 303
    rows = {r.version: r for r in RegionMap.select()}
    assert rows[1].current is False and rows[2].current is True and rows[2].codes == "W-D"
    page = admin.get("/admin/org/regions/").get_data(as_text=True)
    assert "当前使用：第 2 版" in page and "已替换" in page and "west.json" in page
    assert "无边界：其工单列在地图旁" in page  # 东城区 has no shape in version 2
    Region.update(name="西城新区").where(Region.code == "W-D").execute()
    figures = admin.get("/stats/screen/figures.json").get_json()
    assert figures["map"]["version"] == 2 and figures["map"]["names"] == ["西城新区"]
    body = admin.get("/stats/screen/map.json").get_json()
    assert [f["properties"]["name"] for f in body["geojson"]["features"]] == ["西城新区"]
    assert admin.get("/admin/org/regions/1.geojson").status_code == 200
    assert admin.get("/admin/org/regions/9.geojson").status_code == 404


def test_withdrawing_the_map_brings_back_the_bar_chart(places, login):
    """Should stop drawing the map (no map in the screen's figures, map.json 404), keep the version, and
    audit the withdrawal."""
    admin = login(places.admin)
    upload(admin, GOOD)
    response = admin.post_form("/admin/org/regions/withdraw")
    assert response.status_code == 303
    row = RegionMap.get()
    assert row.current is False and row.withdrawn_by_id == places.admin.id and row.withdrawn_at is not None
    assert (last_audit().action, last_audit().obj_id) == ("region_map_withdraw", "1")
    assert admin.get("/stats/screen/figures.json").get_json()["map"] is None
    assert admin.get("/stats/screen/map.json").status_code == 404
    page = admin.get("/admin/org/regions/").get_data(as_text=True)
    assert "尚未保存区县边界" in page and "已于" in page and "撤下" in page


BAD = [
    (b"{not json", "不是有效的 JSON：第 1 行第 2 列有误", "not valid JSON"),
    (b"\xff\xfe\x00{", "文件不是 UTF-8 编码的文本", "the file is not UTF-8 text"),
    (json.dumps({"type": "Feature"}).encode(), "顶层须为 GeoJSON FeatureCollection", "must be a GeoJSON"),
    (geojson(), "文件中没有任何区县要素", "the file has no features"),
    (geojson({"type": "Feature", "properties": {"code": "E-D"},
              "geometry": {"type": "Point", "coordinates": [120, 30]}}), "只接受 Polygon 或 MultiPolygon",
     "only Polygon and MultiPolygon"),
    (geojson(shape({"code": "E-D"}, [[120.0, 30.0], ["x", 30.0], [120.1, 30.1], [120.0, 30.0]])),
     "坐标须为数字", "must be numbers"),
    (geojson(shape({"code": "E-D"}, [[200.0, 30.0], [120.1, 30.0], [120.1, 30.1], [200.0, 30.0]])),
     "经度 200.0 超出 -180 至 180", "longitude 200.0 is outside"),
    (geojson(shape({"code": "E-D"}, [[120.0, 95.0], [120.1, 30.0], [120.1, 30.1], [120.0, 95.0]])),
     "纬度 95.0 超出 -90 至 90", "latitude 95.0 is outside"),
    (geojson(shape({"code": "E-D"}, SQUARE[:-1])), "未闭合（首尾坐标不同）", "is not closed"),
    (geojson(shape({"code": "E-D"}), shape({"code": "N-D"}, WEST)), "区域编码 N-D 不是已配置的区县",
     "region code N-D is not a configured district"),
    (geojson(shape({"name": "东城街道"})), "是街道，不是区县", "is a street, not a district"),
    (geojson(shape({})), "未指明区县", "names no district"),
]


@pytest.mark.parametrize("raw, zh, en", BAD, ids=[
    "json", "encoding", "not-a-collection", "empty", "point", "not-number", "longitude", "latitude", "open-ring",
    "unknown-district", "street", "no-name"])
def test_a_bad_file_is_refused_in_the_users_language_and_nothing_is_stored(places, login, raw, zh, en):
    """Should answer 400 with the problem in Chinese (or, for an English user, in English only), store
    nothing, keep the version shown before, and audit the refusal."""
    admin = login(places.admin)
    assert upload(admin, GOOD).status_code == 303
    before = [(r.version, r.current, r.geojson) for r in RegionMap.select().order_by(RegionMap.version)]
    response = upload(admin, raw, "bad.geojson")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "文件未保存：" in page and zh in page and en not in page
    assert [(r.version, r.current, r.geojson) for r in RegionMap.select().order_by(RegionMap.version)] == before
    audited = last_audit()
    assert (audited.action, audited.obj_type) == ("region_map_refused", "region_map")
    assert audited.detail.startswith("bad.geojson: ")

    admin.post_form("/language", {"lang": "en"})
    page = upload(admin, raw, "bad.geojson").get_data(as_text=True)
    assert "The file was not stored:" in page and en in page and zh not in page
    problems = page.split('data-testid="map-problems"', 1)[1].split("</div>", 1)[0].replace("东城街道", "")
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in problems)
    assert RegionMap.select().count() == 1


def test_an_oversized_file_and_a_missing_file_are_refused(places, login):
    """Should refuse a file over the size limit and a form without a file, storing nothing."""
    admin = login(places.admin)
    big = upload(admin, b" " * boundaries.MAX_BYTES + GOOD)
    assert big.status_code == 400 and "文件超过 5 MB 上限" in big.get_data(as_text=True)
    empty = admin.post_form("/admin/org/regions/", {}, content_type="multipart/form-data")
    assert empty.status_code == 400 and "请先选择文件。" in empty.get_data(as_text=True)
    assert RegionMap.select().count() == 0


def test_an_upload_without_the_form_token_is_refused(places, login):
    """Should refuse a POST without the CSRF token (400) and store nothing."""
    admin = login(places.admin)
    response = admin.post("/admin/org/regions/", data={"file": (io.BytesIO(GOOD), "d.geojson")},
                          content_type="multipart/form-data")
    assert response.status_code == 400
    assert RegionMap.select().count() == 0


@pytest.mark.parametrize("who", ["agent", "centre_user", "leader", "east_user", "east_leader", "street_user"])
def test_other_roles_and_departments_are_refused_and_audited(places, login, who):
    """Should refuse the page, the upload, the withdrawal and the download to every role but the
    administrator, and to a district department's users and leader, with a 403 each, audited."""
    admin = login(places.admin)
    upload(admin, GOOD)
    client = login(getattr(places, who))
    for method, path in (("get", "/admin/org/regions/"), ("post", "/admin/org/regions/"),
                         ("post", "/admin/org/regions/withdraw"), ("get", "/admin/org/regions/1.geojson")):
        if method == "get":
            response = client.get(path)
        elif path.endswith("withdraw"):
            response = client.post_form(path)
        else:
            response = upload(client, geojson(shape({"code": "W-D"}, WEST)))
        assert response.status_code == 403, (who, path)
        audited = last_audit()
        assert (audited.action, audited.obj_id, audited.user_id) == ("region_map_denied", path,
                                                                     getattr(places, who).id)
    row = RegionMap.get()
    assert (RegionMap.select().count(), row.current, row.codes) == (1, True, "E-D,W-D")


def test_an_administrator_without_the_organisation_right_is_refused(places, login):
    """Should refuse an administrator whose role lost admin.org on the role page."""
    roles.set_role_permissions("admin", sorted(roles.role_permissions("admin") - {"admin.org"}))
    try:
        response = login(places.admin).get("/admin/org/regions/")
        assert response.status_code == 403 and last_audit().action == "region_map_denied"
    finally:
        roles.reset_role_permissions("admin")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_page_is_in_one_language(places, login, lang):
    """Should show the page with a stored map and its history all in Chinese or all in English."""
    if lang == "en":  # the data shown in English too: only the page's own words are checked
        User.update(name="Admin").where(User.id == places.admin.id).execute()
        for code, name in (("E-D", "East"), ("E-D-1", "East Street"), ("W-D", "West")):
            Region.update(name=name).where(Region.code == code).execute()
    admin = login(places.admin)
    admin.post_form("/language", {"lang": lang})
    admin.get("/admin/org/regions/")  # shows the welcome flash, in the language of the login
    upload(admin, geojson(shape({"code": "E-D"}), shape({"code": "W-D"}, WEST)))
    page = admin.get("/admin/org/regions/").get_data(as_text=True)
    assert findings(page, lang) == []
    assert ("区县边界" in page) == (lang == "zh") and ("District boundaries" in page) == (lang == "en")


def test_the_demo_ships_generated_shapes_for_its_districts(db):
    """Should store the demo's shapes for 东湖区 and 西山区 with the demo data, noted as generated, once."""
    from caseflow import demo

    demo.load_demo()
    row = boundaries.load_demo_map()
    assert row is not None and sorted(row.codes.split(",")) == ["R-DH", "R-XS"]
    assert row.note == boundaries.DEMO_NOTE and row.uploaded_by is None
    assert boundaries.load_demo_map() is None and RegionMap.select().count() == 1
    names = [f["properties"]["name"] for f in boundaries.drawn(RegionMap.get())["features"]]
    assert sorted(names) == ["东湖区", "西山区"]
