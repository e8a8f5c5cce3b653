"""The inbound SMTP listener (aiosmtpd), run inside the process's own event loop.

A message is read (refused with a clear 5xx when hostile or unreadable), stored durably
in the consult event store, and only then answered 250: a crash after the 250 loses
nothing, and the stored message is processed from the store (see intake.py). When the
store cannot be written the answer is 451, so the sender retries later.

Limits: message size (advertised with SIZE and enforced while reading DATA), line
length (RFC 5321's 1000 octets, aiosmtpd's own check), recipients per message, open
connections, and an idle timeout. STARTTLS is offered when a certificate is configured.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from services.consult.parsing import MailRefused, ParsedMail, parse
from services.consult.settings import ConsultSettings
from services.shared.threads import run_in_threadpool

log = logging.getLogger(__name__)

# Stores the raw message (with the parsed view of it); True when it was new.
Store = Callable[[bytes, ParsedMail, str, list[str]], Awaitable[bool]]


class ConsultHandler:
    """aiosmtpd handler: who may be written to, and what happens to a message."""

    def __init__(self, settings: ConsultSettings, store: Store) -> None:
        self.settings = settings
        self.store = store

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        local, _, domain = address.rpartition("@")
        if local.lower() != self.settings.mailbox or domain.lower() != self.settings.mail_domain:
            return f"550 5.1.1 <{address[:100]}>: no such mailbox; write to {self.settings.address}"
        if len(envelope.rcpt_tos) >= self.settings.max_recipients:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        try:
            parsed = await run_in_threadpool(parse, raw)
        except MailRefused as refused:
            log.info("refused a message from %s: %s", session.peer, refused.reply)
            return refused.reply
        try:
            new = await self.store(raw, parsed, str(envelope.mail_from or ""),
                                   list(envelope.rcpt_tos))
        except Exception:
            # Never 250 what is not stored: a 4xx makes the sending server try again.
            log.exception("could not store an inbound message; answered 451")
            return "451 4.3.0 Temporary failure storing the message, try again later"
        return "250 2.0.0 Message accepted" if new else "250 2.0.0 Message already received"


class LimitedSMTP(SMTP):
    """aiosmtpd's SMTP, refusing connections beyond the configured number with a 421."""

    def __init__(self, handler: ConsultHandler, open_connections: set[LimitedSMTP],
                 limit: int, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._open = open_connections
        self._limit = limit
        self._over_limit = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self not in self._open:  # a STARTTLS upgrade calls this again: count once
            self._over_limit = len(self._open) >= self._limit
            self._open.add(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self._open.discard(self)
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        if self._over_limit:
            await self.push("421 4.7.0 Too many connections, try again later")
            if self.transport is not None:
                self.transport.close()
            return
        await super()._handle_client()


class InboundServer:
    """The listener: started in the serving process's own loop, stopped with it."""

    def __init__(self, settings: ConsultSettings, store: Store) -> None:
        self.settings = settings
        self.handler = ConsultHandler(settings, store)
        self.connections: set[LimitedSMTP] = set()
        self._tls = settings.tls_context()  # loaded once; a bad certificate fails at start
        self._server: asyncio.Server | None = None
        self.port: int | None = None

    def _protocol(self) -> LimitedSMTP:
        settings = self.settings
        return LimitedSMTP(
            self.handler, self.connections, settings.max_connections,
            data_size_limit=settings.max_message_bytes,
            hostname=settings.mail_domain,
            tls_context=self._tls,
            timeout=settings.smtp_timeout_seconds,
            loop=asyncio.get_running_loop(),
        )

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, self.settings.smtp_host,
                                                self.settings.smtp_port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("consult mail accepted on %s:%s for %s", self.settings.smtp_host, self.port,
                 self.settings.address)

    async def serve(self) -> None:
        """Listen until cancelled (a background task of the serving process)."""
        if self._server is None:
            await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for protocol in list(self.connections):
                if protocol.transport is not None:
                    protocol.transport.close()
            await self._server.wait_closed()
            self._server = None
