"""The distributed search backend: versioned OpenSearch indexes behind one alias.

Each rebuild writes a new index ``{prefix}-v{N}``; searches read the alias ``{prefix}``,
which ``promote`` swaps in a single ``_aliases`` call so readers never see a half-built
index. Checkpoints live in ``{prefix}-checkpoints`` keyed by index name, so a new version
starts from nothing and the live one keeps its own progress.

Only candidate retrieval happens here; the product's ranker orders them. The semantics
of ``candidates`` and ``facets`` are the backend contract's (queries.py), which the
embedded backend shares.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic

from opensearchpy.exceptions import NotFoundError, RequestError

from services.shared import faults
from services.shared.search.model import (
    Candidates,
    Checkpoint,
    D,
    DocumentType,
    Facets,
    IndexChange,
    QueryPlan,
    SearchIndex,
    Value,
)
from services.shared.search.opensearch.mapping import index_body, stored_of
from services.shared.search.opensearch.queries import facet_aggs, filters, parts, read_facets
from services.shared.search.opensearch.writes import (
    CHECKPOINTS_BODY,
    Refresh,
    checkpoint_id,
    write,
    write_checkpoint,
)

if TYPE_CHECKING:  # the client class needs aiohttp; import it only where a client is built
    from opensearchpy import AsyncOpenSearch


# OpenSearch refuses from + size above index.max_result_window (10 000 by default).
_MAX_WINDOW = 10_000
_PAGE = 5_000  # documents() page size, under the result window
_CREATE_ATTEMPTS = 5
_MERGE_TIMEOUT = 600  # seconds a force merge may take


def _index_missing(response: Mapping[str, Any]) -> bool:
    error = response.get("error")
    return isinstance(error, Mapping) and error.get("type") == "index_not_found_exception"


def _window(plan: QueryPlan) -> int:
    """How many documents a plan gets back, at most OpenSearch's result window."""
    return max(0, min(plan.window, _MAX_WINDOW))


def _raise_for_search(response: Mapping[str, Any]) -> None:
    if "error" in response:
        raise RuntimeError(f"OpenSearch search failed: {response['error']}")


