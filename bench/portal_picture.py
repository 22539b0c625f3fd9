from gevent import monkey; monkey.patch_all()  # noqa: E702 - as a serving process runs (run.py, hotline.worker)
"""Benchmark: the portal's picture code (issue 11): CPU per picture, and how long drawing holds the serving hub.

A burst of ``--pictures`` pictures asked at once (50 new browsers at a row's start, bench/portal.py), each from a
greenlet of its own, while a ticker greenlet asks to run every 1 ms, as the process's other requests do: the
ticker's longest and 99th-percentile gap is how long the hub was held. Drawn in the requests' greenlets (as
before) and through webui.picture_codes.picture (the pictures' own native thread). CPU per picture: the
library's defaults (letters of 42, 50, 56 px, PNG level 6) against the portal's settings. Asserts nothing.

    .venv/bin/python bench/portal_picture.py [--pictures 50] [--rounds 300]
"""
import argparse  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
from gevent.event import Event  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from webui import picture_codes  # noqa: E402


def cpu_per_picture(draw, rounds: int) -> float:
    """Mean CPU ms of ``draw(answer)`` in this thread."""
    draw("AAAAA")
    started = time.process_time()
    for _ in range(rounds):
        draw("AB3K7")
    return (time.process_time() - started) / rounds * 1000


def library_default(answer: str) -> bytes:
    from captcha.image import ImageCaptcha

    drawer = library_default.__dict__.setdefault("drawer", ImageCaptcha(*picture_codes.PICTURE_SIZE))
    return drawer.generate(answer).getvalue()


def hub_held(draw, pictures: int) -> tuple[float, float, float, float]:
    """A 1 ms ticker's longest, 99th-percentile and median gap in ms while ``pictures`` greenlets each draw one at
    once, and the burst's wall ms."""
    gaps: list[float] = []
    done = Event()

    def ticker():
        last = time.perf_counter()
        while not done.is_set():
            gevent.sleep(0.001)
            now = time.perf_counter()
            gaps.append((now - last) * 1000)
            last = now

    tick = gevent.spawn(ticker)
    gevent.sleep(0.01)
    started = time.perf_counter()
    gevent.joinall([gevent.spawn(draw, "AB3K7") for _ in range(pictures)])
    wall = (time.perf_counter() - started) * 1000
    done.set()
    tick.join()
    gaps.sort()
    return gaps[-1], gaps[max(0, int(len(gaps) * 0.99) - 1)], gaps[len(gaps) // 2], wall


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="the portal's picture code: CPU and the hub held")
    parser.add_argument("--pictures", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.2f}")
    print(f"CPU per picture, library defaults: {cpu_per_picture(library_default, args.rounds):.2f} ms; "
          f"portal's settings: {cpu_per_picture(picture_codes.draw, args.rounds):.2f} ms")
    picture_codes.picture("AAAAA")  # the pool's thread started
    print(f"{args.pictures} pictures at once, a 1 ms ticker's gaps (the hub held), longest / p99 / median, the burst's wall:")
    for label, draw in (("in the greenlets, library defaults", library_default),
                        ("in the greenlets, portal's settings", picture_codes.draw),
                        ("own thread (picture_codes.picture)", picture_codes.picture)):
        longest, p99, median, wall = hub_held(draw, args.pictures)
        print(f"  {label:38} {longest:7.1f} / {p99:6.1f} / {median:5.1f}, {wall:7.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
