"""The supervisor of ``medcode serve``'s serving processes (``MEDCODE_WORKERS`` of them,
one per core by default): it starts them, hands each in turn the connections it accepts
(gateway.handoff), restarts one that dies and stops them all.

It forks them from itself, once it has imported what each of them imports (gateway.app:
every product's modules). Forked, they share those pages with it and with each other
until one writes to them, rather than each loading its own copy: the server after the
benchmark's runs held 25-45 MB less (bench/throughput.py). ``gc.freeze`` keeps the
collector from writing to every shared object it would otherwise walk.

Nothing is started before the fork: no product, store, event loop or thread. Each serving
process starts its own platform (gateway.app), as it would in a process of its own;
forking a process with threads or open stores would hand each child a copy of state
that only the parent can use. ``medcode serve`` prepares the products, then replaces
itself with this module, so that the started platform it held is not kept (and shared)
for the server's lifetime.
"""

from __future__ import annotations

import gc
import logging
import os
import selectors
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from types import FrameType

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from gateway.handoff import READY, HandedServer, Rotation, channel
from gateway.workers import share_metrics, worker_count
from services.shared import logs
from services.shared.memory import libc, limit_arenas
from services.shared.settings import Settings

log = logging.getLogger(__name__)

# A serving process that dies within this many seconds of starting is restarted only
# after as long: one that cannot stay up must not be forked in a busy loop.
_SETTLE = 5.0


def _follow(parent: int) -> None:
    """In a serving process: its signals come from the supervisor alone, and it ends
    with the supervisor.

    Its own process group keeps a terminal's Ctrl-C (sent to the whole foreground group)
    from reaching it besides the supervisor's SIGTERM: uvicorn takes a second signal for
    "exit now", skipping the app's shutdown. Then, as nothing else would stop it, the
    kernel sends it SIGTERM when the supervisor dies, even by SIGKILL (Linux).
    """
    os.setpgid(0, 0)
    prctl = libc("prctl")  # Linux's
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before that took hold
        os._exit(0)


_PR_SET_PDEATHSIG = 1


