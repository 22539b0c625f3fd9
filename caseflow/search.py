"""Chinese full-text search by character n-grams, on SQLite (FTS5) and PostgreSQL (tsvector + GIN).

Chinese has no spaces, so text is indexed as overlapping two-character grams (plus single characters)
of every CJK run and whole lower-cased words of Latin/digit text: 噪音扰民 -> 噪 音 扰 民 噪音 音扰 扰民.
A query is cut the same way (bigrams only, so common single characters do not flood the result) and
matches any gram; results are ranked by how many distinct query grams they contain, with a bonus for
an exact substring, so 噪声 扰民 finds 噪音扰民 and an exact phrase comes first.

Long because: both engines' halves of one search (grams, ranking, SQLite's FTS5 and PostgreSQL's GIN with its
marker lexemes and id windows) must agree, and are kept together so they do.
"""
from __future__ import annotations

import logging
import re
import time
import unicodedata
import weakref
from dataclasses import dataclass
from typing import Iterable

from core.db import database, is_postgres, schema_change

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


_LATIN_RE = re.compile(r"[a-z0-9]+")
_SPACE_RE = re.compile(r"\s+")


def text_scorer(query: str, grams: list[str]):
    """A function (title, content, address) -> the relevance ``scorer`` gives the row's tokens and its title +
    content, computed from the text itself (no token set built, the stored index text not fetched): a CJK
    gram or character is a token exactly when it occurs in the normalised text (a CJK pair cannot straddle
    the spaces between fields), a Latin or digit word when it is one of the text's whole words."""
    chars = query_chars(query)
    compact = _SPACE_RE.sub("", normalise(query))
    need = (len(chars) + 1) // 2
    cjk = [g for g in grams if _IS_CJK.match(g)]
    words = [g for g in grams if not _IS_CJK.match(g)]

    def rank(title: str, content: str, address: str = "") -> float:
        body, place = normalise(f"{title or ''} {content or ''}"), normalise(address or "")
        gram_hits = sum(1 for g in cjk if g in body or g in place)
        if words:
            found = set(_LATIN_RE.findall(body)) | set(_LATIN_RE.findall(place))
            gram_hits += sum(1 for w in words if w in found)
        char_hits = sum(1 for ch in chars if ch in body or ch in place)
        if gram_hits == 0 and char_hits < need:
            return 0.0
        value = 2.0 * gram_hits + 0.5 * char_hits
        if compact and compact in _SPACE_RE.sub("", body):
            value += 3.0
        return value

    return rank


def score(query: str, grams: list[str], token_text, plain_text: str = "") -> float:
    """Rank of one document: 2 per distinct query gram present, 0.5 per shared single character, and 3
    more for an exact substring match, so whole phrases beat partial and character-only matches.
    0 means "not relevant": no gram and fewer than half of the query's characters."""
    return scorer(query, grams)(token_text, plain_text)


def find_ids(table: str, query: str, limit: int | None = None, min_hits: int = 10, order: str = "rank",
             restrict_sql: str = "", restrict_params: tuple = (), scope: str = "") -> tuple[list[int], list[str]]:
    """Candidate ids for ``query`` in tiers, so common words stay fast on large tables: rows holding every
    query gram, then rows holding any, then (below ``min_hits``) rows sharing single characters (噪声
    still reaches 噪音). ``order`` is "rank" (the engine's relevance) or "recent" (newest rows first,
    for tickets). ``scope``: see ``candidate_ids``. ``limit`` defaults to CANDIDATES. Returns (ids, the query grams)
    for re-scoring with ``score``."""
    limit = CANDIDATES if limit is None else limit
    grams = query_grams(query)
    ids: list[int] = []
    seen: set[int] = set()

    top: list = []  # where PostgreSQL's windows start, read once for the tiers (see _recent_ids)

    def add(terms, mode):
        for i in candidate_ids(table, terms, limit, restrict_sql, restrict_params, mode=mode, order=order,
                               scope=scope, top=top):
            if i not in seen and len(ids) < limit:
                seen.add(i)
                ids.append(i)

    add(grams, "all")
    if len(ids) < limit and len(grams) > 1:
        add(grams, "any")
    if len(ids) < min_hits:
        add([c for c in query_chars(query) if c not in grams], "any")
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


