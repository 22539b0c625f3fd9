"""``python -m hotline.accounts create-admin``: the first administrator on a database that may not have its
tables yet. Here, in the composition root, because it creates every package's tables (hotline.schema);
the accounts themselves are caseflow.accounts'.
"""
from __future__ import annotations

import os
import sys

from caseflow import accounts


def main(argv: list[str] | None = None) -> int:
    """``python -m hotline.accounts create-admin <operator_no> <name>``: the first administrator of an
    installation (production loads no demo accounts). The password is read from HOTLINE_ADMIN_PASSWORD or
    asked for twice on the terminal, never taken from the command line (it would stay in the history)."""
    import argparse
    import getpass

    from core.config import ConfigError, load_config
    from core.db import bind_database, database, is_postgres
    from core.leader import held_by_any
    from hotline.schema import all_models, create_schema, pending

    parser = argparse.ArgumentParser(prog="python -m hotline.accounts", description=main.__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    admin = commands.add_parser("create-admin", help="create an administrator account")
    admin.add_argument("operator_no")
    admin.add_argument("name")
    args = parser.parse_args(argv)
    password = os.environ.get("HOTLINE_ADMIN_PASSWORD", "")
    if not password:
        password = getpass.getpass("password / 密码: ")
        if password != getpass.getpass("again / 再输一次: "):
            print("the passwords differ / 两次输入的密码不一致", file=sys.stderr)
            return 2
    try:
        config = load_config()
    except ConfigError as error:
        print(f"configuration: {error}", file=sys.stderr)
        return 2
    bind_database(config.database_url)
    with database.connection_context():
        # Like a standby (hotline.product stand_by), the schema is changed only where no app is active: the
        # active app's version would meet tables it does not know, or a step half done. With none active
        # (a new installation), create_schema's migration lock lets an app starting meanwhile wait for it.
        missing = pending()
        if missing and is_postgres(database.obj) and held_by_any(database.obj):
            print(f"this version changes the database schema ({missing}) and an app is active on it: upgrade "
                  "the app first (it changes the schema once it holds the active lock), then run this again",
                  file=sys.stderr)
            return 2
        if missing:
            from caseflow import pins

            pins.install(pins.PinKeys.from_config(config))  # migration 0027 hashes plain PINs under it
            create_schema(all_models())
        try:
            user = accounts.create_user(args.operator_no, args.name, password, roles=("admin",))
        except accounts.AccountError as error:
            print(str(error), file=sys.stderr)
            return 2
    print(f"administrator {user.operator_no} {user.name} created / 管理员已创建")
    return 0


if __name__ == "__main__":
    sys.exit(main())
