"""Running external programs (sox, espeak-ng, dot) from the gevent process without forking it or blocking the hub.

Why not gevent.subprocess: it starts every child with os.fork (gevent.os.fork_and_watch), and a fork copies
the parent's page tables in the one thread that runs every call. bench/ivr.py at 200 callers spent 3.3 s of
that thread in 134 forks (about 25 ms each at 160 MB RSS, growing with the process). ``run`` starts the child
with os.posix_spawn instead: glibc uses clone(CLONE_VM | CLONE_VFORK), which shares the address space until
the exec, so nothing is copied whatever the size of the process. The child's stdin, stdout and stderr are
pipes read and written through the hub (non-blocking descriptors and gevent waits), and its exit status is
collected without blocking the hub: on the default loop (the main thread, patched or not) by a libev child
watcher, which is also what stops gevent's SIGCHLD handling (it reaps every child: waitpid(-1)) from taking
the status away; on a hub of another thread by waitpid(WNOHANG) with short cooperative sleeps.

The result and the errors are subprocess.run's: CompletedProcess, TimeoutExpired (the child killed first),
CalledProcessError with ``check=True``, FileNotFoundError when the program is missing. Differences: stdin is
/dev/null when no ``input`` is given (a child never reads the server's terminal), there is no ``cwd``, and
descriptors the process opened inheritable (Python opens them non-inheritable) are inherited.

``spawn`` starts a long-lived helper the same way and returns at once; ``Supervised`` keeps one running
beside the server (started again when it ends, stopped with the server): the analysis process
(stats.analysis_process) is one.
"""
from __future__ import annotations

import errno
import locale
import os
import select
import signal
import subprocess
from typing import Mapping, Sequence

import gevent
import gevent.event
import gevent.select
from gevent.monkey import get_original

_CHUNK = 65536
_POLL_FIRST, _POLL_MOST = 0.001, 0.05
# What subprocess restores in the child (restore_signals=True): Python ignores these, a program expects them.
_DEFAULT_SIGNALS = tuple(getattr(signal, name) for name in ("SIGPIPE", "SIGXFSZ", "SIGXFZ") if hasattr(signal, name))


