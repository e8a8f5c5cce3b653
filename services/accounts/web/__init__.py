"""The accounts product's web pages: register, log in, log out, account (services/shared/web)."""

from pathlib import Path

from services.accounts.web.pages import routes
from services.shared.web import WebPart

HERE = Path(__file__).parent

part = WebPart(
    name="accounts",
    templates=HERE / "templates",
    routes=routes,
    operations=HERE / "operations.graphql",
    header="header.html",
    header_operation="SiteHeader",
    private_paths=("/account", "/login", "/register", "/logout", "/verify-email",
                   "/reset-password"),
)