# ---- PostgreSQL: what the GIN index holds besides the grams ---------------------------------------
# A GIN index answers "which rows hold these grams" but not "the newest 300 of them", nor "those in this
# department subtree": the planner fetched every matching row from the table to sort it or test its
# department (its estimate for several grams that come together, 噪音 & 音扰 & 扰民, is a hundred times too
# low, so it never combines the GIN with another index). A million tickets meant tens of thousands of rows
# read for one search. So the indexed document also holds marker lexemes the GIN intersects like grams:
# the id's bucket at four sizes (~a 4,096 ids, ~b 32,768, ~e 262,144, ~f 2,097,152) and, for tickets, the
# holding and upper department, the recording user and the status (the visibility rule's terms). A search
# asks for the grams AND its scope AND a window of the newest buckets, widening the window until it has
# enough, and reads from the table only the rows it returns. "~" never starts a gram (see _RUN_RE).
#
# A department's mark alone is common (~d4: every ticket the department ever held), and the GIN walks the whole
# posting list of the rarest terms a query cannot do without: a district's search read its window's every id
# (tens of thousands for 300 matches in the district). So tickets also hold their departments paired with the
# id's 32,768-bucket (~x<department>_<id >> 15> held, ~y<department>_<id >> 15> handed down by): a scoped search
# asks for the pairs of its departments and window, which hold only that subtree's ids (see Scope).
BUCKETS = (("f", 21), ("e", 18), ("b", 15), ("a", 12))  # coarsest first
PAIR_SHIFT = 15
_SCOPE_MARKS = {"ticket": ("'~d' || coalesce(department_id, 0)::text", "'~u' || coalesce(upper_department_id, 0)::text",
                           "'~c' || coalesce(created_by_id, 0)::text", "'~s' || status",
                           f"'~x' || coalesce(department_id, 0)::text || '_' || (id >> {PAIR_SHIFT})::text",
                           f"'~y' || coalesce(upper_department_id, 0)::text || '_' || (id >> {PAIR_SHIFT})::text")}
MAX_PAIRS = 256  # a wider scope or window asks for the departments' own marks (the same rows, more read)
FIRST_WINDOW = 8192  # ids in the first window; each next one is WINDOW_GROWTH times wider while nothing is found
WINDOW_GROWTH = 8
# A window sized from the matches seen grows at most this much: a density guessed from a few matches (a department's
# newest tickets are mostly undispatched) made 65,536-id windows of 650-880 rows for 300 wanted. Measured at
# 1,000,000 (105 subtree searches): at most 8 times, 38,101 rows in 383 statements; 4 times, 35,795 in 422 (largest
# 441 rows); 2 times, 34,504 in 462.
SIZED_GROWTH = 4
# GIN's "fast update" keeps new rows' entries in a pending list that every search reads whole until a vacuum or
# the insert overflowing gin_pending_list_limit moves them into the index: at the default 4 MB, 2,000 new tickets
# were 228 pages, 2.9 ms on each of a search's 4-12 statements. Without the list (fastupdate off) a creation's
# INSERT took 0.5 ms more (its ~70 entries one by one). 256 kB: at most 32 pages read (0.4 ms), and one creation
# in about 300 moves them (30-60 ms; batched, a third of the per-row cost).
GIN_OPTIONS = "fastupdate = on, gin_pending_list_limit = 256"


def document(table: str) -> str:
    """The SQL expression the PostgreSQL GIN index of ``table`` is built on (queries repeat it verbatim)."""
    marks = [*_SCOPE_MARKS.get(table, ()), *(f"'~{letter}' || (id >> {shift})::text" for letter, shift in BUCKETS)]
    return f"(search_tsv || array_to_tsvector(ARRAY[{', '.join(marks)}]))"


