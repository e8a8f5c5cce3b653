"""A message to send, and its MIME form (what the outbox stores and delivers byte for byte)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, getaddresses, make_msgid
from uuid import UUID, uuid5

MESSAGE_ID_NAMESPACE = UUID("6f1d8a52-3b7e-4c1a-9d0f-2e6b5a4c3d21")

# Headers the platform sets itself: a message may not override them through ``headers``.
_RESERVED = {"from", "to", "subject", "date", "message-id", "in-reply-to", "references",
             "mime-version", "content-type", "content-transfer-encoding"}


class InvalidMessage(ValueError):
    """A message that cannot be sent as given (no recipient, a header that breaks MIME)."""


@dataclass(frozen=True)
class MailMessage:
    """One outgoing message, before MIME.

    ``message_id`` is optional; give a deterministic one (``message_id_for``) when the same
    message may be composed twice (a redelivered event): the outbox keeps one per id.
    ``in_reply_to`` and ``references`` thread it into a conversation (consult answers).
    ``headers`` adds anything else (``List-Unsubscribe``, ``Auto-Submitted``...).
    """

    to: str | Sequence[str]
    subject: str
    text: str
    html: str | None = None
    message_id: str | None = None
    in_reply_to: str | None = None
    references: Sequence[str] = ()
    headers: Sequence[tuple[str, str]] = field(default_factory=tuple)

    @property
    def recipients(self) -> list[str]:
        raw = [self.to] if isinstance(self.to, str) else list(self.to)
        return [address for _, address in getaddresses(raw) if address]


def message_id_for(key: str, domain: str) -> str:
    """A Message-ID that is the same every time ``key`` is (e.g. an event's id + purpose)."""
    return f"<{uuid5(MESSAGE_ID_NAMESPACE, key)}@{domain}>"


def sender_domain(sender: str) -> str:
    """The domain of a From address like ``medcode <no-reply@medcode.example>``."""
    addresses = getaddresses([sender])
    address = addresses[0][1] if addresses else ""
    return address.rpartition("@")[2] or "localhost"


def render(message: MailMessage, sender: str, date: datetime) -> EmailMessage:
    """The MIME message: text (and HTML as an alternative), Message-ID, Date, From.

    Raises InvalidMessage for no recipient or a header value with a line break (header
    injection); the text and HTML parts are encoded as the ``email`` package sees fit.
    """
    recipients = message.recipients
    if not recipients:
        raise InvalidMessage(f"no recipient address in {message.to!r}")
    mime = EmailMessage(policy=SMTP)
    try:
        mime["From"] = sender
        mime["To"] = ", ".join(str(Address(addr_spec=r)) for r in recipients)
        mime["Subject"] = _one_line(message.subject)
        mime["Date"] = format_datetime(date)
        mime["Message-ID"] = _one_line(message.message_id or
                                       make_msgid(domain=sender_domain(sender)))
        if message.in_reply_to:
            mime["In-Reply-To"] = _one_line(message.in_reply_to)
        if message.references:
            mime["References"] = " ".join(_one_line(r) for r in message.references)
        for name, value in message.headers:
            if name.strip().lower() in _RESERVED:
                raise InvalidMessage(f"header {name!r} is set by the platform")
            mime[_one_line(name)] = _one_line(value)
    except (ValueError, IndexError) as exc:
        if isinstance(exc, InvalidMessage):
            raise
        raise InvalidMessage(str(exc)) from None
    mime.set_content(message.text, cte=_transfer_encoding(message.text))
    if message.html is not None:
        mime.add_alternative(message.html, subtype="html",
                             cte=_transfer_encoding(message.html))
    return mime


def _transfer_encoding(body: str) -> str:
    """7bit when the body allows it: an .eml (or a mail source) stays readable, and a link
    in it can be copied as it is; quoted-printable only for non-ASCII text or lines longer
    than SMTP's 998 characters."""
    if body.isascii() and all(len(line) <= 998 for line in body.splitlines()):
        return "7bit"
    return "quoted-printable"


def _one_line(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise InvalidMessage(f"a header value may not contain a line break: {value!r}")
    return value
