"""Replay the client side of a real capture (tests/transcripts) against the fake switch and pair every frame
the fake sends with the frame the real switch sent for the same command or event, header by header.

A capture is a list of wire steps per connection (`CTL`/`IN`: an inbound connection to the event socket,
`OUT`: the outbound socket the switch opened to the listener). The replay writes each captured command on the
same kind of connection, after the fake has sent its counterparts of every frame the real switch had sent
before that command (or a short wait passed: a frame the fake never sends is a drift, reported later).
Uuids the real switch chose (a B leg, a job) are replaced in later commands by the fake's, learned from the
frames already paired; file paths under /srv/hotline-fs/ go to a temporary folder and back.

Frames are paired by what they answer or report, not by position: the n-th reply on a connection, or the
n-th event of the same name, subclass, channel, application, state, action on that connection. Values are
compared after masking what differs by nature (uuids are compared through the learned map, times and
counters by shape); `Drift` lists what is left, readably.
"""
from __future__ import annotations

import json
import re
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import gevent
from gevent import socket as gsocket
from gevent.server import StreamServer

from tests.fakeswitch import transcript

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SRV = "/srv/hotline-fs/"
LISTENER = "127.0.0.1:8084"    # the capture's outbound socket listener

# Header values that differ by nature, compared by shape only.
ENVIRONMENT = {"FreeSWITCH-Hostname", "FreeSWITCH-Switchname", "FreeSWITCH-IPv4", "FreeSWITCH-IPv6",
               "Event-Sequence", "Content-Length", "Core-UUID", "Event-Date-Local", "Event-Date-GMT",
               "Event-Date-Timestamp", "variable_session_id"}
# Values measured off the media and the clock (durations, lengths, sizes): the fake's follow its simulated
# time, so they are compared by presence only.
MEASURED = re.compile(r"^(variable_(\w*(sec|msec|usec)|[mu]?duration|playback_(seconds|ms|samples|last_offset_pos)"
                      r"|record_(\w*file_size|seconds|ms|samples))"
                      r"|Playback-Status)$")   # done or break: whether a digit came within the prompt


# Replies that tell the host, its build or its clock (compared by kind only).
ENVIRONMENT_COMMANDS = re.compile(r"^(api |bgapi )?(version|status|uptime|hostname)\b")

# Variables only a real endpoint or the capture's configuration has, left out of the comparison, each for
# a reason (test_capture_headers checks that the application reads none of them):
ENDPOINT_ONLY = re.compile(
    # the SIP stack and the media engine: SIP dialog details, SDP, RTP statistics, media addresses
    r"^variable_(sip_(?!hangup_disposition$)|rtp_|switch_[rl]_sdp$|ep_codec_string$|\w*media_flow$"
    r"|local_media_|advertised_media_ip$|remote_media_|original_read_|sofia_profile_url$"
    r"|recovery_profile_name$|max_forwards$|DP_MATCH$|RFC2822_DATE$|export_vars$|originate_early_media$"
    r"|originate_endpoint$"
    # the directory lookup's event headers sofia copies onto the channel
    r"|Event-|Core-UUID$|FreeSWITCH-)"
    # the stock demo directory user the capture's SIP phones registered as (this product's directory in
    # freeswitch-conf has its own), on the channel and in sofia::register
    r"|^(variable_)?(number_alias|requested_user_name|requested_domain_name|record_stereo|default_gateway"
    r"|default_areacode|transfer_fallback_extension|toll_allow|accountcode|user_context|effective_caller_id_\w+"
    r"|outbound_caller_id_\w+|callgroup|user_name|domain_name)$")
# Variables only the fake has: its scripted caller's DTMF mode (what a SIP caller's phone decides).
FAKE_ONLY = re.compile(r"^variable_dtmf_type$")


def exempt(name: str) -> bool:
    """A header left out of the comparison (see ENDPOINT_ONLY and FAKE_ONLY)."""
    return bool(ENDPOINT_ONLY.match(name) or FAKE_ONLY.match(name))


@dataclass
class Parsed:
    """One frame: its outer headers, the event's headers (decoded) when it is an event, the body."""
    raw: bytes
    outer: list[tuple[str, str]]
    event: list[tuple[str, str]] | None
    body: str
    fmt: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.event if self.event is not None else self.outer)

    @property
    def content_type(self) -> str:
        return dict(self.outer).get("Content-Type", "")


