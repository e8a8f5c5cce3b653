"""Write the AsyncAPI 3 document of every event topic to ``schema/asyncapi.yaml``.

Generated from ``schema/events`` (the envelope and each ``<service>/<Event>.v<N>.json``):
one channel per service topic, one message per event type and version, one ``send``
operation per service (its relay). Run ``python -m gateway.asyncapi`` after adding or
changing an event schema; a unit test fails while the checked-in file is stale.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from services.shared.bus import topic_for
from services.shared.kafka_bus import TOPIC_CONFIG

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "schema" / "events"
ASYNCAPI_PATH = ROOT / "schema" / "asyncapi.yaml"
_FILE = re.compile(r"(?P<type>[A-Z][A-Za-z0-9]*)\.v(?P<version>\d+)\.json")
_KAFKA_BINDING = "0.5.0"


def _rebased(node: Any, base: str) -> Any:
    """``node`` with its document-local references ("#/...") made to point under ``base``."""
    if isinstance(node, dict):
        return {k: (base + v[1:] if k == "$ref" and isinstance(v, str) and v.startswith("#/")
                    else _rebased(v, base)) for k, v in node.items()}
    if isinstance(node, list):
        return [_rebased(v, base) for v in node]
    return node


def _schema(path: Path, key: str) -> dict[str, Any]:
    """A JSON Schema file as the AsyncAPI schema component ``key`` (its own $schema and
    $id dropped, its internal references re-pointed into the component)."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    kept = {k: v for k, v in data.items() if k not in ("$schema", "$id")}
    rebased: dict[str, Any] = _rebased(kept, f"#/components/schemas/{key}")
    return rebased


def document() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Envelope": _schema(EVENTS / "envelope.v1.json", "Envelope")}
    for service_dir in sorted(p for p in EVENTS.iterdir() if p.is_dir()):
        service = service_dir.name
        refs: dict[str, Any] = {}
        for path in sorted(service_dir.glob("*.json"), key=lambda p: p.name):
            match = _FILE.fullmatch(path.name)
            if match is None:
                raise ValueError(f"{path}: event schemas are named <Event>.v<N>.json")
            event, version = match["type"], int(match["version"])
            key = f"{service}_{event}_v{version}"
            schema = _schema(path, key)
            schemas[key] = schema
            messages[key] = {
                "name": event,
                "title": f"{event} v{version}",
                "summary": schema.get("description", ""),
                "contentType": "application/json",
                "headers": {
                    "type": "object",
                    "description": "Kafka record headers: route without parsing the body.",
                    "properties": {"type": {"const": event},
                                   "schema_version": {"const": str(version)}},
                },
                "payload": {"allOf": [
                    {"$ref": "#/components/schemas/Envelope"},
                    {"type": "object", "properties": {
                        "type": {"const": event},
                        "schema_version": {"const": version},
                        "source": {"const": service},
                        "payload": {"$ref": f"#/components/schemas/{key}"},
                    }},
                ]},
                "bindings": {"kafka": {
                    "key": {"type": "string", "format": "uuid",
                            "description": "The aggregate id: an aggregate's events stay"
                                           " together."},
                    "bindingVersion": _KAFKA_BINDING,
                }},
            }
            refs[f"{event}_v{version}"] = {"$ref": f"#/components/messages/{key}"}
        address = topic_for(service)
        channels[service] = {
            "address": address,
            "title": f"{service} events",
            "description": (f"Every public event of the {service} service, in log order (one"
                            " partition), at least once: consumers dedupe by (source,"
                            " position). The topic keeps every record."),
            "messages": refs,
            "bindings": {"kafka": {
                "topic": address,
                "partitions": 1,
                "topicConfiguration": {
                    "retention.ms": int(TOPIC_CONFIG["retention.ms"]),
                    "retention.bytes": int(TOPIC_CONFIG["retention.bytes"]),
                    "cleanup.policy": [TOPIC_CONFIG["cleanup.policy"]],
                },
                "bindingVersion": _KAFKA_BINDING,
            }},
        }
        operations[f"publish_{service}_events"] = {
            "action": "send",
            "title": f"The {service} relay publishes its store's public events",
            "channel": {"$ref": f"#/channels/{service}"},
            "messages": [{"$ref": f"#/channels/{service}/messages/{name}"} for name in refs],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "medcode events",
            "version": "1.0.0",
            "description": ("The public event log of every medcode service (generated from"
                            " schema/events by `python -m gateway.asyncapi`). The event store"
                            " is the source of truth; topics are its copy for consumers and"
                            " analysts (`medcode events export` writes the same envelopes as"
                            " JSON Lines or Parquet)."),
        },
        "defaultContentType": "application/json",
        "servers": {"kafka": {"host": "kafka:9092", "protocol": "kafka",
                              "description": "KAFKA_BOOTSTRAP_SERVERS; topic names use"
                                             " KAFKA_TOPIC_PREFIX (default medcode)."}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def rendered() -> str:
    header = "# Generated by `python -m gateway.asyncapi` from schema/events: do not edit.\n"
    return header + yaml.safe_dump(document(), sort_keys=False, allow_unicode=True, width=100)


def main(path: Path = ASYNCAPI_PATH) -> None:
    path.write_text(rendered(), encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