def run(args: Sequence[str], *, input: bytes | str | None = None, capture_output: bool = False,
        timeout: float | None = None, check: bool = False, text: bool = False,
        env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``args`` (a program found on PATH or a path, and its arguments) like subprocess.run, see the module."""
    args = [os.fspath(a) for a in args]
    if not args:
        raise ValueError("no program to run")
    if text and isinstance(input, str):
        input = input.encode(locale.getpreferredencoding(False))
    child = _Child(args, input is not None, capture_output, env)
    try:
        with gevent.Timeout(timeout, False):
            out, err = child.communicate(input or b"")
            status = child.wait()
        if child.status is None:  # the timeout left the block
            child.kill()
            out, err = child.outputs()
            raise subprocess.TimeoutExpired(args, timeout, _decoded(out, text), _decoded(err, text))
    finally:
        child.close()
    done = subprocess.CompletedProcess(args, status, _decoded(out, text), _decoded(err, text))
    if check:
        done.check_returncode()
    return done


def _decoded(data: bytes | None, text: bool):
    if data is None or not text:
        return data
    # subprocess's text mode: the locale's encoding and universal newlines
    return data.decode(locale.getpreferredencoding(False)).replace("\r\n", "\n").replace("\r", "\n")


class _Child:
    """One spawned program: its pipes, what it wrote, and its exit status once collected."""

    def __init__(self, args: list[str], feed: bool, capture: bool, env: Mapping[str, str] | None) -> None:
        self.args = args
        self.status: int | None = None
        self._out, self._err = bytearray(), bytearray()
        self._capture = capture
        self._fds: list[int] = []  # the parent's ends, closed by close()
        child_ends: list[int] = []
        actions = []
        try:
            if feed:
                read_end, self.stdin = os.pipe()
                self._fds.append(self.stdin)
                child_ends.append(read_end)
                actions.append((os.POSIX_SPAWN_DUP2, read_end, 0))
            else:
                self.stdin = None
                actions.append((os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0))
            self.stdout = self.stderr = None
            if capture:
                self.stdout, write_out = os.pipe()
                self.stderr, write_err = os.pipe()
                self._fds += [self.stdout, self.stderr]
                child_ends += [write_out, write_err]
                actions += [(os.POSIX_SPAWN_DUP2, write_out, 1), (os.POSIX_SPAWN_DUP2, write_err, 2)]
            for fd in self._fds:
                os.set_blocking(fd, False)
            self._loop = gevent.get_hub().loop
            if getattr(self._loop, "default", False):
                # Before the child exists: a SIGCHLD arriving while no handler is installed is lost.
                self._loop.install_sigchld()
            # The functions themselves: gevent's patched ones add a watcher of their own.
            spawn = get_original("os", "posix_spawn" if os.sep in args[0] else "posix_spawnp")
            self.pid = spawn(args[0], args, os.environ if env is None else env, file_actions=actions,
                             setsigmask=(), setsigdef=_DEFAULT_SIGNALS)
        except BaseException:
            for fd in self._fds:
                os.close(fd)
            self._fds = []
            raise
        finally:
            for fd in child_ends:
                os.close(fd)
        self._exited = gevent.event.Event()
        self._watcher = None
        if getattr(self._loop, "default", False):
            # Started before this greenlet yields: the loop reaps children only while it runs.
            self._watcher = self._loop.child(self.pid, False)
            self._watcher.start(self._on_exit)

    def _on_exit(self) -> None:
        self.status = os.waitstatus_to_exitcode(self._watcher.rstatus)
        self._watcher.stop()
        self._exited.set()

    def communicate(self, data: bytes) -> tuple[bytes | None, bytes | None]:
        """Write ``data`` to stdin (then close it) and read stdout and stderr to their ends, cooperatively."""
        view = memoryview(data)
        # poll, not select: select() refuses descriptors above 1,023, which a busy server's pipes get.
        # gevent's poll waits on each descriptor with a watcher of the hub's loop (epoll).
        waiting, watched = gevent.select.poll(), set()
        for fd in (self.stdout, self.stderr):
            if fd is not None:
                waiting.register(fd, select.POLLIN)
                watched.add(fd)
        if self.stdin is not None:
            if view:
                waiting.register(self.stdin, select.POLLOUT)
                watched.add(self.stdin)
            else:
                self._close(self.stdin)
        while watched:
            for fd, _ in waiting.poll():
                if fd == self.stdin:
                    try:
                        view = view[os.write(fd, view[:_CHUNK]):]
                    except BrokenPipeError:
                        view = view[:0]  # the program stopped reading: what it wrote still counts
                    except BlockingIOError:
                        continue
                    if not view:
                        waiting.unregister(fd)  # before the close: a closed descriptor cannot be watched
                        watched.discard(fd)
                        self._close(fd)
                    continue
                try:
                    piece = os.read(fd, _CHUNK)
                except BlockingIOError:
                    continue
                if piece:
                    (self._out if fd == self.stdout else self._err).extend(piece)
                else:
                    waiting.unregister(fd)
                    watched.discard(fd)
        return self.outputs()

    def outputs(self) -> tuple[bytes | None, bytes | None]:
        return (bytes(self._out), bytes(self._err)) if self._capture else (None, None)

    def wait(self) -> int:
        """The exit code (negative: the signal), collected without blocking the hub."""
        if self._watcher is not None:
            self._exited.wait()
            return self.status
        pause = _POLL_FIRST
        while self.status is None:
            try:
                pid, raw = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                # Reaped by someone else (the default loop's SIGCHLD handling): the status is lost, as
                # subprocess has it then.
                self.status = 0
                break
            if pid:
                self.status = os.waitstatus_to_exitcode(raw)
                break
            gevent.sleep(pause)
            pause = min(pause * 2, _POLL_MOST)
        return self.status

    def kill(self) -> None:
        """SIGKILL the program and collect it (its pipes then end at once)."""
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            with gevent.Timeout(5, False):
                self.wait()

    def _close(self, fd: int) -> None:
        if fd in self._fds:
            self._fds.remove(fd)
            os.close(fd)

    def close(self) -> None:
        """Close the pipes; a program still running (an exception got here) is killed and collected."""
        if self.status is None:
            self.kill()
        for fd in list(self._fds):
            self._close(fd)
        if self._watcher is not None and self.status is None:
            self._watcher.stop()



class Process:
    """A long-lived program started by ``spawn`` (posix_spawn, as ``run``): stdin /dev/null, stdout and
    stderr the server's own; its exit status collected without blocking the hub."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        self._child = _Child([os.fspath(a) for a in args], False, False, env)
        self.args = self._child.args
        self.pid = self._child.pid

    @property
    def returncode(self) -> int | None:
        """The exit code once the program has ended and been collected (negative: the signal), else None."""
        return self._child.status

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code, waiting up to ``timeout`` seconds (None: for ever); None if still running then."""
        with gevent.Timeout(timeout, False):
            return self._child.wait()
        return self._child.status

    def signal(self, signum: int) -> None:
        """Send ``signum`` unless the program has been collected already."""
        if self._child.status is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL if it has not ended within ``timeout`` seconds; returns the exit code."""
        self.signal(signal.SIGTERM)
        if self.wait(timeout) is None:
            self._child.kill()
        return self._child.status


def spawn(args: Sequence[str], *, env: Mapping[str, str] | None = None) -> Process:
    """Start ``args`` and return at once (a helper the server keeps running, see ``Supervised``)."""
    if not args:
        raise ValueError("no program to run")
    return Process(args, env)


class Supervised:
    """A helper program kept running beside the server: started with ``spawn``, started again after it ends
    (``restart_delay`` seconds later, doubling up to ``max_delay`` while it keeps dying within a minute of
    its start), stopped with the server (``stop``: SIGTERM, SIGKILL after a grace time). ``restarts``
    counts the starts after the first; ``process`` is the current one (None between two)."""

    def __init__(self, name: str, args: Sequence[str], *, env: Mapping[str, str] | None = None,
                 restart_delay: float = 1.0, max_delay: float = 30.0) -> None:
        self.name, self.args, self.env = name, list(args), env
        self.restart_delay, self.max_delay = restart_delay, max_delay
        self.process: Process | None = None
        self.restarts = 0
        self.started = gevent.event.Event()  # set at each start; tests and callers may clear it to wait
        self._stopping = gevent.event.Event()
        self._keeper = None

    def start(self) -> None:
        if self._keeper is None:
            self._keeper = gevent.spawn(self._keep)

    def _keep(self) -> None:
        import logging
        import time

        log = logging.getLogger(__name__)
        quick = 0  # ends in a row within a minute of their start
        while not self._stopping.is_set():
            began = time.monotonic()
            try:
                self.process = spawn(self.args, env=self.env)
            except OSError as exc:
                log.error("%s: cannot start %s: %s", self.name, self.args[0], exc)
                status = None
            else:
                log.info("%s started (pid %d)", self.name, self.process.pid)
                self.started.set()
                status = self.process.wait()
            self.process = None
            if self._stopping.is_set():
                break
            quick = quick + 1 if time.monotonic() - began < 60 else 0
            delay = min(self.restart_delay * 2 ** max(quick - 1, 0), self.max_delay)
            log.error("%s ended (exit %s); starting it again in %.0f s", self.name, status, delay)
            if self._stopping.wait(delay):
                break
            self.restarts += 1

    def stop(self, timeout: float = 5.0) -> None:
        """Stop keeping it and end the program (SIGTERM, then SIGKILL after ``timeout`` seconds)."""
        self._stopping.set()
        process = self.process
        if process is not None:
            process.stop(timeout)
        if self._keeper is not None:
            self._keeper.join(timeout)
            self._keeper = None
