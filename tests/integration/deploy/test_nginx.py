"""deploy/nginx/hotline.conf: ``nginx -t`` on the shipped configuration rendered into a temporary prefix with a
self-signed certificate (scripts/dev-cert.sh), then that nginx on 127.0.0.1 in front of a real app process
(run.py, development mode on SQLite): HTTP sent to HTTPS, /healthz with HSTS through TLS, the app's own absolute
redirect in https with the browser's host and port (ProxyFix, HOTLINE_TRUST_PROXY=1), and an event stream
whose first event arrives while the stream is still open (not held in nginx's buffer). Skipped without
nginx (Debian nginx-light, scripts/setup-system.sh) or openssl."""
from __future__ import annotations

import errno
import http.client
import os
import re
import shutil
import ssl
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import gevent
import pytest

from core.ports import listened_by
from tests.integration.product.app_process import AppProcess, Browser
from tests.ports import free_port, retry_in_use

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "deploy" / "nginx" / "hotline.conf"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
pytestmark = pytest.mark.skipif(NGINX is None or shutil.which("openssl") is None,
                                reason="nginx (Debian nginx-light) or openssl is not installed")


def render(prefix: Path, *, http_port: int, https_port: int, upstream_port: int) -> Path:
    """nginx.conf in ``prefix`` including the shipped server blocks with loopback ports, the development
    certificate and one upstream worker; returns the main file."""
    subprocess.run(["bash", str(ROOT / "scripts" / "dev-cert.sh"), str(prefix / "certs"), "127.0.0.1"], check=True,
                   capture_output=True, timeout=60)
    pem = prefix / "certs" / "wss.pem"
    text = SHIPPED.read_text()
    text = re.sub(r"\n\s*listen \[::\]:\d+[^;]*;", "", text)
    text = text.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    text = text.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    text = text.replace("/etc/hotline/tls/fullchain.pem", str(pem)).replace("/etc/hotline/tls/privkey.pem", str(pem))
    text = re.sub(r"(upstream hotline_web \{.*?)(\n\s*server 127\.0\.0\.1:\d+[^;]*;)+",
                  lambda m: f"{m.group(1)}\n    server 127.0.0.1:{upstream_port};", text, flags=re.S)
    assert f"127.0.0.1:{upstream_port}" in text and "listen 443" not in text and "[::]" not in text
    (prefix / "hotline.conf").write_text(text)
    for folder in ("logs", "temp"):
        (prefix / folder).mkdir(exist_ok=True)
    user = "user root;\n" if os.geteuid() == 0 else ""  # as root the workers would run as nobody
    main = prefix / "nginx.conf"
    main.write_text(
        f"{user}worker_processes 1;\ndaemon off;\npid {prefix}/nginx.pid;\nerror_log {prefix}/logs/error.log;\n"
        f"events {{ worker_connections 256; }}\nhttp {{\n  access_log {prefix}/logs/access.log;\n"
        + "".join(f"  {kind}_temp_path {prefix}/temp/{kind};\n"
                  for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        + f"  include {prefix}/hotline.conf;\n}}\n")
    return main


def test_shipped_configuration_passes_nginx_t(tmp_path):
    """Should pass nginx -t with the shipped TLS, upstream and stream settings."""
    main = render(tmp_path, http_port=free_port(), https_port=free_port(), upstream_port=free_port())
    done = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(main)], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    assert "syntax is ok" in done.stderr and "test is successful" in done.stderr


def _stop_nginx(nginx: subprocess.Popen) -> None:
    nginx.terminate()
    try:
        nginx.wait(timeout=10)
    except subprocess.TimeoutExpired:
        nginx.kill()
        nginx.wait(timeout=5)