def bucket_marks(low: int, high: int) -> list[str]:
    """The fewest bucket lexemes covering ids [low, high): both multiples of the smallest bucket."""
    smallest = 1 << BUCKETS[-1][1]
    if low % smallest or high % smallest:
        raise ValueError("window bounds must be multiples of the smallest bucket")
    marks = []
    while high > low:
        for letter, shift in BUCKETS:
            size = 1 << shift
            if high % size == 0 and high - size >= low:
                marks.append(f"~{letter}{(high - size) >> shift}")
                high -= size
                break
    return marks


@dataclass(frozen=True)
class Scope:
    """A ticket search's visibility as marker lexemes: ``other`` (a tsquery over ~c and ~s marks, "" none) or a
    ticket held by (~d) or handed down by (~u) one of ``departments``."""
    other: str = ""
    departments: tuple[int, ...] = ()

    def __str__(self) -> str:  # the whole rule as one tsquery (any id)
        marks = [mark(kind, d) for d in self.departments for kind in ("d", "u")]
        return " | ".join([*([self.other] if self.other else []), *marks]) or mark("c", -1)

    def within(self, low: int, high: int) -> str:
        """The rule for ids in [low, high): the departments through their id-bucket pairs (~x, ~y) when few."""
        buckets = range(low >> PAIR_SHIFT, ((high - 1) >> PAIR_SHIFT) + 1)
        if not self.departments or 2 * len(self.departments) * len(buckets) > MAX_PAIRS:
            return str(self)
        pairs = [mark(kind, f"{d}_{b}") for d in self.departments for b in buckets for kind in ("x", "y")]
        return " | ".join([*([self.other] if self.other else []), *pairs])


def mark(kind: str, value) -> str:
    """A scope lexeme quoted for a tsquery: mark("d", 4) -> '~d4' (kinds d, u, c, s, x, y as in _SCOPE_MARKS)."""
    text = f"~{kind}{value}"
    if "'" in text or "\\" in text:
        raise ValueError(f"cannot mark {value!r}")
    return f"'{text}'"


# ---- index maintenance ----------------------------------------------------------------------------
def forget(db=None) -> None:
    """Drop the 'index exists' cache for ``db`` (after tables were dropped and recreated)."""
    _ready.pop(db or database.obj, None)


# On the request path (a ticket filed, a search) a missing PostgreSQL structure is built only on a small table
# (a second at most). On a big one the build takes minutes holding the table's exclusive lock, inside the
# caller's transaction: every call filing a ticket would wait behind it, so the ticket is filed without it
# (nothing is lost: the generated column and the index are computed from every row when built) and the
# product's start (ensure_all) or its migration builds it, with the statement timeout lifted.
SMALL_TABLE_BYTES = 8 << 20
WARN_EVERY = 60.0  # seconds between two warnings that a big table's index is missing
_warned: dict[str, float] = {}


class SearchNotReady(RuntimeError):
    """The full-text index of a big table is not built yet (the product's start or migration builds it)."""


def ensure_index(table: str, build: bool = False) -> bool:
    """Create the full-text structures for ``table`` once per database (idempotent); True when they exist.
    On PostgreSQL a table over SMALL_TABLE_BYTES gets them only with ``build`` (ensure_all, at start)."""
    db = database.obj
    done = _ready.setdefault(db, set())
    if table in done:
        return True
    column = INDEXED[table]
    if is_postgres(db):
        # Look before altering: ALTER TABLE takes the table's exclusive lock even when the column is there,
        # and two first tickets filed at once (each inside its transaction) deadlocked on it, one of them
        # lost. The product creates the structures at start (ensure_all); this is for other databases.
        have, size = db.execute_sql(
            "SELECT (SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = %s AND column_name = 'search_tsv') + (SELECT count(*) FROM pg_indexes "
            "WHERE schemaname = current_schema() AND indexname = %s), pg_relation_size(%s::regclass)",
            (table, f"{table}_search_tsv", table)).fetchone()
        if have < 2:
            if not build and size > SMALL_TABLE_BYTES:
                if time.monotonic() - _warned.get(table, -WARN_EVERY) >= WARN_EVERY:  # not a line per ticket
                    _warned[table] = time.monotonic()
                    log.warning("the full-text index of %s (%d MB) is not built: the product's start or "
                                "migration builds it; writes go on without it, searches wait for it",
                                table, size >> 20)
                return False
            log.info("building the full-text index of %s (%d MB): this may take minutes on a big table",
                     table, size >> 20)
            with schema_change(db):
                db.execute_sql(
                    f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS search_tsv tsvector "
                    f"GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, {column})) STORED")
                db.execute_sql(f"CREATE INDEX IF NOT EXISTS {table}_search_tsv ON {table} "
                               f"USING gin ({document(table)}) WITH ({GIN_OPTIONS})")
    else:
        _ensure_sqlite_fts(db, table, column)
    done.add(table)
    return True


