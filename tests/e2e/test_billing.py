"""Plans people buy: the Stripe webhook and upgrade(plan), through the real gateway.

Payloads are signed the way Stripe signs them (``Stripe-Signature: t=<time>,v1=<HMAC-SHA256
of "<time>.<body>" with the endpoint secret>``) with a test secret; the ``stripe``
library checks them in the service.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from gateway.bootstrap import Platform
from services.accounts.client import LocalAccounts
from services.accounts.events import CATALOGUE
from services.shared.settings import Settings
from tests.conftest import gateway
from tests.e2e.helpers import graphql

pytestmark = pytest.mark.e2e

SECRET = "whsec_test_" + "x" * 24
PLANS = {"guest": 1, "free": {"code_page_views": 6, "assistant_questions_per_day": 10},
         "pro": {"price": "$29 a month", "code_page_views": None,
                 "assistant_questions_per_day": 200,
                 "checkout_url": "https://buy.stripe.com/test_pro?locale=en",
                 "stripe_price": "price_pro_monthly"}}
REGISTER = """mutation { register(input: {email: "payer@example.org",
  password: "correct horse battery"}) { ... on SessionPayload { token viewer { id } } } }"""
VIEWER = "{ viewer { plan codePageViews { limit } } }"
UPGRADE = """mutation($plan: String!) { upgrade(plan: $plan) {
  __typename ... on CheckoutLink { url } ... on ActionResult { ok code message } } }"""


def sign(body: bytes, secret: str = SECRET, at: int | None = None) -> str:
    at = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def event(id_: str, type_: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"id": id_, "object": "event", "type": type_,
                       "data": {"object": obj}}).encode()


@pytest.fixture
async def served(embedded_settings: Settings
                 ) -> AsyncIterator[tuple[httpx.AsyncClient, Platform]]:
    settings = embedded_settings.with_environ(STRIPE_WEBHOOK_SECRET=SECRET,
                                              MEDCODE_PLANS=json.dumps(PLANS))
    async for client, platform in gateway(settings):
        yield client, platform


async def member(client: httpx.AsyncClient) -> tuple[dict[str, str], str]:
    data = (await graphql(client, REGISTER))["data"]["register"]
    return {"Authorization": f"Bearer {data['token']}"}, data["viewer"]["id"]


async def post(client: httpx.AsyncClient, body: bytes, signature: str | None
               ) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return await client.post("/billing/webhook", content=body, headers=headers)


def plan_changes(platform: Platform, viewer_id: str) -> list[dict[str, Any]]:
    accounts = platform.running["accounts"].client
    assert isinstance(accounts, LocalAccounts)
    return [e.payload for e in CATALOGUE.iterate(accounts.app)
            if e.type == "PlanChanged" and str(e.aggregate_id) == viewer_id]


async def test_upgrade_checkout_then_webhooks(served: tuple[httpx.AsyncClient, Platform]
                                              ) -> None:
    client, platform = served
    headers, viewer_id = await member(client)
    upgrade = (await graphql(client, UPGRADE, headers, plan="pro"))["data"]["upgrade"]
    assert upgrade["__typename"] == "CheckoutLink"
    url = urlsplit(upgrade["url"])
    assert (url.netloc, url.path) == ("buy.stripe.com", "/test_pro")
    query = parse_qs(url.query)
    assert query == {"locale": ["en"], "client_reference_id": [viewer_id],
                     "prefilled_email": ["payer@example.org"]}
    for plan, code in (("free", "NO_CHECKOUT"), ("platinum", "UNKNOWN_PLAN")):
        refused = (await graphql(client, UPGRADE, headers, plan=plan))["data"]["upgrade"]
        assert (refused["ok"], refused["code"]) == (False, code)
    anonymous = (await graphql(client, UPGRADE, plan="pro"))["data"]["upgrade"]
    assert anonymous["code"] == "SIGN_IN_REQUIRED"

    completed = event("evt_checkout_1", "checkout.session.completed", {
        "object": "checkout.session", "client_reference_id": viewer_id,
        "customer": "cus_123", "payment_status": "paid", "metadata": {"plan": "pro"}})
    for _ in range(2):  # Stripe redelivers: applied once
        response = await post(client, completed, sign(completed))
        assert response.status_code == 200, response.text
    viewer = (await graphql(client, VIEWER, headers))["data"]["viewer"]
    assert viewer == {"plan": "pro", "codePageViews": {"limit": None}}
    assert [c["external_ref"] for c in plan_changes(platform, viewer_id)] == ["evt_checkout_1"]

    # A subscription event names the customer and the price, not our viewer.
    renewed = event("evt_sub_1", "customer.subscription.updated", {
        "object": "subscription", "customer": "cus_123", "status": "active",
        "items": {"data": [{"price": {"id": "price_pro_monthly"}}]}})
    assert (await post(client, renewed, sign(renewed))).status_code == 200
    unpaid = event("evt_sub_2", "customer.subscription.updated", {
        "object": "subscription", "customer": "cus_123", "status": "unpaid"})
    assert (await post(client, unpaid, sign(unpaid))).status_code == 200
    assert (await graphql(client, VIEWER, headers))["data"]["viewer"]["plan"] == "free"
    back = event("evt_sub_3", "customer.subscription.updated", {
        "object": "subscription", "customer": "cus_123", "status": "active",
        "items": {"data": [{"price": {"id": "price_pro_monthly"}}]}})
    assert (await post(client, back, sign(back))).status_code == 200
    ended = event("evt_sub_4", "customer.subscription.deleted", {
        "object": "subscription", "customer": "cus_123", "status": "canceled"})
    assert (await post(client, ended, sign(ended))).status_code == 200
    assert (await graphql(client, VIEWER, headers))["data"]["viewer"]["plan"] == "free"
    assert [(c["to_plan"], c["external_ref"]) for c in plan_changes(platform, viewer_id)] == [
        ("pro", "evt_checkout_1"), ("pro", "evt_sub_1"), ("free", "evt_sub_2"),
        ("pro", "evt_sub_3"), ("free", "evt_sub_4")]

    unknown = event("evt_other", "customer.subscription.updated", {
        "customer": "cus_nobody", "status": "active"})
    response = await post(client, unknown, sign(unknown))
    assert response.status_code == 200 and "ignored" in response.json()["outcome"]


async def test_bad_or_missing_signatures_change_nothing(
    served: tuple[httpx.AsyncClient, Platform]
) -> None:
    client, platform = served
    headers, viewer_id = await member(client)
    body = event("evt_forged", "checkout.session.completed", {
        "client_reference_id": viewer_id, "payment_status": "paid",
        "metadata": {"plan": "pro"}})
    stale = int(time.time()) - 3600  # a replay of an old signed payload
    tampered = body.replace(b'"pro"', b'"free"')
    for signature, payload in ((None, body), ("", body), ("t=1,v1=00", body),
                               (sign(body, "whsec_wrong"), body), (sign(body, at=stale), body),
                               (sign(body), tampered), ("garbage", body)):
        response = await post(client, payload, signature)
        assert response.status_code == 400, (signature, response.text)
    assert (await graphql(client, VIEWER, headers))["data"]["viewer"]["plan"] == "free"
    assert plan_changes(platform, viewer_id) == []


async def test_no_secret_no_billing(embedded_settings: Settings) -> None:
    async for client, _ in gateway(embedded_settings):
        body = event("evt_1", "checkout.session.completed", {})
        response = await post(client, body, sign(body))
        assert response.status_code == 503 and "STRIPE_WEBHOOK_SECRET" in response.text
