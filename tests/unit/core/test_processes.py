"""core.processes.run: subprocess.run's results and errors, without forking and without blocking the hub."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading

import gevent
import pytest

from core import processes
from core.processes import run


def test_output_and_exit_code():
    """Should return the program's stdout, stderr and exit code as subprocess.run does."""
    done = run(["sh", "-c", "echo out; echo err >&2; exit 3"], capture_output=True)
    assert isinstance(done, subprocess.CompletedProcess)
    assert (done.returncode, done.stdout, done.stderr) == (3, b"out\n", b"err\n")
    assert done.args == ["sh", "-c", "echo out; echo err >&2; exit 3"]


def test_check_raises_called_process_error():
    """Should raise CalledProcessError with the output when ``check`` is set and the program fails."""
    with pytest.raises(subprocess.CalledProcessError) as caught:
        run(["sh", "-c", "echo why >&2; exit 2"], capture_output=True, check=True)
    assert caught.value.returncode == 2 and caught.value.stderr == b"why\n"


def test_input_larger_than_a_pipe_and_text_mode():
    """Should feed ``input`` larger than a pipe holds while reading the output, and decode in text mode."""
    data = bytes(range(256)) * 8192  # 2 MiB: would deadlock if written before reading
    assert run(["cat"], input=data, capture_output=True).stdout == data
    done = run(["cat"], input="一\r\n二", capture_output=True, text=True)
    assert done.stdout == "一\n二"


def test_program_that_stops_reading_its_input():
    """Should not fail when the program exits without reading all of ``input``."""
    done = run(["head", "-c", "3"], input=b"x" * 1_000_000, capture_output=True)
    assert (done.returncode, done.stdout) == (0, b"xxx")


def test_no_input_reads_dev_null():
    """Should give the program an empty stdin when no input is given."""
    assert run(["wc", "-c"], capture_output=True).stdout.strip() == b"0"


def test_timeout_kills_the_program(tmp_path):
    """Should kill the program and raise TimeoutExpired with what it wrote so far."""
    marker = tmp_path / "survived"
    with pytest.raises(subprocess.TimeoutExpired) as caught:
        run(["sh", "-c", f"echo started; sleep 30; touch {marker}"], capture_output=True, timeout=0.5)
    assert caught.value.stdout == b"started\n"
    # the shell was killed, not left running: it never gets to the touch (its sleep child is orphaned)
    assert not marker.exists()


def test_timeout_reaps_the_child(monkeypatch):
    """Should leave no zombie behind after a timeout."""
    spawned = []
    real = processes._Child.__init__

    def remember(self, *args, **kwargs):
        real(self, *args, **kwargs)
        spawned.append(self.pid)

    monkeypatch.setattr(processes._Child, "__init__", remember)
    with pytest.raises(subprocess.TimeoutExpired):
        run(["sleep", "30"], timeout=0.2)
    with pytest.raises(ChildProcessError):
        os.waitpid(spawned[0], 0)


def test_missing_program():
    """Should raise FileNotFoundError for a program not on PATH and for a missing path."""
    with pytest.raises(FileNotFoundError):
        run(["no-such-program-hotline"], capture_output=True)
    with pytest.raises(FileNotFoundError):
        run(["/nonexistent/sox"], capture_output=True)


def test_killed_by_a_signal():
    """Should report a program killed by a signal as a negative return code."""
    assert run(["sh", "-c", "kill -9 $$"]).returncode == -9


def test_pipes_above_descriptor_1024():
    """Should run a program whose pipes get descriptors above 1,023 (select() refuses those: a busy server has
    that many sockets and files open)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1200
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.skip(f"the hard limit on open files ({hard}) keeps descriptors below 1,024")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    held: list[int] = []
    try:
        while not held or held[-1] < 1100:  # every lower descriptor taken: the pipes come above
            held.append(os.open(os.devnull, os.O_RDONLY))
        done = run(["sh", "-c", "echo out; echo err >&2"], capture_output=True)
        assert (done.stdout, done.stderr) == (b"out\n", b"err\n")
        assert run(["cat"], input=b"fed", capture_output=True).stdout == b"fed"
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@contextlib.contextmanager
def _ticking():
    """A greenlet appending to the yielded list every 10 ms of the current hub while the block runs."""
    ticks: list[int] = []

    def ticker():
        while True:
            ticks.append(1)
            gevent.sleep(0.01)

    greenlet = gevent.spawn(ticker)
    gevent.sleep(0)
    try:
        yield ticks
    finally:
        greenlet.kill()


def test_hub_keeps_running_while_a_program_runs():
    """Should let other greenlets run while the program runs (the hub is not blocked)."""
    with _ticking() as ticks:
        run(["sleep", "0.5"], capture_output=True)
        during = len(ticks)
    # 0.5 s at one tick per 10 ms: a blocked hub would have let it tick once
    assert during >= 10


def test_in_a_thread_with_its_own_hub():
    """Should work from a thread with a hub of its own (no child watchers there), keeping that hub running."""
    results = {}

    def work():
        with _ticking() as ticks:
            results["done"] = run(["sh", "-c", "sleep 0.3; echo hi; exit 4"], capture_output=True)
            results["ticks"] = len(ticks)
        with pytest.raises(subprocess.TimeoutExpired):
            run(["sleep", "30"], timeout=0.2)
        results["timed_out"] = True

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(30)
    assert (results["done"].returncode, results["done"].stdout) == (4, b"hi\n")
    assert results["ticks"] >= 5 and results["timed_out"]


def test_no_fork_in_a_patched_process():
    """Should start programs without os.fork in a monkey-patched process, and still collect their status."""
    script = (
        "from gevent import monkey; monkey.patch_all()\n"
        "import os, gevent.subprocess\n"
        "forks = []\n"
        "os.register_at_fork(before=lambda: forks.append(1))\n"  # every os.fork, gevent's included
        "gevent.subprocess.run(['true'])\n"  # one fork; and gevent's own SIGCHLD handling is now on
        "from core.processes import run\n"
        "codes = [run(['sh', '-c', f'exit {i}']).returncode for i in range(5)]\n"
        "print(len(forks), codes)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1 [0, 1, 2, 3, 4]"


def test_empty_command_is_refused():
    """Should refuse an empty command with a clear error."""
    with pytest.raises(ValueError, match="no program"):
        run([])


def _wait_until(predicate, timeout: float = 10.0) -> None:
    with gevent.Timeout(timeout, AssertionError("condition not met in time")):
        while not predicate():
            gevent.sleep(0.02)


def test_supervised_program_is_started_again_and_stopped():
    """Should start a helper program, start it again after it is killed, and end it (SIGTERM) on stop."""
    import signal

    kept = processes.Supervised("sleeper", ["sleep", "60"], restart_delay=0.1)
    kept.start()
    try:
        _wait_until(lambda: kept.process is not None)
        first = kept.process.pid
        os.kill(first, signal.SIGKILL)
        _wait_until(lambda: kept.process is not None and kept.process.pid != first)
        assert kept.restarts == 1
        second = kept.process
    finally:
        kept.stop(timeout=5)
    assert second.returncode == -signal.SIGTERM and kept.process is None


def test_spawned_process_wait_with_a_timeout():
    """Should return None while the program runs and its exit code once it has ended."""
    child = processes.spawn(["sh", "-c", "sleep 0.3; exit 4"])
    assert child.wait(0.01) is None and child.returncode is None
    assert child.wait(10) == 4 and child.returncode == 4
