"""CasePilot's domain: conversations, their turns, and the values an answer is made of.

No I/O here. A conversation is one aggregate: each question asked, each answer given
(with the citations that back it and the tools that were called) and each rating is an
event on it, so the log alone tells what was asked, what was answered and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.accounts.client import Quota  # the daily allowance, as accounts counts it

MAX_QUESTION_CHARS = 2000  # a coding question is a sentence or a short paragraph
MAX_COMMENT_CHARS = 2000


class RefusalCode(Enum):
    SIGN_IN_REQUIRED = "SIGN_IN_REQUIRED"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    OUT_OF_SCOPE = "OUT_OF_SCOPE"
    INVALID_QUESTION = "INVALID_QUESTION"


class AssistantFailure(Exception):
    """An expected failure with a stable, machine-readable ``code``."""

    code = "ASSISTANT_FAILURE"


class InvalidQuestion(AssistantFailure):
    code = RefusalCode.INVALID_QUESTION.value


class UnknownConversation(AssistantFailure):
    """No such conversation, or it belongs to someone else (the same answer for both)."""

    code = "UNKNOWN_CONVERSATION"


class UnknownAnswer(AssistantFailure):
    code = "UNKNOWN_ANSWER"


class InvalidRating(AssistantFailure):
    code = "INVALID_RATING"


class NotTrusted(AssistantFailure):
    """A call on behalf of a member without the service token (see api.py)."""

    code = "NOT_TRUSTED"


@dataclass(frozen=True)
class Citation:
    """A code named in an answer, as read from a code page of a named release."""

    system: str  # ICD10CM, ICD10PCS, HCPCS, CPT
    code: str  # canonical display form
    title: str
    release: str

    def as_dict(self) -> dict[str, str]:
        return {"system": self.system, "code": self.code, "title": self.title,
                "release": self.release}


@dataclass(frozen=True)
class ToolCall:
    """One tool the composer called, with its arguments (JSON values)."""

    name: str
    arguments: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments}


@dataclass(frozen=True)
class CodeRef:
    system: str
    code: str


@dataclass(frozen=True)
class Topic:
    """What a turn was about, for the next question to build on ("and the left side?")."""

    kind: str  # the question kind the composer read: condition, billable, pcs, ...
    query: str = ""  # the condition or procedure words searched
    codes: tuple[CodeRef, ...] = ()  # the codes the answer gave, best first

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "query": self.query,
                "codes": [[c.system, c.code] for c in self.codes]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Topic:
        return cls(data["kind"], data.get("query", ""),
                   tuple(CodeRef(s, c) for s, c in data.get("codes", [])))


@dataclass(frozen=True)
class Answer:
    """What a composer produced: checked text, its citations, the tools it called."""

    text: str
    citations: tuple[Citation, ...]
    tools: tuple[ToolCall, ...]
    topic: Topic
    composer: str  # "offline" or "model"
    refusal: RefusalCode | None = None  # OUT_OF_SCOPE answers are refusals too
    removed: tuple[str, ...] = ()  # code-like strings taken out because nothing backs them
    unsure: bool = False  # it could not answer and shows the nearest search results


@dataclass(frozen=True)
class Turn:
    question: str
    about: CodeRef | None
    topic: Topic | None = None
    answer_id: str | None = None
    answer: Answer | None = None  # as recorded (``unsure`` is not recorded)


class Conversation(Aggregate):
    """One member's conversation with CasePilot."""

    class Started(Aggregate.Created):
        viewer_id: str

    class QuestionAsked(Aggregate.Event):
        question: str
        about: dict[str, str] | None
        quota_used: int | None
        quota_limit: int | None

    class AnswerGiven(Aggregate.Event):
        answer_id: str
        text: str
        citations: list[dict[str, str]]
        tools: list[dict[str, Any]]
        topic: dict[str, Any]
        composer: str
        refusal: str | None
        removed: list[str]
        elapsed_ms: int

    class AnswerRated(Aggregate.Event):
        answer_id: str
        rating: str
        comment: str

    @event(Started)
    def __init__(self, viewer_id: str, id: UUID | None = None) -> None:
        # ``id`` names a conversation a caller may ask for again (a retried consult).
        self.viewer_id = viewer_id
        self.turns: list[Turn] = []
        self.ratings: dict[str, str] = {}

    @event(QuestionAsked)
    def ask(self, question: str, about: dict[str, str] | None, quota_used: int | None,
            quota_limit: int | None) -> None:
        ref = CodeRef(about["system"], about["code"]) if about else None
        self.turns.append(Turn(question, ref))

    @event(AnswerGiven)
    def answer(self, answer_id: str, text: str, citations: list[dict[str, str]],
               tools: list[dict[str, Any]], topic: dict[str, Any], composer: str,
               refusal: str | None, removed: list[str], elapsed_ms: int) -> None:
        last = self.turns[-1]
        given = Answer(text, tuple(Citation(**c) for c in citations),
                       tuple(ToolCall(**t) for t in tools), Topic.from_dict(topic), composer,
                       RefusalCode(refusal) if refusal else None, tuple(removed))
        self.turns[-1] = Turn(last.question, last.about, given.topic, answer_id, given)

    @event(AnswerRated)
    def rate(self, answer_id: str, rating: str, comment: str) -> None:
        self.ratings[answer_id] = rating

    def answered(self, answer_id: str) -> bool:
        return any(t.answer_id == answer_id for t in self.turns)

    @property
    def topics(self) -> list[Topic]:
        """The topics of the answered turns, oldest first."""
        return [t.topic for t in self.turns if t.topic is not None]


def answer_id(conversation_id: UUID, turn: int) -> str:
    """Answers are named by their conversation and turn: "<uuid>:<n>"."""
    return f"{conversation_id}:{turn}"


def parse_answer_id(value: str) -> tuple[UUID, int]:
    head, _, tail = value.partition(":")
    try:
        return UUID(head), int(tail)
    except ValueError:
        raise UnknownAnswer("no such answer") from None


@dataclass(frozen=True)
class Refusal:
    code: RefusalCode
    message: str


@dataclass(frozen=True)
class Reply:
    """What ``ask`` returns: an answer in a conversation, or a refusal."""

    conversation_id: str | None
    answer_id: str | None
    answer: Answer | None = None
    refusal: Refusal | None = None
    quota: Quota | None = None
    extra: dict[str, Any] = field(default_factory=dict)
