"""Outgoing mail against real stores (SQLite file, PostgreSQL) and a real SMTP server.

The SMTP server is aiosmtpd (tests/servers/smtp.py) on a loopback port; an outage is
that server stopped, and the same outbox rows must all arrive once it is back.
"""

from __future__ import annotations

import asyncio
import email
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path

import pytest

from services.shared.bus import Delivery
from services.shared.envelope import Envelope
from services.shared.mail import (
    Backoff,
    FileTransport,
    InvalidMessage,
    MailDelivery,
    MailMessage,
    MailPolicy,
    Outbox,
    PostgresOutbox,
    SmtpTransport,
    SQLiteOutbox,
    message_id_for,
    open_mail,
    render,
)
from services.shared.search.model import Checkpoint
from services.shared.settings import Settings, SettingsError
from tests.servers.postgres import fresh_database
from tests.servers.smtp import SmtpSink

pytestmark = pytest.mark.integration

SENDER = "medcode <no-reply@medcode.test>"
NOW = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)


class Clock:
    """Starts at the real time (the outbox stamps rows with it); moved by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(params=["sqlite", "postgres"])
async def outbox(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Outbox]:
    """An empty outbox of each kind (a fresh PostgreSQL database per test)."""
    if request.param == "sqlite":
        store: Outbox = SQLiteOutbox(tmp_path / "mail.sqlite", SENDER)
        await store.open()
        await store.open()  # a second open (tables exist) must be harmless
        yield store
        return
    with fresh_database() as dbname:
        store = PostgresOutbox(Settings(postgres_dbname=dbname).postgres_dsn(), SENDER)
        await store.open()
        await store.open()
        try:
            yield store
        finally:
            await store.close()


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    server = SmtpSink().start()
    yield server
    server.stop()


def message(n: int, to: str = "ann@example.org", **extra: object) -> MailMessage:
    return MailMessage(to=to, subject=f"Message {n}", text=f"Plain text {n}\n",
                       html=f"<p>HTML {n}</p>",
                       message_id=message_id_for(f"test:{to}:{n}", "medcode.test"),
                       **extra)  # type: ignore[arg-type]


def checkpoint(position: int, consumer: str = "test-mail") -> Checkpoint:
    return Checkpoint(consumer, "tests", position, position)


def test_render_is_real_mime() -> None:
    mime = render(message(1, in_reply_to="<q@example.org>",
                          references=("<a@example.org>", "<q@example.org>"),
                          headers=(("Auto-Submitted", "auto-generated"),)), SENDER, NOW)
    parsed = email.message_from_bytes(bytes(mime), policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert parsed["From"] == SENDER and parsed["To"] == "ann@example.org"
    assert parsed["Date"] == "Wed, 01 Apr 2026 12:00:00 +0000"
    assert parsed["Message-ID"] == message_id_for("test:ann@example.org:1", "medcode.test")
    assert parsed["In-Reply-To"] == "<q@example.org>"
    assert parsed["References"] == "<a@example.org> <q@example.org>"
    assert parsed["Auto-Submitted"] == "auto-generated"
    body = parsed.get_body(("plain",))
    assert body is not None and body.get_content().strip() == "Plain text 1"
    text_only = render(MailMessage("b@example.org", "Hi", "Just text"), SENDER, NOW)
    assert text_only.get_content_type() == "text/plain"
    assert text_only["Message-ID"].endswith("@medcode.test>")


@pytest.mark.parametrize("bad", [
    MailMessage("", "Subject", "text"),
    MailMessage("a@example.org", "Subject\r\nBcc: victim@example.org", "text"),
    MailMessage("a@example.org", "Subject", "text", headers=(("From", "x@evil.test"),)),
    MailMessage("a@example.org", "Subject", "text", in_reply_to="<a>\nBcc: b@example.org"),
])
def test_messages_that_would_break_mime_are_refused(bad: MailMessage) -> None:
    with pytest.raises(InvalidMessage):
        render(bad, SENDER, NOW)


async def test_messages_and_tracking_are_one_transaction(outbox: Outbox) -> None:
    assert await outbox.record([message(1), message(2)], checkpoint(10)) == 2
    assert await outbox.checkpoint("test-mail", "tests") == checkpoint(10)
    # The same batch delivered again (at-least-once bus): nothing new.
    assert await outbox.record([message(1), message(2)], checkpoint(10)) == 0
    # A batch that cannot be rendered writes neither its messages nor its checkpoint.
    with pytest.raises(InvalidMessage):
        await outbox.record([message(3), MailMessage("", "x", "y")], checkpoint(11))
    assert await outbox.checkpoint("test-mail", "tests") == checkpoint(10)
    # Another consumer composing a message with the same Message-ID adds no second row.
    assert await outbox.record([message(1), message(4)], checkpoint(5, "other")) == 1
    ids = [m.message_id for m in await outbox.messages()]
    assert len(ids) == len(set(ids)) == 3


async def test_a_mail_policy_records_each_event_once(outbox: Outbox) -> None:
    composed: list[int] = []

    async def compose(envelope: Envelope) -> list[MailMessage]:
        composed.append(envelope.position)
        n = envelope.position
        return [message(100 + n)] if n % 2 else []  # not every event mails

    policy_ = MailPolicy("policy-test", outbox, compose)

    def delivery(n: int) -> Delivery:
        return Delivery(Envelope(id=uuid.uuid4(), type="Thing", schema_version=1,
                                 source="tests", position=n, aggregate_id=uuid.uuid4(),
                                 aggregate_version=1, occurred_at=NOW), cursor=n)

    await policy_.apply("tests", [delivery(1), delivery(2), delivery(3)])
    await policy_.apply("tests", [delivery(1), delivery(2), delivery(3)])  # redelivered
    assert await policy_.checkpoint("tests") == Checkpoint("policy-test", "tests", 3, 3)
    subjects = sorted(m.message_id for m in await outbox.messages())
    assert subjects == sorted([message(101).message_id, message(103).message_id])


async def test_delivery_over_smtp(outbox: Outbox, sink: SmtpSink) -> None:
    await outbox.record([message(1), message(2, to="Bob <bob@example.org>")], checkpoint(1))
    host, port = sink.address.split(":")
    delivery = MailDelivery(outbox, SmtpTransport(host, int(port), starttls=False))
    await delivery.run_until_idle()
    assert [r.recipients for r in sink.received] == [["ann@example.org"], ["bob@example.org"]]
    assert {r.sender for r in sink.received} == {"no-reply@medcode.test"}
    got = sink.messages()[0]
    assert got["Message-ID"] == message(1).message_id and got["From"] == SENDER
    assert got.get_body(("html",)).get_content().strip() == "<p>HTML 1</p>"  # type: ignore[union-attr]
    assert {(m.status, m.body_kept) for m in await outbox.messages()} == {("sent", False)}
    await delivery.run_until_idle()
    assert len(sink.received) == 2  # sent rows are never sent again


async def test_a_relay_outage_loses_nothing(outbox: Outbox, sink: SmtpSink) -> None:
    """Relay down: every try fails and is rescheduled with a growing delay; the rows stay
    pending. Relay back: every message arrives exactly once."""
    sink.stop()
    await outbox.record([message(n) for n in range(5)], checkpoint(1))
    clock = Clock()
    host, port = sink.address.split(":")
    delivery = MailDelivery(outbox, SmtpTransport(host, int(port), starttls=False, timeout=5),
                            backoff=Backoff(timedelta(seconds=10), timedelta(seconds=30)),
                            clock=clock)
    assert await delivery.run_once() == 5
    assert await delivery.run_once() == 0  # nothing is due before its backoff ends
    stored = await outbox.messages()
    assert {m.status for m in stored} == {"pending"} and all(m.last_error for m in stored)
    # Tries 2, 3 and 4 come after 10, 20 and 30 s (the cap), each +-20%: 48-72 s in all.
    seconds = 0
    while min(m.attempts for m in await outbox.messages()) < 4:
        clock.advance(seconds=1)
        seconds += 1
        await delivery.run_once()
    assert 48 <= seconds <= 73
    assert {m.attempts for m in await outbox.messages()} == {4}
    assert {m.status for m in await outbox.messages()} == {"pending"}
    sink.start()
    clock.advance(seconds=120)
    await delivery.run_until_idle()
    assert sorted(str(m["Subject"]) for m in sink.messages()) == [f"Message {n}"
                                                                 for n in range(5)]
    assert {m.status for m in await outbox.messages()} == {"sent"}


async def test_a_permanent_refusal_is_kept_as_failed(outbox: Outbox, sink: SmtpSink) -> None:
    sink.refuse.add("nobody@example.org")
    await outbox.record([message(1, to="nobody@example.org"), message(2)], checkpoint(1))
    host, port = sink.address.split(":")
    await MailDelivery(outbox, SmtpTransport(host, int(port), starttls=False)).run_until_idle()
    by_to = {m.recipients[0]: m for m in await outbox.messages()}
    assert by_to["nobody@example.org"].status == "failed"
    assert "550" in (by_to["nobody@example.org"].last_error or "")
    assert by_to["ann@example.org"].status == "sent" and len(sink.received) == 1
    assert by_to["nobody@example.org"].body_kept  # kept for an operator to look at


async def test_starttls_and_credentials(tmp_path: Path, outbox: Outbox) -> None:
    sink = SmtpSink(credentials=("mailer", "s3cret"), tls_dir=tmp_path / "tls").start()
    try:
        await outbox.record([message(1)], checkpoint(1))
        port = sink.port
        wrong = MailDelivery(outbox, SmtpTransport("localhost", port, "mailer", "wrong",
                                                   starttls=True, ca_file=str(sink.ca_file)))
        await wrong.run_once()
        assert not sink.received and (await outbox.messages())[0].status == "pending"
        clock = Clock()
        clock.advance(hours=1)  # past the backoff
        right = MailDelivery(outbox, SmtpTransport("localhost", port, "mailer", "s3cret",
                                                   starttls=True, ca_file=str(sink.ca_file)),
                             clock=clock)
        await right.run_until_idle()
        assert len(sink.received) == 1
        assert sink.received[0].tls and sink.received[0].login == "mailer"
    finally:
        sink.stop()


async def test_workers_never_claim_the_same_message(outbox: Outbox) -> None:
    await outbox.record([message(n) for n in range(40)], checkpoint(1))
    now = datetime.now(UTC)
    claims = await asyncio.gather(*(outbox.claim(now, 7, timedelta(minutes=5))
                                    for _ in range(8)))
    claimed = [p.id for batch in claims for p in batch]
    assert len(claimed) == len(set(claimed)) == 40


async def test_the_file_outbox_without_a_relay(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(data_dir=tmp_path / "var", mail_from=SENDER)
    mail = await open_mail(settings)
    try:
        assert mail.where == str(tmp_path / "var" / "outbox")
        assert isinstance(mail.delivery.transport, FileTransport)
        await mail.outbox.record([message(1), message(2)], checkpoint(1))
        with caplog.at_level("INFO", logger="services.shared.mail.delivery"):
            await mail.delivery.run_until_idle()
        files = sorted((tmp_path / "var" / "outbox").glob("*.eml"))
        assert len(files) == 2
        parsed = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
        assert parsed["Subject"] == "Message 1" and parsed["From"] == SENDER
        assert str(files[0]) in caplog.text
    finally:
        await mail.close()


def test_mail_settings_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env({"SMTP_RELAY": "mail.example.org:587", "SMTP_STARTTLS": "true",
                                  "SMTP_USERNAME": "u", "SMTP_PASSWORD": "p",
                                  "MEDCODE_MAIL_FROM": "Medcode <hello@medcode.example>"})
    assert settings.smtp_relay_address == ("mail.example.org", 587)
    assert settings.smtp_starttls is True and settings.smtp_username == "u"
    assert Settings.from_env({}).smtp_starttls is None
    for bad in ({"SMTP_RELAY": "mail.example.org"}, {"SMTP_STARTTLS": "maybe"}):
        with pytest.raises(SettingsError):
            Settings.from_env(bad)


def test_plain_ascii_stays_readable_and_the_rest_is_encoded() -> None:
    link = "https://medcode.example/verify-email?token=" + "A" * 60
    ascii_mime = bytes(render(MailMessage("a@example.org", "Link", f"Follow {link}\n",
                                          html=f'<a href="{link}">{link}</a>'), SENDER, NOW))
    assert link.encode() in ascii_mime and b"quoted-printable" not in ascii_mime
    accented = render(MailMessage("a@example.org", "Résumé", "Café crème\n"), SENDER, NOW)
    parsed = email.message_from_bytes(bytes(accented), policy=policy.default)
    assert parsed["Subject"] == "Résumé"
    assert parsed.get_content().strip() == "Café crème"  # type: ignore[attr-defined]
    assert bytes(accented).isascii()