def _wait_nginx(nginx: subprocess.Popen, ports: tuple[int, ...], timeout: float = 30.0) -> None:
    """Until nginx (its master process) listens on ``ports`` itself; an OSError EADDRINUSE when another process
    holds one (nginx would try binding it for 2.5 s, then exit), a RuntimeError with its stderr if it ended."""
    deadline = time.monotonic() + timeout
    while True:
        own = [listened_by(nginx.pid, port) for port in ports]
        if None in own:
            taken = ports[own.index(None)]
            raise OSError(errno.EADDRINUSE, f"nginx: another process listens on 127.0.0.1:{taken}")
        if all(own):
            return
        if nginx.poll() is not None:  # its "bind() ... failed (98: Address already in use)" is in the error
            raise RuntimeError(f"nginx exited with {nginx.returncode}: {nginx.stderr.read().decode(errors='replace')}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"nginx did not listen on 127.0.0.1 ports {ports} within {timeout} s")
        gevent.sleep(0.05)  # polling a port another process opens: there is no event to wait on


@pytest.fixture
def proxied_app(tmp_path, rendered_sounds):
    """(https base URL, http base URL, TLS context trusting the test certificate) of nginx in front of run.py,
    both started again on other free ports when one was taken before they bound it (tests.ports.retry_in_use)."""
    (tmp_path / "nginx").mkdir()
    running: list = []

    def start():
        app_port, http_port, https_port = free_port(), free_port(), free_port()
        env = {"HOTLINE_VAR_DIR": str(tmp_path / "var"), "HOTLINE_SOUNDS_DIR": str(rendered_sounds),
               "HOTLINE_HTTP": f"127.0.0.1:{app_port}", "HOTLINE_OUTBOUND": "127.0.0.1:0",
               "HOTLINE_ESL": f"127.0.0.1:{free_port()}:ClueCon", "HOTLINE_CONFIG": str(tmp_path / "none.toml"),
               "HOTLINE_MODE": "development", "HOTLINE_TRUST_PROXY": "1"}
        app = AppProcess("app", ["run.py"], env, tmp_path)
        running.append(app)
        main = render(tmp_path / "nginx", http_port=http_port, https_port=https_port, upstream_port=app_port)
        nginx = subprocess.Popen([NGINX, "-p", str(tmp_path / "nginx"), "-c", str(main)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        running.append(nginx)
        try:
            app.wait_log("web UI on http://", 120)  # its log's "Address already in use" is in the error
            _wait_nginx(nginx, (http_port, https_port))
        except Exception:
            stop()
            raise
        return https_port, http_port

    def stop():
        while running:
            process = running.pop()
            if isinstance(process, AppProcess):
                process.stop()
            else:
                _stop_nginx(process)

    try:
        https_port, http_port = retry_in_use(start)
        yield (f"https://127.0.0.1:{https_port}", f"http://127.0.0.1:{http_port}",
               ssl.create_default_context(cafile=str(tmp_path / "nginx" / "certs" / "wss.crt")))
    finally:
        stop()


def _in_thread(function):
    return gevent.get_hub().threadpool.apply(function)


def test_app_through_nginx(proxied_app):
    """Should send plain HTTP to HTTPS, serve /healthz through TLS with HSTS, and pass the agent desk's event
    stream on unbuffered: its first lines arrive while the stream stays open (two minutes)."""
    https, plain, context = proxied_app
    port = int(plain.rsplit(":", 1)[1])

    def redirect():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/healthz")
        answer = connection.getresponse()
        return answer.status, answer.getheader("Location")
    status, location = _in_thread(redirect)
    assert status == 301 and location == "https://127.0.0.1/healthz"

    def health():
        request = urllib.request.Request(f"{https}/healthz")
        try:
            with urllib.request.urlopen(request, context=context, timeout=10) as answer:
                return answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as error:  # 503 while no switch is connected: still the app's answer
            return error.code, error.headers, error.read()
    status, headers, body = _in_thread(health)
    assert status in (200, 503) and b'"db":"ok"' in body, body[:300]
    assert headers["Strict-Transport-Security"].startswith("max-age=")

    def app_redirect():
        connection = http.client.HTTPSConnection("127.0.0.1", int(https.rsplit(":", 1)[1]), timeout=10,
                                                 context=context)
        connection.request("GET", "/stats")
        answer = connection.getresponse()
        return answer.status, answer.getheader("Location")
    # Built by the app itself (Werkzeug's slash redirect) from X-Forwarded-Proto/-Host: https and the port.
    status, location = _in_thread(app_redirect)
    assert status in (301, 308) and location == f"{https}/stats/"

    browser = Browser()
    browser.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(browser.jar),
                                                 urllib.request.HTTPSHandler(context=context))
    _status, page = browser.request(f"{https}/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    status, page = browser.request(f"{https}/login", {"operator_no": "1001", "password": "demo1234",
                                                      "csrf_token": token})
    assert status == 200, page[:500]
    status, desk = browser.request(f"{https}/desk/")
    assert status == 200, desk[:500]
    desk_token = re.search(r'data-token="([^"]+)"', desk).group(1)
    # The agent desk's stream: the app sends no X-Accel-Buffering header on it, so only the shipped
    # location's proxy_buffering off lets its first lines through at once.
    lines: list[str] = []
    stop = threading.Event()
    browser.stream(f"{https}/desk/events?desk={desk_token}&max_seconds=120", lines, stop)
    deadline = 60.0
    while deadline > 0 and "retry: 2000" not in lines:
        gevent.sleep(0.1)
        deadline -= 0.1
    stop.set()
    assert "retry: 2000" in lines, lines[:10]
    assert not any(line.startswith("!error") for line in lines), lines
