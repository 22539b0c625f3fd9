"""`python -m recorder.verify`: check the call-record chain and every call record against its keyed MAC.

One line per problem (``record <id>`` or ``seal <day> #<n>``, the call's UUID, what is wrong), then a
summary with the chain's newest seal: note it (or keep it with the backups) to notice the newest records
being deleted together with their seals, which leaves no gap. Exit status 0 when nothing is wrong, 1 when
anything is, 2 when the check cannot run.
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
    """Run the check; returns the exit status (prints the problems to ``out``)."""
    out = out or sys.stdout
    parser = argparse.ArgumentParser(prog="python -m recorder.verify",
                                     description="Check the call-record chain and every record's MAC.")
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
        report = verify_database(key)
    for item in report.problems:
        print(f"{item.where}\t{item.call_uuid}\t{item.reason}", file=out)
    print(f"checked {report.records} call records ({report.finalised} finalised, {report.open} open) and "
          f"{report.seals} seals, newest {report.head or 'none'}: {len(report.problems)} problems / "
          f"共校验 {report.records} 条记录、{report.seals} 个签封, {len(report.problems)} 处问题", file=out)
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
