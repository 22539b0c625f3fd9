"""The product's migration steps, in the order they run (``core.migrations`` is the engine that runs them).

How to change the schema after a release: add the field to the model (new databases get it from
``create_tables``), and append a ``Step`` to ``STEPS`` below that adds it to existing databases, e.g.
``Step("0008_ticket_pin", lambda migrator, db: [migrator.add_column("ticket", "pin", Ticket.pin)])``.
Steps run once, in order, and are recorded in ``schema_migration``; a fresh database marks every step as
applied because its tables already match the models. A step that needs a package's own knowledge (the
recorder's record key, its missed-call list) lives in that package (``recorder/migrations.py``) and is named
here. The list is the composition root's because it touches every package's tables; ``core`` stays the
ground floor (docs/architecture.md).
"""
from __future__ import annotations

import peewee
from playhouse.migrate import migrate

from caseflow import search_layout
from caseflow.models import (CENTRE_INDEXES, OVERDUE_INDEX, SET_INDEXES, KnowledgeAnswer, KnowledgeItem, Ticket,
                             TicketDayCount, User)
from core.db import is_postgres
from core.migrations import Step, build_indexes_concurrently, concurrently
from ops.migrations import one_alarm_store
from recorder import aggregates
from recorder.migrations import chain_call_records, one_missed_call_list
from recorder.models import FaxJob


def _knowledge_answer_upkeep(migrator, db):
    """The columns knowledge answers gained for editing, soft deletion, the last-viewed time and the
    attachment's sniffed type (its history is a new table, created as usual)."""
    fields = (("attachment_type", KnowledgeAnswer.attachment_type), ("last_viewed_at", KnowledgeAnswer.last_viewed_at),
              ("updated_at", KnowledgeAnswer.updated_at), ("updated_by_id", KnowledgeAnswer.updated_by),
              ("deleted_at", KnowledgeAnswer.deleted_at), ("deleted_by_id", KnowledgeAnswer.deleted_by))
    # One column at a time: SQLite's migrator rebuilds the table for a foreign key and would otherwise
    # recreate the index of a column added later in the same batch before adding it.
    for name, field in fields:
        if name not in {c.name for c in db.get_columns("knowledge_answer")}:
            migrate(migrator.add_column("knowledge_answer", name, field))
    return []


def _knowledge_item_public(migrator, db):
    """Knowledge items gained the editors' "show on the public website" flag (issue 11 item 4)."""
    if "public" not in {c.name for c in db.get_columns("knowledge_item")}:
        migrate(migrator.add_column("knowledge_item", "public", KnowledgeItem.public))
    return []


def _message_address_wide(migrator, db):
    """Message.address and OptOut.address grew from 64 to 255 characters: e-mail addresses may be that long
    (RFC 5321 allows 254). PostgreSQL enforces the length, so the column type changes there; SQLite never
    enforces a VARCHAR length, so its tables stay as they are."""
    if is_postgres(db):
        for table in ("message", "opt_out"):
            db.execute_sql(f'ALTER TABLE "{table}" ALTER COLUMN "address" TYPE VARCHAR(255)')
    return []


def _user_session_version(migrator, db):
    """Users gained the session version (issue 16 item 12): sessions of an older version are refused."""
    if "session_version" not in {c.name for c in db.get_columns("user")}:
        migrate(migrator.add_column("user", "session_version", User.session_version))
    return []


def _fax_job_dialout(migrator, db):
    """Outbound faxes keep who queued them and why, so the dial-out policy checks them again when sent."""
    columns = {c.name for c in db.get_columns("fax_job")}
    steps = [migrator.add_column("fax_job", name, field) for name, field in
             (("purpose", FaxJob.purpose), ("actor_id", FaxJob.actor)) if name not in columns]
    if steps:
        migrate(*steps)
    return []


def _ticket_created_at_index(migrator, db):
    """The ticket table's single-column created_at index gives way to the wider (created_at, status, category,
    type, department, channel) one that create_tables has just built: SQLite chose the narrow one and read a
    wide ticket row for each of a period's tickets (Open311's last 90 days, the statistics)."""
    db.execute_sql('DROP INDEX IF EXISTS "ticket_created_at"')
    return []


