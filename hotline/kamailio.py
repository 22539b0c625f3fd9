"""``python -m hotline.kamailio render|init-db``: Kamailio's configuration for the configured switches, and its
location table; and the registrations watch the product runs when HOTLINE_KAMAILIO names a Kamailio
(docs/kamailio.md). Here, in the composition root, because it joins the configuration, the switches and the
ACD."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from core.config import PROJECT_ROOT, Config
from switch import kamailio as kam

log = logging.getLogger(__name__)

DEFAULT_DIR = PROJECT_ROOT / "var" / "kamailio"


def subscriber_table(config: Config) -> str:
    """The seats' credentials table Kamailio reads in product mode: ``subscriber`` beside the location table."""
    schema, _, _ = config.kamailio_location.rpartition(".")
    return f"{schema}.subscriber" if schema else "subscriber"


def settings_from(config: Config, switches, values_by_switch: dict[str, dict[str, str]]) -> kam.KamailioSettings:
    """KamailioSettings from the product's settings and what each switch said (read_switch): the seats (and, with
    one password for all, that password) must be the same on every switch, Kamailio being one registrar for all
    of them. With each seat its own password (HOTLINE_FS_SEAT_PASSWORDS=product) Kamailio checks the product's
    credentials table (subscriber_writer) in HOTLINE_KAMAILIO_REALM."""
    if config.kamailio is None:
        raise kam.KamailioError("HOTLINE_KAMAILIO is not set: there is no Kamailio to configure")
    own = config.seat_passwords == "product"
    seats = {values["agent_extensions"] for values in values_by_switch.values()}
    passwords = {values["agent_password"] for values in values_by_switch.values()}
    if len(seats) != 1 or (not own and len(passwords) != 1):
        raise kam.KamailioError("the switches differ in their seats (agent_extensions) or the seats' password "
                                "(agent_password): Kamailio registers the seats of all of them, make them equal")
    return kam.KamailioSettings(
        sip=config.kamailio, rpc=config.kamailio_rpc, db_url=kam.kamailio_db_url(config.kamailio_db),
        switches=tuple(switches), seat_re=seats.pop(), agent_password="" if own else passwords.pop(),
        carriers=tuple(config.kamailio_carriers), location_table=config.kamailio_location,
        subscriber_table=subscriber_table(config) if own else "", realm=config.kamailio_realm if own else "")


def subscriber_writer(config: Config):
    """``write({extension: password})`` keeping Kamailio's credentials table equal to the seats' own passwords
    (acd.seats.SeatPasswords ``subscribers``; the table made when missing), or None without a Kamailio or with
    one password for all. Each call opens its own connection: the passwords change seldom (a reset, the
    product's start)."""
    if config.kamailio is None or config.seat_passwords != "product":
        return None

    def write(passwords: dict[str, str]) -> None:
        import psycopg2

        table = subscriber_table(config)
        connection = psycopg2.connect(config.kamailio_db, connect_timeout=10)
        try:
            with connection, connection.cursor() as cursor:  # a site that never ran init-db still gets it
                cursor.execute(kam.subscriber_table_sql(table))
            changed = kam.write_subscribers(connection, table, config.kamailio_realm, passwords)
        finally:
            connection.close()
        if changed:
            log.info("Kamailio's seat credentials: %d rows written", changed)

    return write


def read_switches(config: Config, timeout: float = 10.0):
    """Connect to every switch of HOTLINE_ESL and read what Kamailio needs (switch.kamailio.read_switch)."""
    from switch.inbound import SwitchPool

    pool = SwitchPool(config.esl, api_timeout=timeout)
    pool.start()
    try:
        switches, values = [], {}
        for conn in pool.all():
            if not conn.wait_connected(timeout):
                raise kam.KamailioError(f"{conn.name}: cannot connect to the switch's event socket")
            switch, got = kam.read_switch(conn.name, lambda command, conn=conn: conn.api(command, timeout=timeout))
            switches.append(switch)
            values[conn.name] = got
        return switches, values
    finally:
        pool.stop()


def create_location_table(db_url: str, table: str, subscribers: str = "") -> None:
    """Kamailio's location table (and its schema) in its PostgreSQL database, when missing; and the seats'
    credentials table ``subscribers`` when named."""
    import psycopg2

    connection = psycopg2.connect(db_url, connect_timeout=10)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(kam.location_table_sql(table))
            if subscribers:
                cursor.execute(kam.subscriber_table_sql(subscribers))
    finally:
        connection.close()


def registrations_watch(config: Config, acd):
    """The ACD's view of Kamailio's registrations (acd.registrar.KamailioRegistrations), or None without a
    Kamailio. Its database connection is opened on the first read and opened again after an error."""
    if config.kamailio is None:
        return None
    from acd.registrar import KamailioRegistrations

    held = {}

    def fetch() -> dict[str, str]:
        import psycopg2

        connection = held.get("connection")
        if connection is None or connection.closed:
            connection = held["connection"] = psycopg2.connect(config.kamailio_db, connect_timeout=10)
            connection.autocommit = True
        try:
            return kam.read_registrations(connection, config.kamailio_location)
        except Exception:
            held.pop("connection", None)
            connection.close()
            raise

    return KamailioRegistrations(acd, fetch, kam.dial_route(config.kamailio), interval=config.kamailio_poll)


def main(argv: list[str] | None = None) -> int:
    """python -m hotline.kamailio: Kamailio's configuration and location table for this installation."""
    import argparse

    from core.config import ConfigError, load_config

    parser = argparse.ArgumentParser(prog="python -m hotline.kamailio", description=main.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser("render", help="kamailio-conf/ filled in for the switches of HOTLINE_ESL (they "
                                                "must be running: their SIP addresses and seats are read from them)")
    render.add_argument("--out", type=Path, default=DEFAULT_DIR, help=f"where to write (default {DEFAULT_DIR})")
    commands.add_parser("init-db", help="create Kamailio's location table (and, with each seat its own password, "
                                        "its credentials table) in HOTLINE_KAMAILIO_DB when missing")
    args = parser.parse_args(argv)
    try:
        config = load_config()
        if config.kamailio is None:
            raise ConfigError("HOTLINE_KAMAILIO is not set (host:port of Kamailio's SIP address)")
        if args.command == "init-db":
            own = subscriber_table(config) if config.seat_passwords == "product" else ""
            create_location_table(config.kamailio_db, config.kamailio_location, own)
            print(f"{', '.join(filter(None, (config.kamailio_location, own)))}: ready")
            return 0
        switches, values = read_switches(config)
        cfg = kam.render_conf(settings_from(config, switches, values), args.out)
    except (ConfigError, kam.KamailioError) as error:
        print(f"kamailio: {error}", file=sys.stderr)
        return 2
    print(f"{cfg} written for {', '.join(s.name for s in switches)}; start it with:\n"
          f"  kamailio -f {cfg} -P {cfg.parent / 'kamailio.pid'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
