"""Tree versions in the database: save, validate, activate (refused with reasons), and the active tree.

New calls take the active version (``active_tree``); a call keeps the Tree it started with, so activating
a new version never changes a call in progress.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
from pathlib import Path
from typing import Iterable

import peewee

from ivr.models import IvrTreeVersion
from ivr.tree import DEFAULT_TREE_PATH, Problem, Tree, TreeError, parse_tree, validate

log = logging.getLogger(__name__)

MAX_SOURCE = 256 * 1024


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def queue_skills() -> set[str] | None:
    """Skills and names of the ACD's active queues (what a queue node may route to), read at each check.

    None when there is no active queue at all (a fresh install, or the ACD not set up yet): the tree's own
    ``settings.skills`` are checked then, and "to a person" rings the agent extensions in order, as the
    runner does when the ACD knows no queue for a skill.
    """
    from acd.models import Queue  # read only: the ACD owns its queues

    try:
        if not Queue.table_exists():
            return None
        rows = list(Queue.select(Queue.name, Queue.skill).where(Queue.active))
    except peewee.DatabaseError as exc:
        log.warning("ivr: could not read the ACD queues (%s): checking the tree's own skills", exc)
        return None
    if not rows:
        return None
    return {row.skill for row in rows} | {row.name for row in rows}


class TreeStore:
    """Versions of the named trees; ``prompt_keys`` and ``skills`` are what activation checks against.

    ``skills`` defaults to the ACD's active queues (``queue_skills``): a tree routing to a skill no queue
    serves is refused once queues exist.
    """

    def __init__(self, prompt_keys: Iterable[str] | None = None, skills=queue_skills):
        self.prompt_keys = set(prompt_keys) if prompt_keys is not None else None
        self._skills = skills  # callable -> set or None, a set, or None (the tree's own list)
        self._cache: dict[int, Tree] = {}
        self._lock = threading.Lock()
        self._last_active: dict[str, tuple[int | None, Tree]] = {}  # name -> the active tree last read

    def skills(self):
        return self._skills() if callable(self._skills) else self._skills

    def tree_of(self, version: IvrTreeVersion) -> Tree:
        """Parsed tree of a version (cached: versions never change once saved)."""
        with self._lock:
            tree = self._cache.get(version.id)
        if tree is None:
            tree = parse_tree(version.source, "toml", name=version.name)
            with self._lock:
                self._cache[version.id] = tree
        return tree

    def problems(self, source: str, name: str = "default", *, check_queues: bool = True) -> list[Problem]:
        """Everything that keeps ``source`` from being activated (queue nodes against the ACD's queues)."""
        try:
            tree = parse_tree(source, "toml", name=name)
        except TreeError as exc:
            return exc.problems
        return validate(tree, self.prompt_keys, self.skills() if check_queues else None)

    def add_version(self, source: str, name: str = "default", comment: str = "",
                    created_by: str = "") -> IvrTreeVersion:
        """Store a new (inactive) version; a file that does not parse is refused with its problems."""
        if not isinstance(source, str) or not source.strip():
            raise TreeError([Problem("", "导航树为空 / the tree is empty")])
        if len(source.encode("utf-8")) > MAX_SOURCE:
            raise TreeError([Problem("", f"导航树超过 {MAX_SOURCE // 1024} KB / the tree is larger than "
                                             f"{MAX_SOURCE // 1024} KB")])
        parse_tree(source, "toml", name=name)  # raises with the reasons
        db = IvrTreeVersion._meta.database
        for _attempt in range(5):
            try:
                with db.atomic():
                    last = (IvrTreeVersion.select(peewee.fn.MAX(IvrTreeVersion.version))
                            .where(IvrTreeVersion.name == name).scalar()) or 0
                    return IvrTreeVersion.create(name=name, version=last + 1, source=source,
                                                 comment=comment[:255], created_by=created_by[:64])
            except peewee.IntegrityError:
                continue  # two saves at once: take the next number
        raise TreeError([Problem("", "未能分配版本号，请重试 / could not allocate a version number, try again")])

    def activate(self, version_id: int, activated_by: str = "", *, check_queues: bool = True) -> IvrTreeVersion:
        """Make a version the active one of its name; refused (TreeError listing every problem) if invalid."""
        version = IvrTreeVersion.get_or_none(IvrTreeVersion.id == version_id)
        if version is None:
            raise TreeError([Problem("", f"没有版本 {version_id} / no tree version {version_id}")])
        problems = self.problems(version.source, version.name, check_queues=check_queues)
        if problems:
            raise TreeError(problems)
        db = IvrTreeVersion._meta.database
        with db.atomic():
            (IvrTreeVersion.update(active=False)
             .where((IvrTreeVersion.name == version.name) & (IvrTreeVersion.id != version.id)).execute())
            version.active, version.activated_at, version.activated_by = True, _utcnow(), activated_by[:64]
            version.save()
        log.info("ivr tree %s version %s activated by %s", version.name, version.version, activated_by or "?")
        return version

    def active(self, name: str = "default") -> IvrTreeVersion | None:
        return (IvrTreeVersion.select().where((IvrTreeVersion.name == name) & IvrTreeVersion.active)
                .order_by(IvrTreeVersion.version.desc()).first())

    def active_tree(self, name: str = "default") -> tuple[int | None, Tree]:
        """(version id, Tree) for a new call; the file's default tree if nothing is stored yet.

        While the database is away (PostgreSQL restarting: core.db.connection_lost, or a timeout) the tree
        last read serves the call: a caller arriving then walks the menu, and what they leave is stored when
        the database is back (the runner tries a storing step again), instead of being hung up at once."""
        from core.db import DatabaseTimeout, connection_lost

        try:
            version = self.active(name)
        except (peewee.OperationalError, peewee.InterfaceError) as error:
            last = self._last_active.get(name)
            if last is None or not (connection_lost(error) or isinstance(error, DatabaseTimeout)):
                raise
            log.warning("ivr tree %s: database away (%s), the version last read serves the call", name,
                        str(error).strip()[:200])
            return last
        if version is None:
            from ivr.tree import load_tree

            found = None, load_tree(DEFAULT_TREE_PATH) if name == "default" else load_tree(Path(name))
        else:
            found = version.id, self.tree_of(version)
        self._last_active[name] = found
        return found

    def ensure_default(self, path: Path = DEFAULT_TREE_PATH) -> IvrTreeVersion:
        """Load the shipped default tree as version 1 (active) on an empty database."""
        existing = self.active("default")
        if existing is not None:
            return existing
        if IvrTreeVersion.select().where(IvrTreeVersion.name == "default").exists():
            version = (IvrTreeVersion.select().where(IvrTreeVersion.name == "default")
                       .order_by(IvrTreeVersion.version.desc()).first())
        else:
            version = self.add_version(Path(path).read_text(encoding="utf-8"), "default", "shipped default tree",
                                       "system")
        # The shipped tree is not held to the queues of this installation: a start-up must not fail
        # because queues were set up first; its skills without a queue ring the agent extensions.
        return self.activate(version.id, "system", check_queues=False)

    def versions(self, name: str = "default") -> list[IvrTreeVersion]:
        return list(IvrTreeVersion.select().where(IvrTreeVersion.name == name)
                    .order_by(IvrTreeVersion.version.desc()))


# ---------------------------------------------------------------------- prompt wording changed by an admin
def prompt_overrides() -> dict[str, dict[str, str]]:
    """{lang: {key: text}} the administrators changed (they win over sounds/prompts.<lang>.toml)."""
    from ivr.models import PromptText

    result: dict[str, dict[str, str]] = {}
    for row in PromptText.select():
        result.setdefault(row.lang, {})[row.key] = row.text
    return result


def set_prompt_text(sounds_dir, lang: str, key: str, text: str, changed_by: str = "", rate: int = 8000,
                    render: bool = True):
    """Store an administrator's wording for a prompt and render it again (real TTS); returns the report."""
    from ivr.models import PromptText
    from ivr.prompts import PromptError, load_texts, render_all

    text = (text or "").strip()
    if lang not in ("zh", "en"):
        raise PromptError(f"未知的语言 {lang!r} / unknown language {lang!r}")
    if key not in load_texts(sounds_dir, lang):
        raise PromptError(f"未知的提示音 {key!r} / unknown prompt {key!r}")
    if not text or len(text) > 1000 or "\x00" in text:
        raise PromptError("提示音文本须为1-1000字 / a prompt text needs 1 to 1000 characters")
    db = PromptText._meta.database
    with db.atomic():
        row = PromptText.get_or_none((PromptText.lang == lang) & (PromptText.key == key))
        if row is None:
            PromptText.create(lang=lang, key=key, text=text, changed_by=changed_by[:64])
        else:
            row.text, row.changed_by, row.changed_at = text, changed_by[:64], _utcnow()
            row.save()
    if not render:
        return None
    return render_all(sounds_dir, rate, langs=(lang,), keys={key}, texts=prompt_overrides(), force=True)[lang]
