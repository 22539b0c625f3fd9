"""Prompt texts and rendering: real TTS (pyttsx3/espeak-ng) and sox, checked with the wave module."""
from __future__ import annotations

import shutil
import wave
from pathlib import Path

import pytest

from ivr import prompts
from ivr.engine import ENGINE_PROMPTS
from tests.ticks import ticks_during

SOUNDS = Path(__file__).resolve().parents[3] / "sounds"


@pytest.fixture
def sounds(tmp_path):
    """A sounds directory with the real prompt files and nothing rendered."""
    for lang in prompts.LANGUAGES:
        shutil.copy(prompts.prompts_file(SOUNDS, lang), tmp_path)
    return tmp_path


def test_every_language_has_the_same_keys():
    """Should keep the Mandarin and English prompt files in step, including the engine's own prompts."""
    zh, en = prompts.load_texts(SOUNDS, "zh"), prompts.load_texts(SOUNDS, "en")
    assert set(zh) == set(en)
    assert set(ENGINE_PROMPTS) <= set(zh)
    assert set(prompts.DIGIT_KEYS) <= set(zh)


def test_render_real_prompts_to_8k_mono(sounds):
    """Should render prompts with real speech to mono 16-bit WAV at the configured rate."""
    reports = prompts.render_all(sounds, 8000, keys={"welcome", "digit_8"})
    assert sorted(reports["zh"].rendered) == ["digit_8", "welcome"]
    assert reports["zh"].method in ("pyttsx3", "espeak-ng")
    for lang in ("zh", "en"):
        with wave.open(str(sounds / lang / "welcome.wav"), "rb") as handle:
            assert (handle.getnchannels(), handle.getframerate(), handle.getsampwidth()) == (1, 8000, 2)
            assert handle.getnframes() > 8000  # a real sentence lasts more than a second
            frames = handle.readframes(handle.getnframes())
            assert frames.count(0) < len(frames) * 0.9  # not silence


def test_render_is_cached_by_text(sounds):
    """Should skip unchanged prompts and render again when a text changes."""
    prompts.render_all(sounds, 8000, langs=("zh",), keys={"goodbye"})
    again = prompts.render_all(sounds, 8000, langs=("zh",), keys={"goodbye"})
    assert again["zh"].rendered == [] and again["zh"].skipped == 1
    path = prompts.prompts_file(sounds, "zh")
    path.write_text(path.read_text(encoding="utf-8").replace("感谢您的来电，再见。", "再见。"), encoding="utf-8")
    changed = prompts.render_all(sounds, 8000, langs=("zh",), keys={"goodbye"})
    assert changed["zh"].rendered == ["goodbye"]


def test_render_other_rate(sounds):
    """Should follow the switch's configured rate."""
    prompts.render_all(sounds, 16000, langs=("en",), keys={"digit_1"})
    with wave.open(str(sounds / "en" / "digit_1.wav"), "rb") as handle:
        assert handle.getframerate() == 16000


def test_espeak_fallback_when_pyttsx3_cannot_start(sounds, monkeypatch, caplog):
    """Should fall back to the espeak-ng binary (real speech) and log why when pyttsx3 fails."""
    import pyttsx3

    def broken(*args, **kwargs):
        raise RuntimeError("no libespeak here")

    monkeypatch.setattr(pyttsx3, "init", broken)
    synth = prompts.Synthesizer()
    report = prompts.render_all(sounds, 8000, langs=("zh",), keys={"digit_3"}, synth=synth)
    assert report["zh"].method == "espeak-ng"
    assert "no libespeak here" in caplog.text
    assert prompts.wav_info(sounds / "zh" / "digit_3.wav").rate == 8000


def test_call_time_tts_is_cached(sounds):
    """Should render call-time text once and reuse the file."""
    first = prompts.render_tts(sounds, "今日新闻：道路施工。", "zh", 8000)
    mtime = first.stat().st_mtime_ns
    again = prompts.render_tts(sounds, "今日新闻：道路施工。", "zh", 8000)
    assert again == first and again.stat().st_mtime_ns == mtime


def test_call_time_text_is_never_read_as_espeak_options(tmp_path):
    """Should speak a text that looks like an option ("-w<path>") instead of writing the file it names."""
    target = tmp_path / "written-by-the-text.wav"
    out = tmp_path / "call.wav"
    prompts.call_time_renderer("en", 8000)(f"-w{target}", out)
    assert not target.exists()
    assert prompts.wav_info(out).seconds > 0.2


