"""Prompt texts (one TOML file per language under sounds/) and their rendering to WAV.

``python -m ivr.prompts render`` renders every missing or changed prompt with pyttsx3 (espeak-ng's Mandarin
voice for zh), converts it with sox to mono 16-bit WAV at the configured rate (Config.prompt_rate, the rate
FreeSWITCH plays at) under sounds/<lang>/<key>.wav, and records a hash of text+voice+rate per file in
sounds/<lang>/.manifest.json so unchanged prompts are not rendered again. If pyttsx3 cannot start, the
espeak-ng binary is called directly (still real speech) and the reason is logged.

Rendering never holds up the gevent hub (calls, ESL, web requests share it): pyttsx3 speaks in the hub's
thread pool (core.offload), one rendering at a time since espeak's library is one engine per process, and
the espeak-ng and sox binaries run through core.processes (posix_spawn: gevent.subprocess forks the whole
process, which at a busy server's size stalls every call for tens of milliseconds a child).
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import gevent.lock

from core import processes
from core.offload import in_thread

log = logging.getLogger(__name__)

LANGUAGES = ("zh", "en")
# espeak-ng voices: pyttsx3's espeak driver names them by their file path.
VOICES = {"zh": "sit/cmn", "en": "gmw/en"}
ESPEAK_VOICES = {"zh": "cmn", "en": "en"}
DIGIT_KEYS = tuple(f"digit_{d}" for d in "0123456789")
TTS_TIMEOUT = 60.0
MIN_PROMPT_SECONDS = 0.2
MAX_UPLOAD_SECONDS = 600.0


class PromptError(ValueError):
    """A prompt file or an uploaded recording is not usable; the message says why."""


def prompts_file(sounds_dir: Path, lang: str) -> Path:
    return Path(sounds_dir) / f"prompts.{lang}.toml"


def load_texts(sounds_dir: Path, lang: str) -> dict[str, str]:
    """Key -> text for ``lang`` from sounds/prompts.<lang>.toml."""
    if lang not in LANGUAGES:
        raise PromptError(f"unknown language {lang!r} (one of {', '.join(LANGUAGES)})")
    path = prompts_file(sounds_dir, lang)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PromptError(f"{path}: prompt file missing") from None
    except tomllib.TOMLDecodeError as exc:
        raise PromptError(f"{path}: {exc}") from None
    bad = [k for k, v in data.items() if not isinstance(v, str) or not v.strip()]
    if bad:
        raise PromptError(f"{path}: prompts without text: {', '.join(sorted(bad))}")
    words = status_texts(lang)
    twice = sorted(set(words) & set(data))
    if twice:
        raise PromptError(f"{path}: {', '.join(twice)} come from caseflow.workflow.CITIZEN_WORDS (the one table of "
                          "citizen status words): remove them from the file")
    return {**data, **words}


def status_texts(lang: str) -> dict[str, str]:
    """status_<key> -> the citizen's status word from caseflow.workflow.CITIZEN_WORDS (what the web, SMS and
    e-mail say too), spoken after ``status_is``."""
    from caseflow.workflow import CITIZEN_WORDS

    return {f"status_{key}": (zh + "。") if lang == "zh" else (en + ".") for key, (zh, en) in CITIZEN_WORDS.items()}


def prompt_keys(sounds_dir: Path) -> set[str]:
    """Keys present in every language (what a tree may reference)."""
    keys: set[str] | None = None
    for lang in LANGUAGES:
        current = set(load_texts(sounds_dir, lang))
        keys = current if keys is None else keys & current
    return keys or set()


def text_hash(text: str, lang: str, rate: int) -> str:
    return hashlib.sha256(f"{VOICES[lang]}\0{rate}\0{text}".encode("utf-8")).hexdigest()[:16]


def wav_path(sounds_dir: Path, lang: str, key: str) -> Path:
    return Path(sounds_dir) / lang / f"{key}.wav"


def tts_cache_path(sounds_dir: Path, lang: str, text: str, rate: int) -> Path:
    """Where call-time TTS of ``text`` is cached."""
    return Path(sounds_dir) / ".cache" / lang / f"{text_hash(text, lang, rate)}.wav"


# ------------------------------------------------------------------ synthesis
class Synthesizer:
    """Text -> WAV file (engine's native rate) with pyttsx3, falling back to the espeak-ng binary."""

    def __init__(self, in_process: bool = True) -> None:
        """``in_process=False``: always the espeak-ng binary. pyttsx3 runs espeak inside this process and
        blocks the gevent hub while it speaks; a subprocess lets every other call go on (call-time TTS)."""
        self._engine = None
        self._pyttsx3_error: str | None = None if in_process else "not used for call-time prompts"

    def _pyttsx3(self):
        if self._engine is None and self._pyttsx3_error is None:
            try:
                import pyttsx3

                self._engine = pyttsx3.init("espeak")
            except Exception as exc:  # noqa: BLE001 - any driver failure means "use the binary"
                self._pyttsx3_error = f"{type(exc).__name__}: {exc}"
                log.warning("pyttsx3 cannot initialise (%s); using the espeak-ng binary", self._pyttsx3_error)
        return self._engine

    @property
    def method(self) -> str:
        return "pyttsx3" if self._pyttsx3() is not None else "espeak-ng"

    def synthesize(self, text: str, lang: str, out: Path) -> str:
        """Write speech for ``text`` to ``out``; returns the method used."""
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        engine = self._pyttsx3()
        if engine is not None:
            try:
                with _PYTTSX3_TURN:
                    if in_thread(_speak_pyttsx3, engine, text, lang, out):
                        return "pyttsx3"
                log.warning("pyttsx3 wrote nothing for %r; using the espeak-ng binary", text[:30])
            except Exception as exc:  # noqa: BLE001 - driver errors fall back to the binary
                log.warning("pyttsx3 failed (%s); using the espeak-ng binary", exc)
        binary = shutil.which("espeak-ng") or shutil.which("espeak")
        if not binary:
            raise PromptError("没有语音合成程序，请安装 espeak-ng（scripts/setup-system.sh） / no speech synthesiser: install "
                              "espeak-ng (scripts/setup-system.sh)")
        # "--": the text is never read as options (a text "-w/path" would otherwise write that file).
        processes.run([binary, "-v", ESPEAK_VOICES[lang], "-w", str(out), "--", text], check=True,
                      timeout=TTS_TIMEOUT, capture_output=True)
        return "espeak-ng"


_PYTTSX3_TURN = gevent.lock.Semaphore()
"""One pyttsx3 rendering at a time: espeak's library holds one engine per process."""


def _speak_pyttsx3(engine, text: str, lang: str, out: Path) -> bool:
    """In a pool thread: speak ``text`` into ``out`` with pyttsx3; True when a file with sound came out."""
    engine.setProperty("voice", VOICES[lang])
    # pyttsx3's espeak driver sometimes drops the first file after a voice change: try twice.
    for _attempt in range(2):
        engine.save_to_file(text, str(out))
        # The espeak driver prints "Audio saved to ..." itself; keep stdout for the caller.
        with contextlib.redirect_stdout(io.StringIO()):
            engine.runAndWait()
        if out.is_file() and out.stat().st_size > 44:
            return True
    return False


def convert(src: Path, dst: Path, rate: int) -> None:
    """sox ``src`` to mono 16-bit signed WAV at ``rate``."""
    sox = shutil.which("sox")
    if not sox:
        raise PromptError("未安装 sox（scripts/setup-system.sh 会安装） / sox is not installed (scripts/setup-system.sh "
                          "installs it)")
    dst.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own: two calls may render the same call-time text at once.
    handle, name = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.stem}.", suffix=".tmp.wav")
    os.close(handle)
    tmp = Path(name)
    try:
        processes.run([sox, str(src), "-r", str(rate), "-c", "1", "-b", "16", "-e", "signed-integer", str(tmp)],
                      check=True, timeout=TTS_TIMEOUT, capture_output=True)
        os.replace(tmp, dst)  # atomic: FreeSWITCH never plays a half-written prompt
    finally:
        tmp.unlink(missing_ok=True)