def listening(host: str, port: int) -> socket.socket:
    """The server's listening socket: the supervisor accepts from it and hands each
    connection to a serving process (gateway.handoff)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise SystemExit(f"cannot listen on {host}:{port} ({error.strerror}): another "
                         "server may hold the port; stop it or set PORT") from error
    sock.listen(2048)
    sock.setblocking(False)
    return sock


@dataclass
class Place:
    """Where one serving process runs: when it dies, another is forked into it."""

    channel: socket.socket | None = None  # the supervisor's end (gateway.handoff)
    pid: int | None = None
    started: float = 0.0
    due: float | None = None  # when to fork again, once one has ended


class Supervisor:
    """Forks ``count`` serving processes and hands them the connections ``listener``
    accepts, in turn (gateway.handoff); keeps each running until SIGTERM or SIGINT,
    then stops them (SIGTERM: uvicorn finishes what it serves) and waits for them.

    One thread, one loop: the listener, each process's channel (it says when it is
    ready; its end closes when it dies) and a wakeup socket written by the signal
    handlers (a child ended, or stop) are watched together.
    """

    def __init__(self, config: uvicorn.Config, listener: socket.socket, count: int) -> None:
        self.config = config
        self.listener = listener
        self.places = [Place() for _ in range(count)]
        self.rotation = Rotation()
        self.selector = selectors.DefaultSelector()
        self.stopping = False
        self.stop_asked = False  # by a signal; acted on in the loop, not in the handler
        self.wakeup: tuple[socket.socket, ...] = ()  # written by the signal handlers
        self.exit_code = 0

    def run(self) -> int:
        waking, woken = self.wakeup = socket.socketpair()
        for end in self.wakeup:
            end.setblocking(False)
        signal.set_wakeup_fd(woken.fileno())
        signal.signal(signal.SIGTERM, self._asked_to_stop)
        signal.signal(signal.SIGINT, self._asked_to_stop)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # wakes the loop
        self.selector.register(waking, selectors.EVENT_READ)
        try:
            for place in self.places:
                self._fork(place)
            while any(place.pid is not None for place in self.places):
                for key, _ in self.selector.select(self._timeout()):
                    if key.fileobj is self.listener:
                        self._accept()
                    elif key.fileobj is waking:
                        while True:
                            try:
                                waking.recv(512)
                            except BlockingIOError:
                                break
                    else:
                        self._heard(key.data)
                if self.stop_asked and not self.stopping:
                    self._stop()
                self._reap()
                self._fork_due()
        finally:
            signal.set_wakeup_fd(-1)
            waking.close()
            woken.close()
        return self.exit_code

    def _timeout(self) -> float | None:
        due = [place.due for place in self.places if place.due is not None]
        return max(0.0, min(due) - time.monotonic()) if due else None

    def _fork(self, place: Place) -> None:
        ours, theirs = channel()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the serving process
            code = 0
            try:
                signal.set_wakeup_fd(-1)
                for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                    signal.signal(signum, signal.SIG_DFL)  # uvicorn installs its own
                # What only the supervisor uses.
                self.selector.close()
                for sock in (self.listener, ours, *self.wakeup,
                             *(p.channel for p in self.places if p.channel)):
                    sock.close()
                _follow(parent)
                HandedServer(self.config, theirs).run()
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
            except BaseException:
                log.exception("serving process %d failed", os.getpid())
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        theirs.close()
        place.channel, place.pid, place.started, place.due = ours, pid, time.monotonic(), None
        self.selector.register(ours, selectors.EVENT_READ, place)

    def _heard(self, place: Place) -> None:
        """What a serving process said: that it is ready, or nothing (it has ended)."""
        assert place.channel is not None
        try:
            message = place.channel.recv(16)
        except BlockingIOError:
            return
        except OSError:
            message = b""
        if message == READY:
            self.rotation.add(place.channel)
            self._listen()
        elif not message:
            self._forget(place)

    def _forget(self, place: Place) -> None:
        if place.channel is not None:
            self.rotation.remove(place.channel)
            self.selector.unregister(place.channel)
            place.channel.close()
            place.channel = None
        self._listen()

    def _listen(self) -> None:
        """Accept while some serving process is ready and the server is not stopping;
        until then, connections wait in the listener's backlog."""
        accepting = bool(self.rotation) and not self.stopping
        registered = self.listener in self.selector.get_map()
        if accepting and not registered:
            self.selector.register(self.listener, selectors.EVENT_READ)
        elif registered and not accepting:
            self.selector.unregister(self.listener)

    def _accept(self) -> None:
        while self.rotation:
            try:
                connection, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:  # out of descriptors, say: the next one may pass
                log.warning("could not accept a connection: %s", error)
                return
            with connection:  # the serving process holds its own copy
                if not self.rotation.hand(connection):
                    log.warning("no serving process could take a connection: closed")
        self._listen()  # none left: each was found gone as it was handed one

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:  # none left
                return
            if pid == 0:
                return
            place = next((p for p in self.places if p.pid == pid), None)
            if place is None:
                continue
            place.pid = None
            self._forget(place)
            if self.stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            if code == STARTUP_FAILURE:  # the app cannot start: it would fail again
                log.error("serving process %d could not start (see its log above): "
                          "stopping the server", pid)
                self.exit_code = STARTUP_FAILURE
                self._stop()
                continue
            log.warning("serving process %d ended (exit code %d): starting another", pid, code)
            place.due = place.started + _SETTLE  # not in a busy loop if it cannot stay up

    def _fork_due(self) -> None:
        now = time.monotonic()
        for place in self.places:
            if place.due is not None and place.due <= now and not self.stopping:
                self._fork(place)

    def _asked_to_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop_asked = True

    def _stop(self) -> None:
        self.stopping = True
        self._listen()
        for place in self.places:
            place.due = None
            if place.pid is not None:
                try:
                    os.kill(place.pid, signal.SIGTERM)
                except ProcessLookupError:  # already gone: _reap collects it
                    pass


def main() -> None:
    limit_arenas()  # before anything allocates: the serving processes inherit it
    logs.configure()
    settings = Settings.from_env()
    # Before importing the app: prometheus-client reads it on first import, and the
    # serving processes inherit both.
    share_metrics(settings)
    import gateway.app  # noqa: F401 - what every serving process imports, imported once

    if threading.active_count() > 1:  # a fork would copy what only those threads own
        raise RuntimeError("importing gateway.app started threads: cannot fork after it")
    gc.collect()
    gc.freeze()
    config = uvicorn.Config("gateway.app:serving_app", factory=True, host=settings.host,
                            port=settings.port, log_config=None)
    listener = listening(settings.host, settings.port)
    sys.exit(Supervisor(config, listener, worker_count(settings)).run())


if __name__ == "__main__":
    main()
