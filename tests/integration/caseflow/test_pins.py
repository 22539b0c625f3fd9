"""The ticket's query PIN stored only as its keyed hash (caseflow.pins, issue 11): creation, the status query by
PIN, a PIN stored plain by an older version, key rotation, migration 0027; on SQLite and PostgreSQL."""
import peewee
import pytest

from caseflow import pins, portal, services
from caseflow.models import Ticket, TicketHistory
from core import secret_codes
from core.db import is_postgres

STEP = "0027_ticket_query_pin_hashed"
OLD_KEY, NEW_KEY = b"o" * 40, b"n" * 40


def _stored(ticket) -> str:
    return Ticket.get_by_id(ticket.id).query_pin


def _wrong(pin: str) -> str:
    return f"{(int(pin) + 1) % 1_000_000:06d}"


def test_creation_stores_a_keyed_hash_and_hands_the_pin_out_once(db):
    """Should store a p1$salt$HMAC of the 6-digit PIN under the installed key, never the digits, and hand the
    PIN to the caller on the returned ticket only; the status query opens with it, not with a wrong one."""
    t = services.create_ticket("路灯不亮", citizen_phone="13800000001")
    pin, stored = t.plain_pin, _stored(t)
    assert len(pin) == 6 and pin.isdigit() and pin not in stored
    form, salt, digest = stored.split("$")
    key = pins.installed().current
    assert form == "p1" and digest == secret_codes.keyed_digest(key, "query-pin", salt, pin)
    assert not hasattr(Ticket.get_by_id(t.id), "plain_pin")  # nothing reads it back
    assert services.status_query(t.number, pin)["status"] == "recorded"
    assert services.status_query(t.number, f"{pin[:3]}-{pin[3:]}#")["status"] == "recorded"  # as keyed or typed
    assert services.status_query(t.number, _wrong(pin)) is None
    assert services.status_query(t.number, stored) is None  # the stored hash is no PIN
    assert _stored(t) == stored  # a current hash is not written again
    other = services.create_ticket("路灯不亮", citizen_phone="13800000001")
    assert _stored(other).split("$")[1] != salt  # a salt of its own per ticket


def test_the_same_pin_under_another_key_opens_nothing(db):
    """Should refuse the right PIN once the key is another one the stored hash was not made under."""
    t = services.create_ticket("路灯不亮")
    pins.install(pins.PinKeys(b"z" * 40))
    assert services.status_query(t.number, t.plain_pin) is None


def test_no_ticket_without_a_key(db):
    """Should refuse to file a ticket in a process that installed no PIN key, writing nothing."""
    pins.install(None)
    with pytest.raises(pins.PinKeyError):
        services.create_ticket("路灯不亮", citizen_phone="13800000001")
    assert Ticket.select().count() == 0 and TicketHistory.select().count() == 0


def test_a_plain_pin_of_an_older_version_opens_and_is_hashed(db):
    """Should open a ticket whose PIN an older version stored plain with that PIN (by phone and on the website),
    hash it under the current key on that success only, and refuse a wrong one without touching the row."""
    t = services.create_ticket("路灯不亮", citizen_phone="13800000001")
    Ticket.update(query_pin="012345").where(Ticket.id == t.id).execute()
    assert services.status_query(t.number, "012346") is None and _stored(t) == "012345"
    assert services.status_query(t.number, "13800000001") is not None and _stored(t) == "012345"  # by phone
    assert services.status_query(t.number, "012345")["status"] == "recorded"
    assert _stored(t).startswith("p1$") and "012345" not in _stored(t)
    assert pins.match(_stored(t), "012345", pins.installed()) == "current"
    assert services.status_query(t.number, "012345") is not None
    key = pins.installed().current
    w = services.create_ticket("井盖丢失")
    Ticket.update(query_pin="543210").where(Ticket.id == w.id).execute()
    assert portal.find_case(w.number, "543211", key) is None and _stored(w) == "543210"
    assert portal.find_case(w.number, "543210", key).id == w.id
    assert pins.match(_stored(w), "543210", pins.PinKeys(key)) == "current"


