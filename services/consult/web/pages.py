"""The consult pages: a member's cases and a form to ask; the experts' queue.

Every read and change is a named GraphQL operation (operations.graphql) run as the
visitor, so the consult service decides, as for any client, who may see and do what.
Forms post back and redirect on success, so a reload never posts twice.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from services.shared.web import OperationRefused, Site

MAX_SUBJECT = 300
MAX_BODY = 20_000
NO_STORE = {"Cache-Control": "no-store"}


def _field(form: Any, name: str, limit: int) -> str:
    return str(form.get(name, ""))[:limit].strip()


async def my_consults(site: Site, request: Request) -> Response:
    error = None
    subject = body = ""
    if request.method == "POST":
        form = await site.form(request)
        subject, body = _field(form, "subject", MAX_SUBJECT), _field(form, "body", MAX_BODY)
        data = await site.run(request, "RequestConsult",
                              {"input": {"subject": subject, "body": body}})
        result = data["requestConsult"]
        if result["__typename"] == "Consult":
            return site.redirect(request, f"/consults/{result['id']}")
        error = result
    data = await site.run(request, "MyConsults")
    if data["viewer"]["kind"] != "MEMBER":
        return site.redirect(request, "/login?next=/consults")
    return await site.render(request, "consult/mine.html", {
        "viewer": data["viewer"], "consults": data["myConsults"], "error": error,
        "subject": subject, "body": body,
    }, status_code=400 if error else 200, headers=NO_STORE)


async def one_consult(site: Site, request: Request) -> Response:
    data = await site.run(request, "MyConsults")
    if data["viewer"]["kind"] != "MEMBER":
        return site.redirect(request, f"/login?next=/consults/{request.path_params['id']}")
    wanted = request.path_params["id"]
    found = next((c for c in data["myConsults"] if c["id"] == wanted), None)
    if found is None and "expert" in data["viewer"]["roles"]:
        queue = (await site.run(request, "ConsultQueue"))["consultQueue"]
        found = next((c for c in queue if c["id"] == wanted), None)
    if found is None:
        raise HTTPException(404, "There is no such case among yours: see My consults.")
    return await site.render(request, "consult/case.html", {"consult": found},
                             headers=NO_STORE)


async def queue(site: Site, request: Request) -> Response:
    error = None
    if request.method == "POST":
        form = await site.form(request)
        consult_id = _field(form, "consult", 100)
        if form.get("action") == "claim":
            result = (await site.run(request, "ClaimConsult", {"id": consult_id}))[
                "claimConsult"]
        else:
            result = (await site.run(request, "AnswerConsult", {"input": {
                "consultId": consult_id, "body": _field(form, "body", MAX_BODY)}}))[
                "answerConsult"]
        if result["__typename"] == "Consult":
            return site.redirect(request, "/consults/queue")
        error = result
    try:
        data = await site.run(request, "ConsultQueue")
    except OperationRefused:
        viewer = (await site.run(request, "ConsultHeader"))["viewer"]
        if viewer["kind"] != "MEMBER":
            return site.redirect(request, "/login?next=/consults/queue")
        raise HTTPException(403, "The consult queue is for experts.") from None
    return await site.render(request, "consult/queue.html", {
        "consults": data["consultQueue"], "error": error,
    }, status_code=400 if error else 200, headers=NO_STORE)


def routes(site: Site) -> list[BaseRoute]:
    page = site.page
    return [
        Route("/consults", page(my_consults), methods=["GET", "POST"]),
        Route("/consults/queue", page(queue), methods=["GET", "POST"]),
        Route("/consults/{id}", page(one_consult)),
    ]
