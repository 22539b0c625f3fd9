"""The portal's picture codes (CAPTCHA) drawn: the maintained ``captcha`` library's ImageCaptcha, in a native thread
of their own so that drawing never holds a serving hub. No Flask and no database here: the view
(webui.blueprints.portal) keeps the answer's MAC in the session and serves what ``picture`` returns.
"""
from __future__ import annotations

import io

from gevent import monkey

from core import offload

# The library's own picture (its distortions, noise dots and curve) with letters a little smaller than its default
# (42, 50, 56 px squeezed into 64 px) and PNG's fastest compression: bench/portal_picture.py prints the CPU saved.
PICTURE_SIZE = (180, 64)
PICTURE_FONT_SIZES = (36, 42, 48)
PICTURE_PNG_LEVEL = 1
_DRAWER = None  # one ImageCaptcha per process: a new one loaded its three fonts again for every picture
# A native lock made at import (made on first use, two threads could each make one): one picture at a time on the
# shared fonts (FreeType faces are not thread-safe), whichever thread draws (bench/portal_picture.py's too).
_DRAWING = monkey.get_original("_thread", "allocate_lock")()
# The pictures' own thread: /captcha.png is public, and a burst of pictures in the hub's shared pool took all its
# threads (one drawing, the rest waiting on _DRAWING) from argon2 log-ins, TTS and SQLite's checkpoints.
_PICTURES = offload.one_thread()


def draw(answer: str) -> bytes:
    """``answer`` drawn as a PNG picture code, in the calling (native) thread."""
    global _DRAWER
    with _DRAWING:
        if _DRAWER is None:
            from captcha.image import ImageCaptcha  # imports PIL: only a process that serves the portal

            _DRAWER = ImageCaptcha(width=PICTURE_SIZE[0], height=PICTURE_SIZE[1], font_sizes=PICTURE_FONT_SIZES)
        image = _DRAWER.generate_image(answer)
    out = io.BytesIO()
    image.save(out, format="png", compress_level=PICTURE_PNG_LEVEL)
    return out.getvalue()


def picture(answer: str) -> bytes:
    """``answer`` drawn as a PNG picture code in the pictures' own native thread (_PICTURES): 4-7 ms of CPU a
    picture held the serving hub when drawn in its greenlet, every other request of the process waiting behind it
    (50 new browsers at once queued 8-10 of them in each worker: the PostgreSQL submission's p99); PIL drops the
    GIL in most of its C work and the interpreter hands it over every switch interval otherwise, so the hub
    serves meanwhile (bench/portal_picture.py measures how long it was held)."""
    return _PICTURES.apply(draw, (answer,))
