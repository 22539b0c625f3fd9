"""A reader for freeswitch-conf/ that follows FreeSWITCH's own pre-processor rules.

FreeSWITCH does not read its XML as XML first: it runs a line-based pre-processor (src/switch_xml.c,
``preprocess``) that expands ``$${name}`` from global variables set so far, acts on
``<X-PRE-PROCESS cmd="set|env-set|include" data="..."/>`` lines (even inside XML comments), drops lines
holding ``<include>``, ``</include>`` or ``<?``, and only then parses the result.  Reproducing those rules
here lets the tests check, without a FreeSWITCH, that the configuration assembles into one valid document,
that every variable is defined before it is used and that every include finds its files.
"""
from __future__ import annotations

import glob
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

CONF_DIR = Path(__file__).resolve().parents[2] / "freeswitch-conf"

# Global variables the FreeSWITCH core sets before it reads freeswitch.xml (switch_core.c).
CORE_VARIABLES = (
    "base_dir", "conf_dir", "log_dir", "run_dir", "db_dir", "mod_dir", "htdocs_dir", "script_dir",
    "temp_dir", "grammar_dir", "fonts_dir", "images_dir", "certs_dir", "storage_dir", "cache_dir",
    "recordings_dir", "sounds_dir", "data_dir", "localstatedir", "hostname", "switch_serial",
    "local_ip_v4", "local_mask_v4", "local_ip_v6", "core_uuid",
)

# Includes of site files (ignored by git): they may match nothing, and the shipped configuration is
# checked without whatever a developer or operator put there.  Anything under the local override folder
# (vars.xml hotline_local_dir) is a site file too, and so are the seats the product writes (hotline_seats_dir).
SITE_INCLUDES = ("local/*.xml", "external/*.xml")
SITE_FOLDER_VARIABLES = ("$${hotline_local_dir}", "$${hotline_seats_dir}")

_PRE = re.compile(r"<X-PRE-PROCESS\s+cmd=\"([^\"]*)\"\s+data=\"([^\"]*)\"\s*/>", re.IGNORECASE)
_VAR = re.compile(r"\$\$\{([^}]*)\}")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


class ConfError(Exception):
    """The configuration would not load as intended; the message names the file and line."""


@dataclass
class Assembly:
    """The pre-processed configuration: the document text, the variables, the files read and any problems."""

    text: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def root(self) -> ET.Element:
        """The assembled document parsed as XML; ConfError when it is not well formed."""
        try:
            return ET.fromstring(self.text)
        except ET.ParseError as exc:
            raise ConfError(f"assembled configuration is not well-formed XML: {exc}") from exc

    def configuration(self, name: str) -> ET.Element:
        """The <configuration name=...> element of one module; ConfError when it is missing."""
        for node in self.root().iter("configuration"):
            if node.get("name") == name:
                return node
        raise ConfError(f"no <configuration name={name!r}>")


def assemble(conf_dir: Path = CONF_DIR, env: dict[str, str] | None = None, start: str = "freeswitch.xml",
             site_files: bool = False) -> Assembly:
    """Pre-process ``start`` under ``conf_dir`` the way FreeSWITCH does and report what went wrong.

    ``site_files``: also read local/*.xml and enabled gateways (as FreeSWITCH would); off by default so
    that the shipped configuration is what is checked.
    """
    conf_dir = Path(conf_dir).resolve()
    env = {} if env is None else env
    result = Assembly()
    for name in CORE_VARIABLES:
        result.variables[name] = f"<{name}>"
    result.variables["conf_dir"] = str(conf_dir)
    out: list[str] = []
    _preprocess(conf_dir / start, result, out, env, 0, site_files)
    result.text = "\n".join(out)
    return result


def _preprocess(path: Path, result: Assembly, out: list[str], env: dict[str, str], depth: int,
                site_files: bool) -> None:
    if depth > 100:
        result.problems.append(f"{path}: include nesting deeper than 100")
        return
    if not path.is_file():
        result.problems.append(f"{path}: cannot be opened")
        return
    result.files.append(path.resolve())
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        where = f"{path.relative_to(CONF_DIR) if path.is_relative_to(CONF_DIR) else path}:{number}"
        in_site_folder = any(variable in line for variable in SITE_FOLDER_VARIABLES)
        line = _expand(line, result, where)
        if "<include>" in line or "</include>" in line or "<?" in line:
            continue
        match = _PRE.search(line)
        if match is None:
            if "x-pre-process" in line.lower():
                result.problems.append(f"{where}: a pre-processor line FreeSWITCH would not understand")
            out.append(line)
            continue
        cmd, data = match.group(1).lower(), match.group(2)
        if cmd == "set":
            name, sep, value = data.partition("=")
            if not sep:
                result.problems.append(f"{where}: set without '='")
                continue
            result.variables[name.strip()] = value.strip()
        elif cmd == "env-set":
            name, sep, ref = data.partition("=")
            if not sep or not ref.startswith("$"):
                result.problems.append(f"{where}: env-set needs name=$ENVIRONMENT_NAME")
                continue
            if ref[1:] in env:
                result.variables[name.strip()] = env[ref[1:]]
        elif cmd == "include":
            site = in_site_folder or any(data.endswith(pattern) for pattern in SITE_INCLUDES)
            if site and not site_files:
                continue
            pattern = data if os.path.isabs(data) else str(path.parent / data)
            matches = sorted(glob.glob(pattern))
            if not matches and not site:
                result.problems.append(f"{where}: include {data!r} matches no file")
            for found in matches:
                _preprocess(Path(found), result, out, env, depth + 1, site_files)
        else:
            result.problems.append(f"{where}: pre-processor command {cmd!r} is not used by this project")


def _expand(line: str, result: Assembly, where: str) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1)
        if name not in result.variables:
            result.problems.append(f"{where}: $${{{name}}} is used before it is set (FreeSWITCH "
                                   f"would put an empty string there)")
            return ""
        return result.variables[name]

    return _VAR.sub(value, line)


def is_site_file(path: Path, conf_dir: Path = CONF_DIR) -> bool:
    """A file an operator adds (local overrides, an enabled gateway), not part of the shipped set."""
    relative = Path(path).resolve().relative_to(Path(conf_dir).resolve()).as_posix()
    return relative.endswith(".xml") and (relative.startswith("local/")
                                          or relative.startswith("sip_profiles/external/"))


def shipped_copy(target: Path, conf_dir: Path = CONF_DIR) -> Path:
    """Copy the shipped configuration (no site files) to ``target`` and return it."""
    import shutil

    def ignore(directory: str, names: list[str]) -> list[str]:
        return [n for n in names if (Path(directory) / n).is_file() and is_site_file(Path(directory) / n, conf_dir)]

    shutil.copytree(conf_dir, target, ignore=ignore)
    return target


def comment_hazards(path: Path) -> list[str]:
    """Pre-processor syntax inside XML comments: FreeSWITCH acts on it even there, so it is a trap."""
    text = path.read_text(encoding="utf-8")
    found = []
    for comment in _COMMENT.findall(text):
        if "x-pre-process" in comment.lower() or "$${" in comment:
            found.append(f"{path}: comment contains pre-processor syntax: {comment[:60]!r}")
    return found


def params(node: ET.Element | None, tag: str = "param") -> dict[str, str]:
    """name -> value of the <param> children of ``node`` (the usual FreeSWITCH settings block)."""
    if node is None:
        return {}
    return {p.get("name"): p.get("value") for p in node.findall(tag)}
