"""Plans people buy: Stripe's webhook at ``POST /billing/webhook``.

The body is trusted only once its ``Stripe-Signature`` header checks out against
STRIPE_WEBHOOK_SECRET with the ``stripe`` library (a bad or missing signature is a 400
and changes nothing). Then:

- ``checkout.session.completed`` (paid): the session's ``client_reference_id`` is the
  viewer (``upgrade`` puts it in the checkout URL); the customer is linked to it and the
  plan (``metadata.plan``, else the one plan sold online) applied;
- ``customer.subscription.updated``: an active or trialing subscription moves the
  customer's viewer to the plan of its price (``Plan.stripe_price``); a canceled,
  unpaid or expired one back to free;
- ``customer.subscription.deleted``: back to free.

Every plan change carries the event id as its reference, so a redelivered event changes
nothing the second time. Events for unknown viewers or of other types are acknowledged
(200) and logged: Stripe would otherwise retry them for days.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import stripe
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from services.accounts.client import AccountsClient
from services.accounts.domain import FREE
from services.accounts.failures import AccountsFailure
from services.accounts.plans import PlanCatalogue
from services.accounts.settings import AccountsSettings

log = logging.getLogger(__name__)

PAID = ("paid", "no_payment_required")
ACTIVE = ("active", "trialing")
ENDED = ("canceled", "unpaid", "incomplete_expired")
TOLERANCE_SECONDS = 300  # Stripe's own default: older signed payloads are replays


def billing_routes(client: AccountsClient, settings: AccountsSettings) -> list[BaseRoute]:
    plans = PlanCatalogue(settings.plans)

    async def webhook(request: Request) -> JSONResponse:
        secret = settings.stripe_webhook_secret
        if not secret:
            return JSONResponse({"error": "billing is not configured here: set "
                                          "STRIPE_WEBHOOK_SECRET"}, status_code=503)
        payload = await request.body()
        try:
            stripe.WebhookSignature.verify_header(
                payload.decode("utf-8"), request.headers.get("stripe-signature"), secret,
                TOLERANCE_SECONDS)
            event = json.loads(payload)
        except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError) as exc:
            return JSONResponse({"error": f"invalid webhook: {exc}"}, status_code=400)
        outcome = await apply_event(client, plans, event)
        log.info("billing event %s (%s): %s", event.get("id"), event.get("type"), outcome)
        return JSONResponse({"received": True, "outcome": outcome})

    return [Route("/billing/webhook", webhook, methods=["POST"])]


async def apply_event(client: AccountsClient, plans: PlanCatalogue,
                      event: dict[str, Any]) -> str:
    """What the event did, in words (for the response and the log)."""
    event_id, kind = str(event.get("id", "")), str(event.get("type", ""))
    data = event.get("data")
    obj = (data.get("object") if isinstance(data, dict) else None) or {}
    if not event_id or not isinstance(obj, dict):
        return "ignored: not an event"
    if kind == "checkout.session.completed":
        return await _checkout(client, plans, event_id, obj)
    if kind in ("customer.subscription.updated", "customer.subscription.deleted"):
        viewer = await _subscriber(client, obj)
        if viewer is None:
            return "ignored: no viewer for this customer"
        status = "canceled" if kind.endswith("deleted") else str(obj.get("status", ""))
        if status in ENDED:
            return await _change(client, viewer, FREE, f"subscription {status}", event_id)
        if status not in ACTIVE:
            return f"ignored: subscription {status}"
        plan = _subscription_plan(plans, obj)
        if plan is None:
            return "ignored: no plan of the catalogue has this price"
        return await _change(client, viewer, plan, "subscription updated", event_id)
    return f"ignored: {kind}"


async def _checkout(client: AccountsClient, plans: PlanCatalogue, event_id: str,
                    obj: dict[str, Any]) -> str:
    if obj.get("payment_status") not in PAID:
        return "ignored: not paid yet"
    viewer = obj.get("client_reference_id")
    if not viewer:
        return "ignored: no client_reference_id"
    plan = (obj.get("metadata") or {}).get("plan") or _only_paid_plan(plans)
    if plan is None:
        return "ignored: which plan was bought is not said (metadata.plan)"
    customer = obj.get("customer")
    try:
        if customer:
            await client.link_billing(str(viewer), str(customer))
    except AccountsFailure as failure:
        return f"ignored: {failure}"
    return await _change(client, str(viewer), str(plan), "checkout completed", event_id)


async def _subscriber(client: AccountsClient, obj: dict[str, Any]) -> str | None:
    viewer = (obj.get("metadata") or {}).get("viewer_id")
    if viewer:
        return str(viewer)
    customer = obj.get("customer")
    return await client.viewer_by_billing_customer(str(customer)) if customer else None


def _subscription_plan(plans: PlanCatalogue, obj: dict[str, Any]) -> str | None:
    named = (obj.get("metadata") or {}).get("plan")
    if named and named in plans:
        return str(named)
    for item in (obj.get("items") or {}).get("data") or []:
        price = (item.get("price") or {}).get("id")
        plan = plans.by_price(str(price)) if price else None
        if plan is not None:
            return plan.name
    return None


def _only_paid_plan(plans: PlanCatalogue) -> str | None:
    paid = [p.name for p in plans if p.paid]
    return paid[0] if len(paid) == 1 else None


async def _change(client: AccountsClient, viewer: str, plan: str, reason: str,
                  event_id: str) -> str:
    try:
        info = await client.change_plan(viewer, plan, reason, external_ref=event_id)
    except AccountsFailure as failure:
        return f"ignored: {failure}"
    return f"viewer {info.id} on plan {info.plan}"
