"""The distributed code-search backend: versioned OpenSearch indexes behind one alias.

Each rebuild writes a new index ``{prefix}-v{N}``; searches read the alias ``{prefix}``,
which ``promote`` swaps in a single ``_aliases`` call so readers never see a half-built
index. Checkpoints live in ``{prefix}-checkpoints`` keyed by index name, so a new version
starts from nothing and the live one keeps its own progress.

Only candidate retrieval happens here; the final order comes from the shared ranker.
The semantics of ``candidates`` and ``facets`` mirror the SQLite FTS5 backend exactly
(see ``OpenSearchIndex.candidates``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opensearchpy.exceptions import NotFoundError, RequestError

from services.shared.search.model import (
    Candidates,
    Checkpoint,
    CodeDocument,
    Facets,
    IndexChange,
    QueryPlan,
    SearchIndex,
)

if TYPE_CHECKING:  # the client class needs aiohttp; import it only where a client is built
    from opensearchpy import AsyncOpenSearch

__all__ = ["OpenSearchCatalog", "OpenSearchIndex", "OpenSearchWriteError", "index_body"]

Refresh = bool | str  # True, False or "wait_for", passed through to the write APIs

# OpenSearch refuses from + size above index.max_result_window (10 000 by default).
_MAX_WINDOW = 10_000
_PAGE = 5_000  # documents() page size, under the result window
# Edge n-grams up to this length serve prefix matching; a longer typed prefix is cut to
# it at search time, so it still matches (slightly more loosely) rather than nothing.
_MAX_PREFIX = 30
_TITLE_BOOST = 2.0
_PREFIX_BOOST = 0.5  # a word completed from a prefix counts less than a whole word
_CREATE_ATTEMPTS = 5
# A word: a run of letters, digits and private-use characters (FTS5 unicode61's L*, N*, Co).
_WORD = r"[\p{L}\p{N}\p{Co}]+"
# Terms aggregations list this many values at most: far more systems and chapters than
# exist, so every shard reports every value and the counts are exact.
_FACET_VALUES = 1000


class OpenSearchWriteError(RuntimeError):
    """A bulk write was only partly applied; the checkpoint was not stored."""


def index_body(*, shards: int = 1, replicas: int = 0) -> dict[str, Any]:
    """Settings and mapping of one index version.

    One shard by default: a code catalogue is small (~100k docs), and a single shard
    keeps BM25 statistics exact, so scores do not depend on document routing.
    ``dynamic: strict`` turns a drifting document shape into a loud write error.

    A version keeps the analysis it was created with (queries are analysed by the
    index's own analyzers, so an older version stays consistent and keeps answering);
    a change here reaches a live deployment with ``medcode projections rebuild search``.
    """
    text = {"type": "text", "analyzer": "medcode_text"}
    # Unstemmed edge n-grams: "diab" -> "diabetes" must not depend on what the stemmer
    # makes of a partial word ("infarcti" stems to something that prefixes nothing).
    prefix = {
        "type": "text",
        "analyzer": "medcode_prefix",
        "search_analyzer": "medcode_prefix_search",
        "index_options": "docs",  # no positions or frequencies needed for one-token lookups
        "norms": False,
    }
    keyword = {"type": "keyword"}
    return {
        "settings": {
            "number_of_shards": shards,
            "number_of_replicas": replicas,
            "analysis": {
                # Words are runs of letters and digits, everything else separates them, as
                # in FTS5's unicode61 tokenizer and text.words: "40.0-44.9" is 40, 0, 44, 9
                # and "alzheimer's" is alzheimer, s. The standard tokenizer kept "40.0",
                # "e.g" and "o157:h7" whole, so "bmi 40" missed "BMI 40.0-44.9" here but not
                # in SQLite. The pattern matches the words themselves (group 0), not the
                # separators: osmem, the test server, indexes the matches of a pattern
                # whatever its group, so a separator pattern would index only punctuation.
                "tokenizer": {
                    "medcode_words": {"type": "pattern", "pattern": _WORD, "group": 0},
                },
                "filter": {
                    # "english" is Lucene's Porter stemmer, the same algorithm as FTS5's
                    # porter tokenizer, so both backends reduce words alike.
                    "medcode_stem": {"type": "stemmer", "language": "english"},
                    "medcode_edge": {
                        "type": "edge_ngram",
                        "min_gram": 1,
                        "max_gram": _MAX_PREFIX,
                    },
                    "medcode_cut": {"type": "truncate", "length": _MAX_PREFIX},
                },
                "analyzer": {
                    "medcode_text": {
                        "type": "custom",
                        "tokenizer": "medcode_words",
                        "filter": ["lowercase", "asciifolding", "medcode_stem"],
                    },
                    "medcode_prefix": {
                        "type": "custom",
                        "tokenizer": "medcode_words",
                        "filter": ["lowercase", "asciifolding", "medcode_edge"],
                    },
                    "medcode_prefix_search": {
                        "type": "custom",
                        "tokenizer": "medcode_words",
                        "filter": ["lowercase", "asciifolding", "medcode_cut"],
                    },
                },
            },
        },
        "mappings": {
            "dynamic": "strict",
            "properties": {
                "doc_id": keyword,  # sortable copy of _id (sorting on _id is discouraged)
                "system": keyword,
                "code": keyword,
                "compact": keyword,
                "compact_length": {"type": "short"},  # orders code-prefix matches
                "title": {**text, "fields": {"prefix": prefix}},
                "terms": {**text, "fields": {"prefix": prefix}},
                "billable": {"type": "boolean"},
                "kind": keyword,
                "chapter": keyword,
                "parent": keyword,
                "version": {"type": "integer"},
            },
        },
    }


_CHECKPOINTS_BODY: dict[str, Any] = {
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


def _to_source(doc: CodeDocument) -> dict[str, Any]:
    return {
        "doc_id": doc.doc_id,
        "system": doc.system,
        "code": doc.code,
        "compact": doc.compact,
        "compact_length": len(doc.compact),
        "title": doc.title,
        "terms": list(doc.terms),
        "billable": doc.billable,
        "kind": doc.kind,
        "chapter": doc.chapter,
        "parent": doc.parent,
        "version": doc.version,
    }


def _from_source(source: Mapping[str, Any]) -> CodeDocument:
    return CodeDocument(
        system=source["system"],
        code=source["code"],
        title=source["title"],
        billable=bool(source["billable"]),
        kind=source["kind"],
        chapter=source.get("chapter"),
        parent=source.get("parent"),
        terms=tuple(source.get("terms") or ()),
        version=int(source.get("version") or 0),
    )


def _filters(plan: QueryPlan, *, without: str | None = None) -> list[dict[str, Any]]:
    """The plan's filters, leaving out the one on the field ``without`` names."""
    filters: dict[str, dict[str, Any]] = {}
    if plan.systems:
        filters["systems"] = {"terms": {"system": list(plan.systems)}}
    if plan.billable_only:
        filters["billable"] = {"term": {"billable": True}}
    if plan.chapter is not None:
        filters["chapter"] = {"term": {"chapter": plan.chapter}}
    return [f for name, f in filters.items() if name != without]


def _word_clause(word: str, *, prefix: bool) -> dict[str, Any]:
    """One word in title or terms; ``prefix`` also accepts words it begins."""
    whole = {
        "multi_match": {
            "query": word,
            "fields": [f"title^{_TITLE_BOOST}", "terms"],
            "operator": "and",  # should the analyzer split a word, all parts must match
        }
    }
    if not prefix:
        return whole
    begun = {
        "multi_match": {
            "query": word,
            "fields": [f"title.prefix^{_TITLE_BOOST}", "terms.prefix"],
            "operator": "and",
            "boost": _PREFIX_BOOST,
        }
    }
    return {"bool": {"should": [whole, begun], "minimum_should_match": 1}}


def _words_query(plan: QueryPlan) -> dict[str, Any]:
    last = len(plan.words) - 1 if plan.prefix else -1
    clauses = [_word_clause(w, prefix=i == last) for i, w in enumerate(plan.words)]
    if plan.match_all:
        return {"bool": {"must": clauses}}
    return {"bool": {"should": clauses, "minimum_should_match": 1}}


def _parts(plan: QueryPlan, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the plan matches as disjoint searches, best first: code-prefix matches, then
    word matches that are not code matches. Candidates and facets both read these, so
    they count the very same entries."""
    parts: list[dict[str, Any]] = []
    code_match = {"prefix": {"compact": plan.code}}
    if plan.code:
        parts.append(
            {
                "query": {"bool": {"filter": [*filters, code_match]}},
                "sort": [{"compact_length": "asc"}, {"compact": "asc"}, {"doc_id": "asc"}],
            }
        )
    if plan.words:
        query: dict[str, Any] = {"must": [_words_query(plan)], "filter": filters}
        if plan.code:  # already returned by the code search
            query["must_not"] = [code_match]
        parts.append({"query": {"bool": query}, "sort": ["_score", {"doc_id": "asc"}]})
    return parts


def _facet_aggs(plan: QueryPlan) -> dict[str, Any]:
    """One filter aggregation per group, holding every filter but the group's own."""

    def within(without: str, terms: dict[str, Any]) -> dict[str, Any]:
        kept = _filters(plan, without=without)
        return {"filter": {"bool": {"filter": kept}}, "aggs": {"values": terms}}

    def by(field: str, **sub: Any) -> dict[str, Any]:
        return {"terms": {"field": field, "size": _FACET_VALUES}, **({"aggs": sub} if sub else {})}

    return {
        "systems": within("systems", by("system")),
        "chapters": within("chapter", by("system", chapters=by("chapter"))),
        "billable": within("billable", by("billable")),
    }


def _read_facets(aggs: Mapping[str, Any]) -> Facets:
    facets = Facets()
    for bucket in aggs["systems"]["values"]["buckets"]:
        facets.systems[bucket["key"]] = int(bucket["doc_count"])
    for system in aggs["chapters"]["values"]["buckets"]:
        for bucket in system["chapters"]["buckets"]:
            facets.chapters[(system["key"], bucket["key"])] = int(bucket["doc_count"])
    for bucket in aggs["billable"]["values"]["buckets"]:
        # A boolean's key is 1 or 0 (key_as_string "true"): never bool() a string.
        facets.billable[bucket["key"] in (True, "true")] = int(bucket["doc_count"])
    return facets


def _index_missing(response: Mapping[str, Any]) -> bool:
    error = response.get("error")
    return isinstance(error, Mapping) and error.get("type") == "index_not_found_exception"


def _raise_for_search(response: Mapping[str, Any]) -> None:
    if "error" in response:
        raise RuntimeError(f"OpenSearch search failed: {response['error']}")


class OpenSearchIndex:
    """One index version; implements ``SearchIndex``."""

    def __init__(
        self,
        client: Callable[[], AsyncOpenSearch],
        name: str,
        *,
        checkpoints: str,
        refresh: Refresh = "wait_for",
        alias: str | None = None,
    ) -> None:
        self._client = client
        self.name = name
        # Searches fall back to the alias when a promote dropped this version mid-request.
        self._alias = alias
        self._checkpoints = checkpoints
        self._refresh = refresh

    def __repr__(self) -> str:
        return f"OpenSearchIndex({self.name!r})"

    def _checkpoint_id(self, consumer: str, source: str) -> str:
        return f"{self.name}|{consumer}|{source}"

    async def write(self, change: IndexChange, checkpoint: Checkpoint) -> None:
        """One ``_bulk`` for the change, then the checkpoint.

        Not atomic: a crash between the two replays the change, which is harmless
        because every operation is keyed by document id. The bulk waits for a refresh
        (by default) so that once ``write`` returns, searches see the change and the
        stored checkpoint never claims more than a reader can find.
        """
        actions: list[dict[str, Any]] = []
        for doc in change.upserts:
            actions.append({"index": {"_index": self.name, "_id": doc.doc_id}})
            actions.append(_to_source(doc))
        for doc_id in change.deletions:
            actions.append({"delete": {"_index": self.name, "_id": doc_id}})
        client = self._client()
        if actions:
            response = await client.bulk(body=actions, refresh=self._refresh)
            if response.get("errors"):
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
                        f"{self.name} failed: {shown}"
                    )
        await client.index(
            index=self._checkpoints,
            id=self._checkpoint_id(checkpoint.consumer, checkpoint.source),
            body={
                "consumer": checkpoint.consumer,
                "source": checkpoint.source,
                "position": checkpoint.position,
                "cursor": checkpoint.cursor,
                "index": self.name,
            },
        )

    async def checkpoint(self, consumer: str, source: str) -> Checkpoint | None:
        """Read by id: GET is real-time in OpenSearch, so no refresh is needed."""
        try:
            response = await self._client().get(
                index=self._checkpoints, id=self._checkpoint_id(consumer, source)
            )
        except NotFoundError:  # no such document, or no checkpoint index yet
            return None
        body = response["_source"]
        return Checkpoint(
            consumer=body["consumer"],
            source=body["source"],
            position=int(body["position"]),
            cursor=int(body["cursor"]),
        )

    async def candidates(self, plan: QueryPlan) -> Candidates:
        """Documents matching the plan, for the shared ranker to order.

        Filters: ``systems`` (any of), ``billable_only``, ``chapter``. A document
        matches if its compact code starts with ``plan.code`` OR its title/terms match
        the words (all or any of them; the last one also as a word prefix). With no
        code and no words nothing matches.

        Order: code-prefix matches first, shortest code first (so an exact code leads),
        then word-only matches by BM25 with the title boosted. The two groups are
        disjoint queries sent in one ``_msearch``; ``total`` is the sum of their exact
        hit counts.
        """
        window = max(0, min(plan.window, _MAX_WINDOW))
        searches = _parts(plan, _filters(plan))
        if not searches:
            return Candidates(documents=[], total=0)
        documents: list[CodeDocument] = []
        total = 0
        for result in await self._search(searches, window):
            hits = result["hits"]
            total += int(hits["total"]["value"])
            documents.extend(_from_source(hit["_source"]) for hit in hits["hits"])
        return Candidates(documents=documents[:window], total=total)

    async def facets(self, plan: QueryPlan) -> Facets:
        """Filter and terms aggregations over the union of the candidates' searches,
        unfiltered: each aggregation applies the filters its group keeps."""
        parts = _parts(plan, [])
        if not parts:
            return Facets()
        matched = {"bool": {"should": [p["query"] for p in parts], "minimum_should_match": 1}}
        query = {"bool": {"filter": [matched]}}  # counted, not scored
        (result,) = await self._search([{"query": query, "aggs": _facet_aggs(plan)}], 0)
        return _read_facets(result["aggregations"])

    async def _search(self, searches: list[dict[str, Any]], window: int) -> list[Any]:
        """Each search's response; from the alias's target when a promote dropped this
        version after the caller resolved it."""
        response = await self._msearch(self.name, searches, window)
        if self._alias and any(_index_missing(r) for r in response["responses"]):
            response = await self._msearch(self._alias, searches, window)
        for result in response["responses"]:
            _raise_for_search(result)
        return list(response["responses"])

    async def _msearch(
        self, target: str, searches: list[dict[str, Any]], window: int
    ) -> Any:
        body: list[dict[str, Any]] = []
        for search in searches:
            body.append({"index": target})
            body.append({**search, "size": window, "track_total_hits": True})
        return await self._client().msearch(body=body)

    async def get(self, doc_id: str) -> CodeDocument | None:
        try:
            response = await self._client().get(index=self.name, id=doc_id)
        except NotFoundError:
            return None
        return _from_source(response["_source"])

    async def count(self) -> int:
        response = await self._client().count(index=self.name)
        return int(response["count"])

    async def listing(self, system: str, offset: int, limit: int) -> tuple[list[CodeDocument], int]:
        """Walked with ``search_after`` from the start (the result window caps ``from``);
        only the sitemap reads deep pages, and rarely."""
        client = self._client()
        query = {"term": {"system": system}}
        total = int((await client.count(index=self.name, body={"query": query}))["count"])
        found: list[CodeDocument] = []
        after: list[Any] | None = None
        skip = offset
        while len(found) < limit:
            size = min(_PAGE, skip + limit - len(found))
            body: dict[str, Any] = {"query": query, "sort": [{"doc_id": "asc"}], "size": size,
                                    "track_total_hits": False}
            if after is not None:
                body["search_after"] = after
            hits = (await client.search(index=self.name, body=body))["hits"]["hits"]
            taken = hits[skip:]
            skip = max(skip - len(hits), 0)
            found.extend(_from_source(hit["_source"]) for hit in taken)
            if len(hits) < size:
                break
            after = hits[-1]["sort"]
        return found[:limit], total

    async def documents(self, *, page: int = _PAGE) -> list[CodeDocument]:
        """Every document by doc id, paged with ``search_after`` (no scroll state to leak).

        Not a snapshot: concurrent writes may or may not show up.
        """
        client = self._client()
        documents: list[CodeDocument] = []
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {
                "query": {"match_all": {}},
                "sort": [{"doc_id": "asc"}],
                "size": page,
                "track_total_hits": False,
            }
            if after is not None:
                body["search_after"] = after
            response = await client.search(index=self.name, body=body)
            hits = response["hits"]["hits"]
            documents.extend(_from_source(hit["_source"]) for hit in hits)
            if len(hits) < page:
                return documents
            after = hits[-1]["sort"]


class OpenSearchCatalog:
    """Index versions ``{prefix}-v{N}`` behind the alias ``{prefix}``; a ``SearchCatalog``.

    ``client`` is either a factory returning an ``AsyncOpenSearch`` or a host URL string
    (comma-separated for several nodes). The client is built on first use, never at
    import or construction time, so settings can be read at bootstrap.
    """

    def __init__(
        self,
        client: Callable[[], AsyncOpenSearch] | str,
        *,
        prefix: str = "medcode-codes",
        shards: int = 1,
        replicas: int = 0,
        refresh: Refresh = "wait_for",
    ) -> None:
        if isinstance(client, str):
            hosts = [host.strip() for host in client.split(",") if host.strip()]
            self._factory: Callable[[], AsyncOpenSearch] = lambda: _client_for(hosts)
        else:
            self._factory = client
        self._instance: AsyncOpenSearch | None = None
        self.prefix = prefix
        self.checkpoints = f"{prefix}-checkpoints"
        self._version_name = re.compile(rf"^{re.escape(prefix)}-v(\d+)$")
        self._shards = shards
        self._replicas = replicas
        self._refresh = refresh

    def _client(self) -> AsyncOpenSearch:
        if self._instance is None:
            self._instance = self._factory()
        return self._instance

    def _index(self, name: str) -> OpenSearchIndex:
        return OpenSearchIndex(
            self._client, name, checkpoints=self.checkpoints, refresh=self._refresh,
            alias=self.prefix,
        )

    def _number(self, name: str) -> int | None:
        match = self._version_name.match(name)
        return int(match.group(1)) if match else None

    async def _alias_targets(self) -> list[str]:
        """Versions the alias points to (normally one), highest first."""
        try:
            response = await self._client().indices.get_alias(name=self.prefix)
        except NotFoundError:
            return []
        return sorted(response, key=lambda name: self._number(name) or -1, reverse=True)

    async def _versions(self) -> dict[str, int]:
        response = await self._client().indices.get_alias(index=f"{self.prefix}-v*")
        numbers = {name: self._number(name) for name in response}
        return {name: n for name, n in numbers.items() if n is not None}

    async def _ensure_checkpoints(self) -> None:
        try:
            await self._client().indices.create(index=self.checkpoints, body=_CHECKPOINTS_BODY)
        except RequestError as exc:
            if exc.error != "resource_already_exists_exception":
                raise

    async def _create_next(self, *, live: bool) -> str | None:
        """Create the next version; with ``live`` the alias is added in the same call.

        Returns None if a concurrent caller created the alias first (``live`` only).
        Retries when another process took the version number.
        """
        await self._ensure_checkpoints()
        for _ in range(_CREATE_ATTEMPTS):
            versions = await self._versions()
            name = f"{self.prefix}-v{max(versions.values(), default=0) + 1}"
            body = index_body(shards=self._shards, replicas=self._replicas)
            if live:
                body["aliases"] = {self.prefix: {}}
            try:
                await self._client().indices.create(index=name, body=body)
            except RequestError as exc:
                if exc.error != "resource_already_exists_exception":
                    raise
                if live and await self._alias_targets():
                    return None
                continue
            return name
        raise RuntimeError(f"could not create a new version of {self.prefix}: names kept clashing")

    async def live(self) -> SearchIndex:
        """The index behind the alias; creates v1 (or the next free N) and the alias."""
        targets = await self._alias_targets()
        if not targets:
            created = await self._create_next(live=True)
            targets = [created] if created else await self._alias_targets()
        return self._index(targets[0])

    async def create_version(self) -> SearchIndex:
        name = await self._create_next(live=False)
        assert name is not None
        return self._index(name)

    async def promote(self, index: SearchIndex) -> None:
        """Swap the alias in one ``_aliases`` call, then drop older versions.

        Versions numbered above ``index`` are kept: they may be rebuilds in progress.
        Checkpoints of dropped versions are removed with them.
        """
        number = self._number(index.name)
        if number is None:
            raise ValueError(f"{index.name!r} is not a version of {self.prefix!r}")
        client = self._client()
        actions: list[dict[str, Any]] = [
            {"remove": {"index": name, "alias": self.prefix}}
            for name in await self._alias_targets()
            if name != index.name
        ]
        actions.append({"add": {"index": index.name, "alias": self.prefix}})
        await client.indices.update_aliases(body={"actions": actions})
        older = sorted(name for name, n in (await self._versions()).items() if n < number)
        await self._drop(older)

    async def _drop(self, names: Sequence[str]) -> None:
        if not names:
            return
        client = self._client()
        for name in names:
            try:
                await client.indices.delete(index=name)
            except NotFoundError:
                pass  # dropped concurrently
        try:
            await client.delete_by_query(
                index=self.checkpoints,
                body={"query": {"terms": {"index": list(names)}}},
                conflicts="proceed",
                refresh=True,
            )
        except NotFoundError:
            pass

    async def close(self) -> None:
        if self._instance is not None:
            instance, self._instance = self._instance, None
            await instance.close()


def _client_for(hosts: list[str]) -> AsyncOpenSearch:
    from opensearchpy import AsyncOpenSearch  # needs aiohttp (opensearch-py[async])

    return AsyncOpenSearch(hosts=hosts)
