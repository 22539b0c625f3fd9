"""The district boundaries' check (stats.boundaries.check): a good FeatureCollection is reduced to each
district's code and its geometry; every kind of bad input is refused as a whole with a message in Chinese and
in English that says what and where."""
from __future__ import annotations

import json

import pytest

from stats import boundaries
from stats.boundaries import BoundaryError, Place, check

PLACES = [Place("R-DH", "东湖区"), Place("R-XS", "西山区"), Place("R-DH-DHJD", "东湖街道", level=2),
          Place("R-OLD", "旧城区", active=False), Place("R-N1", "新区"), Place("R-N2", "新区")]
SQUARE = [[120.0, 30.0], [120.1, 30.0], [120.1, 30.1], [120.0, 30.1], [120.0, 30.0]]


def feature(properties=None, geometry=None, kind="Feature"):
    return {"type": kind, "properties": {"code": "R-DH"} if properties is None else properties,
            "geometry": {"type": "Polygon", "coordinates": [SQUARE]} if geometry is None else geometry}


def collection(*features) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}, ensure_ascii=False).encode()


def refused(raw: bytes) -> tuple[list[str], list[str]]:
    with pytest.raises(BoundaryError) as caught:
        check(raw, PLACES)
    zh, en = caught.value.lines("zh"), caught.value.lines("en")
    assert len(zh) == len(en) >= 1
    for line in zh:  # each line in one language: Chinese with no English sentence in it
        assert " / " not in line
    return zh, en


def test_accepts_polygons_and_multipolygons_by_code_or_name():
    """Should keep each feature's district code and geometry (altitude dropped, positions rounded), matching
    by code first and by name without one."""
    hole = [[120.02, 30.02], [120.03, 30.02], [120.03, 30.03], [120.02, 30.02]]
    raw = collection(
        feature({"code": "R-DH", "name": "whatever", "extra": 1},
                {"type": "Polygon", "coordinates": [[p + [12.5] for p in SQUARE], hole]}),
        feature({"name": "西山区"}, {"type": "MultiPolygon", "coordinates": [[SQUARE],
                                                                             [[[119.0, 30.0], [119.1, 30.0],
                                                                               [119.1, 30.1], [119.0, 30.0]]]]}))
    checked = check(raw, PLACES)
    assert checked.codes == ("R-DH", "R-XS")
    first = checked.features[0]
    assert first["properties"] == {"code": "R-DH"}
    assert first["geometry"]["coordinates"][0][0] == [120.0, 30.0]
    assert len(first["geometry"]["coordinates"]) == 2
    assert json.loads(checked.geojson())["type"] == "FeatureCollection"


def test_accepts_a_byte_order_mark():
    """Should read UTF-8 with a byte order mark (as some Windows tools write it)."""
    assert check(b"\xef\xbb\xbf" + collection(feature()), PLACES).codes == ("R-DH",)


def test_demo_shapes_pass_the_check():
    """Should accept the demo's generated shapes for the demo districts, one feature each."""
    checked = check(boundaries.demo_geojson(), PLACES)
    assert sorted(checked.codes) == ["R-DH", "R-XS"]


@pytest.mark.parametrize("raw, zh, en", [
    (b"", "文件为空", "the file is empty"),
    (b"  \n", "文件为空", "the file is empty"),
    (b"\xff\xfe{\x00", "不是 UTF-8", "not UTF-8"),
    (b'{"type": "FeatureCollection", "features": [', "不是有效的 JSON：第 1 行", "not valid JSON"),
    (b"{'type': 'FeatureCollection'}", "不是有效的 JSON", "line 1, column 2"),
    (b'{"type": "FeatureCollection", "features": [], "x": NaN}', "NaN", "NaN"),
    (b'{"x": Infinity}', "Infinity", "Infinity"),
    (b"[" * 100_000 + b"]" * 100_000, "嵌套过深", "nested too deeply"),
])
def test_refuses_what_is_not_json(raw, zh, en):
    """Should refuse an empty file, another encoding, broken JSON (saying where), NaN and Infinity, and JSON
    nested beyond reason."""
    zh_lines, en_lines = refused(raw)
    assert zh in zh_lines[0] and en in en_lines[0]


def test_refuses_a_file_over_the_size_limit():
    """Should refuse a file over MAX_BYTES before reading it as JSON."""
    zh, en = refused(b" " * boundaries.MAX_BYTES + collection(feature()))
    assert "MB" in zh[0] and "larger than" in en[0]