def _ticket_public_created_id(migrator, db):
    """The published cases' month index without the id gives way to ticket_public_created_id, which
    create_tables has just built (caseflow.models: a month's page read from index entries alone)."""
    db.execute_sql('DROP INDEX IF EXISTS "ticket_public_created"')
    return []


PUBLISHED_INDEXES = tuple(f"ticket_published_{name}" for name in ("closed", "by_type", "by_category", "by_region",
                                                                   "created"))


def _ticket_published_covering(migrator, db):
    """The published cases' partial indexes without the ``public`` column give way to the ticket_published_*
    ones (caseflow.models: SQLite reads a filtered list's count and page from their entries alone). PostgreSQL
    builds them here CONCURRENTLY, outside a transaction (the step's ``builds_indexes``: create_tables leaves
    them to it): in create_schema's transaction each build held the ticket table's writes, every new ticket
    waiting, for as long as it took (five indexes over 1,000,000 tickets); the old ones go the same way. SQLite
    (create_tables built them) gives them statistics when analysed before (sqlite_stat1 holds the ticket's
    indexes): with the others' and not theirs, the planner chose the others (a region's page 4 took 80 ms of
    CPU; with them its statements take under 1 ms)."""
    return _published_indexes(db, [f"ticket_public_{name}" for name in ("closed", "type", "category", "region",
                                                                        "created_id")])


def _ticket_published_ids(migrator, db):
    """The kind's, the category's and the region's published-case indexes give way to ones holding the id after
    the closing time (caseflow.models: PostgreSQL read a table page per match for it), built as 0021's."""
    return _published_indexes(db, [f"ticket_published_{name}" for name in ("type", "category", "region")])


HELD_INDEXES = ("ticket_workbench_held", "ticket_held_status_deadline", *(name for name, _columns in SET_INDEXES))


def _ticket_indexes_where_set(migrator, db):
    """The ticket's indexes over columns a new ticket leaves empty hold only the tickets where they are set
    (caseflow.models: a creation wrote an entry in each), built as 0021's; the department's and the status's
    own indexes go (prefixes of others)."""
    old = ["ticket_workbench", "ticket_department_id_status_deadline",
           "ticket_closed_at_status", "ticket_deadline", "ticket_remind_at", "ticket_upper_department_id",
           "ticket_handler_id", "ticket_master_id", "ticket_department_id", "ticket_status"]
    return _replace_indexes(db, HELD_INDEXES, old)


def _centre_list_indexes(migrator, db):
    """The centre desk's lists' partial indexes (caseflow.models), built as 0021's; none replaced."""
    return _replace_indexes(db, CENTRE_INDEXES, [])


def _overdue_index(migrator, db):
    """The handling tickets by deadline (caseflow.models.OVERDUE_INDEX: the centre's overdue list as
    overdue_at has it) in place of 0025's index over the swept ones, built as 0021's."""
    return _replace_indexes(db, (OVERDUE_INDEX,), ["ticket_centre_overdue"])


DAY_COUNT_INDEX = "ticket_day_count_dimension_day_value"


def _day_count_updates_hot(migrator, db):
    """The day counts' (dimension, day, value) index in place of the one that also held the count
    (caseflow.models.TicketDayCount: PostgreSQL's count updates become HOT), built as 0021's."""
    return _replace_indexes(db, (DAY_COUNT_INDEX,), ["ticket_day_count_dimension_day_value_tickets"], TicketDayCount)


def _published_indexes(db, old: list[str]):
    """The published-case indexes the model declares in place of ``old``."""
    return _replace_indexes(db, PUBLISHED_INDEXES, old)


