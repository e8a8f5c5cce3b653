"""What a case's state is made of: its status, and the messages of its timeline with
their attachments and citations. Events carry these as plain strings and dicts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    OPEN = "OPEN"  # waiting for an expert
    CLAIMED = "CLAIMED"  # an expert is on it
    ANSWERED = "ANSWERED"  # the expert answered; the member may reply
    CLOSED = "CLOSED"


WAITING = (Status.OPEN, Status.CLAIMED)  # the statuses the experts' queue shows


class Direction(StrEnum):
    IN = "IN"  # from the member
    OUT = "OUT"  # to the member


class Channel(StrEnum):
    EMAIL = "email"
    WEB = "web"


@dataclass(frozen=True)
class Attachment:
    """What an attachment claims to be; its bytes stay in the raw message, never run."""

    filename: str
    content_type: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"filename": self.filename, "content_type": self.content_type, "size": self.size}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Attachment:
        return cls(str(data["filename"]), str(data["content_type"]), int(data["size"]))


@dataclass(frozen=True)
class Citation:
    system: str
    code: str
    title: str
    release: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"system": self.system, "code": self.code, "title": self.title,
                "release": self.release}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Citation:
        return cls(str(data["system"]), str(data["code"]), str(data["title"]),
                   str(data.get("release") or ""))


@dataclass(frozen=True)
class Message:
    """One entry of a case's timeline."""

    direction: Direction
    author: str  # an email address, or CASEPILOT for the automatic answer
    body: str  # quoted history stripped (the raw copy keeps it)
    sent_at: datetime
    message_id: str | None  # the Message-ID it travelled with, when mailed
    automatic: bool = False
    attachments: tuple[Attachment, ...] = ()
    citations: tuple[Citation, ...] = ()