@pytest.mark.parametrize("data, zh, en", [
    ([], "顶层须为 GeoJSON FeatureCollection，此处为 array", "found array"),
    ("FeatureCollection", "此处为 string", "found string"),
    ({"type": "Feature", "geometry": None}, "此处为 Feature", "found Feature"),
    ({"type": "Topology"}, "此处为 Topology", "found Topology"),
    ({"type": "FeatureCollection"}, "缺少 features 数组", "no features array"),
    ({"type": "FeatureCollection", "features": {}}, "缺少 features 数组", "no features array"),
    ({"type": "FeatureCollection", "features": []}, "没有任何区县要素", "has no features"),
])
def test_refuses_what_is_not_a_feature_collection(data, zh, en):
    """Should refuse a top level that is not a FeatureCollection with features."""
    zh_lines, en_lines = refused(json.dumps(data).encode())
    assert zh in zh_lines[0] and en in en_lines[0]


@pytest.mark.parametrize("geometry, zh, en", [
    (None, "没有几何图形", "has no geometry"),
    ({"type": "Point", "coordinates": [120.0, 30.0]}, "几何类型为 Point，只接受 Polygon 或 MultiPolygon",
     "geometry type Point; only Polygon and MultiPolygon"),
    ({"type": "LineString", "coordinates": SQUARE}, "LineString", "LineString"),
    ({"type": "GeometryCollection", "geometries": []}, "GeometryCollection", "GeometryCollection"),
    ({"type": "Polygon", "coordinates": []}, "多边形须为非空的环数组", "non-empty array of rings"),
    ({"type": "Polygon", "coordinates": [[[120.0, 30.0], [120.1, 30.0], [120.0, 30.0]]]}, "少于 4 个坐标点",
     "fewer than 4 positions"),
    ({"type": "Polygon", "coordinates": [SQUARE[:-1] + [[120.0, 30.05]]]}, "第 1 个环：未闭合",
     "ring 1: is not closed"),
    ({"type": "Polygon", "coordinates": [SQUARE, SQUARE[:4] + [[120.05, 30.05]]]}, "第 2 个环：未闭合",
     "ring 2: is not closed"),
    ({"type": "Polygon", "coordinates": [[[120.0, "30.0"]] + SQUARE[1:]]}, "坐标须为数字", "must be numbers"),
    ({"type": "Polygon", "coordinates": [[[120.0, True]] + SQUARE[1:]]}, "坐标须为数字", "must be numbers"),
    ({"type": "Polygon", "coordinates": [[[120.0]] + SQUARE[1:]]}, "坐标须为数字", "must be numbers"),
    ({"type": "Polygon", "coordinates": [[[120.0, 30.0, 1, 2]] + SQUARE[1:]]}, "坐标须为数字", "must be numbers"),
    ({"type": "Polygon", "coordinates": [[[None, 30.0]] + SQUARE[1:]]}, "坐标须为数字", "must be numbers"),
    ({"type": "Polygon", "coordinates": [[[181, 30.0]] + SQUARE[1:-1] + [[181, 30.0]]]}, "经度 181 超出 -180 至 180",
     "longitude 181 is outside -180 to 180"),
    ({"type": "Polygon", "coordinates": [[[120.0, -90.5]] + SQUARE[1:-1] + [[120.0, -90.5]]]},
     "纬度 -90.5 超出 -90 至 90", "latitude -90.5 is outside -90 to 90"),
    ({"type": "Polygon", "coordinates": [5]}, "第 1 个环：须为坐标数组，此处为 number", "array of positions"),
    ({"type": "MultiPolygon", "coordinates": []}, "MultiPolygon 须为非空的多边形数组", "non-empty array of polygons"),
    ({"type": "MultiPolygon", "coordinates": [SQUARE]}, "第 1 个多边形", "polygon 1"),
    ({"type": "MultiPolygon", "coordinates": [[SQUARE], [SQUARE[:-1]]]}, "第 2 个多边形第 1 个环：未闭合",
     "polygon 2, ring 1: is not closed"),
])
def test_refuses_bad_geometry(geometry, zh, en):
    """Should refuse other geometry types, rings that are not closed or too short, positions that are not
    numbers, and longitudes and latitudes out of range, naming the feature, polygon, ring and position."""
    raw = collection({"type": "Feature", "properties": {"code": "R-DH"}, "geometry": geometry})
    zh_lines, en_lines = refused(raw)
    assert zh_lines[0].startswith("第 1 个要素") and en_lines[0].startswith("feature 1")
    assert zh in zh_lines[0] and en in en_lines[0]


