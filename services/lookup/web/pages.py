"""The lookup pages: search and code pages, server-rendered from named GraphQL operations.

Every page works without JavaScript; ``static/search.js`` only makes the search answer
as you type, by asking this same page for its results fragment. A fragment answers a
query still being typed (searchCodes' ``typing``); a page, one sent whole.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from services.lookup.domain import SYSTEMS, normalise_code
from services.lookup.note_codes import reference_spans
from services.lookup.plain_language import SYSTEM_NAMES
from services.shared.graphql import offset_cursor
from services.shared.web import SITEMAP_PAGE, OperationRefused, Site

RESULTS = 20  # results a search page shows
INDEX_BATCH = 1000  # codeIndex items asked for at a time (its maximum)
MAX_QUERY = 200  # characters of a search kept


def code_path(system: str, code: str) -> str | None:
    """The page of a code, or None for an entry that has no page (a chapter, a PCS table)."""
    canonical = normalise_code(system, code)
    if canonical is None or canonical != code:
        return None
    return f"/codes/{system.lower()}/{canonical}"


@dataclass(frozen=True)
class Segment:
    text: str
    marked: bool = False
    code: str | None = None  # a code the text names, linked


def highlighted(title: str, spans: Sequence[dict[str, int]]) -> list[Segment]:
    """The title cut at the matched words (titleMatches) so a template can mark them."""
    segments: list[Segment] = []
    at = 0
    for span in sorted(spans, key=lambda s: s["start"]):
        start, end = max(span["start"], at), min(span["end"], len(title))
        if start >= end:
            continue
        if start > at:
            segments.append(Segment(title[at:start]))
        segments.append(Segment(title[start:end], marked=True))
        at = end
    if at < len(title):
        segments.append(Segment(title[at:]))
    return segments


def linked(system: str, text: str, targets: set[str]) -> list[Segment]:
    """A note with the codes it names that have pages linked."""
    segments: list[Segment] = []
    at = 0
    for start, end, code in reference_spans(system, text):
        if code not in targets:
            continue
        if start > at:
            segments.append(Segment(text[at:start]))
        segments.append(Segment(text[start:end], code=code))
        at = end
    segments.append(Segment(text[at:]))
    return segments


def _search_values(request: Request) -> dict[str, Any]:
    params = request.query_params
    system = params.get("system", "")
    return {
        "q": params.get("q", "").strip()[:MAX_QUERY],
        "system": system if system in SYSTEMS else "",
        "billable": params.get("billable") == "1",
        "after": params.get("after") or None,
    }


async def _search(
    site: Site, request: Request, form: dict[str, Any], *, typing: bool
) -> dict[str, Any]:
    if not form["q"]:
        return {"search": None, "error": None}
    variables = {"query": form["q"], "systems": [form["system"]] if form["system"] else None,
                 "billableOnly": form["billable"], "first": RESULTS, "after": form["after"],
                 "typing": typing}
    try:
        data = await site.run(request, "Search", variables)
    except OperationRefused as refused:
        return {"search": None, "error": str(refused)}
    found = data["searchCodes"]
    for edge in found["edges"]:
        node = edge["node"]
        edge["segments"] = highlighted(node["title"], edge["titleMatches"])
        edge["path"] = code_path(node["system"], node["code"])
    return {"search": found, "error": None}


def _query_string(form: dict[str, Any], **changes: Any) -> str:
    values = {"q": form["q"], "system": form["system"], "billable": "1" if form["billable"]
              else "", **changes}
    return urlencode({k: v for k, v in values.items() if v})


async def home(site: Site, request: Request) -> Response:
    form = _search_values(request)
    if form["q"]:
        return RedirectResponse(f"/search?{_query_string(form)}", status_code=303)
    return await site.render(request, "lookup/search.html", {
        "form": form, "search": None, "error": None, "systems": SYSTEM_NAMES,
        "query_string": _query_string,
    })


async def search(site: Site, request: Request) -> Response:
    form = _search_values(request)
    fragment = request.query_params.get("fragment") == "1"  # search.js, as the box is typed in
    values = {"form": form, "systems": SYSTEM_NAMES, "query_string": _query_string,
              **await _search(site, request, form, typing=fragment)}
    if fragment:
        return site.fragment(request, "lookup/results.html", values)
    return await site.render(request, "lookup/search.html", values)


async def code_page(site: Site, request: Request) -> Response:
    system_segment, typed = request.path_params["system"], request.path_params["code"]
    system = system_segment.upper()
    if system not in SYSTEMS:
        raise HTTPException(404, f"There is no code system {system_segment!r}: medcode has "
                                 + ", ".join(s.lower() for s in SYSTEMS) + ".")
    canonical = normalise_code(system, typed)
    if canonical is None:
        raise HTTPException(404, f"{typed!r} is not a {SYSTEM_NAMES[system]} code.")
    if system_segment != system.lower() or typed != canonical:
        return RedirectResponse(f"/codes/{system.lower()}/{canonical}", status_code=301)
    if request.method == "HEAD":
        return await _code_head(site, request, system, canonical)
    context = site.context(request)
    if context.token is None:
        # A first-time visitor: a guest session, with its free view, like the API's.
        try:
            await site.run(request, "StartGuestSession")
        except OperationRefused:
            pass  # too many guests from this network today: the public part only
    data = await site.run(request, "CodePage", {"system": system, "code": canonical})
    page = data["codePage"]
    if page["__typename"] == "CodeNotFound":
        raise HTTPException(404, page["message"])
    return await site.render(request, "lookup/code.html", {
        "page": page, "viewer": data["viewer"], "system_name": SYSTEM_NAMES[system],
        "notes": _notes(page), "code_path": code_path, "json_ld": _json_ld(page),
        "path": request.url.path,
    }, header_data={"viewer": data["viewer"]})  # the header's viewer, read already


async def _code_head(site: Site, request: Request, system: str, code: str) -> Response:
    """A HEAD asks whether the page is there, not to read it: link checkers and previews
    send one, and it must not spend a code-page view of the visitor's."""
    data = await site.run(request, "CodeExists", {"system": system, "code": code})
    if not any(e["node"]["code"] == code for e in data["searchCodes"]["edges"]):
        raise HTTPException(404, f"No {SYSTEM_NAMES[system]} code {code!r} exists.")
    return Response(media_type="text/html; charset=utf-8")


