"""CasePilot's Application (conversations in the event store) and its service layer.

``Conversations`` records what was asked and answered, one aggregate per conversation.
``Assistant`` is the service layer: it checks the question, meters members through the
accounts client, composes (the model backend when configured, falling back to the
offline composer) and records the question and its answer in one save.

``ask_for_member`` is the same for a member a trusted service acts for (the consult
service answering a mailed question): metered against the same daily allowance, recorded
alike. Its ``request_id`` makes a retried call (a consumer redelivering the mail) give
back the recorded answer without counting the question again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError

from services.assistant.composer import OUT_OF_SCOPE_MESSAGE, Composer, OfflineComposer
from services.assistant.domain import (
    MAX_COMMENT_CHARS,
    MAX_QUESTION_CHARS,
    Answer,
    CodeRef,
    Conversation,
    InvalidRating,
    Quota,
    Refusal,
    RefusalCode,
    Reply,
    Topic,
    UnknownAnswer,
    UnknownConversation,
    answer_id,
    parse_answer_id,
)
from services.assistant.llm import ModelUnavailable
from services.shared.threads import run_in_threadpool

log = logging.getLogger(__name__)
RATINGS = ("UP", "DOWN")


class Conversations(Application[UUID]):
    """Every conversation with CasePilot."""

    name = "assistant"

    def start(self, viewer_id: str) -> UUID:
        conversation = Conversation(viewer_id)
        self.save(conversation)
        return conversation.id

    def get(self, conversation_id: str | UUID, viewer_id: str) -> Conversation:
        """A viewer's own conversation; someone else's reads as unknown."""
        try:
            found: Conversation = self.repository.get(
                conversation_id if isinstance(conversation_id, UUID) else UUID(conversation_id)
            )
        except (AggregateNotFoundError, ValueError):
            raise UnknownConversation("no such conversation") from None
        if found.viewer_id != viewer_id:
            raise UnknownConversation("no such conversation")
        return found

    def find(self, conversation_id: UUID, viewer_id: str) -> Conversation | None:
        try:
            return self.get(conversation_id, viewer_id)
        except UnknownConversation:
            return None

    def record(self, conversation_id: str | None, viewer_id: str, question: str,
               about: CodeRef | None, quota: Quota | None, answer: Answer,
               elapsed_ms: int, new_id: UUID | None = None) -> tuple[UUID, str]:
        """The question and its answer, in one save (a new conversation when none,
        named ``new_id`` when given)."""
        conversation = (self.get(conversation_id, viewer_id) if conversation_id
                        else Conversation(viewer_id, id=new_id))
        conversation.ask(
            question=question,
            about={"system": about.system, "code": about.code} if about else None,
            quota_used=quota.used if quota else None,
            quota_limit=quota.limit if quota else None,
        )
        named = answer_id(conversation.id, len(conversation.turns))
        conversation.answer(
            answer_id=named, text=answer.text,
            citations=[c.as_dict() for c in answer.citations],
            tools=[t.as_dict() for t in answer.tools], topic=answer.topic.as_dict(),
            composer=answer.composer,
            refusal=answer.refusal.value if answer.refusal else None,
            removed=list(answer.removed), elapsed_ms=elapsed_ms,
        )
        self.save(conversation)
        return conversation.id, named

    def rate(self, viewer_id: str, rated: str, rating: str, comment: str) -> None:
        conversation_id, _ = parse_answer_id(rated)
        try:
            conversation = self.get(conversation_id, viewer_id)
        except UnknownConversation:
            raise UnknownAnswer("no such answer") from None
        if not conversation.answered(rated):
            raise UnknownAnswer("no such answer")
        conversation.rate(answer_id=rated, rating=rating, comment=comment)
        self.save(conversation)


@dataclass(frozen=True)
class Admission:
    """Whether a caller may ask now: their viewer id and quota, or why not."""

    viewer_id: str | None
    quota: Quota | None
    refusal: Refusal | None = None


class Metering(Protocol):
    async def admit(self, token: str | None) -> Admission:
        """Take one question from the caller's daily allowance, or refuse."""

    async def admit_member(self, viewer_id: str) -> Admission:
        """The same for a member a trusted service acts for, named by viewer id."""

    async def identify(self, token: str | None) -> str | None:
        """The member's viewer id, or None (rating needs no allowance)."""


StreamPiece = Callable[[str, str], Awaitable[None]]  # (kind: "tool" | "text", value)