def test_only_a_plain_pin_of_the_generated_length_opens(db):
    """Should open a ticket by a plain stored PIN only when it is exactly the 6 digits generate_pin drew: an
    empty, shorter, longer or malformed stored value opens nothing (by phone query or website), not even by
    its own text, is never hashed (the row stays as it was), and migration 0027's conversion leaves it."""
    t = services.create_ticket("路灯不亮")
    key = pins.installed().current
    for stored in ("", "12345", "1234567", "12345678", "12a456", " 123456", "１２３４５６"):
        Ticket.update(query_pin=stored).where(Ticket.id == t.id).execute()
        for typed in {stored, pins.digits(stored) or "123456"}:
            assert services.status_query(t.number, typed) is None, (stored, typed)
            assert portal.find_case(t.number, typed, key) is None, (stored, typed)
        assert _stored(t) == stored
    assert pins.convert_plain() == 0 and _stored(t) == "１２３４５６"
    Ticket.update(query_pin="123456").where(Ticket.id == t.id).execute()
    assert portal.find_case(t.number, "123456", key).id == t.id and _stored(t).startswith("p1$")


def test_key_rotation(db):
    """Should open a ticket whose PIN was hashed under the key HOTLINE_SECRET_KEY was rotated from, hash it
    again under the new key, and from then on open it without the old key."""
    pins.install(pins.PinKeys(OLD_KEY))
    t = services.create_ticket("路灯不亮")
    w = services.create_ticket("井盖丢失")
    pins.install(pins.PinKeys(NEW_KEY, (OLD_KEY,)))
    assert services.status_query(t.number, _wrong(t.plain_pin)) is None
    assert pins.match(_stored(t), t.plain_pin, pins.installed()) == "stale"
    assert services.status_query(t.number, t.plain_pin) is not None
    assert pins.match(_stored(t), t.plain_pin, pins.PinKeys(NEW_KEY)) == "current"
    pins.install(pins.PinKeys(NEW_KEY))
    assert services.status_query(t.number, t.plain_pin) is not None
    assert services.status_query(w.number, w.plain_pin) is None  # never looked up while OLD_KEY was listed


def test_the_website_checks_a_pin_under_the_installed_keys_only(db):
    """Should check a PIN typed on the website (portal.find_case) under the process's installed keys, the one
    source creation and the phone's status query use, never the key its caller passes for the web codes: a PIN
    hashed under the previous key opens and is hashed again under the current one, a wrong PIN opens nothing
    and leaves the row, and a caller's key (or rotated-from list) neither opens nor refuses a PIN."""
    pins.install(pins.PinKeys(OLD_KEY))
    t = services.create_ticket("路灯不亮")
    under_old = _stored(t)
    pins.install(pins.PinKeys(NEW_KEY, (OLD_KEY,)))
    assert portal.find_case(t.number, _wrong(t.plain_pin), NEW_KEY, [OLD_KEY]) is None
    assert _stored(t) == under_old
    caller_key = b"c" * 40  # a web code key unrelated to the PIN's: it changes nothing for a PIN
    assert portal.find_case(t.number, t.plain_pin, caller_key).id == t.id
    assert _stored(t) != under_old and pins.match(_stored(t), t.plain_pin, pins.PinKeys(NEW_KEY)) == "current"
    assert portal.find_case(t.number, t.plain_pin, caller_key).id == t.id  # a current hash, kept
    pins.install(pins.PinKeys(NEW_KEY))
    w = services.create_ticket("井盖丢失")
    pins.install(pins.PinKeys(OLD_KEY))  # the installed keys no longer hold the PIN's: the caller's cannot help
    assert portal.find_case(w.number, w.plain_pin, NEW_KEY, [NEW_KEY]) is None
    assert pins.match(_stored(w), w.plain_pin, pins.PinKeys(NEW_KEY)) == "current"
    pins.install(None)  # no key installed: a PIN cannot be checked at all (no caller's key stands in)
    with pytest.raises(pins.PinKeyError):
        portal.find_case(w.number, w.plain_pin, NEW_KEY)


