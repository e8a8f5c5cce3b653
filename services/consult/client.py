"""How other code talks to the consult service: a Protocol and its two implementations.

Callers pass the session token; the service itself decides who that is (through the
accounts service) and what they may do: experts work the queue, members see their own
cases. Expected failures are ``ConsultFailure`` subclasses with a stable ``code``,
raised alike by the in-process and the HTTP client.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

from services.consult import failures
from services.consult.application import Consults, Requester
from services.consult.domain import Consult
from services.consult.failures import (
    ConsultFailure,
    ConsultNotFound,
    InvalidConsult,
    SignInRequired,
)
from services.consult.intake import Answerer, Members, instant_answer
from services.consult.timeline import Channel
from services.shared.rpc import RpcClient, failures_in
from services.shared.threads import run_in_threadpool

__all__ = ["ConsultClient", "ConsultFailure", "ConsultView", "HttpConsults", "LocalConsults",
           "MessageView"]


@dataclass(frozen=True)
class MessageView:
    direction: str  # "IN" | "OUT"
    author: str
    body: str
    sent_at: datetime
    automatic: bool
    attachments: list[str]  # "name (type, size)"
    citations: list[dict[str, str]]


@dataclass(frozen=True)
class ConsultView:
    id: str
    case_number: str
    subject: str
    status: str  # "OPEN" | "CLAIMED" | "ANSWERED" | "CLOSED"
    due_at: datetime | None
    overdue: bool
    requested_at: datetime
    claimed_by_me: bool
    messages: list[MessageView]

    @classmethod
    def of(cls, case: Consult, now: datetime, viewer_id: str | None = None) -> ConsultView:
        return cls(
            id=str(case.id), case_number=str(case.number), subject=case.subject,
            status=case.status.value, due_at=case.due_at, overdue=case.overdue(now),
            requested_at=case.requested_at,
            claimed_by_me=viewer_id is not None and case.expert_id == viewer_id,
            messages=[MessageView(
                direction=m.direction.value, author=m.author, body=m.body, sent_at=m.sent_at,
                automatic=m.automatic,
                attachments=[f"{a.filename} ({a.content_type}, {a.size} bytes)"
                             for a in m.attachments],
                citations=[c.to_dict() for c in m.citations],
            ) for m in case.messages],
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConsultView:
        def time(value: str | None) -> datetime | None:
            return datetime.fromisoformat(value) if value else None

        messages = [MessageView(**{**m, "sent_at": datetime.fromisoformat(m["sent_at"])})
                    for m in data["messages"]]
        return cls(**{**data, "due_at": time(data["due_at"]),
                      "requested_at": datetime.fromisoformat(data["requested_at"]),
                      "messages": messages})


class ConsultClient(Protocol):
    async def my_consults(self, token: str | None) -> list[ConsultView]:
        """The signed-in member's cases, newest first."""

    async def queue(self, token: str | None) -> list[ConsultView]:
        """Experts only: open and claimed cases, soonest due first."""

    async def request_consult(self, token: str | None, subject: str, body: str,
                              about: dict[str, str] | None = None) -> ConsultView: ...

    async def claim(self, token: str | None, consult_id: str) -> ConsultView: ...

    async def answer(self, token: str | None, consult_id: str, body: str) -> ConsultView: ...

    async def close_case(self, token: str | None, consult_id: str, reason: str = "") -> ConsultView:
        ...


def _case_id(consult_id: str) -> UUID:
    try:
        return UUID(consult_id)
    except ValueError:
        raise ConsultNotFound(f"No case {consult_id[:60]!r}.") from None


