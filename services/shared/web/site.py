"""The web shell: server-rendered pages that are GraphQL clients of the one schema.

Every page reads and changes data only by running a named operation from its part's
``.graphql`` file against the same schema the API serves, in-process, with the
visitor's session: there is no second data path that could drift from the API, and a
page that shows a metered code page spends a view exactly as ``codePage`` does.

The shell owns what every page shares: the layout, static assets (fingerprinted URLs,
cached for a year), the session and CSRF cookies, the sitemap index and robots.txt.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

import jinja2
from graphql import OperationDefinitionNode, parse
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import Receive, Scope, Send
from strawberry.schema.base import BaseSchema

from services.shared.graphql import Cookie, RequestContext, UserError
from services.shared.web.part import WebPart

HERE = Path(__file__).parent
SESSION_COOKIE = "medcode_session"
CSRF_COOKIE = "medcode_csrf"
CSRF_FIELD = "csrf_token"
_STATE = "medcode_web"  # request.state attribute holding the page's per-request state


class OperationFailed(Exception):
    """A page's operation answered with errors that are not the visitor's to fix."""


class OperationRefused(UserError):
    """A page's operation refused the visitor's input; the message is safe to show."""


def write_cookies(response: Response, cookies: Mapping[str, Cookie | None]) -> None:
    """Set (or, for None, delete) cookies browser-safe: HttpOnly (no script can read the
    token), Secure, and SameSite=Lax so that another site cannot act with the session."""
    for name, cookie in cookies.items():
        if cookie is None:
            response.delete_cookie(name, path="/", secure=True, httponly=True, samesite="lax")
        else:
            response.set_cookie(name, cookie.value, max_age=cookie.max_age, path="/",
                                secure=True, httponly=True, samesite="lax")


class _PageState:
    def __init__(self, context: RequestContext) -> None:
        self.context = context
        self.csrf: str | None = None
        self.csrf_new = False
        self.header: list[tuple[str, asyncio.Task[dict[str, Any]] | None]] | None = None


class CachedStatic(StaticFiles):
    """Static files; a fingerprinted URL (``?v=``) is cached for a year, others an hour."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        immutable = b"v=" in scope.get("query_string", b"")
        value = b"public, max-age=31536000, immutable" if immutable else b"public, max-age=3600"

        async def with_cache(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"cache-control", value)]
            await send(message)

        await super().__call__(scope, receive, with_cache)


