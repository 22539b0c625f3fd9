"""Front-end libraries from npm (package.json and package-lock.json at the repository root, installed into
node_modules/ by ``make setup``, never committed), served at /vendor/<name>.

Only the files named in ``ASSETS`` are served, never the rest of node_modules. A page links one with
``url_for("vendor.asset", name=..., v=version_of(name))`` so a new version is fetched at once and the
browser may keep the file for a day. When node_modules lacks the file (setup not run) the answer is a 404
and the log says what to run; the pages say their charts could not be drawn.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from flask import Blueprint, abort, current_app, send_file

from webui.security import public

log = logging.getLogger(__name__)

bp = Blueprint("vendor", __name__, url_prefix="/vendor")

# name in the URL -> (npm package, file inside it)
ASSETS: dict[str, tuple[str, str]] = {
    "echarts.min.js": ("echarts", "dist/echarts.min.js"),
    # The agent desk's browser phone (webui.blueprints.softphone). JsSIP rather than SIP.js: JsSIP is maintained
    # (versatica, MIT) and its package carries a ready browser build, one file with no dependencies, served as
    # it is, while the SIP.js package is ES modules only (a bundler step in setup). Pinned to
    # 3.12.0 in package.json: 3.13 stopped shipping dist/ (a bundler again).
    "jssip.min.js": ("jssip", "dist/jssip.min.js"),
}
MIMETYPES = {".js": "text/javascript", ".css": "text/css"}
MAX_AGE = 86400


def node_modules() -> Path:
    """Where npm installed the libraries: HOTLINE_NODE_MODULES, else node_modules/ beside the packages."""
    configured = current_app.extensions["hotline"].config.extra.get("HOTLINE_NODE_MODULES")
    return Path(configured) if configured else Path(__file__).resolve().parents[2] / "node_modules"


def version_of(name: str) -> str:
    """The installed version of the package behind ``name`` ("" when it is not installed)."""
    package, _file = ASSETS[name]
    try:
        return str(json.loads((node_modules() / package / "package.json").read_text("utf-8")).get("version", ""))
    except (OSError, ValueError):
        return ""


@bp.route("/<name>")
@public  # the same libraries anyone can fetch from npm: nothing of the hotline's
def asset(name: str):
    if name not in ASSETS:
        abort(404)
    package, file = ASSETS[name]
    path = node_modules() / package / file
    if not path.is_file():
        log.error("front-end library %s missing at %s: run `make setup` (npm ci)", name, path)
        abort(404)
    response = send_file(path, mimetype=MIMETYPES.get(path.suffix, "application/octet-stream"),
                         max_age=MAX_AGE, conditional=True)
    response.headers["Cache-Control"] = f"public, max-age={MAX_AGE}"
    return response
