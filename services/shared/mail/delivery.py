"""Delivery: pending messages out of the outbox, over SMTP or into ``.eml`` files.

The worker never drops a message: a temporary failure (relay down, timeout, a 4xx
answer) is retried with capped exponential backoff and jitter, for as long as it takes;
only a permanent refusal (a 5xx answer for every recipient) marks the row failed, and
the row stays in the outbox with the error for an operator to read.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import aiosmtplib

from services.shared.mail.outbox import Outbox, Pending
from services.shared.threads import run_in_threadpool

log = logging.getLogger(__name__)


class TemporaryFailure(Exception):
    """Try again later: the relay is unreachable, busy or answered 4xx."""


class PermanentFailure(Exception):
    """The relay refused the message for good (5xx); retrying cannot help."""


class Transport(Protocol):
    async def send(self, message: Pending) -> None:
        """Hand the message over; raise TemporaryFailure or PermanentFailure."""


@dataclass(frozen=True)
class SmtpTransport:
    """aiosmtplib to ``host:port``; STARTTLS when the relay offers it (``starttls=None``),
    always (True: a relay without it is a temporary failure) or never (False)."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    starttls: bool | None = None
    ca_file: str | None = None  # trust this CA bundle (a relay with a private certificate)
    timeout: float = 30.0

    async def send(self, message: Pending) -> None:
        try:
            await aiosmtplib.send(
                message.raw, sender=_envelope_sender(message.sender),
                recipients=message.recipients, hostname=self.host, port=self.port,
                username=self.username, password=self.password, start_tls=self.starttls,
                cert_bundle=self.ca_file, timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            if all(r.code >= 500 for r in exc.recipients):
                raise PermanentFailure(f"every recipient refused: {exc.recipients}") from exc
            raise TemporaryFailure(str(exc)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            if 500 <= exc.code < 600 and not isinstance(exc, aiosmtplib.SMTPAuthenticationError):
                raise PermanentFailure(f"{exc.code} {exc.message}") from exc
            raise TemporaryFailure(f"{exc.code} {exc.message}") from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TemporaryFailure(f"{type(exc).__name__}: {exc}") from exc


def _envelope_sender(header: str) -> str:
    from email.utils import parseaddr

    return parseaddr(header)[1] or header


class FileTransport:
    """Writes each message as ``<directory>/<UTC time>-<outbox id>.eml`` (the embedded
    default, with no relay): readable by any mail client, and by people."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send(self, message: Pending) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = self.directory / f"{stamp}-{message.id:06d}.eml"
        try:
            await run_in_threadpool(_write_atomically, path, message.raw)
        except OSError as exc:
            raise TemporaryFailure(f"cannot write {path}: {exc}") from exc
        log.info("mail %s to %s written to %s", message.message_id,
                 ", ".join(message.recipients), path)


def _write_atomically(path: Path, raw: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".eml.partial")
    with open(partial, "wb") as out:
        out.write(raw)
        out.flush()
        os.fsync(out.fileno())
    partial.replace(path)  # a reader never sees half a message


@dataclass(frozen=True)
class Backoff:
    """Delay before try ``n + 1``: base * 2**n, at most ``cap``, with +-20% jitter."""

    base: timedelta = timedelta(seconds=5)
    cap: timedelta = timedelta(minutes=15)

    def delay(self, attempts: int, rng: random.Random) -> timedelta:
        seconds = min(self.base.total_seconds() * 2 ** min(attempts, 30),
                      self.cap.total_seconds())
        return timedelta(seconds=seconds * rng.uniform(0.8, 1.2))


class MailDelivery:
    """The delivery worker: claims due messages, sends them, records the outcome."""

    name = "mail delivery"

    def __init__(
        self,
        outbox: Outbox,
        transport: Transport,
        *,
        backoff: Backoff | None = None,
        batch: int = 20,
        lease: timedelta = timedelta(minutes=5),
        poll_interval: float = 1.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.outbox = outbox
        self.transport = transport
        self.backoff = backoff or Backoff()
        self.batch = batch
        self.lease = lease
        self.poll_interval = poll_interval
        self.clock = clock
        self._rng = random.Random()  # noqa: S311 - backoff jitter, not a secret

    async def run_once(self) -> int:
        """Try every due message once; how many were tried."""
        claimed = await self.outbox.claim(self.clock(), self.batch, self.lease)
        for message in claimed:
            await self._deliver(message)
        return len(claimed)

    async def _deliver(self, message: Pending) -> None:
        try:
            await self.transport.send(message)
        except PermanentFailure as exc:
            log.error("mail %s refused for good: %s", message.message_id, exc)
            await self.outbox.failed(message.id, str(exc))
        except TemporaryFailure as exc:
            wait = self.backoff.delay(message.attempts, self._rng)
            log.warning("mail %s not delivered (try %d): %s; next try in %.0f s",
                        message.message_id, message.attempts + 1, exc, wait.total_seconds())
            await self.outbox.deferred(message.id, self.clock() + wait, str(exc))
        else:
            await self.outbox.delivered(message.id, self.clock())

    async def run_until_idle(self) -> None:
        """Deliver until nothing is due (commands and tests)."""
        while await self.run_once():
            pass

    async def run_forever(self) -> None:
        while True:
            if await self.run_once() < self.batch:
                await self.outbox.wait_for_work(self.poll_interval)