class Assistant:
    """CasePilot's service layer; see the module docstring."""

    def __init__(self, app: Conversations, metering: Metering, offline: OfflineComposer,
                 model: Composer | None = None) -> None:
        self.app = app
        self.metering = metering
        self.offline = offline
        self.model = model

    async def ask(self, token: str | None, question: str, conversation_id: str | None = None,
                  about: CodeRef | None = None, stream: StreamPiece | None = None) -> Reply:
        return await self._ask(lambda: self.metering.admit(token), question,
                               conversation_id, about, stream)

    async def ask_for_member(self, viewer_id: str, question: str,
                             about: CodeRef | None = None, request_id: str | None = None
                             ) -> Reply:
        """A new conversation for the member ``viewer_id`` (trusted callers only; see the
        module docstring for ``request_id``)."""
        named = uuid5(NAMESPACE_URL, f"medcode:assistant:{viewer_id}|{request_id}"
                      ) if request_id else None
        if named is not None:
            found = await run_in_threadpool(self.app.find, named, viewer_id)
            if found is not None:
                return _recorded(found)
        try:
            return await self._ask(lambda: self.metering.admit_member(viewer_id), question,
                                   None, about, None, named)
        except IntegrityError:  # the same request, recorded a moment ago by another call
            assert named is not None
            return _recorded(await run_in_threadpool(self.app.get, named, viewer_id))

    async def _ask(self, admit: Callable[[], Awaitable[Admission]], question: str,
                   conversation_id: str | None, about: CodeRef | None,
                   stream: StreamPiece | None, new_id: UUID | None = None) -> Reply:
        question = question.strip() if isinstance(question, str) else ""
        if not question or len(question) > MAX_QUESTION_CHARS:
            return _refused(RefusalCode.INVALID_QUESTION,
                            "Ask a question of 1 to "
                            f"{MAX_QUESTION_CHARS} characters." if question else
                            "The question is empty: ask about a condition, a procedure or "
                            "a code.")
        if "\x00" in question:
            return _refused(RefusalCode.INVALID_QUESTION, "The question holds control "
                            "characters; send plain text.")
        if not conversation_id and not await self.offline.in_scope(question, about):
            return _refused(RefusalCode.OUT_OF_SCOPE, OUT_OF_SCOPE_MESSAGE)
        admission = await admit()
        if admission.refusal is not None or admission.viewer_id is None:
            refusal = admission.refusal or Refusal(RefusalCode.SIGN_IN_REQUIRED,
                                                   "Sign in to ask CasePilot.")
            return Reply(None, None, refusal=refusal, quota=admission.quota)
        viewer_id = admission.viewer_id
        history: list[Topic] = []
        if conversation_id:
            try:
                found = await run_in_threadpool(self.app.get, conversation_id, viewer_id)
            except UnknownConversation:
                return _refused(RefusalCode.INVALID_QUESTION,
                                "That conversation does not exist: leave conversationId "
                                "out to start a new one.")
            history = found.topics
        started = time.perf_counter()
        answer = await self._compose(question, about, history, stream)
        elapsed = int((time.perf_counter() - started) * 1000)
        saved_id, named = await run_in_threadpool(
            self.app.record, conversation_id, viewer_id, question, about, admission.quota,
            answer, elapsed, new_id)
        if answer.refusal is not None:
            return Reply(str(saved_id), named, answer=answer,
                         refusal=Refusal(answer.refusal, answer.text), quota=admission.quota)
        return Reply(str(saved_id), named, answer=answer, quota=admission.quota)

    async def _compose(self, question: str, about: CodeRef | None, history: list[Topic],
                       stream: StreamPiece | None) -> Answer:
        async def tool(name: str) -> None:
            if stream is not None:
                await stream("tool", name)

        answer: Answer | None = None
        if self.model is not None:
            try:
                answer = await self.model.compose(question, about, history, tool)
            except ModelUnavailable as exc:
                log.warning("model composer failed, answering offline: %s", exc)
        if answer is None:
            answer = await self.offline.compose(question, about, history, tool)
        if stream is not None:
            for line in answer.text.splitlines(keepends=True):
                await stream("text", line)
        return answer

    async def ask_stream(self, token: str | None, question: str,
                         conversation_id: str | None = None, about: CodeRef | None = None,
                         ) -> AsyncIterator[tuple[str, Any]]:
        """The same as ``ask``, told as it happens: ("tool", name) as each tool is called,
        ("text", piece) for the checked answer text, then ("reply", Reply)."""
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        async def piece(kind: str, value: str) -> None:
            await queue.put((kind, value))

        async def run() -> None:
            try:
                reply = await self.ask(token, question, conversation_id, about, piece)
                await queue.put(("reply", reply))
            except BaseException as exc:
                await queue.put(("error", exc))
                raise

        task = asyncio.create_task(run())
        try:
            while True:
                kind, value = await queue.get()
                if kind == "error":
                    raise value
                yield kind, value
                if kind == "reply":
                    break
        finally:
            if not task.done():
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def rate(self, token: str | None, rated: str, rating: str, comment: str | None
                   ) -> None:
        viewer_id = await self.metering.identify(token)
        if viewer_id is None:
            raise UnknownAnswer("sign in to rate your answers")
        rating = rating.upper()
        if rating not in RATINGS:
            raise InvalidRating("rate UP or DOWN")
        comment = (comment or "").strip()
        if len(comment) > MAX_COMMENT_CHARS:
            raise InvalidRating(f"a comment holds at most {MAX_COMMENT_CHARS} characters")
        await run_in_threadpool(self.app.rate, viewer_id, rated, rating, comment)


def _recorded(conversation: Conversation) -> Reply:
    """The reply a conversation's first turn recorded (a retried call on behalf)."""
    turn = conversation.turns[0]
    answer = turn.answer
    refusal = Refusal(answer.refusal, answer.text) if answer and answer.refusal else None
    return Reply(str(conversation.id), turn.answer_id, answer=answer, refusal=refusal)


def _refused(code: RefusalCode, message: str) -> Reply:
    return Reply(None, None, refusal=Refusal(code, message))
