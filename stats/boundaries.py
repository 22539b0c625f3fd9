"""District boundaries for the command screen's map: a GeoJSON FeatureCollection an administrator uploads,
checked strictly, stored as a new version (who, when), and handed to the screen with each district's current
name.

Each feature names one configured district (a level-1 region of caseflow's region tree): by its ``code``
property (the region code, e.g. ``R-DH``), or, when the feature has no ``code``, by its ``name`` property (the
district's name, e.g. 东湖区). Geometry is Polygon or MultiPolygon only, positions are [longitude, latitude]
(WGS 84 degrees, a third number for altitude is dropped), every ring is closed. A file that breaks any rule is
refused as a whole with every problem found (up to MAX_PROBLEMS), each in Chinese and English; nothing is
stored then. ``check`` is the pure part; the functions after it read and write the ``RegionMap`` table.

The demo's shapes (``demo_geojson``) are generated outlines around an invented point, not real borders.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import peewee

from caseflow.models import Region, User, utcnow
from stats.models import RegionMap

MAX_BYTES = 5 * 1024 * 1024      # the uploaded file
MAX_FEATURES = 500
MAX_POSITIONS = 200_000          # over all rings: a wall screen redraws the map on every refresh
MAX_PROBLEMS = 10                # listed in one refusal
DECIMALS = 6                     # positions are stored rounded to about 0.1 m
GEOMETRIES = ("Polygon", "MultiPolygon")


@dataclass(frozen=True)
class Place:
    """A configured region as the check sees it."""

    code: str
    name: str
    level: int = 1
    active: bool = True


@dataclass(frozen=True)
class Checked:
    """An accepted FeatureCollection: the features reduced to their district's code and their geometry."""

    features: tuple[dict, ...]
    codes: tuple[str, ...]          # the districts drawn, in the file's order

    def geojson(self) -> str:
        return json.dumps({"type": "FeatureCollection", "features": list(self.features)},
                          ensure_ascii=False, separators=(",", ":"))


class BoundaryError(ValueError):
    """A refused upload: ``problems`` are (Chinese, English) sentences, the first ones found."""

    def __init__(self, problems: Sequence[tuple[str, str]]):
        self.problems = list(problems)
        super().__init__("; ".join(f"{zh} / {en}" for zh, en in self.problems))

    def lines(self, lang: str) -> list[str]:
        """The problems in one language (zh or en)."""
        return [zh if lang == "zh" else en for zh, en in self.problems]


