"""Connections handed to the serving processes (gateway.handoff): in turn, to those ready,
and served by uvicorn's HTTP protocol once taken; the listening socket they come from
(gateway.supervisor.listening)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from gateway.handoff import HANDED, READY, HandedServer, Rotation, channel
from gateway.supervisor import listening


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = listening("127.0.0.1", 0)
    yield sock
    sock.close()


def accepted(listener: socket.socket, clients: list[socket.socket]) -> socket.socket:
    """A new client's connection, as the supervisor accepts it."""
    clients.append(socket.create_connection(listener.getsockname(), timeout=5))
    listener.setblocking(True)
    connection, _ = listener.accept()
    return connection


def taken(theirs: socket.socket) -> list[socket.socket]:
    """The connections a serving process's end of the channel holds."""
    theirs.setblocking(False)
    found: list[socket.socket] = []
    while True:
        try:
            message, descriptors, _, _ = socket.recv_fds(theirs, 1, 1)
        except BlockingIOError:
            return found
        assert message == HANDED
        found += [socket.socket(fileno=d) for d in descriptors]


def test_connections_are_handed_in_turn_to_the_ready_processes(
    listener: socket.socket,
) -> None:
    # A kernel's hash over 16 connections split them as unevenly as 4 and 12.
    ends = [channel() for _ in range(2)]
    rotation = Rotation()
    for ours, _ in ends:
        rotation.add(ours)
    clients: list[socket.socket] = []
    try:
        for _ in range(16):
            with accepted(listener, clients) as connection:
                assert rotation.hand(connection)
        held = [taken(theirs) for _, theirs in ends]
        assert [len(h) for h in held] == [8, 8]
        # Each is the client's connection itself, open in the process that took it
        # (the supervisor's copy is closed).
        in_turn = [c for pair in zip(*held, strict=True) for c in pair]
        for client, connection in zip(clients, in_turn, strict=True):
            client.sendall(b"ping")
            assert connection.recv(4) == b"ping"
            connection.close()
    finally:
        for sock in (*clients, *(s for pair in ends for s in pair)):
            sock.close()


def test_a_process_that_has_gone_is_passed_over_and_none_ready_takes_nothing(
    listener: socket.socket,
) -> None:
    (gone, gone_theirs), (alive, alive_theirs) = channel(), channel()
    rotation = Rotation()
    rotation.add(gone)
    rotation.add(alive)
    gone_theirs.close()  # its process ended
    clients: list[socket.socket] = []
    try:
        for _ in range(3):
            with accepted(listener, clients) as connection:
                assert rotation.hand(connection)
        assert len(taken(alive_theirs)) == 3
        assert len(rotation) == 1
        rotation.remove(alive)
        with accepted(listener, clients) as connection:
            assert not rotation.hand(connection)  # the supervisor closes it
    finally:
        for sock in (*clients, gone, alive, alive_theirs):
            sock.close()


def test_a_port_another_server_holds_is_refused_with_what_to_do() -> None:
    taken_ = socket.socket()
    taken_.bind(("127.0.0.1", 0))
    taken_.listen()
    try:
        with pytest.raises(SystemExit, match="stop it or set PORT"):
            listening("127.0.0.1", taken_.getsockname()[1])
    finally:
        taken_.close()


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    """An ASGI app that answers every request with its client's port."""
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": message["type"] + ".complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = str(scope["client"][1]).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def answered(client: socket.socket) -> tuple[bytes, bytes]:
    """An HTTP response's head and body, read whole."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += client.recv(4096)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += client.recv(4096)
    return head, body


async def test_a_serving_process_says_it_is_ready_then_serves_what_it_is_handed(
    listener: socket.socket,
) -> None:
    ours, theirs = channel()
    server = HandedServer(uvicorn.Config(hello, log_config=None, lifespan="on"), theirs)
    serving = asyncio.create_task(server.serve())
    loop = asyncio.get_running_loop()
    clients: list[socket.socket] = []
    try:
        ours.setblocking(True)
        assert await asyncio.wait_for(loop.run_in_executor(None, ours.recv, 16), 10) == READY
        rotation = Rotation()
        rotation.add(ours)
        for _ in range(2):  # keep-alive: two requests on each of two connections
            connection = await loop.run_in_executor(None, accepted, listener, clients)
            with connection:
                assert rotation.hand(connection)
        for client in clients:
            for _ in range(2):
                client.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
                head, body = await loop.run_in_executor(None, answered, client)
                assert head.startswith(b"HTTP/1.1 200")
                assert body == str(client.getsockname()[1]).encode()
        # Its supervisor gone (the channel closed), it stops.
        ours.close()
        await asyncio.wait_for(serving, 10)
    finally:
        server.should_exit = True
        await asyncio.gather(serving, return_exceptions=True)
        for sock in (*clients, ours):
            sock.close()
