"""Connections handed to the serving processes in turn, each to one that is ready.

The supervisor accepts every connection on the server's one listening socket and passes
it, over a Unix socket (``SCM_RIGHTS``), to the next serving process that has started, so
that each holds an even share. With a listening socket per process (``SO_REUSEPORT``) the
kernel chose the process by a hash of the client's address: the benchmark's 16 keep-alive
connections were split as unevenly as 4 and 12, and the process holding 12 answered in
94 ms what the other answered in 27 (bench/throughput.py's first-time traffic). A process
that is starting, or was just replaced, is handed nothing until it says it serves; under
``SO_REUSEPORT`` its socket's connections waited for it.

A serving process takes a connection as its own listening socket would have: uvicorn's
HTTP protocol on the accepted socket (``HandedServer``).
"""

from __future__ import annotations

import asyncio
import logging
import socket

import uvicorn

log = logging.getLogger(__name__)

READY = b"r"  # a serving process to the supervisor: it serves from now on
HANDED = b"c"  # the supervisor to a serving process, with the connection's descriptor


def channel() -> tuple[socket.socket, socket.socket]:
    """A supervisor's end and a serving process's end of the socket that hands it
    connections. Each message keeps its bounds (SEQPACKET): one connection a message."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setblocking(False)
    return ours, theirs


class Rotation:
    """The channels of the serving processes that are ready, taken in turn."""

    def __init__(self) -> None:
        self._ready: list[socket.socket] = []
        self._next = 0

    def __len__(self) -> int:
        return len(self._ready)

    def add(self, channel_: socket.socket) -> None:
        if channel_ not in self._ready:
            self._ready.append(channel_)

    def remove(self, channel_: socket.socket) -> None:
        if channel_ in self._ready:
            self._ready.remove(channel_)

    def hand(self, connection: socket.socket) -> bool:
        """Pass ``connection`` to the next ready process that takes it; False when none
        does (the caller closes it). One whose channel is full is passed over this time;
        one that has gone is passed over from now on."""
        for _ in range(len(self._ready)):
            self._next %= len(self._ready)
            taker = self._ready[self._next]
            self._next += 1
            try:
                socket.send_fds(taker, [HANDED], [connection.fileno()])
            except BlockingIOError:
                continue
            except OSError:  # its process ended: the supervisor restarts it
                self.remove(taker)
                continue
            return True
        return False


class HandedServer(uvicorn.Server):
    """A uvicorn server that serves the connections its supervisor hands it over
    ``channel_`` rather than accepting from a socket of its own."""

    def __init__(self, config: uvicorn.Config, channel_: socket.socket) -> None:
        super().__init__(config)
        self.channel = channel_
        self._opening: set[asyncio.Task[object]] = set()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # the app has started (or this process exited)
        self.channel.setblocking(False)
        asyncio.get_running_loop().add_reader(self.channel.fileno(), self._take)
        self.channel.send(READY)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Connections handed but not yet taken close with the channel.
        asyncio.get_running_loop().remove_reader(self.channel.fileno())
        self.channel.close()
        await super().shutdown(sockets)

    def _take(self) -> None:
        while True:
            try:
                message, descriptors, _, _ = socket.recv_fds(self.channel, 1, 1)
            except BlockingIOError:
                return
            if not message:  # the supervisor has gone: so does this process
                asyncio.get_running_loop().remove_reader(self.channel.fileno())
                self.should_exit = True
                return
            for descriptor in descriptors:
                self._open(socket.socket(fileno=descriptor))

    def _open(self, connection: socket.socket) -> None:
        if self.should_exit:
            connection.close()
            return
        connection.setblocking(False)
        loop = asyncio.get_running_loop()
        task = loop.create_task(loop.connect_accepted_socket(self._protocol, connection))
        self._opening.add(task)
        task.add_done_callback(self._opened)

    def _protocol(self) -> asyncio.Protocol:
        """The HTTP protocol uvicorn would serve the connection with, had it accepted it."""
        return self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )

    def _opened(self, task: asyncio.Task[object]) -> None:
        self._opening.discard(task)
        if task.cancelled() or (error := task.exception()) is None:
            return
        if isinstance(error, OSError):  # the client left before it was served
            log.info("a handed connection closed before it was served: %s", error)
        else:
            log.error("a handed connection could not be served", exc_info=error)
