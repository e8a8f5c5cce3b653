"""Reading an inbound message with the standard ``email`` package (``policy.default``).

What a case needs from a message: who sent it, its Message-ID and threading headers,
the subject, the text the member wrote (HTML turned into text, quoted history removed
for the timeline; the raw copy keeps everything) and a list of attachments, which are
never decoded beyond their size and never run.

Hostile input is refused with a ``MailRefused`` whose text becomes the SMTP reply, so
the sending server bounces it with our explanation: too many or too deeply nested
MIME parts (a MIME bomb), a text part in a charset nobody can read, no From address.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from email import policy
from email.errors import HeaderParseError, MessageError
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses
from html.parser import HTMLParser

from services.consult.domain import synthetic_message_id
from services.consult.timeline import Attachment

MAX_PARTS = 100  # MIME parts in one message
MAX_DEPTH = 5  # multiparts inside multiparts
MAX_SUBJECT = 300
MAX_ATTACHMENTS_LISTED = 50
_MULTIPART = re.compile(rb"content-type:\s*multipart/", re.IGNORECASE)
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,250}>")
_CASE_TAG = re.compile(r"\[\s*Case\s*#\s*(\d{1,9})\s*\]", re.IGNORECASE)


class MailRefused(Exception):
    """The message cannot be taken; ``reply`` is the SMTP answer that explains why."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


@dataclass(frozen=True)
class ParsedMail:
    message_id: str
    sender: str  # the From address, domain lower-cased
    subject: str
    text: str  # the whole text, quoted history included
    fresh: str  # what the sender wrote this time: quoted history and signature removed
    attachments: tuple[Attachment, ...]
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    automatic: bool  # an auto-reply, a bounce or list mail: never answered (no mail loops)

    @property
    def case_number(self) -> int | None:
        """The case number a reply carries in its subject (``[Case #1042]``)."""
        found = _CASE_TAG.search(self.subject)
        return int(found.group(1)) if found else None

    @property
    def question_subject(self) -> str:
        """The subject without reply prefixes or our case tag."""
        subject = _CASE_TAG.sub("", self.subject)
        subject = re.sub(r"^\s*((re|fwd?|aw|sv)\s*:\s*)+", "", subject, flags=re.IGNORECASE)
        return subject.strip() or "(no subject)"


def parse(raw: bytes) -> ParsedMail:
    """Read ``raw``; raise MailRefused (with the SMTP reply) when it cannot be taken."""
    # The parser recurses once per nesting level: refuse a bomb before parsing it.
    if len(_MULTIPART.findall(raw)) > MAX_PARTS:
        raise MailRefused(f"554 5.6.0 Message refused: more than {MAX_PARTS} MIME parts")
    try:
        message = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(message, EmailMessage)
        sender = _sender(message)
        parts = _walk(message)
        written = _text(message, parts)
        subject = " ".join(str(message.get("subject", "")).split())[:MAX_SUBJECT]
        attachments = tuple(_attachment(part) for part in parts
                            if _is_attachment(part))[:MAX_ATTACHMENTS_LISTED]
        message_id = _ids(message.get("message-id"))
    except RecursionError:
        raise MailRefused("554 5.6.0 Message refused: MIME parts nested too deeply") from None
    except (HeaderParseError, MessageError, ValueError, IndexError) as exc:
        raise MailRefused(f"554 5.6.0 Message refused: it cannot be read as email ({exc})"
                          ) from None
    return ParsedMail(
        message_id=message_id[0] if message_id else synthetic_message_id(raw),
        sender=sender,
        subject=subject,
        text=normalise(written),
        # Before normalising: a signature starts at "-- " with its trailing space.
        fresh=strip_quoted(written),
        attachments=attachments,
        in_reply_to=tuple(_ids(message.get("in-reply-to"))),
        references=tuple(_ids(message.get("references")))[-50:],
        automatic=_automatic(message),
    )


def _sender(message: EmailMessage) -> str:
    values = message.get_all("from") or []
    addresses = [addr for _, addr in getaddresses([str(v) for v in values]) if "@" in addr]
    if not addresses:
        raise MailRefused("550 5.6.0 Message refused: it has no From address to answer")
    local, _, domain = addresses[0].strip().rpartition("@")
    if not local or not domain or len(addresses[0]) > 254:
        raise MailRefused("550 5.6.0 Message refused: its From address is not valid")
    return f"{local}@{domain.lower()}"


def _walk(message: Message) -> list[Message]:
    """Every leaf part, refusing more than MAX_PARTS parts or MAX_DEPTH nested multiparts."""
    leaves: list[Message] = []
    stack: list[tuple[Message, int]] = [(message, 0)]
    seen = 0
    while stack:
        part, depth = stack.pop()
        seen += 1
        if seen > MAX_PARTS:
            raise MailRefused(f"554 5.6.0 Message refused: more than {MAX_PARTS} MIME parts")
        if part.is_multipart():
            if depth >= MAX_DEPTH:
                raise MailRefused(f"554 5.6.0 Message refused: MIME parts nested more than "
                                  f"{MAX_DEPTH} deep")
            children = part.get_payload()
            assert isinstance(children, list)
            stack.extend((child, depth + 1) for child in reversed(children)
                         if isinstance(child, Message))
        else:
            leaves.append(part)
    return leaves