def test_refuses_a_number_too_large_for_a_float():
    """Should refuse a longitude written 1e400 (read as infinity) as out of range."""
    ring = "[[1e400, 30.0], [120.1, 30.0], [120.1, 30.1], [1e400, 30.0]]"
    raw = ('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"code": "R-DH"}, '
           '"geometry": {"type": "Polygon", "coordinates": [%s]}}]}' % ring).encode()
    zh, en = refused(raw)
    assert "经度 Infinity 超出 -180 至 180" in zh[0]
    assert "longitude" in en[0] and "outside -180 to 180" in en[0]


@pytest.mark.parametrize("properties, zh, en", [
    ({}, "未指明区县（须有 code 或 name 属性）", "names no district"),
    (None, "未指明区县", "names no district"),
    ({"name": ""}, "未指明区县", "names no district"),
    ({"code": 7}, "code 属性须为文字", "code property must be text"),
    ({"code": "R-ZZ"}, "区域编码 R-ZZ 不是已配置的区县", "region code R-ZZ is not a configured district"),
    ({"code": "R-ZZ", "name": "东湖区"}, "区域编码 R-ZZ", "region code R-ZZ"),   # the code decides
    ({"name": "南山区"}, "区域名称 南山区 不是已配置的区县", "region name 南山区 is not a configured district"),
    ({"code": "R-DH-DHJD"}, "东湖街道（R-DH-DHJD）是街道，不是区县", "is a street, not a district"),
    ({"name": "东湖街道"}, "是街道", "is a street"),
    ({"code": "R-OLD"}, "已停用", "is not active"),
    ({"name": "新区"}, "对应多个区县，请用 code 属性指明", "matches several districts"),
])
def test_refuses_features_not_matched_to_a_configured_district(properties, zh, en):
    """Should refuse a feature that names no district, an unknown code or name, a street, an inactive or an
    ambiguous district."""
    raw = collection({"type": "Feature", "properties": properties,
                      "geometry": {"type": "Polygon", "coordinates": [SQUARE]}})
    zh_lines, en_lines = refused(raw)
    assert zh in zh_lines[0] and en in en_lines[0]


def test_refuses_a_district_given_twice_and_a_non_feature():
    """Should refuse a second shape for one district (by code and by name alike) and an item that is not a
    Feature, listing every problem with its feature number."""
    raw = collection(feature(), feature({"name": "东湖区"}), "not a feature",
                     feature({"code": "R-XS"}, kind="Polygon"))
    zh, en = refused(raw)
    assert zh[0] == "第 2 个要素：区县 东湖区 已由第 1 个要素给出"
    assert en[0] == "feature 2: district 东湖区 is already given by feature 1"
    assert "第 3 个要素：不是 Feature 对象" in zh[1] and "feature 4: is not a Feature object" in en[2]


def test_one_bad_feature_refuses_the_whole_file():
    """Should refuse the file when any one feature is bad, even if the others are good."""
    bad = {"type": "Polygon", "coordinates": [SQUARE[:-1]]}
    zh, en = refused(collection(feature(), feature({"code": "R-XS"}, bad)))
    assert zh == ["第 2 个要素第 1 个环：未闭合（首尾坐标不同）"]
    assert en == ["feature 2, ring 1: is not closed (its first and last positions differ)"]


def test_lists_at_most_max_problems_and_counts_the_rest():
    """Should list the first MAX_PROBLEMS problems and say how many more there are."""
    raw = collection(*[feature({"code": f"X{i}"}) for i in range(15)])
    zh, en = refused(raw)
    assert len(zh) == boundaries.MAX_PROBLEMS + 1
    assert zh[-1] == "……另有 5 处问题未列出" and en[-1] == "… and 5 more problems"


def test_refuses_too_many_features_and_too_many_positions(monkeypatch):
    """Should refuse more than MAX_FEATURES features and more than MAX_POSITIONS positions in all."""
    zh, en = refused(collection(*[feature() for _ in range(boundaries.MAX_FEATURES + 1)]))
    assert f"要素超过 {boundaries.MAX_FEATURES} 个" in zh[0] and "more than" in en[0]
    monkeypatch.setattr(boundaries, "MAX_POSITIONS", 6)
    zh, en = refused(collection(feature(), feature({"code": "R-XS"})))
    assert "坐标点共 10 个，超过 6 个上限" in zh[0] and "simplify" in en[0]


def test_long_values_are_shortened_in_messages():
    """Should quote at most 40 characters of a value from the file."""
    zh, en = refused(collection(feature({"code": "Z" * 500})))
    assert "Z" * 40 + "…" in zh[0] and "Z" * 41 not in en[0]
