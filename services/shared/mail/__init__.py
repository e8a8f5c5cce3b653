"""Outgoing mail, for every product: a typed message, a durable outbox, a delivery worker.

How a product sends mail (the whole API):

1. Publish an event for whatever causes the mail (``ViewerRegistered``, ``ConsultAnswered``).
   Never put a secret (a token) or more personal data than needed in it: the policy can
   derive or look up what the message needs (see services/accounts/mail.py).
2. Write a ``compose(envelope) -> list[MailMessage]`` and run it as a consumer of the
   product's own events::

       from services.shared.mail import MailMessage, MailPolicy, message_id_for
       consumer = Consumer(MailPolicy("accounts-mail", infra.mail.outbox, compose),
                           infra.bus, "accounts")

   ``MailPolicy`` records the composed messages and the consumer's ``(source, position)``
   checkpoint in ONE outbox transaction: nothing is lost, nothing mailed twice for one
   event. Give each message a deterministic ``message_id_for(f"{envelope.id}:purpose",
   domain)`` so a replay composes the same Message-ID (the outbox keeps one per id).
3. That is all: the platform runs one ``MailDelivery`` worker (``medcode serve`` embedded,
   ``medcode worker`` distributed) that sends pending rows over SMTP to ``SMTP_RELAY``
   (``host:port``; ``SMTP_USERNAME``/``SMTP_PASSWORD``; ``SMTP_STARTTLS`` auto/true/false;
   ``SMTP_CA_FILE`` for a private CA)
   with capped exponential backoff, keeping every message while the relay is down; with
   no relay it writes ``$DATA_DIR/outbox/<time>-<id>.eml`` and logs the path.

``MailMessage`` carries to, subject, text, optional html, message_id, in_reply_to,
references and extra headers; the outbox renders real MIME (multipart/alternative text +
HTML, Message-ID, Date, From ``MEDCODE_MAIL_FROM``) when it records, and delivers those
bytes unchanged. ``Mail`` (from ``open_mail(settings)``) bundles the outbox and worker.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.shared.mail.delivery import (
    Backoff,
    FileTransport,
    MailDelivery,
    PermanentFailure,
    SmtpTransport,
    TemporaryFailure,
    Transport,
)
from services.shared.mail.message import (
    InvalidMessage,
    MailMessage,
    message_id_for,
    render,
    sender_domain,
)
from services.shared.mail.outbox import Outbox, Pending, PostgresOutbox, SQLiteOutbox, Stored
from services.shared.mail.policy import Compose, MailPolicy
from services.shared.settings import Settings

__all__ = [
    "Backoff",
    "Compose",
    "FileTransport",
    "InvalidMessage",
    "Mail",
    "MailDelivery",
    "MailMessage",
    "MailPolicy",
    "Outbox",
    "Pending",
    "PermanentFailure",
    "PostgresOutbox",
    "SQLiteOutbox",
    "SmtpTransport",
    "Stored",
    "TemporaryFailure",
    "Transport",
    "message_id_for",
    "open_mail",
    "render",
    "sender_domain",
]


@dataclass
class Mail:
    """The platform's mail: where products record messages, and the worker that sends."""

    outbox: Outbox
    delivery: MailDelivery
    sender: str
    where: str  # "smtp://host:port" or the outbox directory, for the start-up log

    @property
    def domain(self) -> str:
        """The domain of MEDCODE_MAIL_FROM: products name their Message-IDs with it."""
        return sender_domain(self.sender)

    async def close(self) -> None:
        await self.outbox.close()


def transport_for(settings: Settings) -> tuple[Transport, str]:
    if settings.smtp_relay:
        host, port = settings.smtp_relay_address
        return SmtpTransport(host, port, settings.smtp_username, settings.smtp_password,
                             settings.smtp_starttls, settings.smtp_ca_file), f"smtp://{host}:{port}"
    directory = settings.data_dir / "outbox"
    return FileTransport(directory), str(directory)


async def open_mail(settings: Settings) -> Mail:
    """The outbox of this mode (created when missing) and a delivery worker for it."""
    outbox: Outbox
    if settings.mode == "embedded":
        outbox = SQLiteOutbox(settings.data_dir / "mail.sqlite", settings.mail_from)
    else:
        outbox = PostgresOutbox(settings.postgres_dsn(), settings.mail_from)
    await outbox.open()
    transport, where = transport_for(settings)
    return Mail(outbox, MailDelivery(outbox, transport), settings.mail_from, where)