class Site:
    """The pages of every product's web part, over one schema."""

    def __init__(
        self,
        schema: BaseSchema,
        parts: Iterable[WebPart],
        context: Callable[[Request], RequestContext],
        *,
        development: bool = False,
        extra_static: Mapping[str, Path] | None = None,
    ) -> None:
        self.schema = schema
        self.parts = list(parts)
        self._context = context
        self.development = development
        self.static_dirs: dict[str, Path] = {"site": HERE / "static", **(extra_static or {})}
        for part in self.parts:
            if part.static is not None:
                self.static_dirs[part.name] = part.static
        self.operations = _operations(self.parts)
        loader = jinja2.ChoiceLoader([
            jinja2.FileSystemLoader(HERE / "templates"),
            jinja2.PrefixLoader({p.name: jinja2.FileSystemLoader(p.templates)
                                 for p in self.parts}),
        ])
        env = jinja2.Environment(loader=loader, autoescape=True, trim_blocks=True,
                                 lstrip_blocks=True)
        env.globals.update(static_url=self.static_url, csrf_field=self.csrf_field,
                           csrf_token=self.csrf_token, development=development,
                           slot=self.slot)
        self.templates = Jinja2Templates(env=env)

    # --- operations -------------------------------------------------------------------

    def context(self, request: Request) -> RequestContext:
        """The GraphQL context of this page request: one for all its operations, so a
        session one of them starts is the session the next one sees."""
        return self._state(request).context

    def _state(self, request: Request) -> _PageState:
        state = getattr(request.state, _STATE, None)
        if state is None:
            state = _PageState(self._context(request))
            setattr(request.state, _STATE, state)
        return state

    async def run(
        self, request: Request, operation: str, variables: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Run a named operation of a part's ``.graphql`` file as this visitor."""
        document = self.operations.get(operation)
        if document is None:
            raise KeyError(f"no web part defines a GraphQL operation named {operation!r}")
        result = await self.schema.execute(
            document, variable_values=variables, context_value=self.context(request),
            operation_name=operation,
        )
        if result.errors:
            refused = [e for e in result.errors if isinstance(e.original_error, UserError)]
            if refused and len(refused) == len(result.errors):
                raise OperationRefused(refused[0].message)
            raise OperationFailed(
                f"{operation}: " + "; ".join(e.message for e in result.errors)
            ) from result.errors[0].original_error
        assert result.data is not None
        return result.data

    # --- rendering --------------------------------------------------------------------

    def begin(self, request: Request) -> None:
        """Start the header's operations now, alongside the page's own (call it once the
        page has settled who the visitor is, e.g. after starting a session)."""
        state = self._state(request)
        if state.header is None:
            state.header = [
                (f"{part.name}/{part.header}",
                 asyncio.ensure_future(self.run(request, part.header_operation))
                 if part.header_operation else None)
                for part in self.parts if part.header is not None
            ]

    async def render(
        self,
        request: Request,
        template: str,
        values: dict[str, Any] | None = None,
        *,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        header_data: dict[str, Any] | None = None,
    ) -> Response:
        """A page in the layout, with every part's header, and the cookies its
        operations set. ``header_data``: the page's own operation read what the headers
        read (e.g. ``{"viewer": ...}``), so their operations are not run again."""
        if header_data is not None:
            header = [(f"{p.name}/{p.header}", header_data) for p in self.parts if p.header]
        else:
            self.begin(request)
            header = [(name, await task if task else {})
                      for name, task in self._state(request).header or []]
        response = self.templates.TemplateResponse(
            request, template, {"header_parts": header, **(values or {})},
            status_code=status_code, headers=headers,
        )
        self.finish(request, response)
        return response

    def fragment(self, request: Request, template: str, values: dict[str, Any]) -> Response:
        """A piece of a page (no layout) that scripts swap in, e.g. search results."""
        response = self.templates.TemplateResponse(request, template, values)
        self.finish(request, response)
        return response

    def page(self, handler: Callable[[Site, Request], Awaitable[Response]]
             ) -> Callable[[Request], Awaitable[Response]]:
        """A part's page handler ``(site, request)`` as a Starlette endpoint."""

        async def endpoint(request: Request) -> Response:
            return await handler(self, request)

        return endpoint

    def redirect(self, request: Request, url: str, status_code: int = 303) -> Response:
        response = RedirectResponse(url, status_code=status_code)
        self.finish(request, response)
        return response

    def finish(self, request: Request, response: Response) -> None:
        """Write the cookies this request's operations set, and a new CSRF cookie."""
        state = self._state(request)
        write_cookies(response, state.context.response_cookies)
        state.context.response_cookies.clear()
        if state.csrf_new and state.csrf:
            # A browser-session cookie: the form token it pairs with is in the page.
            response.set_cookie(CSRF_COOKIE, state.csrf, path="/", secure=True,
                                httponly=True, samesite="strict")
            state.csrf_new = False

    def slot(self, name: str) -> list[str]:
        """The templates other parts put at the place ``name`` of a page (in part order)."""
        return [f"{part.name}/{part.slots[name]}" for part in self.parts if name in part.slots]

    def static_url(self, part: str, path: str) -> str:
        return f"/static/{part}/{path}?v={_fingerprint(self.static_dirs[part] / path)}"

    # --- forms ------------------------------------------------------------------------

    def csrf_token(self, request: Request) -> str:
        """The token forms carry: the double of the visitor's CSRF cookie."""
        state = self._state(request)
        if state.csrf is None:
            sent = request.cookies.get(CSRF_COOKIE, "")
            if 32 <= len(sent) <= 64 and sent.replace("-", "").replace("_", "").isalnum():
                state.csrf = sent
            else:
                state.csrf, state.csrf_new = secrets.token_urlsafe(32), True
        return state.csrf

    def csrf_field(self, request: Request) -> Any:
        return jinja2.utils.markupsafe.Markup(
            f'<input type="hidden" name="{CSRF_FIELD}" value="{self.csrf_token(request)}">'
        )

    async def form(self, request: Request) -> FormData:
        """The posted form, once its CSRF token matches the cookie and it came from this
        site; a 403 otherwise (another site's form cannot act with the visitor's session)."""
        origin = request.headers.get("origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.url.netloc:
            raise HTTPException(403, "This form was sent from another site.")
        form = await request.form()
        sent = form.get(CSRF_FIELD)
        cookie = request.cookies.get(CSRF_COOKIE)
        if not (isinstance(sent, str) and cookie and hmac.compare_digest(sent, cookie)):
            raise HTTPException(403, "This form has expired: go back, reload the page and "
                                     "send it again.")
        return form

    # --- routes -----------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = [
            Route("/robots.txt", self._robots),
            Route("/sitemap.xml", self._sitemap_index),
            Route("/sitemaps/{part}/{section}.xml", self._sitemap),
        ]
        routes += [Mount(f"/static/{name}", app=CachedStatic(directory=path), name=name)
                   for name, path in self.static_dirs.items()]
        for part in self.parts:
            routes.extend(part.routes(self))
        return routes

    async def _robots(self, request: Request) -> Response:
        lines = ["User-agent: *", "Disallow: /graphql"]
        lines += [f"Disallow: {p}" for part in self.parts for p in part.private_paths]
        lines += ["", f"Sitemap: {_base(request)}/sitemap.xml", ""]
        return PlainTextResponse("\n".join(lines))

    async def _sitemap_index(self, request: Request) -> Response:
        base = _base(request)
        entries = []
        for part in self.parts:
            if part.sitemap is None:
                continue
            for section in await part.sitemap.sections(self, request):
                loc = escape(f"{base}/sitemaps/{part.name}/{section}.xml")
                entries.append(f"<sitemap><loc>{loc}</loc></sitemap>")
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                + "".join(entries) + "</sitemapindex>\n")
        return Response(body, media_type="application/xml")

    async def _sitemap(self, request: Request) -> Response:
        name, section = request.path_params["part"], request.path_params["section"]
        part = next((p for p in self.parts if p.name == name and p.sitemap), None)
        paths = await part.sitemap.paths(self, request, section) if part and part.sitemap \
            else None
        if paths is None:
            raise HTTPException(404, "There is no such sitemap.")
        base = _base(request)
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                + "".join(f"<url><loc>{escape(base + p)}</loc></url>" for p in paths)
                + "</urlset>\n")
        return Response(body, media_type="application/xml")

    async def error_page(self, request: Request, exc: Exception) -> Response:
        """Errors as pages of the site, in its layout, with what to do next."""
        assert isinstance(exc, HTTPException)
        if request.url.path.startswith("/static/"):
            return PlainTextResponse(exc.detail, status_code=exc.status_code)
        return self.templates.TemplateResponse(
            request, "error.html", {"status": exc.status_code, "message": exc.detail,
                                    "header_parts": []},
            status_code=exc.status_code,
        )


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@cache
def _fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _operations(parts: Iterable[WebPart]) -> dict[str, str]:
    """Every named operation of the parts' .graphql files -> the document defining it."""
    found: dict[str, str] = {}
    for part in parts:
        if part.operations is None:
            continue
        text = part.operations.read_text(encoding="utf-8")
        for definition in parse(text).definitions:
            if not isinstance(definition, OperationDefinitionNode):
                continue
            if definition.name is None:
                raise ValueError(f"{part.operations}: every operation needs a name")
            name = definition.name.value
            if name in found:
                raise ValueError(f"two web parts define the GraphQL operation {name!r}")
            found[name] = text
    return found