def test_a_failing_receipt_still_files_the_ticket(db, alarms, caplog):
    """Should file the citizen's ticket when a receipt writer fails (the outbox refused its row, an edited
    template that fails to render): that receipt's savepoint is rolled back alone (a row it wrote first goes),
    the next writer still queues, the failure is logged and raised as an alarm without the PIN, and a writer
    that succeeds is handed the PIN the ticket was given."""
    from ops.models import SystemAlarm

    given = []

    def failing(ticket, pin, clock):
        services.add_note(ticket, "a row the failing receipt wrote first")
        raise RuntimeError(f"the outbox is gone (template value {pin})")

    pins.connect_receipt(failing)
    pins.connect_receipt(lambda ticket, pin, clock: given.append((ticket.id, pin)))
    with caplog.at_level("WARNING", logger="caseflow.services"):
        t = services.create_ticket("路灯不亮", channel="sms", citizen_phone="13800000001")
    assert Ticket.select().count() == 1 and Ticket.get_by_id(t.id).number == t.number
    assert services.status_query(t.number, t.plain_pin)["status"] == "recorded"
    assert [h.action for h in TicketHistory.select().where(TicketHistory.ticket == t.id)] == ["create"]
    assert given == [(t.id, t.plain_pin)]
    [alarm] = SystemAlarm.select().where(SystemAlarm.kind == "receipt_failed")
    assert t.number in alarm.text and "the outbox is gone" in alarm.text and t.plain_pin not in alarm.text
    logged = [r.getMessage() for r in caplog.records if "not queued" in r.getMessage()]
    assert logged and t.number in logged[0] and t.plain_pin not in logged[0]
    services.create_ticket("路灯不亮")  # no phone, no e-mail: no receipt to queue
    assert len(given) == 1 and SystemAlarm.get(SystemAlarm.kind == "receipt_failed").count == 1


def test_a_receipt_the_database_refuses_still_files_the_ticket(db, alarms):
    """Should keep the ticket when the receipt's own INSERT fails inside the ticket's transaction (PostgreSQL
    aborts the whole transaction on an error unless it was a savepoint's)."""
    from ops.models import SystemAlarm

    def refused(ticket, pin, clock):
        TicketHistory.create(ticket=ticket, action="create", at=None)  # NOT NULL: refused by the database

    pins.connect_receipt(refused)
    t = services.create_ticket("路灯不亮", citizen_email="a@example.org")
    assert Ticket.get_by_id(t.id).number == t.number
    assert SystemAlarm.select().where(SystemAlarm.kind == "receipt_failed").count() == 1


def test_no_receipt_writer_is_warned_once_per_process(db, caplog, monkeypatch):
    """Should warn once, not per ticket, when the process files tickets with a phone or an e-mail address and
    no receipt writer is connected (a forgotten channels.receipts.connect); a ticket with neither warns not."""
    monkeypatch.setattr(services, "_warned_no_receipts", type(services._warned_no_receipts)())
    with caplog.at_level("WARNING", logger="caseflow.services"):
        services.create_ticket("路灯不亮")
        assert not [r for r in caplog.records if "no receipt writer" in r.getMessage()]
        services.create_ticket("路灯不亮", citizen_phone="13800000001")
        services.create_ticket("路灯不亮", citizen_email="a@example.org")
        pins.connect_receipt(lambda ticket, pin, clock: None)
        services.create_ticket("路灯不亮", citizen_phone="13800000001")
    assert len([r for r in caplog.records if "no receipt writer" in r.getMessage()]) == 1


def _query_pin_width(db):
    return db.execute_sql("SELECT character_maximum_length FROM information_schema.columns WHERE table_name = "
                          "'ticket' AND column_name = 'query_pin' AND table_schema = current_schema()").fetchone()[0]


