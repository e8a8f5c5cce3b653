"""Writes to an OpenSearch index version: one ``_bulk`` per change, then the checkpoint.

Not atomic: a crash between the two replays the change, which is harmless because every
operation is keyed by document id. The bulk waits for a refresh (by default) so that
once a write returns, searches see the change and the stored checkpoint never claims
more than a reader can find.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from services.shared.search.model import Checkpoint, Indexed, Schema
from services.shared.search.opensearch.mapping import to_source

if TYPE_CHECKING:
    from opensearchpy import AsyncOpenSearch

Refresh = bool | str  # True, False or "wait_for", passed through to the write APIs


class OpenSearchWriteError(RuntimeError):
    """A bulk write was only partly applied; the checkpoint was not stored."""


CHECKPOINTS_BODY: dict[str, Any] = {
    "settings": {"number_of_shards": 1},
    "mappings": {
        "dynamic": "strict",
        "properties": {
            "consumer": {"type": "keyword"},
            "source": {"type": "keyword"},
            "position": {"type": "long"},
            "cursor": {"type": "long"},
            "index": {"type": "keyword"},
        },
    },
}



def checkpoint_id(index: str, consumer: str, source: str) -> str:
    return f"{index}|{consumer}|{source}"


async def write(
    client: AsyncOpenSearch,
    index: str,
    upserts: Sequence[Indexed],
    deletions: Sequence[str],
    schema: Schema,
    *,
    refresh: Refresh,
) -> None:
    actions: list[dict[str, Any]] = []
    for doc in upserts:
        actions.append({"index": {"_index": index, "_id": doc.doc_id}})
        actions.append(to_source(schema, doc))
    for doc_id in deletions:
        actions.append({"delete": {"_index": index, "_id": doc_id}})
    if not actions:
        return
    response = await client.bulk(body=actions, refresh=refresh)
    if not response.get("errors"):
        return
    failures = [
        f"{op} {detail.get('_id')}: {detail['error']}"
        for item in response["items"]
        for op, detail in item.items()
        if "error" in detail  # a delete of a missing doc is 404 without error
    ]
    if failures:
        shown = "; ".join(failures[:5])
        raise OpenSearchWriteError(
            f"{len(failures)} of {len(response['items'])} bulk operations on "
            f"{index} failed: {shown}"
        )


async def write_checkpoint(
    client: AsyncOpenSearch, checkpoints: str, index: str, checkpoint: Checkpoint
) -> None:
    await client.index(
        index=checkpoints,
        id=checkpoint_id(index, checkpoint.consumer, checkpoint.source),
        body={
            "consumer": checkpoint.consumer,
            "source": checkpoint.source,
            "position": checkpoint.position,
            "cursor": checkpoint.cursor,
            "index": index,
        },
    )
