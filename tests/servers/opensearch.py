"""A throwaway OpenSearch-protocol server for integration tests: osmem, in memory.

The binary ships inside the ``osmem-server`` wheel (a dev dependency), so tests need no
Docker and no JVM. osmem picks its own free port (``127.0.0.1:0``) and reports the URL
once it listens, so there is no probe-then-bind race; it also exits with the test
process (``--parent-pid``), so a killed run leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

__all__ = ["OpenSearchStartError", "start_opensearch"]

_START_TIMEOUT_S = 20.0


class OpenSearchStartError(RuntimeError):
    """The osmem server could not be found or did not become ready."""


@contextlib.contextmanager
def start_opensearch() -> Iterator[str]:
    """Run osmem on a free loopback port; yield its base URL, stop it afterwards."""
    try:
        from osmem_server import OsmemError, OsmemServer
    except ModuleNotFoundError as exc:
        raise OpenSearchStartError(
            "osmem-server is not installed; it ships the test server (pip install -e '.[dev]')"
        ) from exc
    try:
        # Japanese analysis is not used here and only costs start-up time and memory.
        server = OsmemServer.start(
            addr="127.0.0.1:0", japanese=False, startup_timeout=_START_TIMEOUT_S
        )
    except OsmemError as exc:
        raise OpenSearchStartError(str(exc)) from exc
    try:
        _wait_ready(server.url)
        yield server.url
    finally:
        server.close()


def _wait_ready(url: str) -> None:
    """The ready line comes from the server itself; still, check it answers HTTP."""
    deadline = time.monotonic() + _START_TIMEOUT_S
    error = "no attempt made"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if json.load(response).get("version", {}).get("number"):
                    return
        except (OSError, ValueError) as exc:
            error = repr(exc)
        time.sleep(0.05)
    raise OpenSearchStartError(f"osmem at {url} did not answer: {error}")
