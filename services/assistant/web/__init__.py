"""CasePilot's web pages: a box on each code page and /assistant (services/shared/web)."""

from pathlib import Path

from services.assistant.web.pages import routes
from services.shared.web import WebPart

HERE = Path(__file__).parent

part = WebPart(
    name="assistant",
    templates=HERE / "templates",
    routes=routes,
    static=HERE / "static",
    operations=HERE / "operations.graphql",
    private_paths=("/assistant",),
    slots={"code_page": "box.html"},
)
