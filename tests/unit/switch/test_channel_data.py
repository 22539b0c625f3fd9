"""switch.session.kept_channel_data: what a call keeps of its CHANNEL_DATA."""
import ast
from pathlib import Path

from switch.session import kept_channel_data

TRANSCRIPT = Path(__file__).resolve().parents[2] / "transcripts" / "outbound_socket_sip_caller_rfc2833.txt"


def real_channel_data() -> dict[str, str]:
    for line in TRANSCRIPT.read_text().splitlines():
        if "S->C b'Event-Name: CHANNEL_DATA" in line:
            raw = ast.literal_eval(line.split("S->C ", 1)[1]).decode()
            return dict(part.split(": ", 1) for part in raw.split("\n") if ": " in part)
    raise AssertionError("no CHANNEL_DATA in the transcript")


def test_keeps_what_the_app_reads_and_drops_the_other_variables():
    """Should keep the channel's and caller's headers, variable_uuid and the app's own variables, and drop the
    other channel variables of a real sofia channel."""
    data = {**real_channel_data(), "variable_hotline_attempt": "a1", "variable_hotline_queue": "general",
            "variable_fax_tone_detected": "true"}
    kept = kept_channel_data(data)
    for name in ("Core-UUID", "Unique-ID", "Channel-Unique-ID", "Caller-Caller-ID-Number",
                 "Caller-Destination-Number", "variable_uuid", "variable_hotline_attempt", "variable_hotline_queue",
                 "variable_fax_tone_detected"):
        assert kept[name] == data[name], name
    assert not [name for name in kept if name.startswith("variable_sip_")]
    assert len(kept) < len(data) - 50


def test_two_calls_share_the_names_and_short_values_they_keep():
    """Should keep one string for a header name and for a short value (inbound, CS_EXECUTE) across calls, and
    the same content as the channel sent."""
    first, second = real_channel_data(), real_channel_data()   # parsed twice: strings of their own, as two calls
    assert any(a is not b for a, b in zip(first, second))
    kept_first, kept_second = kept_channel_data(first), kept_channel_data(second)
    assert kept_first == kept_second and all(kept_first[name] == first[name] for name in kept_first)
    assert all(a is b for a, b in zip(kept_first, kept_second))
    assert kept_first["Call-Direction"] is kept_second["Call-Direction"]
    assert kept_first["Channel-State"] is kept_second["Channel-State"]
