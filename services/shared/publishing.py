"""From a service's notification log to public envelopes.

Each service declares, in its ``events.py``, which domain events it publishes and the
public name, schema version and payload of each. Everything else in the log (internal
events) stays private. The same code feeds the relay, the embedded bus and exports.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any
from uuid import UUID, SafeUUID

from eventsourcing.application import Application
from eventsourcing.persistence import Notification

from services.shared.envelope import Envelope
from services.shared.tracing import correlation_of

ENVELOPE_NAMESPACE = UUID("0b6a3e0e-54a5-4f4b-8d7e-5c3f0e2b7a91")

Payload = Callable[[Any], dict[str, Any]]
_VERSION_5 = (5 << 76) | (0x8000 << 48)  # RFC 4122 version 5, variant bits
_CLEARED = ~((0xF000 << 64) | (0xC000 << 48))


def envelope_id(source: str, position: int) -> UUID:
    """``uuid5(ENVELOPE_NAMESPACE, f"{source}:{position}")``, deterministic so that a
    re-published event keeps its id; computed from a per-source hash prefix (exports and
    relays make one per event, and the library's uuid5 costs twice as much)."""
    digest = _prefix(source).copy()
    digest.update(b"%d" % position)
    value = int.from_bytes(digest.digest()[:16], "big")
    # UUID(int=...) without its argument checks (a third of the cost): the value is a
    # 128-bit version-5 UUID by construction.
    uuid = object.__new__(UUID)
    object.__setattr__(uuid, "int", (value & _CLEARED) | _VERSION_5)
    object.__setattr__(uuid, "is_safe", SafeUUID.unknown)
    return uuid


_PREFIXES: dict[str, Any] = {}


def _prefix(source: str) -> Any:
    prefix = _PREFIXES.get(source)
    if prefix is None:
        prefix = _PREFIXES[source] = hashlib.sha1(
            ENVELOPE_NAMESPACE.bytes + f"{source}:".encode(), usedforsecurity=False)  # uuid5: SHA-1
    return prefix


@dataclass(frozen=True)
class PublicEvent:
    type: str  # past-tense fact, e.g. "CodeRevised"
    version: int
    payload: Payload


@dataclass
class EventCatalogue:
    """The events one service publishes, keyed by the domain event class."""

    source: str
    events: dict[type, PublicEvent] = field(default_factory=dict)
    # Per store (its recorder): the newest notification id and the position
    # ``last_position`` found for it.
    _heads: weakref.WeakKeyDictionary[Any, tuple[int, int]] = field(
        default_factory=weakref.WeakKeyDictionary, repr=False, compare=False
    )

    def publish(self, domain_event_class: type, type_: str, version: int) -> Callable[
        [Payload], Payload
    ]:
        """Decorator registering the payload function of one public event."""

        def register(payload: Payload) -> Payload:
            self.events[domain_event_class] = PublicEvent(type_, version, payload)
            return payload

        return register

    @property
    def topics(self) -> list[str]:
        return [f"{cls.__module__}:{cls.__qualname__}" for cls in self.events]

    def envelope(self, app: Application[Any], notification: Notification) -> Envelope | None:
        domain_event: Any = app.mapper.to_domain_event(notification)
        public = self.events.get(type(domain_event))
        if public is None:
            return None
        timestamp = domain_event.timestamp
        if timestamp.tzinfo is None:
            timestamp = timestamp.replace(tzinfo=UTC)
        return Envelope(
            id=envelope_id(self.source, notification.id),
            type=public.type,
            schema_version=public.version,
            source=self.source,
            position=notification.id,
            aggregate_id=domain_event.originator_id,
            aggregate_version=domain_event.originator_version,
            occurred_at=timestamp,
            payload=public.payload(domain_event),
            # The trace of the request that recorded the event (see tracing.py).
            correlation_id=correlation_of(domain_event),
        )

    def read(
        self, app: Application[Any], after: int, limit: int
    ) -> tuple[list[Envelope], int]:
        """Up to ``limit`` public envelopes after ``after``, and the last position read.

        The returned position may be past the last envelope when private events or
        gaps in the notification ids were skipped.
        """
        notifications = app.recorder.select_notifications(
            after, limit, topics=self.topics, inclusive_of_start=False
        )
        envelopes = [e for n in notifications if (e := self.envelope(app, n)) is not None]
        last = notifications[-1].id if notifications else after
        return envelopes, last

    def iterate(self, app: Application[Any], after: int = 0, page: int = 1000) -> Iterator[
        Envelope
    ]:
        while True:
            envelopes, last = self.read(app, after, page)
            if last == after:
                return
            yield from envelopes
            after = last

    def last_position(self, app: Application[Any], page: int = 1000) -> int:
        """Position of the newest public event in the log (0 when there is none).

        Found again only when the log has grown (or shrunk: a store restored): reading
        the newest events reads their whole state, and a published reference is
        megabytes (lookup's newest ten: 7.7 MB), which the platform's monitor read
        every two seconds to measure lags.
        """
        newest = app.recorder.max_notification_id() or 0
        known = self._heads.get(app.recorder)
        if known is not None and known[0] == newest:
            return known[1]
        position, stop = 0, newest
        while stop > 0:
            start = max(stop - page + 1, 1)
            found = app.recorder.select_notifications(start, page, stop=stop, topics=self.topics)
            if found:
                position = found[-1].id
                break
            stop = start - 1
        self._heads[app.recorder] = (newest, position)
        return position
