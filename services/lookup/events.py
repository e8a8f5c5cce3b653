"""The events the lookup service publishes (schemas under schema/events/lookup/)."""

from __future__ import annotations

from typing import Any

from services.lookup.domain import Code, CodeSet, Reference
from services.shared.publishing import EventCatalogue

CATALOGUE = EventCatalogue(source="lookup")


def _entry(event: Any) -> dict[str, Any]:
    return {"system": event.system, "code": event.code, "release": event.release,
            **event.content}


@CATALOGUE.publish(Code.Added, "CodeAdded", 1)
def code_added(event: Any) -> dict[str, Any]:
    return _entry(event)


@CATALOGUE.publish(Code.Revised, "CodeRevised", 1)
def code_revised(event: Any) -> dict[str, Any]:
    return _entry(event)


@CATALOGUE.publish(Code.Deleted, "CodeDeleted", 1)
def code_deleted(event: Any) -> dict[str, Any]:
    return {"system": event.system, "code": event.code, "release": event.release}


@CATALOGUE.publish(CodeSet.Created, "CodeSetCreated", 1)
def code_set_created(event: Any) -> dict[str, Any]:
    return {"system": event.system}


@CATALOGUE.publish(CodeSet.ReleaseImported, "ReleaseImported", 1)
def release_imported(event: Any) -> dict[str, Any]:
    return {"system": event.system, "release": event.release, "source": event.source,
            "added": event.added, "revised": event.revised, "deleted": event.deleted,
            # [code, change] pairs; absent on events stored before releases listed them.
            "changes": getattr(event, "changes", None)}


def _reference(event: Any) -> dict[str, Any]:
    return {"system": event.system, "name": event.name, "release": event.release,
            "items": event.items}


@CATALOGUE.publish(Reference.Published, "ReferencePublished", 1)
def reference_published(event: Any) -> dict[str, Any]:
    return _reference(event)


@CATALOGUE.publish(Reference.Revised, "ReferenceRevised", 1)
def reference_revised(event: Any) -> dict[str, Any]:
    return _reference(event)
