"""The inbound SMTP listener, over real SMTP conversations (smtplib to our aiosmtpd).

Each test stores into a real consult event store (SQLite) and checks what was kept:
a message is stored before its 250, once per Message-ID; hostile mail is refused with
a clear reply and the listener carries on.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import AsyncIterator
from dataclasses import replace
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest
from starlette.concurrency import run_in_threadpool

from services.consult.application import Consults
from services.consult.domain import InboundMail
from services.consult.parsing import ParsedMail
from services.consult.settings import ConsultSettings
from services.consult.smtp import InboundServer
from tests.servers.smtp import _self_signed, free_port

pytestmark = pytest.mark.integration

TO = "consult@medcode.localhost"


def question(message_id: str = "<q1@example.org>", body: str = "Which code?") -> EmailMessage:
    message = EmailMessage(policy=SMTP)
    message["From"] = "ann@example.org"
    message["To"] = TO
    message["Subject"] = "A question"
    message["Message-ID"] = message_id
    message.set_content(body)
    return message


class Listener:
    def __init__(self, app: Consults, settings: ConsultSettings) -> None:
        self.app = app
        self.stored: list[str] = []
        self.server = InboundServer(settings, self.store)

    async def store(self, raw: bytes, parsed: ParsedMail, mail_from: str,
                    recipients: list[str]) -> bool:
        new: bool = await run_in_threadpool(self.app.receive_mail, raw, parsed.message_id,
                                            mail_from, recipients)
        self.stored.append(parsed.message_id)
        return new

    @property
    def port(self) -> int:
        assert self.server.port is not None
        return self.server.port

    def stored_mail(self) -> list[InboundMail]:
        from services.consult.domain import mail_id_for

        return [m for mid in dict.fromkeys(self.stored)
                if (m := self.app.mail(mail_id_for(mid))) is not None]


@pytest.fixture
def settings() -> ConsultSettings:
    return ConsultSettings(smtp_port=free_port(), max_recipients=3, max_connections=3)


@pytest.fixture
async def listener(tmp_path: Path, settings: ConsultSettings) -> AsyncIterator[Listener]:
    app = Consults(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                        "SQLITE_DBNAME": str(tmp_path / "consult.sqlite")})
    running = Listener(app, settings)
    await running.server.start()
    try:
        yield running
    finally:
        await running.server.stop()
        app.close()


def send(port: int, raw: bytes | EmailMessage, rcpt: list[str] | None = None,
         sender: str = "ann@example.org") -> tuple[int, bytes]:
    """One SMTP conversation; the server's answer to DATA (or the refusal on the way)."""
    data = raw.as_bytes() if isinstance(raw, EmailMessage) else raw
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo()
        code, reply = client.mail(sender)
        assert code == 250, reply
        for address in rcpt or [TO]:
            code, reply = client.rcpt(address)
            if code != 250:
                return code, reply
        return client.data(data)


async def test_a_message_is_stored_before_the_250_and_once_per_message_id(
        listener: Listener) -> None:
    code, reply = await asyncio.to_thread(send, listener.port, question())
    assert code == 250, reply
    stored = await run_in_threadpool(listener.stored_mail)
    assert len(stored) == 1
    assert stored[0].raw.replace(b"\r\n", b"\n").strip().endswith(b"Which code?")
    code, reply = await asyncio.to_thread(send, listener.port, question())
    assert code == 250 and b"already" in reply
    mail = stored[0]
    assert (await run_in_threadpool(listener.app.mail, mail.id)).version == 2  # Received, Kept


async def test_only_the_consult_mailbox_takes_mail(listener: Listener) -> None:
    for wrong in ("postmaster@medcode.localhost", "consult@elsewhere.example"):
        code, reply = await asyncio.to_thread(send, listener.port, question(), [wrong])
        assert code == 550 and TO.encode() in reply
    code, _ = await asyncio.to_thread(send, listener.port, question(),
                                      [TO, "CONSULT@medcode.localhost", TO, TO])
    assert code == 452  # three recipients at most in this test's settings


async def test_hostile_mail_is_refused_cleanly_and_the_listener_carries_on(
        listener: Listener) -> None:
    nested = b"From: ann@example.org\r\nSubject: bomb\r\nMessage-ID: <bomb@x>\r\n" + b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(50))
    no_from = b"To: consult@medcode.localhost\r\nSubject: who\r\nMessage-ID: <nf@x>\r\n\r\nhi\r\n"
    bad_charset = (b"From: ann@example.org\r\nSubject: x\r\nMessage-ID: <cs@x>\r\n"
                   b"Content-Type: text/plain; charset=x-klingon\r\n"
                   b"Content-Transfer-Encoding: 8bit\r\n\r\n\xff\xfe\xfa\r\n")
    for raw, expected in ((nested, (554, b"nested")), (no_from, (550, b"From")),
                          (bad_charset, (554, b"x-klingon"))):
        code, reply = await asyncio.to_thread(send, listener.port, raw)
        assert code == expected[0] and expected[1] in reply, (code, reply)
    huge = question(body=("x" * 76 + "\n") * (20 * 1024 * 1024 // 77))  # a 20 MB body
    code, reply = await asyncio.to_thread(send, listener.port, huge)
    assert code == 552, reply
    long_line = (b"From: ann@example.org\r\nSubject: x\r\nMessage-ID: <long@x>\r\n\r\n"
                 + b"y" * 5000 + b"\r\n")
    code, reply = await asyncio.to_thread(send, listener.port, long_line)
    assert code == 500 and b"Line too long" in reply
    assert listener.stored == []
    code, _ = await asyncio.to_thread(send, listener.port, question("<after@example.org>"))
    assert code == 250
    assert [m.message_id for m in await run_in_threadpool(listener.stored_mail)] == [
        "<after@example.org>"]


async def test_connections_beyond_the_limit_get_a_421(listener: Listener) -> None:
    def crowd() -> list[int]:
        held = [smtplib.SMTP("127.0.0.1", listener.port, timeout=10) for _ in range(3)]
        try:
            code, _ = smtplib.SMTP(timeout=10).connect("127.0.0.1", listener.port)
            return [c.noop()[0] for c in held] + [code]
        finally:
            for client in held:
                client.quit()

    assert await asyncio.to_thread(crowd) == [250, 250, 250, 421]
    code, _ = await asyncio.to_thread(send, listener.port, question())  # free again
    assert code == 250


async def test_starttls_is_offered_when_a_certificate_is_configured(
        tmp_path: Path, settings: ConsultSettings) -> None:
    _self_signed(tmp_path / "cert.pem", tmp_path / "key.pem")
    secured = replace(settings, tls_cert=tmp_path / "cert.pem", tls_key=tmp_path / "key.pem")
    app = Consults(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                        "SQLITE_DBNAME": str(tmp_path / "consult.sqlite")})
    running = Listener(app, secured)
    await running.server.start()

    def conversation() -> tuple[bool, int]:
        context = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
        with smtplib.SMTP("127.0.0.1", running.port, timeout=30) as client:
            client.ehlo()
            offered = client.has_extn("starttls")
            client.starttls(context=context)
            client.ehlo()
            client.mail("ann@example.org")
            client.rcpt(TO)
            return offered, client.data(question().as_bytes())[0]

    try:
        assert await asyncio.to_thread(conversation) == (True, 250)
    finally:
        await running.server.stop()
        app.close()
