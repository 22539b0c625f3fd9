"""Helpers for the live tests: blocking calls off the gevent hub, bounded waits, and the whole product
(hotline.product.Product) on the real switch with a citizen's call driven through it, watching only what the
switch reports."""
from __future__ import annotations

import random
import subprocess

import gevent

from core.config import load_config
from core.db import database
from hotline.product import Product


def in_thread(func, *args):
    """A blocking call (the raw ESL client, urllib, sipp) off the hub, so the product's greenlets run on."""
    return gevent.get_hub().threadpool.apply(func, args)


def wait_until(predicate, timeout: float, what: str) -> None:
    """Poll ``predicate`` (app state the test cannot be told about) until true; AssertionError naming
    ``what`` after ``timeout`` seconds."""
    with gevent.Timeout(timeout, AssertionError(f"timed out waiting for {what}")):
        while not predicate():
            gevent.sleep(0.05)


def start_product(esl_endpoint, db_url, tmp_path, sounds_dir, clock=None, prepare=None,
                  settings: dict | None = None) -> Product:
    """The product with its ESL on the live switch and every server of its own on 127.0.0.1:0, demo data
    loaded; ``prepare(product)`` runs after build and before start (e.g. to change a queue); ``settings``:
    more configuration (e.g. the browser phone's)."""
    host, port, password = esl_endpoint
    var = tmp_path / "var"
    var.mkdir()
    var.chmod(0o777)  # FreeSWITCH may run as its own user and writes recordings below
    config = load_config({
        "database_url": db_url, "var_dir": str(var), "sounds_dir": str(sounds_dir),
        "esl": f"{host}:{port}:{password}", "outbound": "127.0.0.1:0", "http": "127.0.0.1:0",
        "mode": "test", "secret_key": "k" * 40, "load_demo": True,
        # The live switch gives seats 1000-1019 one test password (tests/live/README.md, seat_passwords=shared).
        "seat_passwords": "shared", **(settings or {}),
    })
    running = Product(config, clock=clock).build()
    if prepare is not None:
        prepare(running)
    running.start()
    return running


def stop_product(running: Product) -> None:
    running.stop(drain_timeout=10)
    if database.obj is not None and not database.is_closed():
        database.close()


class Leg:
    """One call's channel as the switch reports it on ``esl_events``; a subclass says which events are its own
    (``matches``)."""

    esl_events = None

    def matches(self, event) -> bool:
        raise NotImplementedError

    def wait(self, predicate, what: str, timeout: float = 60):
        """The next event of this leg that ``predicate`` accepts; AssertionError naming the step otherwise."""
        try:
            return in_thread(self.esl_events.wait_event, lambda ev: self.matches(ev) and predicate(ev), timeout)
        except Exception as exc:  # noqa: BLE001 - say which step of the call it was
            raise AssertionError(f"waiting for {what}: {exc}") from exc

    def wait_menu(self, prompt: str, timeout: float = 60):
        return self.wait(lambda ev: (ev.get("Event-Name") == "CHANNEL_EXECUTE"
                                     and ev.get("Application") == "play_and_get_digits"
                                     and f"/{prompt}.wav" in ev.get("Application-Data", "")),
                         f"the {prompt} menu", timeout)


class AppLeg(Leg):
    """The loopback leg the dialplan runs (and the app drives) for one citizen's call, not the citizen's."""

    def __init__(self, esl_events, citizen, caller: str):
        self.esl_events, self.citizen, self.caller = esl_events, citizen, caller

    def matches(self, event) -> bool:
        return event.get("Unique-ID") != self.citizen.uuid and event.get("Caller-Caller-ID-Number") == self.caller

    @classmethod
    def to_consult_queue(cls, place_call, esl_events, product, prefix: str) -> "AppLeg":
        """A citizen from ``prefix`` and seven random digits calling ``product`` (PCMA) who presses 1 (a person)
        and 1 (咨询: the consult queue, where demo agent 1001 serves); the leg once the second key went in (the
        citizen is ``leg.citizen``)."""
        host, port = product.parts["outbound"].address
        caller = prefix + "%07d" % random.randrange(10_000_000)
        citizen = place_call(caller=caller, outbound=f"{host}:{port}", variables={"absolute_codec_string": "PCMA"})
        leg = cls(esl_events, citizen, caller)
        leg.wait_menu("main_menu")
        citizen.press("1")
        leg.wait_menu("human_menu")
        citizen.press("1")
        return leg

    def speak_tone(self, path, seconds: int = 4, hz: int = 300) -> None:
        """The citizen says something (a tone made with sox) into the running `record`, to its end."""
        subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "synth", str(seconds),
                        "sine", str(hz)], check=True, timeout=30)
        path.chmod(0o644)
        self.citizen.speak(str(path))
        # FreeSWITCH keeps the file at its 44-byte header until `record` ends: wait for the voice to end.
        in_thread(self.esl_events.wait_event, lambda ev: ev.get("Event-Name") == "PLAYBACK_STOP"
                  and ev.get("Unique-ID") == self.citizen.uuid, 30)