def _notes(page: dict[str, Any]) -> list[dict[str, Any]]:
    """Each note group with the codes it names linked and where it is written
    ("category S72", "chapter 19")."""
    kinds = {a["code"]: a["kind"] for a in page.get("hierarchy") or []}
    groups = []
    for group in page.get("notes") or []:
        targets = {link["code"] for link in group["links"]
                   if code_path(page["system"], link["code"])}
        kind = kinds.get(group["source"], "code").replace("_", " ")
        groups.append({**group, "level": "" if kind == "code" else kind,
                       "items": [linked(page["system"], n, targets) for n in group["notes"]]})
    return groups


def _json_ld(page: dict[str, Any]) -> Markup:
    """schema.org MedicalCode, safe inside a <script> data block."""
    data = {"@context": "https://schema.org", "@type": "MedicalCode",
            "codeValue": page["code"], "codingSystem": SYSTEM_NAMES[page["system"]],
            "name": page["title"]}
    text = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")
    return Markup(text)  # noqa: S704 - JSON with every "<" and ">" escaped


class CodeSitemap:
    """Every code page, a section per SITEMAP_PAGE entries of each code system."""

    async def _total(self, site: Site, request: Request, system: str) -> int:
        data = await site.run(request, "CodeIndex", {"system": system, "first": 1})
        return int(data["codeIndex"]["totalCount"])

    async def sections(self, site: Site, request: Request) -> list[str]:
        names = []
        for system in SYSTEMS:
            pages = math.ceil(await self._total(site, request, system) / SITEMAP_PAGE)
            names += [f"{system.lower()}-{n}" for n in range(1, pages + 1)]
        return names

    async def paths(self, site: Site, request: Request, section: str) -> list[str] | None:
        system, _, number = section.partition("-")
        if system.upper() not in SYSTEMS or not number.isdigit() or int(number) < 1:
            return None
        system = system.upper()
        start = (int(number) - 1) * SITEMAP_PAGE
        # The index's cursors are offsets: start this section where the last one ended.
        after = offset_cursor(start - 1) if start else None
        paths: list[str] = []
        read = 0
        while read < SITEMAP_PAGE:
            data = await site.run(request, "CodeIndex", {
                "system": system, "first": min(INDEX_BATCH, SITEMAP_PAGE - read),
                "after": after})
            index = data["codeIndex"]
            if start >= index["totalCount"] and start:
                return None
            for edge in index["edges"]:
                path = code_path(system, edge["node"]["code"])
                if path:
                    paths.append(path)
            read += len(index["edges"])
            if not index["pageInfo"]["hasNextPage"]:
                break
            after = index["pageInfo"]["endCursor"]
        return paths


def routes(site: Site) -> list[BaseRoute]:
    async def home_page(request: Request) -> Response:
        return await home(site, request)

    async def search_page(request: Request) -> Response:
        return await search(site, request)

    async def code(request: Request) -> Response:
        return await code_page(site, request)

    return [
        Route("/", home_page),
        Route("/search", search_page),
        Route("/codes/{system}/{code:path}", code),
    ]