def parse(raw: bytes) -> Parsed:
    """Split a complete frame (as the captures hold it) into headers and body."""
    head, _, body = raw.partition(b"\n\n")
    outer = [tuple(line.split(": ", 1)) if ": " in line else (line.rstrip(":"), "")
             for line in head.decode("utf-8").split("\n") if line]
    ctype = dict(outer).get("Content-Type")
    if ctype == "text/event-plain":
        ihead, _, ibody = body.partition(b"\n\n")
        event = []
        for line in ihead.decode("utf-8").split("\n"):
            if line:
                k, _, v = line.partition(": ")
                event.append((k, urllib.parse.unquote(v)))
        return Parsed(raw, outer, event, ibody.decode("utf-8", "replace"), "plain")
    if ctype == "text/event-json":
        obj = json.loads(body)
        event = [(k, str(v)) for k, v in obj.items() if k != "_body"]
        return Parsed(raw, outer, event, str(obj.get("_body", "")), "json")
    if any(k == "Event-Name" for k, _ in outer):   # the connect reply (Content-Type near its end)
        return Parsed(raw, outer, [(k, urllib.parse.unquote(v)) for k, v in outer], "", "data")
    return Parsed(raw, outer, None, body.decode("utf-8", "replace"))


def key_of(p: Parsed, replies: int) -> tuple:
    """What a frame answers or reports (without the occurrence count)."""
    ctype = p.content_type
    if p.event is None or p.fmt == "data":
        if ctype in ("command/reply", "api/response") or p.fmt == "data":
            return ("reply", replies)
        return (ctype or "?", dict(p.outer).get("Content-Disposition", ""))
    h = p.headers
    name = h.get("Event-Name", "")
    k = [name, h.get("Event-Subclass", ""), h.get("Channel-Name", h.get("Member-Channel-Name", ""))]
    if name in ("CHANNEL_STATE", "CHANNEL_CALLSTATE"):
        k += [h.get("Channel-State", ""), h.get("Channel-Call-State", "")]
    elif name in ("CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE"):
        k.append(h.get("Application", ""))
    elif name == "CUSTOM":
        k.append(h.get("Action", ""))
    elif name == "DTMF":
        k.append(h.get("DTMF-Digit", ""))
    elif name == "BACKGROUND_JOB":
        k.append(h.get("Job-Command", ""))
    elif name == "CODEC":
        k.append("write" if "Channel-Write-Codec-Name" in h else "read")
    elif name == "API":
        k.append(h.get("API-Command", ""))
    return tuple(k)


def keyed(frames: list[Parsed]) -> list[tuple]:
    """Each frame's key with its occurrence number among frames of the same key."""
    out, seen, replies = [], {}, 0
    for p in frames:
        k = key_of(p, replies)
        if k[0] == "reply":
            replies += 1
        n = seen.get(k, 0)
        seen[k] = n + 1
        out.append(k + (n,))
    return out


# -- value normalisation ----------------------------------------------------------------------------------

