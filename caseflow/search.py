"""Chinese full-text search by character n-grams, on SQLite (FTS5) and PostgreSQL (tsvector + GIN).

Chinese has no spaces, so text is indexed as overlapping two-character grams (plus single characters)
of every CJK run and whole lower-cased words of Latin/digit text: 噪音扰民 -> 噪 音 扰 民 噪音 音扰 扰民.
A query is cut the same way (bigrams only, so common single characters do not flood the result) and
matches any gram; results are ranked by how many distinct query grams they contain, with a bonus for
an exact substring, so 噪声 扰民 finds 噪音扰民 and an exact phrase comes first.
"""
from __future__ import annotations

import logging
import re
import unicodedata
import weakref
from typing import Iterable

from core.db import database, is_postgres

log = logging.getLogger(__name__)

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_RUN_RE = re.compile(rf"[{_CJK}]+|[a-z0-9]+")
_IS_CJK = re.compile(rf"[{_CJK}]")
MAX_QUERY_GRAMS = 32
CANDIDATES = 300

# table name -> source columns of the indexed text (kept here so both back-ends agree)
INDEXED = {"ticket": "search_text", "knowledge_item": "search_text"}

_ready: "weakref.WeakKeyDictionary[object, set]" = weakref.WeakKeyDictionary()


def normalise(text: str) -> str:
    """NFKC (full-width letters and digits to ASCII) and lower case."""
    return unicodedata.normalize("NFKC", text or "").lower()


def index_grams(text: str) -> list[str]:
    """Tokens stored for ``text``: CJK unigrams and bigrams, Latin/digit words."""
    out: list[str] = []
    for run in _RUN_RE.findall(normalise(text)):
        if _IS_CJK.match(run):
            out.extend(run)
            out.extend(run[i:i + 2] for i in range(len(run) - 1))
        else:
            out.append(run)
    return out


def index_text(*parts: str) -> str:
    """The space-separated token string stored in ``search_text``."""
    return " ".join(index_grams(" ".join(p for p in parts if p)))


def query_grams(query: str) -> list[str]:
    """Distinct tokens a query searches for: bigrams of CJK runs (a single character alone), words."""
    seen: dict[str, None] = {}
    for run in _RUN_RE.findall(normalise(query)):
        if _IS_CJK.match(run) and len(run) > 1:
            for i in range(len(run) - 1):
                seen.setdefault(run[i:i + 2])
        else:
            seen.setdefault(run)
    return list(seen)[:MAX_QUERY_GRAMS]


def query_chars(query: str) -> list[str]:
    """Distinct single CJK characters of a query (the fallback when no bigram matches: 噪声 -> 噪, 声)."""
    seen: dict[str, None] = {}
    for run in _RUN_RE.findall(normalise(query)):
        if _IS_CJK.match(run):
            for ch in run:
                seen.setdefault(ch)
    return list(seen)[:MAX_QUERY_GRAMS]


def scorer(query: str, grams: list[str]):
    """A function (tokens, plain_text) -> relevance for one query (see ``score``); query work done once."""
    chars = query_chars(query)
    compact = re.sub(r"\s+", "", normalise(query))
    need = (len(chars) + 1) // 2

    def rank(tokens, plain_text: str = "") -> float:
        if isinstance(tokens, str):
            tokens = set(tokens.split())
        gram_hits = sum(1 for g in grams if g in tokens)
        char_hits = sum(1 for ch in chars if ch in tokens)
        if gram_hits == 0 and char_hits < need:
            return 0.0  # a stray shared character (量 in 音量 for 量子计算机) is not a match
        value = 2.0 * gram_hits + 0.5 * char_hits
        if compact and compact in re.sub(r"\s+", "", normalise(plain_text)):
            value += 3.0
        return value

    return rank


def score(query: str, grams: list[str], token_text, plain_text: str = "") -> float:
    """Rank of one document: 2 per distinct query gram present, 0.5 per shared single character, and 3
    more for an exact substring match, so whole phrases beat partial and character-only matches.
    0 means "not relevant": no gram and fewer than half of the query's characters."""
    return scorer(query, grams)(token_text, plain_text)


