"""Reading inbound consult mail: bodies, charsets, quoted history, attachments, hostile MIME."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP

import pytest

from services.consult.parsing import (
    MAX_DEPTH,
    MAX_PARTS,
    MailRefused,
    html_to_text,
    parse,
    strip_quoted,
)


def mail(body: str = "Which code for sepsis due to E. coli?", **headers: str) -> EmailMessage:
    message = EmailMessage(policy=SMTP)
    message["From"] = headers.pop("From", "Ann Coder <ann@Example.ORG>")
    message["To"] = "consult@medcode.localhost"
    message["Subject"] = headers.pop("Subject", "Sepsis question")
    message["Message-ID"] = headers.pop("Message_ID", "<q1@example.org>")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


def test_a_plain_message() -> None:
    parsed = parse(mail().as_bytes())
    assert parsed.sender == "ann@example.org"
    assert parsed.message_id == "<q1@example.org>"
    assert parsed.subject == "Sepsis question"
    assert parsed.fresh == "Which code for sepsis due to E. coli?"
    assert parsed.attachments == ()
    assert not parsed.automatic


def test_an_html_only_message_becomes_text_without_its_quoted_history() -> None:
    message = mail()
    message.set_content(
        "<html><head><style>p{color:red}</style><script>alert(1)</script></head><body>"
        "<p>Is <b>I21.9</b> right here?</p><div>Thanks</div>"
        "<div class='gmail_quote'>On Mon, Bob wrote:<blockquote>old question</blockquote>"
        "</div></body></html>", subtype="html")
    parsed = parse(message.as_bytes())
    assert "Is I21.9 right here?" in parsed.text
    assert "alert" not in parsed.text and "color" not in parsed.text
    assert parsed.fresh == "Is I21.9 right here?\n\nThanks"
    assert "old question" in parsed.text  # kept in the whole text, gone from fresh


def test_quoted_history_and_signature_are_stripped_for_the_timeline() -> None:
    text = ("Follow-up: the patient also has CKD 3.\n\n-- \nAnn, CPC\n\n"
            "On Tue, 1 Dec 2026 at 10:00, medcode <consult@medcode.localhost> wrote:\n"
            "> We have your question.\n")
    assert strip_quoted(text) == "Follow-up: the patient also has CKD 3."
    wrapped = ("Yes.\n\nOn Tue, 1 Dec 2026 at 10:00, medcode\n"
               "<consult@medcode.localhost> wrote:\n> x")
    assert strip_quoted(wrapped) == "Yes."
    outlook = "See below.\n\nFrom: medcode <consult@medcode.localhost>\nSent: Tuesday\nold"
    assert strip_quoted(outlook) == "See below."
    assert strip_quoted("Thanks\n-----Original Message-----\nold") == "Thanks"


def test_any_charset_is_read() -> None:
    for charset, text in (("iso-8859-1", "Fracture du fémur, côté gauche"),
                          ("shift_jis", "大腿骨骨折"), ("koi8-r", "перелом бедра")):
        raw = (f"From: ann@example.org\r\nSubject: x\r\nMessage-ID: <{charset}@x>\r\n"
               f"Content-Type: text/plain; charset={charset}\r\n"
               "Content-Transfer-Encoding: 8bit\r\n\r\n").encode() + text.encode(charset)
        assert parse(raw).fresh == text


def test_a_charset_nobody_knows_is_refused_unless_the_text_is_utf8() -> None:
    head = (b"From: ann@example.org\r\nSubject: x\r\n"
            b"Content-Type: text/plain; charset=x-klingon\r\n\r\n")
    assert parse(head + "café".encode()).fresh == "café"
    with pytest.raises(MailRefused) as refused:
        parse(head + b"caf\xe9 \xff\xfe")
    assert refused.value.reply.startswith("554 5.6.0") and "x-klingon" in refused.value.reply


def test_attachments_are_listed_never_opened() -> None:
    message = mail()
    message.add_attachment(b"MZ\x90\x00 not really a program", maintype="application",
                           subtype="x-msdownload", filename="notes.exe")
    message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf",
                           filename="op-note.pdf")
    parsed = parse(message.as_bytes())
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [
        ("notes.exe", "application/x-msdownload"), ("op-note.pdf", "application/pdf")]
    assert parsed.attachments[1].size == len(b"%PDF-1.4")
    assert parsed.fresh == "Which code for sepsis due to E. coli?"


def test_a_message_without_from_is_refused() -> None:
    raw = b"To: consult@medcode.localhost\r\nSubject: x\r\n\r\nhello"
    with pytest.raises(MailRefused) as refused:
        parse(raw)
    assert refused.value.reply.startswith("550") and "From" in refused.value.reply


def nested(levels: int) -> bytes:
    head = b"From: ann@example.org\r\nSubject: bomb\r\n"
    body = b""
    for i in range(levels):
        body += b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
    return head + body + b"Content-Type: text/plain\r\n\r\nboom\r\n"


def test_mime_bombs_are_refused() -> None:
    with pytest.raises(MailRefused, match="nested"):
        parse(nested(MAX_DEPTH + 2))
    with pytest.raises(MailRefused, match=f"more than {MAX_PARTS}"):
        parse(nested(5000))
    wide = mail()
    for i in range(MAX_PARTS + 1):
        wide.add_attachment(b"x", maintype="application", subtype="octet-stream",
                            filename=f"{i}.bin")
    with pytest.raises(MailRefused, match="MIME parts"):
        parse(wide.as_bytes())


def test_threading_headers_case_tag_and_missing_message_id() -> None:
    message = mail(Subject="RE: Fwd: [Case #1042] Sepsis question",
                   In_Reply_To="<consult-1042-2@medcode.localhost>",
                   References="<q1@example.org> <consult-1042-2@medcode.localhost>")
    parsed = parse(message.as_bytes())
    assert parsed.case_number == 1042
    assert parsed.question_subject == "Sepsis question"
    assert parsed.in_reply_to == ("<consult-1042-2@medcode.localhost>",)
    assert parsed.references == ("<q1@example.org>", "<consult-1042-2@medcode.localhost>")
    del message["Message-ID"]
    first, again = parse(message.as_bytes()), parse(message.as_bytes())
    assert first.message_id == again.message_id and first.message_id.endswith(".invalid>")


def test_auto_replies_are_recognised() -> None:
    assert parse(mail(Auto_Submitted="auto-replied").as_bytes()).automatic
    assert parse(mail(Precedence="bulk").as_bytes()).automatic
    assert not parse(mail(Auto_Submitted="no").as_bytes()).automatic


def test_html_lists_and_entities() -> None:
    assert html_to_text("<ul><li>A&amp;B</li><li>C</li></ul>").split() == ["-", "A&B", "-", "C"]
