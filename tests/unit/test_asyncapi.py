"""schema/asyncapi.yaml describes every event topic and is regenerated with the schemas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gateway.asyncapi import ASYNCAPI_PATH, EVENTS, rendered


def test_checked_in_asyncapi_is_current() -> None:
    assert ASYNCAPI_PATH.read_text(encoding="utf-8") == rendered(), (
        "schema/asyncapi.yaml is stale: run `python -m gateway.asyncapi` to refresh it")


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def test_every_event_schema_is_a_message_on_its_service_topic() -> None:
    document = yaml.safe_load(ASYNCAPI_PATH.read_text(encoding="utf-8"))
    assert document["asyncapi"].startswith("3.")
    files = [p for p in EVENTS.glob("*/*.json")]
    assert files
    for path in files:
        service, (event, version) = path.parent.name, path.stem.split(".v")
        channel = document["channels"][service]
        assert channel["address"] == f"medcode.{service}.events"
        assert f"{event}_v{version}" in channel["messages"]
        operation = document["operations"][f"publish_{service}_events"]
        assert operation["action"] == "send"
    messages = sum(len(c["messages"]) for c in document["channels"].values())
    assert messages == len(files) == len(document["components"]["messages"])
    for ref in _refs(document):  # every reference resolves
        assert _resolve(document, ref) is not None


def test_a_new_event_schema_changes_the_document(tmp_path: Path, monkeypatch: Any) -> None:
    import shutil

    from gateway import asyncapi

    copy = tmp_path / "events"
    shutil.copytree(EVENTS, copy)
    (copy / "lookup" / "CodeRenamed.v1.json").write_text('{"type": "object"}')
    monkeypatch.setattr(asyncapi, "EVENTS", copy)
    assert "CodeRenamed_v1" in rendered() and rendered() != ASYNCAPI_PATH.read_text()
