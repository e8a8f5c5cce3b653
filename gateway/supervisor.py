"""The supervisor of ``medcode serve``'s serving processes (``MEDCODE_WORKERS`` of them,
one per core by default): it starts them, restarts one that dies and stops them all.

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
import signal
import socket
import sys
import threading
import time
from types import FrameType

import uvicorn
from uvicorn.config import STARTUP_FAILURE

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


def listening(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` sockets listening on one address, one per serving process.

    Each process accepts from its own (SO_REUSEPORT), and the kernel spreads new
    connections over them. From one shared socket, whichever process woke first took
    every connection of a burst: under 16 clients' keep-alive connections, one process
    served them all while the other idled (bench/throughput.py: 110 req/s, one core).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    for _ in range(count):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            sock.close()
            for made in sockets:
                made.close()
            raise SystemExit(f"cannot listen on {host}:{port} ({error.strerror}): another "
                             "server may hold the port; stop it or set PORT") from error
        port = sock.getsockname()[1]  # port 0: the one the first was given, for all
        sock.listen(2048)
        sock.set_inheritable(True)
        sockets.append(sock)
    return sockets


class Supervisor:
    """Forks a serving process for each of ``sockets`` (``listening``); keeps one on
    each running until SIGTERM or SIGINT, then stops them (SIGTERM: uvicorn finishes
    what it serves) and waits for them."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        self.config = config
        self.sockets = sockets
        # pid -> when it started (monotonic) and the socket it accepts from
        self.children: dict[int, tuple[float, socket.socket]] = {}
        self.stopping = False
        self.exit_code = 0

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for sock in self.sockets:
            self._fork(sock)
        while self.children:
            try:
                pid, status = os.wait()
            except ChildProcessError:  # none left (every one was waited for)
                break
            child = self.children.pop(pid, None)
            if child is None or self.stopping:
                continue
            started, sock = child
            code = os.waitstatus_to_exitcode(status)
            if code == STARTUP_FAILURE:  # the app cannot start: it would fail again
                log.error("serving process %d could not start (see its log above): "
                          "stopping the server", pid)
                self.exit_code = STARTUP_FAILURE
                self._stop(signal.SIGTERM, None)
                continue
            log.warning("serving process %d ended (exit code %d): starting another", pid, code)
            if (lived := time.monotonic() - started) < _SETTLE:
                time.sleep(_SETTLE - lived)
            if not self.stopping:
                self._fork(sock)
        return self.exit_code

    def _fork(self, sock: socket.socket) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the serving process
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)  # uvicorn installs its own
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                _follow(parent)
                uvicorn.Server(self.config).run(sockets=[sock])
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
            except BaseException:
                log.exception("serving process %d failed", os.getpid())
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        self.children[pid] = (time.monotonic(), sock)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        for pid in self.children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:  # already gone: os.wait collects it
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
    sockets = listening(settings.host, settings.port, worker_count(settings))
    sys.exit(Supervisor(config, sockets).run())


if __name__ == "__main__":
    main()
