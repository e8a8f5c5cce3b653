"""The account pages: register, log in, log out and the account itself.

Forms post back to their own page (CSRF-checked by the shell), run the accounts
mutations as the visitor, and redirect on success so a reload never posts twice.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from services.shared.web import Site

MAX_FIELD = 1024  # characters kept of a posted field (the accounts service says why if long)


def safe_next(value: Any, default: str = "/account") -> str:
    """Where to go after a form: a path on this site only, never another site."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//") \
            or "\\" in value or len(value) > 512:
        return default
    return value


async def _credentials_form(
    site: Site, request: Request, template: str, mutation: str, default_next: str
) -> Response:
    if request.method == "GET":
        return await site.render(request, template, {
            "email": "", "error": None, "next": safe_next(request.query_params.get("next"),
                                                          default_next)})
    form = await site.form(request)
    email = str(form.get("email", ""))[:MAX_FIELD].strip()
    password = str(form.get("password", ""))[:MAX_FIELD]
    target = safe_next(form.get("next"), default_next)
    data = await site.run(request, mutation, {"input": {"email": email, "password": password}})
    result = data[mutation.lower()]
    if result["__typename"] == "AuthError":
        return await site.render(request, template, {
            "email": email, "error": result, "next": target}, status_code=400)
    return site.redirect(request, target)


async def register(site: Site, request: Request) -> Response:
    return await _credentials_form(site, request, "accounts/register.html", "Register",
                                   "/account")


async def login(site: Site, request: Request) -> Response:
    return await _credentials_form(site, request, "accounts/login.html", "Login", "/")


async def logout(site: Site, request: Request) -> Response:
    await site.form(request)
    await site.run(request, "Logout")
    return site.redirect(request, "/")


async def account(site: Site, request: Request) -> Response:
    data = await site.run(request, "Account")
    viewer = data["viewer"]
    if viewer["kind"] != "MEMBER":
        return site.redirect(request, "/login?next=/account")
    return await site.render(request, "accounts/account.html", {"viewer": viewer},
                             headers={"Cache-Control": "no-store"})


def routes(site: Site) -> list[BaseRoute]:
    def page(handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            response: Response = await handler(site, request)
            return response
        return endpoint

    return [
        Route("/register", page(register), methods=["GET", "POST"]),
        Route("/login", page(login), methods=["GET", "POST"]),
        Route("/logout", page(logout), methods=["POST"]),
        Route("/account", page(account)),
    ]
