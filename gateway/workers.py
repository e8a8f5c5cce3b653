"""Serving from several processes while each projection keeps exactly one writer.

``medcode serve`` starts one HTTP process per CPU core (``MEDCODE_WORKERS``). Each
answers requests; only the one holding the background lock (a file lock under
``DATA_DIR``, taken without waiting) runs the relays and consumers, so embedded mode
keeps one writer per projection. When that process exits, its lock goes with it; a
replacement worker takes it on start.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path
from typing import IO

from services.shared.settings import Settings


def worker_count(settings: Settings) -> int:
    return settings.serve_workers if settings.serve_workers > 0 else (os.cpu_count() or 1)


class BackgroundLock:
    """An exclusive, non-blocking lock on ``path``, held until released or the process
    ends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._handle = handle
        return True

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def share_metrics(settings: Settings) -> Path:
    """Before the serving processes start: a fresh directory where each writes its
    Prometheus figures, so that ``/metrics`` reports the whole server whichever process
    answers (services/shared/metrics.py). Set in the environment they inherit, since
    prometheus-client reads it when a process first imports it."""
    directory = settings.data_dir / "prometheus"
    shutil.rmtree(directory, ignore_errors=True)  # figures of an earlier start
    directory.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory.resolve())
    return directory


def background_lock(settings: Settings) -> BackgroundLock:
    return BackgroundLock(settings.data_dir / "background.lock")
