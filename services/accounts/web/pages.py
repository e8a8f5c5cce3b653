"""The account pages: register, verify the email, log in and out, reset a password, the
account itself and its upgrade.

Forms post back to their own page (CSRF-checked by the shell), run the accounts
mutations as the visitor, and redirect on success so a reload never posts twice. A link
from an email (verify, reset) opens a page with a button: following a link changes
nothing, so a mail scanner that fetches it spends no token.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

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


def _field(form: Any, name: str) -> str:
    return str(form.get(name, ""))[:MAX_FIELD]


async def _credentials_form(
    site: Site, request: Request, template: str, mutation: str, default_next: str
) -> Response:
    if request.method == "GET":
        return await site.render(request, template, {
            "email": "", "error": None, "next": safe_next(request.query_params.get("next"),
                                                          default_next)})
    form = await site.form(request)
    email = _field(form, "email").strip()
    target = safe_next(form.get("next"), default_next)
    data = await site.run(request, mutation, {"input": {"email": email,
                                                        "password": _field(form, "password")}})
    result = data[mutation.lower()]
    if result["__typename"] == "AuthError":
        return await site.render(request, template, {
            "email": email, "error": result, "next": target}, status_code=400)
    if mutation == "Register":  # the extra views come with the verified email
        return site.redirect(request, f"/verify-email?sent=1&next={quote(target)}")
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


async def verify_email(site: Site, request: Request) -> Response:
    """GET: the emailed link's page (or "check your inbox" after registering); POST: verify
    with the token, or mail a new link."""
    if request.method == "GET":
        params = request.query_params
        return await site.render(request, "accounts/verify.html", {
            "token": params.get("token", "")[:MAX_FIELD], "sent": params.get("sent") == "1",
            "next": safe_next(params.get("next"), "/"), "result": None},
            headers={"Referrer-Policy": "no-referrer"})
    form = await site.form(request)
    target = safe_next(form.get("next"), "/")
    if form.get("action") == "resend":
        data = await site.run(request, "ResendVerification")
        result = data["resendVerification"]
    else:
        data = await site.run(request, "VerifyEmail", {"token": _field(form, "token")})
        result = data["verifyEmail"]
    return await site.render(request, "accounts/verify.html", {
        "token": "", "sent": False, "next": target, "result": result},
        status_code=200 if result["ok"] else 400)


async def reset_password(site: Site, request: Request) -> Response:
    """Without a token: ask for the link by email. With the emailed token: a new password."""
    if request.method == "GET":
        return await site.render(request, "accounts/reset.html", {
            "token": request.query_params.get("token", "")[:MAX_FIELD], "result": None,
            "email": ""}, headers={"Referrer-Policy": "no-referrer"})
    form = await site.form(request)
    token = _field(form, "token")
    if token:
        data = await site.run(request, "ResetPassword", {
            "token": token, "newPassword": _field(form, "password")})
        result = data["resetPassword"]
    else:
        data = await site.run(request, "RequestPasswordReset",
                              {"email": _field(form, "email").strip()})
        result = data["requestPasswordReset"]
    return await site.render(request, "accounts/reset.html", {
        "token": token if not result["ok"] else "", "result": result,
        "email": _field(form, "email")}, status_code=200 if result["ok"] else 400)


async def account(site: Site, request: Request) -> Response:
    data = await site.run(request, "Account")
    viewer = data["viewer"]
    if viewer["kind"] != "MEMBER":
        return site.redirect(request, "/login?next=/account")
    values: dict[str, Any] = {"viewer": viewer, "plans": data["plans"], "upgrade": None}
    if request.method == "POST":
        form = await site.form(request)
        answer = (await site.run(request, "Upgrade", {"plan": _field(form, "plan")}))["upgrade"]
        if answer["__typename"] == "CheckoutLink" and urlsplit(answer["url"]).scheme in (
                "https", "http"):
            values["upgrade"] = {"ok": True, "url": answer["url"], "plan": form.get("plan")}
        else:
            values["upgrade"] = {"ok": False, "message": answer.get("message", "")}
    return await site.render(request, "accounts/account.html", values,
                             headers={"Cache-Control": "no-store"})


def routes(site: Site) -> list[BaseRoute]:
    page = site.page
    return [
        Route("/register", page(register), methods=["GET", "POST"]),
        Route("/login", page(login), methods=["GET", "POST"]),
        Route("/logout", page(logout), methods=["POST"]),
        Route("/verify-email", page(verify_email), methods=["GET", "POST"]),
        Route("/reset-password", page(reset_password), methods=["GET", "POST"]),
        Route("/account", page(account), methods=["GET", "POST"]),
    ]