def test_migration_widens_the_column_and_hashes_the_plain_pins(db):
    """Should upgrade a database of 8-character plain PINs (PostgreSQL refuses a hash there): the column holds
    100 characters, every plain PIN becomes its keyed hash under the current key (more rows than a batch) and
    still opens its ticket, a hashed one is left as it is, and the step runs once."""
    from core.migrations import SchemaMigration
    from hotline.schema import all_models, create_schema

    kept = services.create_ticket("已是新格式")
    hashed = _stored(kept)
    tickets = [services.create_ticket(f"旧工单{n}") for n in range(pins.CONVERT_BATCH + 5)]
    if is_postgres(db):
        Ticket.update(query_pin="").execute()
        db.execute_sql('ALTER TABLE "ticket" ALTER COLUMN "query_pin" TYPE VARCHAR(8)')
        assert _query_pin_width(db) == 8
        with pytest.raises(peewee.DataError), db.atomic():
            Ticket.update(query_pin=hashed).where(Ticket.id == kept.id).execute()
        Ticket.update(query_pin=hashed[:8]).where(Ticket.id == kept.id).execute()
        hashed = hashed[:8]  # not plain (a "$"): the step leaves it
    old = {t.id: f"{n % 1_000_000:06d}" for n, t in enumerate(tickets)}
    for tid, pin in old.items():
        Ticket.update(query_pin=pin).where(Ticket.id == tid).execute()
    SchemaMigration.delete().where(SchemaMigration.name == STEP).execute()
    assert STEP in create_schema(all_models())
    assert STEP not in create_schema(all_models())  # once
    if is_postgres(db):
        assert _query_pin_width(db) == 100
    assert _stored(kept) == hashed
    rows = dict(Ticket.select(Ticket.id, Ticket.query_pin).where(Ticket.id.in_(list(old))).tuples())
    assert all(stored.startswith("p1$") for stored in rows.values())
    keys = pins.installed()
    assert all(pins.match(rows[tid], pin, keys) == "current" for tid, pin in old.items())
    first = tickets[0]
    assert services.status_query(first.number, old[first.id]) is not None


def _read_elsewhere(db_url: str, ids: list[int]) -> dict:
    """The tickets' stored PINs as another connection sees them now (committed rows only), waiting at most a few
    seconds for a lock (PostgreSQL: the ticket table held by an ALTER's ACCESS EXCLUSIVE lock fails it)."""
    marks = ",".join(str(i) for i in ids)
    if db_url.startswith("sqlite:///"):
        import sqlite3

        other = sqlite3.connect(db_url[len("sqlite:///"):], timeout=3)
        try:
            return dict(other.execute(f'SELECT id, query_pin FROM "ticket" WHERE id IN ({marks})').fetchall())
        finally:
            other.close()
    import psycopg2

    other = psycopg2.connect(db_url, connect_timeout=3)
    try:
        with other.cursor() as cur:
            cur.execute("SET lock_timeout = '3s'")
            cur.execute(f'SELECT id, query_pin FROM "ticket" WHERE id IN ({marks})')
            return dict(cur.fetchall())
    finally:
        other.close()