class OpenSearchIndex(Generic[D]):
    """One index version; implements ``SearchIndex``."""

    def __init__(
        self,
        client: Callable[[], AsyncOpenSearch],
        name: str,
        doc_type: DocumentType[D],
        *,
        checkpoints: str,
        refresh: Refresh = "wait_for",
        alias: str | None = None,
    ) -> None:
        self._client = client
        self.name = name
        self._doc_type = doc_type
        self._schema = doc_type.schema
        # Searches fall back to the alias when a promote dropped this version mid-request.
        self._alias = alias
        self._checkpoints = checkpoints
        self._refresh = refresh

    def __repr__(self) -> str:
        return f"OpenSearchIndex({self.name!r})"

    def _load(self, source: Mapping[str, Any]) -> D:
        return self._doc_type.load(stored_of(source))

    async def write(self, change: IndexChange[D], checkpoint: Checkpoint) -> None:
        await write(
            self._client(),
            self.name,
            [self._doc_type.index(doc) for doc in change.upserts],
            change.deletions,
            self._doc_type.schema,
            refresh=self._refresh,
        )
        faults.point("projection.after_write")  # written, checkpoint not yet
        await write_checkpoint(self._client(), self._checkpoints, self.name, checkpoint)

    async def compact(self) -> None:
        # One segment per shard; a merge of a whole code set takes seconds.
        await self._client().indices.forcemerge(
            index=self.name, max_num_segments=1, request_timeout=_MERGE_TIMEOUT
        )

    async def checkpoint(self, consumer: str, source: str) -> Checkpoint | None:
        """Read by id: GET is real-time in OpenSearch, so no refresh is needed."""
        try:
            response = await self._client().get(
                index=self._checkpoints, id=checkpoint_id(self.name, consumer, source)
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

    async def candidates(self, plan: QueryPlan) -> Candidates[D]:
        """Documents matching the plan (queries.py), for the product's ranker to order.

        The parts are disjoint queries sent in one ``_msearch``; ``total`` is the sum of
        their hit counts: exact when the plan asks for a count, else counted one past the
        window, which tells whether more match than are returned (a response tracking no
        hits at all has no total).
        """
        (found,) = await self.candidates_each([plan])
        return found

    async def candidates_each(self, plans: Sequence[QueryPlan]) -> list[Candidates[D]]:
        """Every plan's parts in one ``_msearch``: one round trip, however many plans."""
        searches = [self._sized(plan) for plan in plans]
        results = iter(await self._search([s for each in searches for s in each]))
        return [
            self._candidates(plan, [next(results)["hits"] for _ in each])
            for plan, each in zip(plans, searches, strict=True)
        ]

    def _sized(self, plan: QueryPlan) -> list[dict[str, Any]]:
        """The plan's searches, each asking for the window and how far to count."""
        window = _window(plan)
        track = True if plan.count else window + 1
        return [{**search, "size": window, "track_total_hits": track}
                for search in parts(self._schema, plan, filters(plan))]

    def _candidates(self, plan: QueryPlan, results: list[Any]) -> Candidates[D]:
        total = sum(int(hits["total"]["value"]) for hits in results)
        found = [hit for hits in results for hit in hits["hits"]][: _window(plan)]
        if plan.whole and total > len(found):
            return Candidates(documents=[], total=total)
        return Candidates(documents=[self._load(hit["_source"]) for hit in found], total=total)

    async def facets(self, plan: QueryPlan) -> Facets:
        """Filter and terms aggregations over the union of the candidates' searches,
        unfiltered: each aggregation applies the filters its group keeps."""
        found = parts(self._schema, plan, [])
        if not found:
            return Facets()
        matched = {"bool": {"should": [p["query"] for p in found], "minimum_should_match": 1}}
        query = {"bool": {"filter": [matched]}}  # counted, not scored
        aggs = facet_aggs(self._schema, plan)
        (result,) = await self._search(
            [{"query": query, "aggs": aggs, "size": 0, "track_total_hits": True}]
        )
        return read_facets(self._schema, result["aggregations"])

    async def _search(self, searches: list[dict[str, Any]]) -> list[Any]:
        """Each search's response; from the alias's target when a promote dropped this
        version after the caller resolved it."""
        if not searches:
            return []
        response = await self._msearch(self.name, searches)
        if self._alias and any(_index_missing(r) for r in response["responses"]):
            response = await self._msearch(self._alias, searches)
        for result in response["responses"]:
            _raise_for_search(result)
        return list(response["responses"])

    async def _msearch(self, target: str, searches: list[dict[str, Any]]) -> Any:
        body: list[dict[str, Any]] = []
        for search in searches:
            body.append({"index": target})
            body.append(search)
        return await self._client().msearch(body=body)

    async def get(self, doc_id: str) -> D | None:
        try:
            response = await self._client().get(index=self.name, id=doc_id)
        except NotFoundError:
            return None
        return self._load(response["_source"])

    async def count(self) -> int:
        response = await self._client().count(index=self.name)
        return int(response["count"])

    async def listing(
        self, field: str, value: Value, offset: int, limit: int
    ) -> tuple[list[D], int]:
        """Walked with ``search_after`` from the start (the result window caps ``from``);
        listings are read rarely, and seldom deep."""
        client = self._client()
        query = {"term": {field: value}}
        total = int((await client.count(index=self.name, body={"query": query}))["count"])
        found: list[D] = []
        after: list[Any] | None = None
        skip = offset
        while len(found) < limit:
            size = min(_PAGE, skip + limit - len(found))
            body: dict[str, Any] = {"query": query, "sort": [{"doc_id": "asc"}], "size": size,
                                    "track_total_hits": False}
            if after is not None:
                body["search_after"] = after
            hits = (await client.search(index=self.name, body=body))["hits"]["hits"]
            found.extend(self._load(hit["_source"]) for hit in hits[skip:])
            skip = max(skip - len(hits), 0)
            if len(hits) < size:
                break
            after = hits[-1]["sort"]
        return found[:limit], total

    async def documents(self, *, page: int = _PAGE) -> list[D]:
        """Every document by doc id, paged with ``search_after`` (no scroll state to leak).

        Not a snapshot: concurrent writes may or may not show up.
        """
        client = self._client()
        documents: list[D] = []
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
            documents.extend(self._load(hit["_source"]) for hit in hits)
            if len(hits) < page:
                return documents
            after = hits[-1]["sort"]


class OpenSearchCatalog(Generic[D]):
    """Index versions ``{prefix}-v{N}`` behind the alias ``{prefix}``; a ``SearchCatalog``.

    ``client`` is either a factory returning an ``AsyncOpenSearch`` or a host URL string
    (comma-separated for several nodes). The client is built on first use, never at
    import or construction time, so settings can be read at bootstrap.
    """

    def __init__(
        self,
        client: Callable[[], AsyncOpenSearch] | str,
        doc_type: DocumentType[D],
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
        self.doc_type = doc_type
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

    def _index(self, name: str) -> OpenSearchIndex[D]:
        return OpenSearchIndex(
            self._client, name, self.doc_type, checkpoints=self.checkpoints,
            refresh=self._refresh, alias=self.prefix,
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
            await self._client().indices.create(index=self.checkpoints, body=CHECKPOINTS_BODY)
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
            body = index_body(self.doc_type.schema, shards=self._shards, replicas=self._replicas)
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

    async def live(self) -> SearchIndex[D]:
        """The index behind the alias; creates v1 (or the next free N) and the alias."""
        targets = await self._alias_targets()
        if not targets:
            created = await self._create_next(live=True)
            targets = [created] if created else await self._alias_targets()
        return self._index(targets[0])

    async def create_version(self) -> SearchIndex[D]:
        name = await self._create_next(live=False)
        assert name is not None
        return self._index(name)

    async def promote(self, index: SearchIndex[D]) -> None:
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
