"""`python -m recorder.verify`: list every call record whose keyed MAC no longer matches.

Exit status 0 when every finalised record matches, 1 when any does not, 2 when the check cannot run.
"""
from __future__ import annotations

import argparse
import logging
import sys

from core.config import ConfigError, load_config
from core.db import bind_database
from recorder.integrity import RecordKeyError, record_key, verify_database

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None, out=None) -> int:
    """Run the check; returns the exit status (prints the mismatching records to ``out``)."""
    out = out or sys.stdout
    parser = argparse.ArgumentParser(prog="python -m recorder.verify",
                                     description="List call records whose tamper-evidence MAC does not match.")
    parser.add_argument("--database-url", help="database to check (default: the configured one)")
    args = parser.parse_args(argv)
    try:
        config = load_config()
        key = record_key(config.secret_key, config.extra)
    except (ConfigError, RecordKeyError) as exc:
        print(f"cannot check: {exc}", file=out)
        return 2
    database = bind_database(args.database_url or config.database_url)
    with database.connection_context():
        bad = verify_database(key)
        from recorder.models import CallRecord

        total = CallRecord.select().where(CallRecord.finalised == True).count()  # noqa: E712
    for item in bad:
        print(f"{item.id}\t{item.call_uuid}\t{item.reason}", file=out)
    print(f"checked {total} finalised call records: {len(bad)} do not match / 共校验 {total} 条, {len(bad)} 条不符",
          file=out)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
