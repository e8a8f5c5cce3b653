"""Starting the lookup product in either mode, from the shared infrastructure."""

from __future__ import annotations

from services.lookup.application import CodeSets
from services.lookup.client import HttpLookup, LocalLookup
from services.lookup.events import CATALOGUE
from services.lookup.projections import SearchProjection
from services.lookup.search.documents import CODES, CodeDocument
from services.lookup.search.engine import CANDIDATES, EMBEDDED_CANDIDATES, Results
from services.lookup.settings import LookupSettings
from services.shared.consumer import Consumer
from services.shared.product import Infrastructure, Running
from services.shared.search.cache import SearchCache
from services.shared.search.model import SearchCatalog
from services.shared.settings import Settings
from services.shared.turns import Turns


def search_catalog(
    settings: Settings, lookup: LookupSettings | None = None
) -> SearchCatalog[CodeDocument]:
    lookup = lookup or LookupSettings.from_env(settings.environ)
    if settings.mode == "embedded":
        from services.shared.search.embedded import TantivyCatalog

        return TantivyCatalog(settings.data_dir / "search", CODES)
    from services.shared.search.opensearch import OpenSearchCatalog

    return OpenSearchCatalog(settings.opensearch_url, CODES, prefix=lookup.search_alias)


def search_turns(settings: Settings) -> Turns | None:
    """Turns for searches where they hold the event loop: the embedded engine searches in
    the serving process, milliseconds of CPU each, and requests are served fairly only
    if searches take turns (services.shared.turns). OpenSearch's searches wait on the
    network: in turns, each would wait for every other's round trips."""
    return Turns() if settings.mode == "embedded" else None


def search_candidates(settings: Settings) -> int:
    """How many of the backend's best matches a search ranks (engine.search's
    ``candidates``): each backend's development runs chose its own."""
    return EMBEDDED_CANDIDATES if settings.mode == "embedded" else CANDIDATES


async def start(infra: Infrastructure) -> Running:
    settings = infra.settings
    url = settings.service_url("lookup")
    if url:
        remote = HttpLookup(url, token=settings.service_token)
        return Running(client=remote, closers=[remote.close])
    own = LookupSettings.from_env(settings.environ)
    app = CodeSets(env=settings.event_store_env("lookup"))
    catalog = search_catalog(settings, own)
    cache: SearchCache[Results] = SearchCache(own.search_cache_entries,
                                              own.search_cache_seconds)
    projection = SearchProjection(catalog, cache=cache)
    client = LocalLookup(app, catalog, cache, search_turns(settings),
                         search_candidates(settings))
    return Running(
        client=client,
        app=app,
        catalogue=CATALOGUE,
        consumers=[Consumer(projection, infra.bus, CATALOGUE.source)],
        closers=[catalog.close],
        warmups=[client.warm],
    )