def _is_attachment(part: Message) -> bool:
    if part.get_content_disposition() == "attachment":
        return True
    return part.get_content_maintype() != "text" and part.get_content_type() != "message/rfc822"


def _attachment(part: Message) -> Attachment:
    payload = part.get_payload(decode=True)
    filename = part.get_filename() or "(unnamed)"
    filename = "".join(ch for ch in filename if ch.isprintable())[:200] or "(unnamed)"
    return Attachment(filename, part.get_content_type(),
                      len(payload) if isinstance(payload, bytes) else 0)


def _decode(part: Message) -> str:
    """A text part as text, in whatever charset it declares."""
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    charset = str(part.get_content_charset() or "us-ascii")
    try:
        codecs.lookup(charset)
    except LookupError:
        # A charset nobody knows: take it if it is really UTF-8 (a common mislabel).
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise MailRefused(
                f"554 5.6.0 Message refused: its text is in the unknown charset "
                f"{charset[:40]!r}; send it again as UTF-8"
            ) from None
    return data.decode(charset, errors="replace")


def _text(message: EmailMessage, parts: list[Message]) -> str:
    """The plain text of the body (HTML converted when there is no plain part)."""
    body: Message | None = message.get_body(preferencelist=("plain", "html"))
    if body is None or _is_attachment(body):
        texts = [p for p in parts if p.get_content_type() in ("text/plain", "text/html")
                 and p.get_content_disposition() != "attachment"]
        if not texts:
            return ""
        body = texts[0]
    text = _decode(body).replace("\r\n", "\n").replace("\r", "\n")
    return html_to_text(text) if body.get_content_subtype() == "html" else text


def normalise(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _ids(header: object) -> list[str]:
    return _MESSAGE_ID.findall(str(header)) if header is not None else []


def _automatic(message: EmailMessage) -> bool:
    auto = str(message.get("auto-submitted", "no")).strip().lower()
    precedence = str(message.get("precedence", "")).strip().lower()
    return (auto not in ("", "no") or precedence in ("bulk", "list", "junk")
            or message.get("list-id") is not None
            or message.get_content_type() == "multipart/report")


# --- HTML to text ----------------------------------------------------------------------

_BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "table",
           "ul", "ol", "hr", "section", "article", "header", "footer"}
_SKIPPED = {"script", "style", "head", "title", "template", "noscript"}


class _TextExtractor(HTMLParser):
    """Text of an HTML body; quoted history (blockquote, Gmail's quote div) as "> " lines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0
        self.quoting = 0
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = " ".join(v or "" for k, v in attrs if k == "class")
        quote = tag == "blockquote" or "gmail_quote" in classes or "moz-cite" in classes
        if tag not in ("br", "hr", "img", "meta", "link", "input"):
            self.stack.append("quote" if quote else tag)
        if tag in _SKIPPED:
            self.skipping += 1
        if quote:
            self.quoting += 1
        if tag in _BLOCKS or quote:
            self.out.append("\n")
        if tag == "li":
            self.out.append("- ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED and self.skipping:
            self.skipping -= 1
        if tag in _BLOCKS:
            self.out.append("\n")
        # Close the innermost matching element (HTML in mail is rarely well formed).
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i] in (tag, "quote") and (self.stack[i] == tag or tag in (
                    "blockquote", "div")):
                if self.stack[i] == "quote":
                    self.quoting = max(self.quoting - 1, 0)
                    self.out.append("\n")
                del self.stack[i:]
                break

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        text = re.sub(r"[ \t\r\n\f]+", " ", data)
        if self.quoting:
            text = text.replace("\n", "\n> ")
            if not self.out or self.out[-1].endswith("\n"):
                text = "> " + text.lstrip()
        self.out.append(text)


def html_to_text(html: str) -> str:
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return "\n".join(line.strip() if not line.startswith(">") else line
                     for line in "".join(parser.out).split("\n"))


# --- quoted history ------------------------------------------------------------------

_WROTE = re.compile(r"^(on\b.*|le\b.*|am\b.*|el\b.*)\b(wrote|a écrit|schrieb|escribió)\s*:\s*$",
                    re.IGNORECASE)
_ORIGINAL = re.compile(r"^-{2,}\s*(original message|forwarded message)\s*-{2,}\s*$",
                       re.IGNORECASE)
_OUTLOOK_HEADER = re.compile(r"^(from|de|von)\s*:\s*\S", re.IGNORECASE)
_OUTLOOK_NEXT = re.compile(r"^(sent|date|to|envoyé|gesendet)\s*:", re.IGNORECASE)


def strip_quoted(text: str) -> str:
    """What the sender wrote this time: no quoted lines, reply header, history or signature."""
    lines = text.split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        following = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if (_WROTE.match(stripped) or _ORIGINAL.match(stripped) or line == "-- "
                or (_WROTE.match(f"{stripped} {following}") and not stripped.startswith(">"))
                or (_OUTLOOK_HEADER.match(stripped) and _OUTLOOK_NEXT.match(following))
                or (re.fullmatch(r"_{10,}", stripped) and _OUTLOOK_HEADER.match(following))):
            break
        if stripped.startswith(">"):
            continue
        kept.append(line)
    return normalise("\n".join(kept))