def ensure_all() -> None:
    """Create every full-text structure now, whatever the tables' size (the product at start, before calls
    file tickets at once)."""
    with schema_change():
        for table in INDEXED:
            ensure_index(table, build=True)


# FTS5 merges its segments a fixed number of leaf pages at a time as rows are written; with its default 4,050-byte
# pages one ticket in about seventy paid 14 ms of merging (the creation's p99). 500-byte pages make each step an
# eighth of that for the same index size and search speed (measured at 300,000 tickets).
FTS_PAGE_SIZE = 500

# FTS5 also merges as rows are written, inline: every 64 leaf pages written, while a level holds ``automerge``
# segments (default 4), up to 64 pages per level (at 1,000,000 tickets 4-12 ms of one creation in about 61, the
# creation's p99; issue 15 item 7); and a level reaching ``crisismerge`` (default 16) is merged whole at once. 16
# leaves that work to few creations (own CPU p99 about 2 ms, searches a few ms slower at p99 at most, within the
# noise); crisismerge 64 keeps it that way: at 16 each level merged whole, up the levels, as it filled (one
# write of 70,000 one-row ones took 850 ms, synthetic). The knowledge base is edited by hand, rarely: FTS5's defaults.
FTS_MERGING = {"ticket": {"automerge": 16, "crisismerge": 64}}


# FTS5's own values of the settings above, in force while the index's %_config table has no row for them.
FTS5_DEFAULTS = {"automerge": 4, "usermerge": 4, "crisismerge": 16}


def made_fts_settings(table: str) -> dict[str, int]:
    """The FTS5 settings the product gives ``table``'s index; the others are FTS5's defaults (no row)."""
    return {"pgsz": FTS_PAGE_SIZE, **FTS_MERGING.get(table, {})}


def sqlite_fts_settings(db, table: str) -> None:
    """Give ``table``'s FTS5 index its page size and merging (kept in its %_config table): when it is made and,
    for an existing database, by the migrations (caseflow.search_layout)."""
    write_fts_settings(db, table, made_fts_settings(table))


def restore_fts_settings(db, table: str, names: Iterable[str]) -> None:
    """Give ``names`` of ``table``'s FTS5 index back what it was made with (made_fts_settings): the product's
    value, else FTS5's default and no row in %_config (caseflow.search_merging's stop). Run in a transaction."""
    made, names = made_fts_settings(table), tuple(names)
    # every one written, a default too: FTS5 then has all connections read the settings again, this one included
    write_fts_settings(db, table, {name: made.get(name, FTS5_DEFAULTS[name]) for name in names})
    unset = [name for name in names if name not in made]
    if unset:
        db.execute_sql(f"DELETE FROM {table}_fts_config WHERE k IN ({', '.join('?' * len(unset))})", unset)


def write_fts_settings(db, table: str, values: dict[str, int]) -> None:
    """Write settings of ``table``'s FTS5 index (kept in its %_config table: every connection reads them there;
    caseflow.search_merging turns its inline merging off and on)."""
    for name, value in values.items():
        db.execute_sql(f"INSERT INTO {table}_fts({table}_fts, rank) VALUES (?, ?)", (name, int(value)))


