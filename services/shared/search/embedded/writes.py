"""Writing one tantivy index version: a change and its checkpoint in one commit.

Why the checkpoint is atomic with the change: tantivy publishes a commit by atomically
replacing ``meta.json`` (written to a temporary file, then renamed), which lists the
segments and deletes visible from then on. Everything done through the writer between
two commits (the documents upserted and deleted, *and* the checkpoint, stored as a
document ``_cp = consumer|source`` replacing the previous one) becomes visible in that
one rename, or, if the process dies before it, not at all: the next writer starts from
the last ``meta.json`` and the consumer replays from the checkpoint that commit holds.
A failure before the commit rolls the writer back, so nothing of a half-applied change
lingers into a later commit. (The bindings expose no commit payload; a checkpoint
document gives the same guarantee and is read back like any other document.)

One writer at a time: tantivy takes a lock file in the version's directory. A writer is
kept while changes keep coming (catching up on a release: segments merge in the
background meanwhile) and closed after a second without one, so another process (an
import command while the server runs) can take its turn; a busy lock is waited for.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from typing import Any

import tantivy
from tantivy import Occur

from services.shared import faults
from services.shared.search.embedded.layout import (
    CHECKPOINT,
    ID,
    checkpoint_document,
    document,
    stored,
)
from services.shared.search.embedded.queries import matched
from services.shared.search.model import Checkpoint, DocumentType, IndexChange

_HEAP = 50_000_000  # the writer's indexing arena (tantivy wants at least 15 MB a thread)
# A compaction's arena: a bound, not an allocation; whole ICD-10-CM and -PCS (167,826
# entries) fit in one segment with the process at 365 MB.
_COMPACT_HEAP = 1_500_000_000
_CHECKPOINTS = 1000  # checkpoint documents a version may hold (one per consumer and source)
_LOCK_WAIT = 120.0  # seconds a write waits for another process's writer to finish
_LOCK_RETRY = 0.05
_IDLE = 1.0  # seconds without a change before the writer is closed


class IndexDropped(RuntimeError):
    """The version was dropped (a promote) while a write wanted it."""


class WriterBusyError(RuntimeError):
    """Another process kept the index version's writer for longer than a write waits."""


def checkpoint_name(consumer: str, source: str) -> str:
    return f"{consumer}|{source}"


def _writer(index: tantivy.Index, path: str, heap: int = _HEAP) -> tantivy.IndexWriter:
    deadline = time.monotonic() + _LOCK_WAIT
    while True:
        try:
            return index.writer(heap_size=heap, num_threads=1)
        except ValueError as exc:  # the bindings report a held lock as a ValueError
            if "LockBusy" not in str(exc) and "lock" not in str(exc).lower():
                raise
            if not os.path.isdir(path):  # dropped by a promote: no one will release it
                raise IndexDropped(f"{path} was dropped (a newer version was promoted)"
                                   ) from exc
            if time.monotonic() > deadline:
                raise WriterBusyError(
                    f"another process has been writing the search index at {path} for over"
                    f" {_LOCK_WAIT:.0f} s; stop it or wait, then retry"
                ) from exc
            time.sleep(_LOCK_RETRY)


class Writes:
    """Applies changes to one version; one write at a time in this process."""

    def __init__(
        self, doc_type: DocumentType[Any], index: tantivy.Index, path: str, as_text: bool
    ) -> None:
        self.doc_type = doc_type
        self.index = index
        self.path = path
        self.as_text = as_text  # how the version keeps stored JSON (layout._add_body)
        self.lock = threading.Lock()
        self._writer: tantivy.IndexWriter | None = None
        self._idle: threading.Timer | None = None

    def write(self, change: IndexChange[Any], checkpoint: Checkpoint) -> None:
        schema = self.doc_type.schema
        with self.lock:
            if self._idle is not None:
                self._idle.cancel()
            if self._writer is None:
                self._writer = _writer(self.index, self.path)
            writer = self._writer
            try:
                for doc in change.upserts:
                    indexed = self.doc_type.index(doc)
                    writer.delete_documents_by_term(ID, indexed.doc_id)
                    writer.add_document(document(schema, indexed, self.as_text))
                for doc_id in change.deletions:
                    writer.delete_documents_by_term(ID, doc_id)
                name = checkpoint_name(checkpoint.consumer, checkpoint.source)
                writer.delete_documents_by_term(CHECKPOINT, name)
                body = {"position": checkpoint.position, "cursor": checkpoint.cursor}
                writer.add_document(checkpoint_document(name, body, self.as_text))
                writer.commit()
            except BaseException:
                writer.rollback()
                raise
            finally:
                self._idle = threading.Timer(_IDLE, self.close)
                self._idle.daemon = True
                self._idle.start()
            self.index.reload()

    def compact(self, documents: Iterable[Any]) -> None:
        """Write the version again as one segment, in one commit, from ``documents`` (each
        of its documents, read once it is called: TantivyIndex.each_document); not where
        it is one already, or holds a checkpoint that does not name itself (written
        before they did: the next write names it).

        tantivy sets a search up once per segment, and its merges leave a bulk load in
        several (ICD-10-CM and -PCS: 8): in one, first-time searches took 6.5 % fewer
        instructions, their tantivy part a fifth fewer, with the same results. The bindings
        offer no merge, so every document is read back, indexed again (a kept reading
        by today's rules) and written with a delete of all the old, which the commit
        makes visible at once, or, rolled back, not at all."""
        schema = self.doc_type.schema
        with self.lock:
            self._close()
            self.index.reload()
            searcher = self.index.searcher()
            if searcher.num_segments <= 1:
                return
            others = tantivy.Query.boolean_query(
                [(Occur.Must, tantivy.Query.all_query()),
                 (Occur.MustNot, tantivy.Query.exists_query(ID))]
            )
            found = searcher.search(others, _CHECKPOINTS, count=True)
            checkpoints = [stored(searcher.doc(address)) for _, address in found.hits]
            if matched(found) > len(checkpoints) or any("name" not in b for b in checkpoints):
                return
            writer = _writer(self.index, self.path, _COMPACT_HEAP)
            try:
                writer.delete_all_documents()
                for body in checkpoints:
                    name = body.pop("name")
                    writer.add_document(checkpoint_document(name, body, self.as_text))
                for doc in documents:
                    writer.add_document(document(schema, self.doc_type.index(doc), self.as_text))
                faults.point("search.compact.before_commit")
                writer.commit()
            except BaseException:
                writer.rollback()
                raise
            finally:
                writer.wait_merging_threads()
            self.index.reload()

    def close(self) -> None:
        """Close the writer (after its merges), releasing its lock."""
        with self.lock:
            self._close()

    def _close(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.wait_merging_threads()


def read_checkpoint(body: dict[str, Any], consumer: str, source: str) -> Checkpoint:
    return Checkpoint(consumer, source, int(body["position"]), int(body["cursor"]))

