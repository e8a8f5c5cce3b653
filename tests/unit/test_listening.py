"""The serving processes' sockets (gateway.supervisor.listening): one per process on one
address, over which the kernel spreads connections."""

from __future__ import annotations

import socket

import pytest

from gateway.supervisor import listening


def _accepted(sock: socket.socket) -> int:
    """How many connections wait on ``sock`` (each is accepted and closed)."""
    sock.setblocking(False)
    count = 0
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def test_each_serving_process_accepts_its_share_of_the_connections() -> None:
    """From one shared socket, one process could take every connection of a burst. Of 32
    connections, each of two sockets gets some (all on one: a chance of 2 in 2**32)."""
    sockets = listening("127.0.0.1", 0, 2)
    clients: list[socket.socket] = []
    try:
        port = sockets[0].getsockname()[1]
        assert sockets[1].getsockname()[1] == port  # port 0: the first one's, for both
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(32)]
        counts = [_accepted(sock) for sock in sockets]
        assert sum(counts) == 32
        assert all(counts), counts
    finally:
        for sock in (*clients, *sockets):
            sock.close()


def test_a_port_another_server_holds_is_refused_with_what_to_do() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        with pytest.raises(SystemExit, match="stop it or set PORT"):
            listening("127.0.0.1", taken.getsockname()[1], 2)
    finally:
        taken.close()
