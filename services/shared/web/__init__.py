"""The generic web shell (layout, assets, cookies, CSRF, sitemap) products add pages to."""

from services.shared.web.part import SITEMAP_PAGE, Sitemap, WebPart
from services.shared.web.site import (
    CSRF_FIELD,
    SESSION_COOKIE,
    OperationFailed,
    OperationRefused,
    Site,
    write_cookies,
)

__all__ = [
    "CSRF_FIELD",
    "SESSION_COOKIE",
    "SITEMAP_PAGE",
    "OperationFailed",
    "OperationRefused",
    "Site",
    "Sitemap",
    "WebPart",
    "write_cookies",
]