# SQLite checks a scoped search's rule (``scope`` in candidate_ids) on each full-text match, newest first, until it
# has enough: read from the ticket's row, that was a random page of the table per match (a district's search at
# 1,000,000 read thousands, each a system call when not in the page cache: 130 ms of CPU for one search). The
# rule's columns beside the id in an index of their own: 200 tickets a page, the matches' entries in a few pages.
_SCOPE_COLUMNS = {"ticket": ("id", "department_id", "upper_department_id", "created_by_id", "status")}


def _ensure_sqlite_fts(db, table: str, column: str) -> None:
    """An external-content FTS5 table kept in step by triggers, so every write (services, bulk loads,
    other packages' inserts, cascaded deletes) is indexed exactly once; and the scope's index (_SCOPE_COLUMNS)."""
    names = {row[0] for row in db.execute_sql(
        "SELECT name FROM sqlite_master WHERE name LIKE ?", (f"{table}_fts%",))}
    triggers = {f"{table}_fts_ai", f"{table}_fts_ad", f"{table}_fts_au"}
    if table in _SCOPE_COLUMNS and f"{table}_fts_scope" not in names:
        db.execute_sql(f"CREATE INDEX IF NOT EXISTS {table}_fts_scope ON {table} ({', '.join(_SCOPE_COLUMNS[table])})")
    if f"{table}_fts" in names and triggers <= names:
        return
    with db.atomic():
        if f"{table}_fts" not in names:
            db.execute_sql(
                f"CREATE VIRTUAL TABLE {table}_fts USING fts5({column}, content='{table}', "
                f"content_rowid='id', tokenize='unicode61')")
            sqlite_fts_settings(db, table)
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
                  order: str = "rank", scope: "Scope | str" = "", top: list | None = None) -> list[int]:
    """Row ids matching all (``mode="all"``) or any gram, at most ``limit``, ordered by the engine's rank
    (bm25 / ts_rank) or by recency (``order="recent"``, id descending, which both engines serve without
    ranking every match).

    ``restrict_sql`` is an extra condition on the base table aliased ``t`` with %s placeholders. ``scope``
    (tickets) is the same restriction over the marker lexemes (a Scope, or a tsquery; see ``document``): PostgreSQL's
    GIN index applies it instead of ``restrict_sql``; SQLite checks ``restrict_sql``, which may then read only
    the columns of _SCOPE_COLUMNS (from their index). ``top``: a list holding where the windows start once read
    (callers asking several times with one scope share it; see _recent_ids), or empty (read and put there).
    """
    grams = [g for g in grams if g]
    if not grams:
        return []
    if not ensure_index(table):
        raise SearchNotReady(f"全文索引尚未建成，请稍后再检索 / the full-text index of {table} is still being "
                             "built (the product's start or migration builds it; on a big table that takes "
                             "minutes): search again later")
    db = database.obj
    extra = f" AND ({restrict_sql})" if restrict_sql else ""
    if is_postgres(db):
        # Grams are [a-z0-9] or CJK only (see _RUN_RE), so quoting them cannot break the tsquery syntax.
        terms = "(" + (" & " if mode == "all" else " | ").join(f"'{g}'" for g in grams) + ")"
        if scope:
            extra, restrict_params = "", ()
            if order == "recent":
                return _recent_ids(db, table, terms, limit, extra, restrict_params, [] if top is None else top,
                                   scope if isinstance(scope, Scope) else Scope(str(scope)))
            terms += f" & ({scope})"
        if order == "recent":
            return _recent_ids(db, table, terms, limit, extra, restrict_params, [] if top is None else top)
        sql = (f"SELECT t.id FROM {table} t WHERE {document(table)} @@ %s::tsquery{extra} "
               f"ORDER BY ts_rank(t.search_tsv, %s::tsquery) DESC, t.id DESC LIMIT %s")
        params = (terms, *restrict_params, terms, limit)
    else:
        match = (" AND " if mode == "all" else " OR ").join(f'"{g}"' for g in grams)
        ordering = "f.rowid DESC" if order == "recent" else "f.rank, f.rowid DESC"
        # the scope's rule reads only the scope index's columns (see _SCOPE_COLUMNS): not the table's rows
        rows = f"{table} t INDEXED BY {table}_fts_scope" if scope and table in _SCOPE_COLUMNS else f"{table} t"
        sql = (f"SELECT t.id FROM {table}_fts f JOIN {rows} ON t.id = f.rowid "
               f"WHERE {table}_fts MATCH %s{extra} ORDER BY {ordering} LIMIT %s").replace("%s", "?")
        params = (match, *restrict_params, limit)
    return [row[0] for row in db.execute_sql(sql, params)]


