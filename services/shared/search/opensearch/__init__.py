"""The distributed search backend: OpenSearch."""

from services.shared.search.opensearch.catalog import OpenSearchCatalog, OpenSearchIndex
from services.shared.search.opensearch.mapping import index_body
from services.shared.search.opensearch.writes import OpenSearchWriteError

__all__ = ["OpenSearchCatalog", "OpenSearchIndex", "OpenSearchWriteError", "index_body"]
