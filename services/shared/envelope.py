"""The envelope every published event travels in, whatever the bus.

The shape is a public contract (see ARCHITECTURE.md): consumers in other services,
analysts' exports and the JSON Schemas under ``schema/events`` all rely on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class Envelope:
    id: UUID
    type: str
    schema_version: int
    source: str
    position: int
    aggregate_id: UUID
    aggregate_version: int
    occurred_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)
    correlation_id: UUID | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "type": self.type,
            "schema_version": self.schema_version,
            "source": self.source,
            "position": self.position,
            "aggregate_id": str(self.aggregate_id),
            "aggregate_version": self.aggregate_version,
            "occurred_at": self.occurred_at.isoformat(),
            "correlation_id": str(self.correlation_id) if self.correlation_id else None,
            "payload": self.payload,
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Envelope:
        correlation = data.get("correlation_id")
        return cls(
            id=UUID(data["id"]),
            type=data["type"],
            schema_version=int(data["schema_version"]),
            source=data["source"],
            position=int(data["position"]),
            aggregate_id=UUID(data["aggregate_id"]),
            aggregate_version=int(data["aggregate_version"]),
            occurred_at=datetime.fromisoformat(data["occurred_at"]),
            correlation_id=UUID(correlation) if correlation else None,
            payload=dict(data.get("payload") or {}),
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> Envelope:
        return cls.from_dict(json.loads(raw))