def _recent_ids(db, table: str, terms: str, limit: int, extra: str, restrict_params: tuple,
                top: list, scope: Scope | None = None) -> list[int]:
    """The newest ``limit`` ids matching the tsquery ``terms``, window by window from the newest id down.

    The first window holds about FIRST_WINDOW ids; each next one is sized by the matches per id seen so far
    (``next_span``), so a common word reads about the rows it returns and a rare one a few windows. No ORDER BY ... LIMIT in
    the statement: with one the planner walks the primary key backwards from the table's top testing every
    row (its choice for a common word), or intersects the GIN with a bitmap of the window's ids; the window's
    matches are few, sorted here.

    ``top`` (shared by a search's tiers) holds where the windows start: the end of the newest id's bucket, then,
    once a scoped search's first window found nothing, the end of the scope's newest bucket (``_scope_end``): a
    backlog of newer tickets the scope may not see (tickets not dispatched yet) costs one probe, not windows grown
    eight times each across it and then one as wide across the scope's own tickets, most of it rows read."""
    smallest = 1 << BUCKETS[-1][1]
    if not top:
        newest = db.execute_sql(f"SELECT max(id) FROM {table}").fetchone()[0]
        top.append(0 if newest is None else ((newest >> BUCKETS[-1][1]) + 1) * smallest)
    high = top[-1]
    span = FIRST_WINDOW
    found: list[int] = []
    asked = False  # whether _holds was asked: a search that finds none below its first windows stops there
    while high > 0 and len(found) < limit:
        low = max(0, (high - span) // smallest * smallest)
        within = "" if scope is None else f" & ({scope.within(low, high)})"
        sql = f"SELECT t.id FROM {table} t WHERE {document(table)} @@ %s::tsquery{extra}"
        rows = db.execute_sql(sql, (f"{terms}{within} & ({_window(low, high)})", *restrict_params)).fetchall()
        found.extend(sorted((row[0] for row in rows), reverse=True)[:limit - len(found)])
        if not found and scope is not None and len(top) == 1:
            top.append(_scope_end(db, table, scope, top[0]))
            if top[-1] < low:  # nothing the scope sees down to there: start again from its newest
                high, span = top[-1], FIRST_WINDOW
                continue
        span = next_span(span, len(found), found[0] + 1 - low if found else 0, limit - len(found))
        if not found and not asked and not extra and span < low and (scope is None or len(top) > 1):
            asked = True  # once: the scope's newest ids held no match, more than one window is left below
            if not _holds(db, table, terms if scope is None else f"{terms} & ({scope})"):
                break
        high = low
    return found


def _holds(db, table: str, query: str) -> bool:
    """Whether any row matches the tsquery ``query`` (a search's terms and its scope's own marks: a few entries).
    A search whose words cannot match in its scope walked every window down to the table's bottom (4 at 1,000,000,
    each looking up its department/bucket pairs: 250-350 buffers); the GIN starts from its rarest entries, so a
    gram no ticket holds ends this at once, and a match costs the rarest entries' posting lists (asked only after
    the scope's newest window found none). A False stops the walk; a True (a row newer than the windows' start
    included) only lets it go on, so the results are the walk's."""
    return _first_matching(db, table, [query]) is not None


def _window(low: int, high: int) -> str:
    """The tsquery of ids [low, high): their bucket marks, any of them."""
    return " | ".join(f"'{m}'" for m in bucket_marks(low, high))


# 32,768-id buckets one statement of _scope_end asks about: each EXISTS is planned (8 took 1.3-2 ms of planning at
# 1,000,000) and run (about 0.4 ms and 40-50 buffers, most of them the GIN's pending list) while none holds.
PROBED_AT_ONCE = 4


def _scope_end(db, table: str, scope: Scope, high: int) -> int:
    """Where a scoped search's windows start: the end of the newest range of FIRST_WINDOW ids (counted from a
    32,768-id bucket's end, or ``high``) below ``high`` holding a row ``scope`` may see, 0 when none. First which
    32,768-id bucket (the scope's department/bucket pairs), then which of its ranges, each an EXISTS on the GIN
    alone (an empty pair or mark ends it at once; a held one reads one table page)."""
    coarse, fine = 1 << PAIR_SHIFT, 1 << BUCKETS[-1][1]
    step = max(fine, FIRST_WINDOW // fine * fine)  # the window started from the end returned is this range
    while high > 0:
        bounds = [high]  # high, then the 32,768 multiples below it
        while len(bounds) <= PROBED_AT_ONCE and bounds[-1] > 0:
            bounds.append((bounds[-1] - 1) // coarse * coarse)
        ranges = list(zip(bounds[1:], bounds[:-1]))
        hit = _first_holding(db, table, scope, ranges)
        if hit is not None:
            low, end = hit
            inner = _first_holding(db, table, scope, [(max(low, e - step), e) for e in range(end, low, -step)])
            return (inner or hit)[1]  # none now: it went since, so none lies above the bucket's end either
        high = ranges[-1][0]
    return 0


def _first_holding(db, table: str, scope: Scope, ranges: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The first of ``ranges`` (id ranges [low, high), multiples of 4,096, newest first) holding a row ``scope``
    may see, None when none does."""
    queries = [f"({scope.within(low, high)}) & ({_window(low, high)})" for low, high in ranges]
    first = _first_matching(db, table, queries)
    return None if first is None else ranges[first]


def _first_matching(db, table: str, queries: list[str]) -> int | None:
    """The index of the first of the tsqueries ``queries`` some row matches, None when none: one statement whose
    CASE asks each in turn, the later ones not run. Each one's rows are a MATERIALIZED CTE, planned for all its
    rows (a bitmap of the GIN) and read only to the first: planned as an EXISTS the planner took a sequential scan
    when it expected a few hundred matches (a common gram in a district, estimated 650 rows at 150,000 tickets; a
    probe's department/bucket pairs), which reads the table up to the first match, all of it when none."""
    rows = ", ".join(f"m{n} AS MATERIALIZED (SELECT 1 FROM {table} t WHERE {document(table)} @@ %s::tsquery)"
                     for n in range(len(queries)))
    cases = " ".join(f"WHEN EXISTS (SELECT 1 FROM m{n}) THEN {n}" for n in range(len(queries)))
    return db.execute_sql(f"WITH {rows} SELECT CASE {cases} END", queries).fetchone()[0]


def next_span(span: int, found: int, read: int, wanted: int) -> int:
    """The next window's width in ids, after windows that found ``found`` matches in ``read`` ids, ``wanted``
    more to find: WINDOW_GROWTH times the last while none was found, else the ids that hold ``wanted`` at the
    density seen and a quarter more (at least one bucket, at most SIZED_GROWTH times the last).

    ``read`` counts the ids from the newest match down, not from the table's top: a department's search finds
    nothing among the newest tickets while they are not dispatched yet (thousands of them), and counting those
    made the density seen too low and the next window too wide, its extra rows each a table page read."""
    if not found:
        return span * WINDOW_GROWTH
    return min(span * SIZED_GROWTH, max(1 << BUCKETS[-1][1], int(wanted * read / found * 1.25)))