def test_migration_commits_each_batch_and_resumes_after_an_interruption(db, db_url, monkeypatch):
    """Should run 0027 outside a transaction: PostgreSQL's ALTER commits on its own (the ticket table is not
    held locked through the conversion: another connection reads it meanwhile) and each batch of hashed PINs is
    committed as it ends, on both databases; an interrupted run keeps the batches it finished, is not recorded,
    and a second run hashes the rest."""
    from core.migrations import SchemaMigration
    from hotline.schema import all_models, create_schema

    monkeypatch.setattr(pins, "CONVERT_BATCH", 3)
    tickets = [services.create_ticket(f"旧工单{n}") for n in range(8)]
    old = {t.id: f"{n + 100_000:06d}" for n, t in enumerate(tickets)}
    if is_postgres(db):
        Ticket.update(query_pin="").execute()
        db.execute_sql('ALTER TABLE "ticket" ALTER COLUMN "query_pin" TYPE VARCHAR(8)')
    for tid, pin in old.items():
        Ticket.update(query_pin=pin).where(Ticket.id == tid).execute()
    SchemaMigration.delete().where(SchemaMigration.name == STEP).execute()
    ids, real, calls, seen = sorted(old), pins.hash_pin, [], {}

    def hashing(pin, key, salt=None):
        calls.append(pin)
        if len(calls) == 4:  # the second batch's first PIN: the first batch is in the database for all to see
            seen.update(_read_elsewhere(db_url, ids))
        if len(calls) == 7:
            raise RuntimeError("the migration is interrupted in its third batch")
        return real(pin, key, salt)

    monkeypatch.setattr(pins, "hash_pin", hashing)
    with pytest.raises(RuntimeError, match="interrupted"):
        create_schema(all_models())
    assert [seen[tid].startswith("p1$") for tid in ids] == [True] * 3 + [False] * 5
    if is_postgres(db):
        assert _query_pin_width(db) == 100
    assert not SchemaMigration.select().where(SchemaMigration.name == STEP).exists()
    stored = dict(Ticket.select(Ticket.id, Ticket.query_pin).where(Ticket.id.in_(ids)).tuples())
    assert [stored[tid].startswith("p1$") for tid in ids] == [True] * 6 + [False] * 2
    monkeypatch.setattr(pins, "hash_pin", real)
    assert STEP in create_schema(all_models())
    rows = dict(Ticket.select(Ticket.id, Ticket.query_pin).where(Ticket.id.in_(ids)).tuples())
    assert all(rows[tid] == stored[tid] for tid in ids[:6])  # the batches done are not hashed again
    assert all(pins.match(rows[tid], pin, pins.installed()) == "current" for tid, pin in old.items())


def test_the_schema_step_hashes_under_the_migrating_process_own_key(db, db_url, tmp_path):
    """Should hash 0027's plain PINs under the key of the configuration of the process whose schema step runs
    (Product.prepare_schema: a standby taking over migrates before it builds, with no key installed yet), not
    under another configuration's (load_config()'s)."""
    from core.config import load_config
    from core.migrations import SchemaMigration
    from hotline.product import Product

    t = services.create_ticket("旧工单")
    Ticket.update(query_pin="123456").where(Ticket.id == t.id).execute()
    SchemaMigration.delete().where(SchemaMigration.name == STEP).execute()
    pins.install(None)
    product = Product(load_config({"database_url": db_url, "var_dir": str(tmp_path / "var"), "mode": "test",
                                   "secret_key": "q" * 40}))
    product._bound = True  # on the test's database as bound
    assert STEP in product.prepare_schema()
    assert pins.match(_stored(t), "123456", pins.PinKeys(b"q" * 40)) == "current"


def test_migration_masks_the_pin_of_receipts_already_sent(db, monkeypatch):
    """Should store the receipts a gateway took before 0027 (sent, delivered) without their PIN, as the outbox
    now stores them (more rows than a batch); a failed or queued receipt keeps it (a retry sends it), as does a
    message that is no receipt; run again, it masks nothing twice."""
    from channels.models import Message
    from core.migrations import SchemaMigration
    from hotline.migrations import _mask_sent_receipts
    from hotline.schema import all_models, create_schema

    monkeypatch.setattr(pins, "CONVERT_BATCH", 2)
    t = services.create_ticket("路灯不亮", citizen_phone="13800000001")
    text = f"受理号{t.number}，查询码{t.plain_pin}"

    def message(status, purpose="receipt", template_key="receipt", direction="out"):
        return Message.create(direction=direction, address="13800000001", body=text, status=status, ticket=t,
                              purpose=purpose, template_key=template_key).id

    sent = [message("sent"), message("delivered"), message("sent", purpose=""), message("delivered", template_key="")]
    kept = [message("failed"), message("queued"), message("sent", purpose="result", template_key="result"),
            message("sent", direction="in", purpose="", template_key="")]
    SchemaMigration.delete().where(SchemaMigration.name == STEP).execute()
    assert STEP in create_schema(all_models())
    bodies = dict(Message.select(Message.id, Message.body).tuples())
    assert all(bodies[i] == f"受理号{t.number}，查询码******" for i in sent)
    assert all(bodies[i] == text for i in kept)
    assert _mask_sent_receipts(db) == 0
