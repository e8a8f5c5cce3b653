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


class Supervisor:
    """Forks ``count`` serving processes that share ``sockets``; keeps ``count`` running
    until SIGTERM or SIGINT, then stops them (SIGTERM: uvicorn finishes what it serves)
    and waits for them."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket], count: int) -> None:
        self.config = config
        self.sockets = sockets
        self.count = count
        self.children: dict[int, float] = {}  # pid -> when it started (monotonic)
        self.stopping = False
        self.exit_code = 0

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for _ in range(self.count):
            self._fork()
        while self.children:
            try:
                pid, status = os.wait()
            except ChildProcessError:  # none left (every one was waited for)
                break
            started = self.children.pop(pid, None)
            if started is None or self.stopping:
                continue
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
                self._fork()
        return self.exit_code

    def _fork(self) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the serving process
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)  # uvicorn installs its own
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                _follow(parent)
                uvicorn.Server(self.config).run(sockets=self.sockets)
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
            except BaseException:
                log.exception("serving process %d failed", os.getpid())
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        self.children[pid] = time.monotonic()

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
    sockets = [config.bind_socket()]
    sys.exit(Supervisor(config, sockets, worker_count(settings)).run())


if __name__ == "__main__":
    main()