def render_text(synth: Synthesizer, text: str, lang: str, dst: Path, rate: int) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        method = synth.synthesize(text, lang, raw)
        convert(raw, dst, rate)
    return method


@dataclass
class RenderReport:
    rendered: list[str]
    skipped: int
    method: str


def _manifest_path(sounds_dir: Path, lang: str) -> Path:
    return Path(sounds_dir) / lang / ".manifest.json"


def _read_manifest(sounds_dir: Path, lang: str) -> dict[str, str]:
    try:
        return json.loads(_manifest_path(sounds_dir, lang).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def render_all(sounds_dir: Path, rate: int = 8000, langs=LANGUAGES, keys: set[str] | None = None,
               synth: Synthesizer | None = None, force: bool = False,
               texts: dict[str, dict[str, str]] | None = None) -> dict[str, RenderReport]:
    """Render missing or changed prompts; ``texts`` overrides the files (administrator edits)."""
    synth = synth or Synthesizer()
    reports = {}
    for lang in langs:
        lang_texts = dict(load_texts(sounds_dir, lang))
        if texts and lang in texts:
            lang_texts.update(texts[lang])
        manifest = _read_manifest(sounds_dir, lang)
        rendered, skipped, method = [], 0, ""
        for key, text in sorted(lang_texts.items()):
            if keys is not None and key not in keys:
                continue
            digest = text_hash(text, lang, rate)
            dst = wav_path(sounds_dir, lang, key)
            if not force and manifest.get(key) == digest and dst.is_file():
                skipped += 1
                continue
            if manifest.get(key, "").startswith("upload:") and dst.is_file() and not force:
                skipped += 1  # an administrator's recording replaces the TTS one until the text changes
                continue
            method = render_text(synth, text, lang, dst, rate)
            manifest[key] = digest
            rendered.append(key)
            log.info("rendered %s/%s.wav with %s", lang, key, method)
        _manifest_path(sounds_dir, lang).parent.mkdir(parents=True, exist_ok=True)
        _manifest_path(sounds_dir, lang).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        reports[lang] = RenderReport(rendered, skipped, method)
    return reports


def call_time_renderer(lang: str, rate: int) -> Callable[[str, Path], None]:
    """A (text, path) renderer for prompts made while calls run (the ACD's operator numbers and queue
    positions) and the IVR's "tts:" items: the espeak-ng binary and sox as children started without a fork
    (core.processes), so the process keeps serving meanwhile."""
    synth = Synthesizer(in_process=False)

    def render(text: str, path: Path) -> None:
        try:
            render_text(synth, text, lang, Path(path), rate)
        except (subprocess.SubprocessError, PromptError, OSError) as exc:
            raise RuntimeError(f"could not render {Path(path).name}: {exc}") from exc

    return render


def render_tts(sounds_dir: Path, text: str, lang: str, rate: int, synth: Synthesizer | None = None) -> Path:
    """Render call-time text (news, knowledge items) once and cache it by its hash."""
    dst = tts_cache_path(sounds_dir, lang, text, rate)
    if not dst.is_file():
        render_text(synth or Synthesizer(), text, lang, dst, rate)
    return dst


# ------------------------------------------------------------------ uploaded recordings
@dataclass(frozen=True)
class WavInfo:
    channels: int
    rate: int
    sample_width: int
    seconds: float


def wav_info(path: Path) -> WavInfo:
    """Read a WAV header; anything else raises PromptError."""
    try:
        with wave.open(str(path), "rb") as handle:
            frames, rate = handle.getnframes(), handle.getframerate()
            return WavInfo(handle.getnchannels(), rate, handle.getsampwidth(), frames / rate if rate else 0.0)
    except (wave.Error, EOFError) as exc:
        raise PromptError(f"不是 WAV 文件：{exc} / not a WAV file: {exc}") from None


def install_upload(sounds_dir: Path, lang: str, key: str, data: bytes, rate: int = 8000) -> WavInfo:
    """Validate an uploaded recording for prompt ``key`` and install it (converted to the switch's rate)."""
    if lang not in LANGUAGES:
        raise PromptError(f"未知的语言 {lang!r} / unknown language {lang!r}")
    if key not in load_texts(sounds_dir, lang):
        raise PromptError(f"未知的提示音 {key!r} / unknown prompt {key!r}")
    if len(data) > 50 * 1024 * 1024:
        raise PromptError("文件超过 50 MB / the file is larger than 50 MB")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "upload.wav"
        src.write_bytes(data)
        info = wav_info(src)
        if info.channels not in (1, 2) or info.sample_width not in (1, 2) or info.rate < 8000:
            raise PromptError(f"不支持的 WAV 格式（{info.channels} 声道，{info.sample_width * 8} 位） / unsupported WAV: "
                              f"{info.channels} channels, {info.sample_width * 8}-bit, "
                              f"{info.rate} Hz (need mono or stereo PCM, at least 8000 Hz)")
        if info.seconds < MIN_PROMPT_SECONDS:
            raise PromptError(f"录音太短（{info.seconds:.2f} 秒） / the recording is too short ({info.seconds:.2f} s)")
        if info.seconds > MAX_UPLOAD_SECONDS:
            raise PromptError(f"录音太长（{info.seconds:.0f} 秒，最长 {MAX_UPLOAD_SECONDS:.0f} 秒） / the recording is too long "
                              f"({info.seconds:.0f} s, at most {MAX_UPLOAD_SECONDS:.0f})")
        convert(src, wav_path(sounds_dir, lang, key), rate)
    manifest = _read_manifest(sounds_dir, lang)
    manifest[key] = "upload:" + hashlib.sha256(data).hexdigest()[:16]
    _manifest_path(sounds_dir, lang).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return wav_info(wav_path(sounds_dir, lang, key))


# ------------------------------------------------------------------ command line
def _stored_overrides(config) -> dict[str, dict[str, str]] | None:
    """Texts administrators changed in the web UI, when the database already exists."""
    import peewee

    from core.db import bind_database

    if config.database_url.startswith("sqlite") and not Path(config.database_url.split("///", 1)[-1]).exists():
        return None
    try:
        db = bind_database(config.database_url)
        with db.connection_context():
            if not db.table_exists("prompt_text"):
                return None
            from ivr.store import prompt_overrides

            return prompt_overrides()
    except peewee.PeeweeException as exc:
        log.warning("prompt texts changed in the web UI are not available (%s); using the files", exc)
        return None


def main(argv: list[str] | None = None) -> int:
    """`python -m ivr.prompts render [--force] [--lang zh] [--key welcome]` and `tts` (call-time text)."""
    from core.config import load_config
    from core.logsetup import configure_logging

    parser = argparse.ArgumentParser(prog="python -m ivr.prompts")
    sub = parser.add_subparsers(dest="command", required=True)
    render = sub.add_parser("render", help="render missing or changed prompts")
    render.add_argument("--force", action="store_true")
    render.add_argument("--lang", action="append", choices=LANGUAGES)
    render.add_argument("--key", action="append")
    tts = sub.add_parser("tts", help="render one text to a WAV file (used for call-time TTS)")
    tts.add_argument("--lang", choices=LANGUAGES, default="zh")
    tts.add_argument("--out", required=True)
    tts.add_argument("text")
    args = parser.parse_args(argv)
    configure_logging()
    config = load_config()
    if args.command == "tts":
        render_text(Synthesizer(), args.text, args.lang, Path(args.out), config.prompt_rate)
        return 0
    from ivr.moh import HoldMusicError, ensure_hold_music

    try:
        # FreeSWITCH's local_stream `moh` needs sounds/moh/ with music in it when it starts
        ensure_hold_music(config.sounds_dir, config.prompt_rate)
    except (HoldMusicError, OSError) as exc:
        log.error("hold music: %s", exc)
    try:
        reports = render_all(config.sounds_dir, config.prompt_rate, tuple(args.lang or LANGUAGES),
                             set(args.key) if args.key else None, force=args.force,
                             texts=_stored_overrides(config))
    except (PromptError, subprocess.SubprocessError, OSError) as exc:
        log.error("prompt rendering failed: %s", exc)
        return 1
    for lang, report in reports.items():
        log.info("prompts %s: %d rendered%s, %d unchanged", lang, len(report.rendered),
                 f" with {report.method}" if report.method else "", report.skipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
