"""The consult product's web pages: My consults for members, the queue for experts."""

from pathlib import Path

from services.consult.web.pages import routes
from services.shared.web import WebPart

HERE = Path(__file__).parent

part = WebPart(
    name="consult",
    templates=HERE / "templates",
    routes=routes,
    operations=HERE / "operations.graphql",
    header="header.html",
    header_operation="ConsultHeader",
    private_paths=("/consults",),
)
