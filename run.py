from gevent import monkey; monkey.patch_all()  # noqa: E702 - must run before anything imports socket/threading
"""Start the hotline: web UI, outbound socket server for FreeSWITCH, ESL connections, ACD and scheduler.

SIGTERM/SIGINT: stop accepting calls, let calls in progress finish, exit 0.
"""
import logging  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
from gevent.event import Event  # noqa: E402

from core.config import ConfigError, load_config  # noqa: E402
from core.logsetup import configure_logging  # noqa: E402
from hotline.product import Product  # noqa: E402

log = logging.getLogger("hotline")


def main() -> int:
    configure_logging()
    try:
        config = load_config()
    except ConfigError as error:
        log.error("configuration: %s", error)
        return 2
    product = Product(config, demo_history=True).build()
    for operator_no, name, roles, password in product.demo_accounts:
        log.info("demo account 工号 %s %s (%s) password %s", operator_no, name, roles, password)
    product.start()
    stopping = Event()
    gevent.signal_handler(signal.SIGTERM, stopping.set)
    gevent.signal_handler(signal.SIGINT, stopping.set)
    stopping.wait()
    log.info("stopping: no new calls; waiting for calls in progress")
    product.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
