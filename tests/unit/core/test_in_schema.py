"""core.db.in_schema: a PostgreSQL URL bound to a schema keeps the server settings the URL already gives."""
from __future__ import annotations

from playhouse.db_url import parse

from core.db import in_schema


def test_a_plain_url_gets_the_search_path():
    """Should add the schema as the connection's search_path."""
    assert parse(in_schema("postgresql://postgres@127.0.0.1:5432/test", "bench_x"))["options"] == \
        "-csearch_path=bench_x"


def test_the_urls_own_settings_are_kept():
    """Should add the search_path to the URL's own options (a second options parameter replaced them: a
    benchmark's ``--pg ...?options=-csynchronous_commit%3Doff`` ran with the server's default), other parameters
    left as they are."""
    parsed = parse(in_schema("postgresql://u:p@h:5433/db?sslmode=disable&options=-csynchronous_commit%3Doff%20"
                             "-clog_min_duration_statement%3D0", "s"))
    assert parsed["options"] == "-csynchronous_commit=off -clog_min_duration_statement=0 -csearch_path=s"
    assert (parsed["sslmode"], parsed["user"], parsed["password"], parsed["port"]) == ("disable", "u", "p", 5433)


def test_the_query_is_kept_as_written():
    """Should leave the URL's other parameters and its options' own characters as written (a '+' stays a '+':
    libpq reads it so, as in -ctimezone=Etc/GMT+8)."""
    url = in_schema("postgresql://u@h/db?application_name=a%2Bb&options=-ctimezone%3DEtc/GMT+8", "s")
    assert url == "postgresql://u@h/db?application_name=a%2Bb&options=-ctimezone%3DEtc/GMT+8%20-csearch_path%3Ds"
