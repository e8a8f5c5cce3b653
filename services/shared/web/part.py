"""What a product contributes to the web: its pages, templates, assets and operations.

A product's ``Product.web`` holds one :class:`WebPart`; the gateway gathers them into one
:class:`~services.shared.web.site.Site`. Nothing here names a product.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from starlette.requests import Request
from starlette.routing import BaseRoute

if TYPE_CHECKING:
    from services.shared.web.site import Site


class Sitemap(Protocol):
    """The public pages a part lists for crawlers, in named sections of at most
    :data:`SITEMAP_PAGE` paths (the sitemap protocol allows 50,000 a file)."""

    async def sections(self, site: Site, request: Request) -> list[str]:
        """The section names, e.g. ["icd10cm-1", "icd10cm-2"]."""

    async def paths(self, site: Site, request: Request, section: str) -> list[str] | None:
        """The paths of one section (e.g. "/codes/icd10cm/I21.9"); None if it has no
        such section."""


SITEMAP_PAGE = 10_000


@dataclass(frozen=True)
class WebPart:
    name: str  # its assets are served at /static/<name>/, its templates named "<name>/..."
    templates: Path
    routes: Callable[[Site], Sequence[BaseRoute]]
    static: Path | None = None
    # A .graphql file of named operations: the only way its pages read or change data.
    operations: Path | None = None
    # A template of this part included in every page's header, and the named operation
    # whose data it reads (e.g. who is signed in).
    header: str | None = None
    header_operation: str | None = None
    sitemap: Sitemap | None = None
    # Paths crawlers are asked to leave alone (robots.txt), e.g. forms and search results.
    private_paths: tuple[str, ...] = ()
