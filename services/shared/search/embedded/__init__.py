"""The embedded search backend: tantivy (the Rust engine's official Python bindings)."""

from services.shared.search.embedded.catalog import TantivyCatalog
from services.shared.search.embedded.index import TantivyIndex

__all__ = ["TantivyCatalog", "TantivyIndex"]
