"""core.db.is_postgres judges the database behind a proxy, not the proxy's own type."""

import peewee

from core.db import is_postgres


def test_a_proxy_is_judged_by_the_database_it_stands_for(tmp_path):
    sqlite = peewee.SqliteDatabase(str(tmp_path / "x.sqlite3"))
    postgres = peewee.PostgresqlDatabase("never_connected")  # no connection is opened: only its type is read
    proxy = peewee.DatabaseProxy()
    proxy.initialize(postgres)
    assert is_postgres(postgres) and is_postgres(proxy)
    proxy.initialize(sqlite)
    assert not is_postgres(sqlite) and not is_postgres(proxy)