def find_ids(table: str, query: str, limit: int = CANDIDATES, min_hits: int = 10, order: str = "rank",
             restrict_sql: str = "", restrict_params: tuple = ()) -> tuple[list[int], list[str]]:
    """Candidate ids for ``query`` in tiers, so common words stay fast on large tables: rows holding every
    query gram, then rows holding any, then (below ``min_hits``) rows sharing single characters (噪声
    still reaches 噪音). ``order`` is "rank" (the engine's relevance) or "recent" (newest rows first,
    for tickets). Returns (ids, the query grams) for re-scoring with ``score``."""
    grams = query_grams(query)
    ids: list[int] = []
    seen: set[int] = set()

    def add(found):
        for i in found:
            if i not in seen and len(ids) < limit:
                seen.add(i)
                ids.append(i)

    add(candidate_ids(table, grams, limit, restrict_sql, restrict_params, mode="all", order=order))
    if len(ids) < limit and len(grams) > 1:
        add(candidate_ids(table, grams, limit, restrict_sql, restrict_params, mode="any", order=order))
    if len(ids) < min_hits:
        chars = [c for c in query_chars(query) if c not in grams]
        add(candidate_ids(table, chars, limit, restrict_sql, restrict_params, mode="any", order=order))
    return ids, grams


def highlight(text: str, query: str, width: int = 0) -> list[tuple[str, bool]]:
    """``text`` cut into (piece, matched) pairs for showing a result with the query's words marked.

    Marks what the ranking counts: every query bigram or word found, or, when none is found, the query's
    single characters (噪声 marks 噪 in 噪音). With ``width`` > 0 only a window of about that many
    characters around the first match is kept, with … where text was cut, and runs of white space are
    shown as one space. Pure: the caller escapes the pieces when it shows them.
    """
    text = text or ""
    # Normalise per character and remember where each normalised character came from, so a match in
    # the normalised text (full-width, upper case) marks the original characters.
    folded, origin = [], []
    for index, char in enumerate(text):
        for piece in normalise(char):
            folded.append(piece)
            origin.append(index)
    haystack = "".join(folded)
    marked = [False] * len(text)

    def mark(terms) -> bool:
        found = False
        for term in terms:
            start = haystack.find(term)
            while term and start >= 0:
                found = True
                for position in range(start, start + len(term)):
                    marked[origin[position]] = True
                start = haystack.find(term, start + 1)
        return found

    if not mark(query_grams(query)):
        mark(query_chars(query))
    start, end = 0, len(text)
    if width > 0 and len(text) > width:
        first = marked.index(True) if True in marked else 0
        start = max(0, min(first - width // 4, len(text) - width))
        end = start + width
    pieces: list[tuple[str, bool]] = [("…", False)] if start > 0 else []
    index = start
    while index < end:
        stop = index
        while stop < end and marked[stop] == marked[index]:
            stop += 1
        piece = text[index:stop]
        pieces.append((re.sub(r"\s+", " ", piece) if width > 0 else piece, marked[index]))
        index = stop
    if end < len(text):
        pieces.append(("…", False))
    return pieces


# ---- index maintenance ----------------------------------------------------------------------------
def forget(db=None) -> None:
    """Drop the 'index exists' cache for ``db`` (after tables were dropped and recreated)."""
    _ready.pop(db or database.obj, None)


def ensure_index(table: str) -> None:
    """Create the full-text structures for ``table`` once per database (idempotent)."""
    db = database.obj
    done = _ready.setdefault(db, set())
    if table in done:
        return
    column = INDEXED[table]
    if is_postgres(db):
        # Look before altering: ALTER TABLE takes the table's exclusive lock even when the column is there,
        # and two first tickets filed at once (each inside its transaction) deadlocked on it, one of them
        # lost. The product creates the structures at start (ensure_all); this is for other databases.
        have = db.execute_sql(
            "SELECT (SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = %s AND column_name = 'search_tsv') + (SELECT count(*) FROM pg_indexes "
            "WHERE schemaname = current_schema() AND indexname = %s)", (table, f"{table}_search_tsv")).fetchone()[0]
        if have < 2:
            db.execute_sql(
                f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS search_tsv tsvector "
                f"GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, {column})) STORED")
            db.execute_sql(f"CREATE INDEX IF NOT EXISTS {table}_search_tsv ON {table} USING gin (search_tsv)")
    else:
        _ensure_sqlite_fts(db, table, column)
    done.add(table)


def ensure_all() -> None:
    """Create every full-text structure now (the product at start, before calls file tickets at once)."""
    with database.atomic():
        for table in INDEXED:
            ensure_index(table)


def _ensure_sqlite_fts(db, table: str, column: str) -> None:
    """An external-content FTS5 table kept in step by triggers, so every write (services, bulk loads,
    other packages' inserts, cascaded deletes) is indexed exactly once."""
    names = {row[0] for row in db.execute_sql(
        "SELECT name FROM sqlite_master WHERE name LIKE ?", (f"{table}_fts%",))}
    triggers = {f"{table}_fts_ai", f"{table}_fts_ad", f"{table}_fts_au"}
    if f"{table}_fts" in names and triggers <= names:
        return
    with db.atomic():
        if f"{table}_fts" not in names:
            db.execute_sql(
                f"CREATE VIRTUAL TABLE {table}_fts USING fts5({column}, content='{table}', "
                f"content_rowid='id', tokenize='unicode61')")
        db.execute_sql(
            f"CREATE TRIGGER IF NOT EXISTS {table}_fts_ai AFTER INSERT ON {table} BEGIN "
            f"INSERT INTO {table}_fts(rowid, {column}) VALUES (new.id, new.{column}); END")
        db.execute_sql(
            f"CREATE TRIGGER IF NOT EXISTS {table}_fts_ad AFTER DELETE ON {table} BEGIN "
            f"INSERT INTO {table}_fts({table}_fts, rowid, {column}) VALUES ('delete', old.id, old.{column}); END")
        db.execute_sql(
            f"CREATE TRIGGER IF NOT EXISTS {table}_fts_au AFTER UPDATE OF {column} ON {table} BEGIN "
            f"INSERT INTO {table}_fts({table}_fts, rowid, {column}) VALUES ('delete', old.id, old.{column}); "
            f"INSERT INTO {table}_fts(rowid, {column}) VALUES (new.id, new.{column}); END")
        # Rows written before the triggers existed are picked up here.
        db.execute_sql(f"INSERT INTO {table}_fts({table}_fts) VALUES ('rebuild')")


def reindex(table: str, row_id: int, old_text: str | None, new_text: str) -> None:
    """Make sure the index follows row ``row_id`` (the column is already written): PostgreSQL's generated
    tsvector and SQLite's triggers do the work once the structures exist."""
    ensure_index(table)


def unindex(table: str, row_id: int, old_text: str) -> None:
    """Before a row is deleted: the structures exist, so the delete is followed (kept for callers)."""
    ensure_index(table)


def candidate_ids(table: str, grams: Iterable[str], limit: int = CANDIDATES,
                  restrict_sql: str = "", restrict_params: tuple = (), mode: str = "any",
                  order: str = "rank") -> list[int]:
    """Row ids matching all (``mode="all"``) or any gram, at most ``limit``, ordered by the engine's rank
    (bm25 / ts_rank) or by recency (``order="recent"``, id descending, which both engines serve without
    ranking every match).

    ``restrict_sql`` is an extra condition on the base table aliased ``t`` with %s placeholders.
    """
    grams = [g for g in grams if g]
    if not grams:
        return []
    ensure_index(table)
    db = database.obj
    extra = f" AND ({restrict_sql})" if restrict_sql else ""
    if is_postgres(db):
        # Grams are [a-z0-9] or CJK only (see _RUN_RE), so quoting them cannot break the tsquery syntax.
        tsquery = (" & " if mode == "all" else " | ").join(f"'{g}'" for g in grams)
        ordering = "t.id DESC" if order == "recent" else "ts_rank(t.search_tsv, q) DESC, t.id DESC"
        sql = (f"SELECT t.id FROM {table} t, to_tsquery('simple', %s) q WHERE t.search_tsv @@ q{extra} "
               f"ORDER BY {ordering} LIMIT %s")
        params = (tsquery, *restrict_params, limit)
    else:
        match = (" AND " if mode == "all" else " OR ").join(f'"{g}"' for g in grams)
        ordering = "f.rowid DESC" if order == "recent" else "f.rank, f.rowid DESC"
        sql = (f"SELECT t.id FROM {table}_fts f JOIN {table} t ON t.id = f.rowid "
               f"WHERE {table}_fts MATCH %s{extra} ORDER BY {ordering} LIMIT %s").replace("%s", "?")
        params = (match, *restrict_params, limit)
    return [row[0] for row in db.execute_sql(sql, params)]