class LocalConsults:
    """The in-process client: the embedded gateway and the consult API use it."""

    def __init__(self, app: Consults, members: Members, answerer: Answerer) -> None:
        self.app = app
        self.members = members
        self.answerer = answerer

    async def _who(self, token: str | None) -> Requester:
        requester = await self.members.by_token(token)
        if requester is None:
            raise SignInRequired("Sign in to use expert consults.")
        return requester

    def _view(self, case: Consult, viewer: Requester) -> ConsultView:
        return ConsultView.of(case, self.app.clock(), viewer.viewer_id)

    async def my_consults(self, token: str | None) -> list[ConsultView]:
        viewer = await self._who(token)
        cases = await run_in_threadpool(self.app.member_consults, viewer.viewer_id)
        return [self._view(c, viewer) for c in cases]

    async def queue(self, token: str | None) -> list[ConsultView]:
        viewer = await self._who(token)
        cases = await run_in_threadpool(self.app.queue, viewer)
        return [self._view(c, viewer) for c in cases]

    async def request_consult(self, token: str | None, subject: str, body: str,
                              about: dict[str, str] | None = None) -> ConsultView:
        viewer = await self._who(token)
        if not body.strip():
            raise InvalidConsult("Write your question: it is empty.")
        await run_in_threadpool(self.app.check_can_open, viewer)
        auto = await instant_answer(self.answerer, subject, body, viewer, about)
        opened = await run_in_threadpool(
            lambda: self.app.open_case(viewer, subject, body, auto, channel=Channel.WEB,
                                       about=about))
        case = await run_in_threadpool(self.app.consult, opened.case_id)
        assert case is not None
        return self._view(case, viewer)

    async def claim(self, token: str | None, consult_id: str) -> ConsultView:
        viewer = await self._who(token)
        case = await run_in_threadpool(self.app.claim, viewer, _case_id(consult_id))
        return self._view(case, viewer)

    async def answer(self, token: str | None, consult_id: str, body: str) -> ConsultView:
        viewer = await self._who(token)
        case = await run_in_threadpool(self.app.answer, viewer, _case_id(consult_id), body)
        return self._view(case, viewer)

    async def close_case(self, token: str | None, consult_id: str, reason: str = "") -> ConsultView:
        viewer = await self._who(token)
        case = await run_in_threadpool(self.app.close_case, viewer, _case_id(consult_id), reason)
        return self._view(case, viewer)


class HttpConsults:
    """The client used when the consult service runs as its own process (see api.py)."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self._rpc = RpcClient(base_url, token=token, failure=ConsultFailure,
                              failures=failures_in(failures, ConsultFailure))
        self._call = self._rpc.call

    async def my_consults(self, token: str | None) -> list[ConsultView]:
        return [ConsultView.from_dict(c) for c in await self._call("my_consults", token=token)]

    async def queue(self, token: str | None) -> list[ConsultView]:
        return [ConsultView.from_dict(c) for c in await self._call("queue", token=token)]

    async def request_consult(self, token: str | None, subject: str, body: str,
                              about: dict[str, str] | None = None) -> ConsultView:
        return ConsultView.from_dict(await self._call("request_consult", token=token,
                                                      subject=subject, body=body, about=about))

    async def claim(self, token: str | None, consult_id: str) -> ConsultView:
        return ConsultView.from_dict(await self._call("claim", token=token,
                                                      consult_id=consult_id))

    async def answer(self, token: str | None, consult_id: str, body: str) -> ConsultView:
        return ConsultView.from_dict(await self._call("answer", token=token,
                                                      consult_id=consult_id, body=body))

    async def close_case(self, token: str | None, consult_id: str, reason: str = "") -> ConsultView:
        return ConsultView.from_dict(await self._call("close_case", token=token,
                                                      consult_id=consult_id, reason=reason))

    async def close_client(self) -> None:
        await self._rpc.close()


def serialise(value: ConsultView | list[ConsultView]) -> Any:
    """The JSON form ``ConsultView.from_dict`` reads back."""
    if isinstance(value, list):
        return [serialise(v) for v in value]

    def plain(obj: Any) -> Any:
        if isinstance(obj, datetime):
            return (obj if obj.tzinfo else obj.replace(tzinfo=UTC)).isoformat()
        if isinstance(obj, dict):
            return {k: plain(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [plain(v) for v in obj]
        return obj

    return plain(asdict(value))
