"""The lookup product's web pages: search and a page per code (services/shared/web)."""

from pathlib import Path

from services.lookup.web.pages import CodeSitemap, routes
from services.shared.web import WebPart

HERE = Path(__file__).parent

part = WebPart(
    name="lookup",
    templates=HERE / "templates",
    routes=routes,
    static=HERE / "static",
    operations=HERE / "operations.graphql",
    sitemap=CodeSitemap(),
    private_paths=("/search",),
)
