"""Dial-string safety and ACD prompt files (the readers of FreeSWITCH's lists: tests/unit/switch/test_listings.py)."""
from acd.prompts import AcdPrompts, expected_wait_minutes
from switch import commands


def test_dial_string_values_are_sanitised():
    """Should strip characters that could end a dial-string variable or add an application (the ACD cleans
    caller ids and queue names with switch.commands.scrub)."""
    assert commands.scrub("13800138000") == "13800138000"
    assert commands.scrub("1380,origination_uuid=x}&bridge(user/1)") == "1380origination_uuidxbridgeuser1"
    assert commands.scrub("a b\nc") == "abc"
    assert len(commands.scrub("9" * 500)) == 64


def test_prompt_files_rendered_once(tmp_path):
    """Should render an announcement on first use, reuse the file after, and skip it without a renderer."""
    rendered = []

    def render(text, path):
        rendered.append(text)
        path.write_bytes(b"RIFF")

    prompts = AcdPrompts(tmp_path, render=render)
    first = prompts.operator("1001")
    assert first.endswith("zh/acd/operator_1001.wav") and rendered == ["1 0 0 1号话务员为您服务。"]
    assert prompts.operator("1001") == first and len(rendered) == 1
    assert "3位来电者" in (prompts.position(4, 2, "1") and rendered[-1])
    assert prompts.position(1, 0, "1").endswith("position_first.wav")
    assert prompts.operator("../../etc").endswith("operator_etc.wav")
    assert prompts.operator("") == ""
    assert AcdPrompts(tmp_path / "empty").operator("1002") == ""
    remote = AcdPrompts(tmp_path, render=render, switch_dir="/srv/hotline-fs/sounds/")
    assert remote.operator("1001") == "/srv/hotline-fs/sounds/zh/acd/operator_1001.wav"


def test_expected_wait():
    """Should estimate at least a minute for anyone waiting, more with fewer agents."""
    assert expected_wait_minutes(0, 120, 3) == 0
    assert expected_wait_minutes(1, 10, 10) == 1
    assert expected_wait_minutes(10, 120, 2) == 10
    assert expected_wait_minutes(10, 120, 0) == 20


def test_prepare_renders_every_operator_number_and_the_fixed_announcements_once(tmp_path):
    """Should render each agent's 自动报工号 and the fixed prompts ahead of calls, each file once, even when
    two greenlets ask for the same prompt together."""
    import gevent

    rendered = []

    def render(text, path):
        rendered.append(path.name)
        gevent.sleep(0.01)  # a renderer that yields, as a subprocess does
        path.write_bytes(b"RIFF")

    prompts = AcdPrompts(tmp_path, render=render)
    jobs = [gevent.spawn(prompts.prepare, ["8001", "8002", ""]) for _ in range(2)]
    gevent.joinall(jobs, raise_error=True)
    assert all(job.value == 6 for job in jobs)
    assert sorted(rendered) == sorted(["operator_8001.wav", "operator_8002.wav", "callback_saved.wav",
                                       "overflow_callback.wav", "all_busy.wav", "position_first.wav"])
    assert AcdPrompts(tmp_path / "none").prepare(["8001"]) == 0  # no renderer: nothing, no error


def test_call_time_renderer_makes_a_real_8k_mono_prompt(tmp_path):
    """Should speak an operator number with the espeak-ng binary and sox into an 8 kHz mono WAV."""
    import wave

    from ivr.prompts import call_time_renderer

    prompts = AcdPrompts(tmp_path, render=call_time_renderer("zh", 8000))
    path = prompts.operator("8001")
    with wave.open(path) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        assert wav.getnframes() > 8000 * 0.5  # "8 0 0 1号话务员为您服务" takes well over half a second