def _shown(value, limit: int = 40) -> str:
    """A value from the file, short, for a message."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)[:limit + 1]
    return text if len(text) <= limit else text[:limit] + "…"


def _type_of(value) -> str:
    if isinstance(value, dict):
        return str(value.get("type")) if isinstance(value.get("type"), str) else "object"
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def _reject_constant(name: str):
    raise ValueError(name)


def _parse(raw: bytes):
    """The file's JSON, or a BoundaryError saying why it is not JSON."""
    if not raw.strip():
        raise BoundaryError([("文件为空", "the file is empty")])
    if len(raw) > MAX_BYTES:
        mb = MAX_BYTES // (1024 * 1024)
        raise BoundaryError([(f"文件超过 {mb} MB 上限", f"the file is larger than the {mb} MB limit")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BoundaryError([("文件不是 UTF-8 编码的文本", "the file is not UTF-8 text")]) from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise BoundaryError([(f"不是有效的 JSON：第 {error.lineno} 行第 {error.colno} 列有误",
                              f"not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}")]) from None
    except ValueError as error:  # NaN, Infinity, -Infinity
        raise BoundaryError([(f"不是有效的 JSON：含有 {error}", f"not valid JSON: it contains {error}")]) from None
    except RecursionError:
        raise BoundaryError([("JSON 嵌套过深", "the JSON is nested too deeply")]) from None


class _Problems:
    """Problems found so far; stops the check when there are enough to show."""

    def __init__(self):
        self.found: list[tuple[str, str]] = []
        self.more = 0

    def add(self, zh: str, en: str) -> None:
        if len(self.found) < MAX_PROBLEMS:
            self.found.append((zh, en))
        else:
            self.more += 1

    def raise_any(self) -> None:
        if self.found:
            extra = [(f"……另有 {self.more} 处问题未列出", f"… and {self.more} more problems")] if self.more else []
            raise BoundaryError(self.found + extra)


def _position(value, where: tuple[str, str]) -> tuple[list[float] | None, tuple[str, str] | None]:
    """[lon, lat] rounded, or the problem with this position."""
    if (not isinstance(value, list) or len(value) not in (2, 3)
            or not all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in value)):
        return None, (f"{where[0]}：坐标须为数字 [经度, 纬度]，此处为 {_shown(value)}",
                      f"{where[1]}: a position must be numbers [longitude, latitude], found {_shown(value)}")
    lon, lat = float(value[0]), float(value[1])
    if not math.isfinite(lon) or not -180 <= lon <= 180:
        return None, (f"{where[0]}：经度 {_shown(value[0])} 超出 -180 至 180",
                      f"{where[1]}: longitude {_shown(value[0])} is outside -180 to 180")
    if not math.isfinite(lat) or not -90 <= lat <= 90:
        return None, (f"{where[0]}：纬度 {_shown(value[1])} 超出 -90 至 90",
                      f"{where[1]}: latitude {_shown(value[1])} is outside -90 to 90")
    return [round(lon, DECIMALS), round(lat, DECIMALS)], None


def _each(items: list, parse, where: tuple[str, str], zh: str, en: str) -> tuple[list | None, tuple[str, str] | None]:
    """Every item parsed by ``parse(item, where)``, or the first item's problem; ``zh``/``en`` name an item in
    the place a problem is said to be (…第 3 个环 / …, ring 3)."""
    parsed = []
    for index, item in enumerate(items, 1):
        value, problem = parse(item, (f"{where[0]}第 {index} 个{zh}", f"{where[1]}, {en} {index}"))
        if problem:
            return None, problem
        parsed.append(value)
    return parsed, None


def _ring(value, where: tuple[str, str]) -> tuple[list | None, tuple[str, str] | None]:
    """A closed ring of at least four positions, or its first problem."""
    if not isinstance(value, list):
        return None, (f"{where[0]}：须为坐标数组，此处为 {_type_of(value)}",
                      f"{where[1]}: must be an array of positions, found {_type_of(value)}")
    if len(value) < 4:
        return None, (f"{where[0]}：少于 4 个坐标点（闭合环至少 4 个）",
                      f"{where[1]}: has fewer than 4 positions (a closed ring needs at least 4)")
    ring, problem = _each(value, _position, where, "点", "position")
    if problem:
        return None, problem
    if ring[0] != ring[-1]:
        return None, (f"{where[0]}：未闭合（首尾坐标不同）",
                      f"{where[1]}: is not closed (its first and last positions differ)")
    return ring, None


def _polygon(value, where: tuple[str, str]) -> tuple[list | None, tuple[str, str] | None]:
    """A polygon's rings (outer first, then holes), or its first problem."""
    if not isinstance(value, list) or not value:
        return None, (f"{where[0]}：多边形须为非空的环数组",
                      f"{where[1]}: a polygon must be a non-empty array of rings")
    return _each(value, _ring, where, "环", "ring")


def _geometry(value, where: tuple[str, str]) -> tuple[dict | None, tuple[str, str] | None]:
    if not isinstance(value, dict):
        return None, (f"{where[0]}：没有几何图形（geometry）", f"{where[1]}: has no geometry")
    kind = value.get("type")
    if kind not in GEOMETRIES:
        return None, (f"{where[0]}：几何类型为 {_shown(kind)}，只接受 Polygon 或 MultiPolygon",
                      f"{where[1]}: has geometry type {_shown(kind)}; only Polygon and MultiPolygon are accepted")
    coordinates = value.get("coordinates")
    if kind == "Polygon":
        rings, problem = _polygon(coordinates, where)
        return (None, problem) if problem else ({"type": kind, "coordinates": rings}, None)
    if not isinstance(coordinates, list) or not coordinates:
        return None, (f"{where[0]}：MultiPolygon 须为非空的多边形数组",
                      f"{where[1]}: a MultiPolygon must be a non-empty array of polygons")
    polygons, problem = _each(coordinates, _polygon, where, "多边形", "polygon")
    return (None, problem) if problem else ({"type": kind, "coordinates": polygons}, None)


def _district(properties, places: Sequence[Place], where: tuple[str, str]) -> tuple[Place | None, tuple | None]:
    """The configured district the feature names (code first, else name), or the problem."""
    if not isinstance(properties, dict):
        properties = {}
    code, name = properties.get("code"), properties.get("name")
    if code is not None and not (isinstance(code, str) and code.strip()):
        return None, (f"{where[0]}：code 属性须为文字", f"{where[1]}: the code property must be text")
    if code is not None:
        found = [p for p in places if p.code == code.strip()]
        if not found:
            return None, (f"{where[0]}：区域编码 {_shown(code)} 不是已配置的区县",
                          f"{where[1]}: region code {_shown(code)} is not a configured district")
    elif isinstance(name, str) and name.strip():
        found = [p for p in places if p.name == name.strip()]
        if not found:
            return None, (f"{where[0]}：区域名称 {_shown(name)} 不是已配置的区县",
                          f"{where[1]}: region name {_shown(name)} is not a configured district")
        districts = [p for p in found if p.level == 1]
        if len(districts) > 1:
            return None, (f"{where[0]}：名称 {_shown(name)} 对应多个区县，请用 code 属性指明",
                          f"{where[1]}: the name {_shown(name)} matches several districts; give a code property")
        found = districts or found
    else:
        return None, (f"{where[0]}：未指明区县（须有 code 或 name 属性）",
                      f"{where[1]}: names no district (give a code or a name property)")
    place = found[0]
    if place.level != 1:
        return None, (f"{where[0]}：{place.name}（{place.code}）是街道，不是区县；地图按区县绘制",
                      f"{where[1]}: {place.name} ({place.code}) is a street, not a district; the map is drawn "
                      f"by district")
    if not place.active:
        return None, (f"{where[0]}：区县 {place.name}（{place.code}）已停用",
                      f"{where[1]}: district {place.name} ({place.code}) is not active")
    return place, None


def check(raw: bytes, places: Sequence[Place]) -> Checked:
    """The uploaded file checked against the configured regions; BoundaryError with the problems otherwise."""
    data = _parse(raw)
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        found = _type_of(data)
        raise BoundaryError([(f"顶层须为 GeoJSON FeatureCollection，此处为 {_shown(found)}",
                              f"the top level must be a GeoJSON FeatureCollection, found {_shown(found)}")])
    features = data.get("features")
    if not isinstance(features, list):
        raise BoundaryError([("FeatureCollection 缺少 features 数组",
                              "the FeatureCollection has no features array")])
    if not features:
        raise BoundaryError([("文件中没有任何区县要素", "the file has no features")])
    if len(features) > MAX_FEATURES:
        raise BoundaryError([(f"要素超过 {MAX_FEATURES} 个（此处 {len(features)} 个）",
                              f"more than {MAX_FEATURES} features ({len(features)})")])
    problems = _Problems()
    kept: list[dict] = []
    first_of: dict[str, int] = {}
    positions = 0
    for index, feature in enumerate(features, 1):
        where = (f"第 {index} 个要素", f"feature {index}")
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            problems.add(f"{where[0]}：不是 Feature 对象（type 为 {_shown(_type_of(feature))}）",
                         f"{where[1]}: is not a Feature object (its type is {_shown(_type_of(feature))})")
            continue
        place, problem = _district(feature.get("properties"), places, where)
        if problem:
            problems.add(*problem)
        elif place.code in first_of:
            problems.add(f"{where[0]}：区县 {place.name} 已由第 {first_of[place.code]} 个要素给出",
                         f"{where[1]}: district {place.name} is already given by feature {first_of[place.code]}")
        geometry, problem = _geometry(feature.get("geometry"), where)
        if problem:
            problems.add(*problem)
        if place is None or geometry is None or place.code in first_of:
            continue
        first_of[place.code] = index
        positions += _count(geometry)
        kept.append({"type": "Feature", "properties": {"code": place.code}, "geometry": geometry})
    if positions > MAX_POSITIONS:
        problems.add(f"坐标点共 {positions} 个，超过 {MAX_POSITIONS} 个上限，请先简化边界",
                     f"{positions} positions in all, more than the {MAX_POSITIONS} limit: simplify the boundaries")
    problems.raise_any()
    return Checked(tuple(kept), tuple(f["properties"]["code"] for f in kept))


def _count(geometry: dict) -> int:
    polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    return sum(len(ring) for rings in polygons for ring in rings)


# ------------------------------------------------------------------------------------------ the table
def places() -> list[Place]:
    """Every configured region (districts and streets, active or not)."""
    return [Place(code, name, level, bool(active)) for code, name, level, active in
            Region.select(Region.code, Region.name, Region.level, Region.active).tuples()]


def save(raw: bytes, user: User | None, filename: str = "", note: str = "",
         at: dt.datetime | None = None) -> RegionMap:
    """Check ``raw`` and store it as the new current version; BoundaryError (nothing stored) otherwise."""
    checked = check(raw, places())
    db = RegionMap._meta.database
    try:
        with db.atomic():
            last = RegionMap.select(peewee.fn.MAX(RegionMap.version)).scalar() or 0
            RegionMap.update(current=False).where(RegionMap.current == True).execute()  # noqa: E712
            return RegionMap.create(version=last + 1, geojson=checked.geojson(), features=len(checked.features),
                                    codes=",".join(checked.codes), filename=filename[:200], note=note[:200],
                                    sha256=hashlib.sha256(raw).hexdigest(), uploaded_by=user,
                                    uploaded_at=_naive(at) or utcnow())
    except peewee.IntegrityError:
        raise BoundaryError([("另一份边界文件同时上传，请刷新后重试",
                              "another boundary file was uploaded at the same moment: reload and try again")]) from None


def withdraw(user: User | None, at: dt.datetime | None = None) -> RegionMap | None:
    """Stop drawing the map (the screen shows its bar chart again); the version stays in the history.
    Returns the version withdrawn, None when there was none."""
    row = current()
    if row is None:
        return None
    RegionMap.update(current=False, withdrawn_by=user, withdrawn_at=_naive(at) or utcnow()).where(
        RegionMap.id == row.id).execute()
    return RegionMap.get_by_id(row.id)


def current() -> RegionMap | None:
    """The version drawn now, or None."""
    return (RegionMap.select(RegionMap.id, RegionMap.version, RegionMap.codes, RegionMap.features,
                             RegionMap.filename, RegionMap.note, RegionMap.sha256, RegionMap.uploaded_by,
                             RegionMap.uploaded_at)
            .where(RegionMap.current == True).order_by(RegionMap.version.desc()).first())  # noqa: E712


def history(limit: int = 20) -> list[RegionMap]:
    """The newest versions, without their GeoJSON."""
    return list(RegionMap.select(RegionMap.id, RegionMap.version, RegionMap.features, RegionMap.filename,
                                 RegionMap.note, RegionMap.current, RegionMap.uploaded_by, RegionMap.uploaded_at,
                                 RegionMap.withdrawn_by, RegionMap.withdrawn_at)
                .order_by(RegionMap.version.desc()).limit(limit))


def stored(version: int) -> RegionMap | None:
    return RegionMap.get_or_none(RegionMap.version == version)


def district_names(codes: Iterable[str]) -> dict[str, str]:
    """{code: current name} of those codes still configured as districts."""
    codes = [c for c in codes if c]
    if not codes:
        return {}
    return dict(Region.select(Region.code, Region.name)
                .where(Region.code.in_(codes) & (Region.level == 1)).tuples())


def drawn(row: RegionMap) -> dict:
    """The stored version as ECharts reads it: each feature's ``name`` the district's name now (a district
    renamed since the upload keeps its shape); shapes of districts no longer configured are left out."""
    data = json.loads(row.geojson)
    names = district_names(f["properties"]["code"] for f in data["features"])
    features = []
    for feature in data["features"]:
        code = feature["properties"]["code"]
        if code in names:
            features.append({**feature, "properties": {"code": code, "name": names[code]}})
    return {"type": "FeatureCollection", "features": features}


def _naive(at: dt.datetime | None) -> dt.datetime | None:
    if at is None or at.tzinfo is None:
        return at
    return at.astimezone(dt.timezone.utc).replace(tzinfo=None)


# ------------------------------------------------------------------------------------------- the demo
# DEMO ONLY: generated outlines for caseflow.demo's two districts, side by side around an invented point, with
# a shared border; they are not the borders of any real place.
DEMO_CENTRE = (120.15, 30.25)
DEMO_DISTRICTS = (("R-XS", -1), ("R-DH", 1))   # west of the point, east of it
DEMO_NOTE = "demo: generated shapes, not real borders"


def demo_geojson() -> bytes:
    """The demo districts' generated shapes as an uploadable FeatureCollection."""
    lon0, lat0 = DEMO_CENTRE
    # The shared border runs north-south through the point with a kink; each district bulges away from it.
    border = [(lon0 + 0.01, lat0 + 0.09), (lon0 - 0.015, lat0 + 0.03), (lon0 + 0.012, lat0 - 0.04),
              (lon0 - 0.005, lat0 - 0.09)]
    features = []
    for code, side in DEMO_DISTRICTS:
        outer = [(lon0 + side * 0.08, lat0 + 0.11), (lon0 + side * 0.15, lat0 + 0.05),
                 (lon0 + side * 0.16, lat0 - 0.03), (lon0 + side * 0.1, lat0 - 0.1)]
        # Down the shared border, then back up the district's own side.
        ring = [[round(x, 4), round(y, 4)] for x, y in border + outer[::-1]]
        features.append({"type": "Feature", "properties": {"code": code},
                         "geometry": {"type": "Polygon", "coordinates": [ring + [ring[0]]]}})
    return json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False).encode("utf-8")


def load_demo_map() -> RegionMap | None:
    """Store the demo shapes when the demo districts exist and no boundaries were ever uploaded."""
    codes = {code for code, _side in DEMO_DISTRICTS}
    if RegionMap.select().exists() or Region.select().where(Region.code.in_(codes) & (Region.level == 1)).count() \
            != len(codes):
        return None
    return save(demo_geojson(), None, filename="demo.geojson", note=DEMO_NOTE)