@pytest.mark.parametrize("in_process", [True, False], ids=["pyttsx3", "espeak-ng"])
def test_rendering_leaves_the_hub_free(sounds, in_process):
    """Should keep other greenlets running while a prompt is spoken (pyttsx3 or the binary) and converted
    with sox (no ticks at all while the hub was held before)."""
    synth = prompts.Synthesizer(in_process=in_process)
    text = "感谢您致电12345政务服务便民热线，我们将竭诚为您服务，请在提示音后说出您的诉求。" * 2
    ticks, _ = ticks_during(lambda: prompts.render_text(synth, text, "zh", sounds / "long.wav", 8000))
    assert synth.method == ("pyttsx3" if in_process else "espeak-ng")
    assert ticks >= 5, ticks
    ticks, _ = ticks_during(lambda: prompts.convert(sounds / "long.wav", sounds / "again.wav", 16000))
    assert ticks >= 1, ticks
    assert prompts.wav_info(sounds / "again.wav").rate == 16000


def test_bad_prompt_files(tmp_path):
    """Should name a missing file, broken TOML and empty texts."""
    with pytest.raises(prompts.PromptError, match="prompt file missing"):
        prompts.load_texts(tmp_path, "zh")
    (tmp_path / "prompts.zh.toml").write_text("welcome = \n", encoding="utf-8")
    with pytest.raises(prompts.PromptError, match="prompts.zh.toml"):
        prompts.load_texts(tmp_path, "zh")
    (tmp_path / "prompts.zh.toml").write_text('welcome = ""\nbye = 3\n', encoding="utf-8")
    with pytest.raises(prompts.PromptError, match="bye, welcome"):
        prompts.load_texts(tmp_path, "zh")
    with pytest.raises(prompts.PromptError, match="unknown language"):
        prompts.load_texts(tmp_path, "fr")


def _wav_bytes(tmp_path, seconds=1.0, rate=16000, channels=1):
    path = tmp_path / "up.wav"
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(b"\x10\x00" * int(rate * seconds) * channels)
    return path.read_bytes()


def test_upload_replaces_prompt(sounds, tmp_path):
    """Should install a valid uploaded recording converted to the switch's rate and keep it over TTS."""
    info = prompts.install_upload(sounds, "zh", "welcome", _wav_bytes(tmp_path, 2.0, 16000, 2))
    assert (info.channels, info.rate) == (1, 8000) and 1.9 < info.seconds < 2.1
    report = prompts.render_all(sounds, 8000, langs=("zh",), keys={"welcome"})
    assert report["zh"].rendered == []


@pytest.mark.parametrize("data,message", [
    (b"this is not audio at all", "not a WAV file"),
    (b"RIFF\x00\x00\x00\x00WAVEfmt ", "not a WAV file"),
    (b"", "not a WAV file"),
])
def test_upload_rejects_non_audio(sounds, data, message):
    """Should refuse an upload that is not audio, and leave the existing prompt alone."""
    with pytest.raises(prompts.PromptError, match=message):
        prompts.install_upload(sounds, "zh", "welcome", data)
    assert not (sounds / "zh" / "welcome.wav").exists()


def test_upload_rejects_bad_length_and_key(sounds, tmp_path):
    """Should refuse too short recordings and unknown prompt keys."""
    with pytest.raises(prompts.PromptError, match="too short"):
        prompts.install_upload(sounds, "zh", "welcome", _wav_bytes(tmp_path, 0.05))
    with pytest.raises(prompts.PromptError, match="unknown prompt"):
        prompts.install_upload(sounds, "zh", "nosuch", _wav_bytes(tmp_path, 1.0))


def test_status_words_come_from_the_one_table(sounds):
    """Should speak the citizen status words of caseflow.workflow (the web's, SMS's and e-mail's) and refuse
    a prompt file that defines them a second time."""
    from caseflow.workflow import CITIZEN_WORDS

    zh, en = prompts.load_texts(sounds, "zh"), prompts.load_texts(sounds, "en")
    for key, (zh_word, en_word) in CITIZEN_WORDS.items():
        assert zh[f"status_{key}"].startswith(zh_word) and en[f"status_{key}"].startswith(en_word)
    assert zh["status_answered"] == "已答复。"
    path = prompts.prompts_file(sounds, "zh")
    path.write_text(path.read_text(encoding="utf-8") + '\nstatus_closed = "已办结。"\n', encoding="utf-8")
    with pytest.raises(prompts.PromptError, match="status_closed.*CITIZEN_WORDS"):
        prompts.load_texts(sounds, "zh")
