"""The JSON Schemas of published events (``schema/events``) and checking envelopes against them.

Layout: ``schema/events/envelope.v1.json`` for the envelope and
``schema/events/<source>/<Type>.v<version>.json`` for each payload.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import best_match

ROOT = Path(__file__).resolve().parents[2]  # services/shared -> repository root
ENVELOPE_VERSION = 1

# jsonschema checks "date-time" only when an optional package is installed: always check it.
FORMATS = FormatChecker()
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
)


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.fullmatch(value):
        return False
    datetime.fromisoformat(value)  # a real date and time (raises ValueError otherwise)
    return True


class EventSchemaError(ValueError):
    """An envelope or payload does not match its schema (or has none)."""

    def __init__(self, type_: str, version: object, path: str, message: str) -> None:
        super().__init__(f"{type_} v{version}: at {path}: {message}")
        self.type = type_
        self.version = version
        self.path = path


def schema_dir(root: Path = ROOT) -> Path:
    return root / "schema" / "events"


def envelope_schema_path(root: Path = ROOT, version: int = ENVELOPE_VERSION) -> Path:
    return schema_dir(root) / f"envelope.v{version}.json"


def schema_path(root: Path, source: str, type_: str, version: int) -> Path:
    """Where the payload schema of one event type and version lives."""
    return schema_dir(root) / source / f"{type_}.v{version}.json"


@cache
def _load(path: Path) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema


def load_schema(root: Path, source: str, type_: str, version: int) -> dict[str, Any]:
    """The payload schema of one event type and version (FileNotFoundError when absent)."""
    return _load(schema_path(root, source, type_, version))


def _check(schema: dict[str, Any], instance: object, type_: str, version: object,
           prefix: str) -> None:
    validator = Draft202012Validator(schema, format_checker=FORMATS)
    error = best_match(validator.iter_errors(instance))
    if error is not None:
        path = prefix + "".join(f"/{part}" for part in error.absolute_path)
        raise EventSchemaError(type_, version, path or "/", error.message)


def validate_envelope(envelope: dict[str, Any], root: Path = ROOT) -> None:
    """Check an envelope (as ``Envelope.to_dict``) and its payload; raise EventSchemaError."""
    type_ = str(envelope.get("type", "?"))
    version = envelope.get("schema_version", "?")
    _check(_load(envelope_schema_path(root)), envelope, type_, version, "")
    path = schema_path(root, envelope["source"], type_, int(version))
    if not path.is_file():
        raise EventSchemaError(type_, version, "/payload", f"no schema at {path}")
    _check(_load(path), envelope["payload"], type_, version, "/payload")