def shape(value: str) -> str:
    """A value that differs by nature, reduced to its kind."""
    v = UUID.sub("<uuid>", value)
    v = re.sub(r'("(?:run_time|join_time|last_talking)":\t)\d+', r"\1<seconds>", v)   # conference json_list
    v = re.sub(r"\b\d{16}\b", "<usec>", v)
    v = re.sub(r"\b\d{13}\b", "<msec>", v)
    v = re.sub(r"\b1[6-9]\d{8}\b", "<epoch>", v)
    v = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "<stamp>", v)
    v = re.sub(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", "<gmt>", v)
    return v


# -- the replay ------------------------------------------------------------------------------------------

class Conn:
    """One of the replay's connections to (or from) the fake: a reader greenlet keeps every frame."""

    def __init__(self, name: str, sock):
        self.name = name
        self.sock = sock
        self.buf = b""
        self.frames: list[Parsed] = []
        self.closed = False
        self.reader = gevent.spawn(self._read)

    def _read(self) -> None:
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                self.buf += data
                while True:
                    head_end = self.buf.find(b"\n\n")
                    if head_end < 0:
                        break
                    head = self.buf[:head_end].decode("utf-8", "replace")
                    m = re.search(r"^Content-Length: (\d+)$", head, re.M)
                    length = int(m.group(1)) if m else 0
                    end = head_end + 2 + length
                    if len(self.buf) < end:
                        break
                    raw, self.buf = self.buf[:end], self.buf[end:]
                    self.frames.append(parse(raw))
        except OSError:
            pass
        finally:
            self.closed = True

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


@dataclass
class Replay:
    """The outcome: per connection, the real frames and the fake's, and the uuid map learned."""
    real: dict[str, list[Parsed]] = field(default_factory=dict)
    fake: dict[str, list[Parsed]] = field(default_factory=dict)
    uuids: dict[str, str] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(default_factory=dict)   # per connection, the n-th answered by reply n

    def environment_reply(self, conn: str, key: tuple) -> bool:
        """A reply to a command whose answer is the host's (version, status...)."""
        cmds = self.commands.get(conn, [])
        return key[0] == "reply" and key[1] < len(cmds) and bool(ENVIRONMENT_COMMANDS.match(cmds[key[1]]))

    def pairs(self, conn: str):
        """(key, real frame or None, fake frame or None) for every key on `conn`, in the real order first."""
        r = dict(zip(keyed(self.real.get(conn, [])), self.real.get(conn, [])))
        f = dict(zip(keyed(self.fake.get(conn, [])), self.fake.get(conn, [])))
        for k in r:
            yield k, r[k], f.get(k)
        for k in f:
            if k not in r:
                yield k, None, f[k]


def learn_uuids(real: Parsed, fake: Parsed, uuids: dict[str, str]) -> None:
    """Where both frames hold a uuid under the same header (or in the same body position), they name the
    same thing: remember the pair."""
    rh, fh = real.headers, fake.headers
    for k, v in rh.items():
        rv, fv = UUID.findall(v), UUID.findall(fh.get(k, ""))
        if len(rv) == len(fv):
            for a, b in zip(rv, fv):
                uuids.setdefault(a, b)
    rb, fb = UUID.findall(real.body), UUID.findall(fake.body)
    if len(rb) == len(fb):
        for a, b in zip(rb, fb):
            uuids.setdefault(a, b)


def replay(fs, capture: Path, tmp: Path, *, outbound_route: str | None = None, place_call=None,
           wait: float = 1.5) -> Replay:
    """Run the capture's client side against the started fake `fs`.

    `outbound_route`: the extension the capture's dialplan sends to the socket (the fake connects the OUT
    connection when a channel reaches it); `place_call(address)`: instead, a call the fake places into the
    listener (a SIP caller). Returns the frames of both sides per connection."""
    t = transcript.load(capture)
    result = Replay()
    conns: dict[str, Conn] = {}
    accepted: list = []

    def on_accept(sock, address):
        accepted.append(sock)
        gevent.sleep(3600)   # keep the socket open while the replay runs

    server = StreamServer(("127.0.0.1", 0), on_accept)
    server.start()
    address = ("127.0.0.1", server.address[1])
    if outbound_route:
        fs.route_to_socket(outbound_route, address)
    srv_dir = str(tmp).rstrip("/") + "/"
    listen = f"127.0.0.1:{address[1]}"

    def to_fake(data: bytes) -> bytes:
        text = data.decode("utf-8")
        text = UUID.sub(lambda m: result.uuids.get(m.group(0), m.group(0)), text)
        return text.replace(SRV, srv_dir).encode("utf-8")

    def real_before(index: int) -> dict[str, list[tuple]]:
        """The keys of every frame the real switch had sent, per connection, before step `index`."""
        out: dict[str, list[Parsed]] = {}
        for s in t.steps[:index]:
            if s.direction == "S->C" and s.data is not None:
                out.setdefault(s.conn, []).append(parse(s.data))
        return {c: keyed(fr) for c, fr in out.items()}

    def pair_up() -> None:
        for c, conn in conns.items():
            real = result.real.setdefault(c, [parse(d) for d in t.frames(c)])
            rk = dict(zip(keyed(real), real))
            for k, p in zip(keyed(list(conn.frames)), list(conn.frames)):
                if k in rk:
                    learn_uuids(rk[k], p, result.uuids)

    def wait_for(keys: dict[str, list[tuple]]) -> None:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            pair_up()
            if all(c in conns and set(ks) <= set(keyed(list(conns[c].frames))) for c, ks in keys.items()):
                return
            gevent.sleep(0.01)

    try:
        if place_call is not None:
            place_call(address)
        for i, s in enumerate(t.steps):
            if s.direction != "C->S":
                continue
            wait_for(real_before(i))
            if s.conn not in conns:
                if s.conn == "OUT":
                    deadline = time.monotonic() + 5
                    while not accepted and time.monotonic() < deadline:
                        gevent.sleep(0.01)
                    if not accepted:
                        raise AssertionError("the fake never connected to the outbound socket")
                    conns["OUT"] = Conn("OUT", accepted[0])
                else:
                    conns[s.conn] = Conn(s.conn, gsocket.create_connection(fs.address, timeout=5))
            if s.data is None:
                conns[s.conn].close()
                continue
            conns[s.conn].send(to_fake(s.data))
        wait_for(real_before(len(t.steps)))
        pair_up()
    finally:
        for c in conns.values():
            c.close()
        server.stop(timeout=1)
    for c, conn in conns.items():
        result.fake[c] = list(conn.frames)
        result.real.setdefault(c, [parse(d) for d in t.frames(c)])
        result.commands[c] = [d.decode("utf-8", "replace").split("\n", 1)[0] for d in t.commands(c)]
    # paths back to the capture's, so values compare
    for frames in result.fake.values():
        for p in frames:
            if p.event is not None:
                p.event = [(k, v.replace(srv_dir, SRV).replace(listen, LISTENER)) for k, v in p.event]
            p.body = p.body.replace(srv_dir, SRV)
    return result


# -- the comparison --------------------------------------------------------------------------------------

@dataclass
class Drift:
    """What differs in one pair of frames (or a frame only one side sent)."""
    conn: str
    key: tuple
    missing_frame: bool = False      # the real switch sent it, the fake did not
    extra_frame: bool = False        # the fake sent it, the real switch did not
    missing: list[str] = field(default_factory=list)           # header names only the real frame has
    extra: list[str] = field(default_factory=list)             # header names only the fake frame has
    values: list[tuple[str, str, str]] = field(default_factory=list)   # (name, real, fake), normalised

    def __bool__(self) -> bool:
        return self.missing_frame or self.extra_frame or bool(self.missing or self.extra or self.values)

    def describe(self) -> str:
        what = " ".join(str(x) for x in self.key if x != "")
        if self.missing_frame:
            return f"{self.conn} {what}: the fake never sent it"
        if self.extra_frame:
            return f"{self.conn} {what}: only the fake sent it"
        lines = [f"{self.conn} {what}:"]
        if self.missing:
            lines.append("    missing: " + ", ".join(self.missing))
        if self.extra:
            lines.append("    extra:   " + ", ".join(self.extra))
        for name, r, f in self.values:
            lines.append(f"    {name}: real {r!r} fake {f!r}")
        return "\n".join(lines)


def compare_pair(conn: str, key: tuple, real: Parsed | None, fake: Parsed | None, uuids: dict[str, str],
                 ignore_names=exempt, call_specific=lambda name: False) -> Drift:
    """The drift between a real frame and the fake's for the same key."""
    d = Drift(conn, key)
    if fake is None:
        d.missing_frame = True
        return d
    if real is None:
        d.extra_frame = True
        return d
    back = {v: k for k, v in uuids.items()}
    rh, fh = real.headers, fake.headers
    rn = [k for k in rh if not ignore_names(k)]
    fn = [k for k in fh if not ignore_names(k)]
    d.missing = [k for k in rn if k not in fh]
    d.extra = [k for k in fn if k not in rh]
    for k in rn:
        if k not in fh:
            continue
        rv, fv = rh[k], fh[k]
        if k in ENVIRONMENT or MEASURED.match(k) or call_specific(k):
            continue
        else:
            # a uuid of the fake's stands for the real one it was paired with; one never seen is a uuid
            fv = UUID.sub(lambda m: back.get(m.group(0), "<uuid>"), fv)
            rv = UUID.sub(lambda m: m.group(0) if m.group(0) in uuids else "<uuid>", rv)
            rv, fv = shape(rv), shape(fv)
        if rv != fv:
            d.values.append((k, rv, fv))
    if real.event is None and real.body != fake.body and not call_specific("_body"):
        rb = shape(UUID.sub("<uuid>", real.body))
        fb = shape(UUID.sub("<uuid>", fake.body))
        if rb != fb:
            d.values.append(("(body)", rb[:200], fb[:200]))
    return d


def drifts(result: Replay, conn: str, skip=lambda p: False, mask_body=lambda text: text, **kw) -> list[Drift]:
    """The drifts on one connection. `skip(frame)`: frames left out on both sides (with a reason at the
    caller); `mask_body(text)`: a reply body with what is particular to the captured call masked."""
    out = []
    for k, r, f in result.pairs(conn):
        if (r is not None and skip(r)) or (f is not None and skip(f)):
            continue
        if r is not None and f is not None and result.environment_reply(conn, k):
            continue
        if r is not None and f is not None and r.event is None:
            r, f = Parsed(r.raw, r.outer, None, mask_body(r.body)), Parsed(f.raw, f.outer, None, mask_body(f.body))
        d = compare_pair(conn, k, r, f, result.uuids, **kw)
        if d:
            out.append(d)
    return out


def report(found: list[Drift]) -> str:
    """The drifts grouped by what drifted, each with the frames it drifted on: one line per difference."""
    groups: dict[str, list[str]] = {}
    for d in found:
        frame = " ".join(str(x) for x in d.key[:-1] if x != "") + (f" #{d.key[-1] + 1}" if d.key[-1] else "")
        where = f"{d.conn} {frame}"
        if d.missing_frame:
            groups.setdefault("frame the fake never sent", []).append(where)
        if d.extra_frame:
            groups.setdefault("frame only the fake sent", []).append(where)
        for name in d.missing:
            groups.setdefault(f"header missing: {name}", []).append(where)
        for name in d.extra:
            groups.setdefault(f"header the real switch does not send: {name}", []).append(where)
        for name, r, f in d.values:
            groups.setdefault(f"value of {name}: real {r!r}, fake {f!r}", []).append(where)
    lines = []
    for what, where in groups.items():
        shown = "; ".join(where[:4]) + (f"; ... ({len(where)} frames)" if len(where) > 4 else "")
        lines.append(f"- {what}\n      on {shown}")
    return "\n".join(lines)


def order_drifts(result: Replay, conn: str, skip=lambda p: False) -> list[str]:
    """Each channel's events, in the order the real switch sent them, against the fake's for the same channel
    (the uuid pairs learned): one line per channel whose sequence differs, showing where. Digits are a
    sequence of their own: where one falls against a prompt's end is a matter of timing."""
    def per_channel(frames, to_real=lambda u: u):
        out: dict[str, list[tuple]] = {}
        for k, p in zip(keyed(frames), frames):
            if p.event is None or skip(p):
                continue
            u = p.headers.get("Unique-ID")
            if u:
                out.setdefault(to_real(u) + ("/dtmf" if k[0] == "DTMF" else ""), []).append(k[:-1])
        return out
    back = {v: k for k, v in result.uuids.items()}
    real = per_channel(result.real.get(conn, []))
    fake = per_channel(result.fake.get(conn, []), lambda u: back.get(u, u))
    lines = []
    for u, seq in real.items():
        got = fake.get(u, [])
        if got != seq:
            n = next((i for i, (x, y) in enumerate(zip(seq, got)) if x != y), min(len(seq), len(got)))
            name = next((p.headers.get("Channel-Name") for p in result.real[conn]
                         if p.event is not None and p.headers.get("Unique-ID") == u.split("/")[0]), u)
            name += " (digits)" if u.endswith("/dtmf") else ""
            show = lambda s: "; ".join(" ".join(str(x) for x in k[:1] + k[3:] if x != "") for k in s[n:n + 3])
            lines.append(f"- {name}: event {n + 1} differs: real [{show(seq)}], fake [{show(got)}]")
    return lines