def _replace_indexes(db, new: tuple[str, ...], old: list[str], model=Ticket):
    """``model``'s indexes ``new`` (as it declares them) in place of ``old``: PostgreSQL builds the missing
    ones CONCURRENTLY and drops ``old`` so (the step's ``builds_indexes``); SQLite's create_tables built them."""
    if is_postgres(db):
        build_indexes_concurrently(db, model, new)
        for name in old:
            concurrently(db, f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
        return []
    for name in old:
        db.execute_sql(f'DROP INDEX IF EXISTS "{name}"')
    analysed = db.execute_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone() is not None
    if analysed and db.execute_sql("SELECT 1 FROM sqlite_stat1 WHERE tbl = ? LIMIT 1",
                                   (model._meta.table_name,)).fetchone() is not None:
        for name in new:
            db.execute_sql(f'ANALYZE "{name}"')
    return []


def _search_index_layout(migrator, db):
    """The full-text indexes in their current layout (caseflow.search_layout.upgrade; bench/caseflow.py's
    figures): on PostgreSQL built beside the old ones without locking the table, so outside a transaction."""
    search_layout.upgrade(db)
    return []


def _search_index_pending_list(migrator, db):
    """PostgreSQL's full-text GIN indexes with a small pending list (caseflow.search.GIN_OPTIONS)."""
    if is_postgres(db):
        search_layout.gin_options(db)
    return []


def _search_index_merging(migrator, db):
    """SQLite's ticket FTS5 index merges less often inline (caseflow.search.FTS_MERGING)."""
    if not is_postgres(db):
        search_layout.fts_settings(db)
    return []


def _call_counts(migrator, db):
    """The quarter-hour call counts (new tables, empty) from the call records already stored."""
    aggregates.rebuild()
    return []


def _ticket_status_statistics(migrator, db):
    """PostgreSQL's statistics on the published cases' status expression (caseflow.portal), filled at once."""
    from caseflow import portal

    portal.ensure_statistics(analyze=True)
    return []


def _chat_phone_verified(migrator, db):
    """Chats remember whether the citizen confirmed the phone by an SMS code (acd.models.ChatSession)."""
    from acd.models import ChatSession

    return [migrator.add_column("chat_session", "phone_verified", ChatSession.phone_verified)]


def _user_group_lead(migrator, db):
    """Group memberships gained the lead flag (the team lead's scope on the console, caseflow.org.lead_scope)."""
    from caseflow.models import UserGroup

    if "lead" in {c.name for c in db.get_columns("user_group")}:
        return []
    return [migrator.add_column("user_group", "lead", UserGroup.lead)]


def _ticket_durations(migrator, db):
    """The handling durations the speed report reads (caseflow.durations; a new table, empty) from the tickets
    and history already stored."""
    from caseflow import durations

    durations.rebuild()
    return []


def _ticket_day_counts(migrator, db):
    """The tickets per day and value the reports read (caseflow.daycounts; a new table, empty, or one counted
    before it had every dimension) from the tickets already stored."""
    from caseflow import daycounts

    daycounts.rebuild()
    return []


def _ticket_query_pin_hashed(migrator, db):
    """Ticket.query_pin holds the PIN's keyed hash (caseflow.pins, issue 11): 100 characters, not 8 (PostgreSQL
    enforces the length; SQLite never does), and the PINs stored plain are hashed here, once.

    Outside a transaction (``batches``): PostgreSQL's ALTER runs on its own (a widening of a VARCHAR rewrites
    nothing, but holds the table's ACCESS EXCLUSIVE lock until its commit: inside one transaction with the
    conversion it held every reader and writer of the ticket table for the whole table's batches), then the
    plain PINs are hashed in batches, each committed as it ends (caseflow.pins.convert_plain), on SQLite too,
    and the receipts already sent lose their PIN the same way (``_mask_sent_receipts``). Run again after an
    interruption, it widens nothing twice and hashes and masks only what is still plain.

    Here and not at every start: the key is the one the process migrating installed from its own
    configuration (hotline.product's prepare_schema, hotline.accounts; PinKeyError without one when a plain
    PIN is found), the step runs once under the active lock before anything reads a PIN, and a start need not
    look through every ticket for plain ones again. A PIN a failed step left plain still opens its case, and is
    hashed at its first successful look-up."""
    from caseflow import pins

    if is_postgres(db) and _column_width(db, "ticket", "query_pin") != 100:
        db.execute_sql('ALTER TABLE "ticket" ALTER COLUMN "query_pin" TYPE VARCHAR(100)')
    pins.convert_plain()
    _mask_sent_receipts(db)
    return []


def _mask_sent_receipts(db, batch: int | None = None) -> int:
    """The receipts a gateway took before this version (status sent or delivered) lose their query PIN as the
    outbox now stores them (channels.messagelog.without_pin), in batches each committed as the PINs' are; a
    failed one keeps it for a person's retry. Returns how many changed; run again, it changes none twice."""
    from caseflow import pins
    from channels import messagelog
    from channels.models import Message

    taken = Message.status.in_(("sent", "delivered"))
    receipts = (Message.direction == "out") & taken & (Message.purpose.in_(messagelog.PIN_PURPOSES)
                                                       | Message.template_key.in_(messagelog.PIN_PURPOSES))
    batch, done, last = batch or pins.CONVERT_BATCH, 0, 0
    while True:
        with db.atomic():
            rows = list(Message.select(Message.id, Message.direction, Message.purpose, Message.template_key,
                                       Message.body).where((Message.id > last) & receipts)
                        .order_by(Message.id).limit(batch))
            if not rows:
                return done
            masked = [(row.id, body) for row, body in ((row, messagelog.without_pin(row)) for row in rows)
                      if body != row.body]
            if masked:
                Message.update(body=peewee.Case(Message.id, masked, Message.body)).where(
                    Message.id.in_([mid for mid, _ in masked]) & taken).execute()
                done += len(masked)
        last = rows[-1].id


def _column_width(db, table: str, column: str):
    """PostgreSQL: a VARCHAR column's declared length (None: none, or no such column)."""
    row = db.execute_sql("SELECT character_maximum_length FROM information_schema.columns WHERE table_name = %s "
                         "AND column_name = %s AND table_schema = current_schema()", (table, column)).fetchone()
    return row[0] if row else None


# 0001: the ACD's ``callback_request`` table is gone (its open rows moved onto recorder's missed-call list,
# which gained dedupe and claim columns); new databases simply do not create it.
# 0002: knowledge answers can be edited, deleted (softly) and viewed (P5 §3.7.2).
# 0003: knowledge items can be marked for the public website.
# 0004: message and opt-out addresses up to 255 characters (long e-mail addresses).
# 0005: call records re-signed over every field and chained (recorder.integrity); records whose v1 MAC
#       does not match keep it, and `python -m recorder.verify` lists them.
# 0006: users' session version (logout, password change and disabling end every session of the user).
# 0007: outbound faxes keep their dial-out purpose and actor (checked again by the policy when sent).
# 0008: one alarm store (ops.alarms): the channels' alarm and the recorder's recorder_alert rows move to
#       system_alarm, and both tables go.
# 0009: the ticket's created_at index is replaced by a wider one led by created_at (bench/portal.py).
# 0010: the full-text indexes' layout (caseflow.search_layout.upgrade): PostgreSQL's GIN over the grams and
#       marker lexemes (id buckets, the ticket's departments, recorder and status), SQLite's FTS5 page size. (The
#       ticket_workbench indexes of issue 15 item 7 are new indexes: create_tables builds them.)
# 0011: the call counts the calls and agents reports read (recorder.aggregates) computed from the records an
#       existing database already holds.
# 0012: PostgreSQL's statistics on the ticket's status as the published cases compare it (caseflow.portal).
# 0013: a chat's phone confirmed by an SMS code (the desk shows that citizen's history only then).
# 0014: each ticket's handling durations (caseflow.durations) computed from the tickets already stored.
# 0015: a group's leads (user_group.lead): a team lead sees and acts on the agents of the groups they lead.
# 0016: the tickets per day and status, category, region and urgency (caseflow.daycounts) from those stored.
# 0017: the same counts again with the departments report's (department, 办结, deadlines) and the agents
#       report's (recording user) dimensions.
# 0018: the published cases' month index holds the ticket's id (ticket_public_created_id replaces
#       ticket_public_created).
# 0019: the full-text layout again (caseflow.search_layout.upgrade): the ticket's GIN also holds its departments
#       paired with the id's bucket (~x, ~y), so a department's search reads its own tickets' entries (issue 15
#       item 7). 0010 and 0019 build the new GIN CONCURRENTLY beside the old one, outside a transaction: the
#       ticket table stays readable and writable during the minutes it takes.
# 0020: PostgreSQL's full-text GIN indexes with a pending list of 256 kB, not 4 MB: every search read it whole
#       (caseflow.search.GIN_OPTIONS; issue 15 item 7).
# 0021: the published cases' partial indexes hold ``public`` (ticket_published_* replace ticket_public_*): SQLite
#       reads a filtered list from their entries alone (issue 11). PostgreSQL builds them CONCURRENTLY outside a
#       transaction, as 0019 its GIN: the ticket table stays writable meanwhile.
# 0022: SQLite's ticket FTS5 index merges a level once it holds 16 segments, not 4 (64 merged whole at once, not
#       16): the merging no longer falls on one creation in sixty (caseflow.search.FTS_MERGING; issue 15 item 7).
# 0023: the kind's, the category's and the region's published-case indexes hold the id after the closing time
#       (ticket_published_by_* replace ticket_published_type, _category and _region): PostgreSQL's list reads
#       no table page for a match (issue 11); built CONCURRENTLY as 0021's.
# 0024: the ticket's indexes over the department, the handler, the deadline, the closing time, the reminder, the
#       upper department and the master hold only the tickets where it is set (partial, ``IS NOT NULL``), the
#       department's workbench index too (ticket_*_held, ticket_*_set replace them); ticket_department_id and
#       ticket_status go (the prefixes of others): a new ticket enters 12 btrees, not 22 (issue 15 item 7). Built
#       CONCURRENTLY as 0021's.
# 0025: the centre desk's lists each read in its order from a partial index over its own tickets (to dispatch, to
#       review, overdue, supervised, extension requests, mailbox: ticket_centre_*; issue 15 item 7). Built
#       CONCURRENTLY as 0021's.
# 0026: the centre's overdue list is the handling tickets past their deadline, swept or not
#       (caseflow.models.overdue_at): read from ticket_handling_deadline, which replaces ticket_centre_overdue
#       (the swept ones only; issue 15). Built CONCURRENTLY as 0021's.
# 0027: the tickets' query PINs stored as their keyed hash (caseflow.pins), the column widened to 100 characters;
#       outside a transaction, the ALTER on its own, then the PINs in batches each committed (both databases);
#       the receipts already sent or delivered lose their PIN (masked as channels.outbox now stores them).
STEPS: list[Step] = [Step("0001_one_missed_call_list", one_missed_call_list),
                     Step("0002_knowledge_answer_upkeep", _knowledge_answer_upkeep),
                     Step("0003_knowledge_item_public", _knowledge_item_public),
                     Step("0004_message_address_255", _message_address_wide),
                     Step("0005_call_record_chain", chain_call_records),
                     Step("0006_user_session_version", _user_session_version),
                     Step("0007_fax_job_dialout", _fax_job_dialout),
                     Step("0008_one_alarm_store", one_alarm_store),
                     Step("0009_ticket_created_at_index", _ticket_created_at_index),
                     Step("0010_search_index_layout", _search_index_layout, transaction=False),
                     Step("0011_call_counts", _call_counts),
                     Step("0012_ticket_status_statistics", _ticket_status_statistics),
                     Step("0013_chat_phone_verified", _chat_phone_verified),
                     Step("0014_ticket_durations", _ticket_durations),
                     Step("0015_user_group_lead", _user_group_lead),
                     Step("0016_ticket_day_counts", _ticket_day_counts),
                     Step("0017_ticket_day_counts_departments", _ticket_day_counts),
                     Step("0018_ticket_public_created_id", _ticket_public_created_id),
                     Step("0019_search_index_pairs", _search_index_layout, transaction=False),
                     Step("0020_search_index_pending_list", _search_index_pending_list),
                     Step("0021_ticket_published_covering", _ticket_published_covering, transaction=False,
                          builds_indexes=PUBLISHED_INDEXES),
                     Step("0022_search_index_merging", _search_index_merging),
                     Step("0023_ticket_published_ids", _ticket_published_ids, transaction=False,
                          builds_indexes=PUBLISHED_INDEXES),
                     Step("0024_ticket_indexes_where_set", _ticket_indexes_where_set, transaction=False,
                          builds_indexes=HELD_INDEXES),
                     Step("0025_centre_list_indexes", _centre_list_indexes, transaction=False,
                          builds_indexes=CENTRE_INDEXES),
                     Step("0026_overdue_index", _overdue_index, transaction=False, builds_indexes=(OVERDUE_INDEX,)),
                     Step("0027_ticket_query_pin_hashed", _ticket_query_pin_hashed, transaction=False,
                          batches=True),
                     Step("0028_day_count_updates_hot", _day_count_updates_hot, transaction=False,
                          builds_indexes=(DAY_COUNT_INDEX,))]
