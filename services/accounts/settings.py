"""The accounts product's own settings, read from the environment at start-up.

Platform settings (mail, public URL, trusted proxies, the server secret) stay in
services/shared/settings.py; these concern accounts only. They are read from the
variables the platform's settings were read from (``Settings.environ``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from services.accounts.plans import DEFAULT_PLANS, Plan
from services.shared.settings import SettingsError, integer_setting

_PLAN_FIELDS = {f.name for f in fields(Plan)} - {"name"}


def _count(name: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 0):
        raise SettingsError(f"{name} must be a whole number >= 0 or null, not {value!r}")


def plan_from(source: str, name: str, value: Any) -> Plan:
    """One plan from its configuration: a number of views (or null), or an object."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        _count(f"{source}: views of plan {name!r}", value)
        return Plan(name, code_page_views=value)
    if not isinstance(value, dict):
        raise SettingsError(f"{source}: plan {name!r} must be an object like "
                            '{"price": "$29 a month", "code_page_views": null}')
    unknown = set(value) - _PLAN_FIELDS
    if unknown:
        raise SettingsError(f"{source}: plan {name!r} has unknown fields {sorted(unknown)}; "
                            f"known: {sorted(_PLAN_FIELDS)}")
    for key in ("code_page_views", "assistant_questions_per_day", "consults_per_month",
                "consult_answer_hours"):
        _count(f"{source}: {key} of plan {name!r}", value.get(key))
    for key in ("price", "checkout_url", "stripe_price"):
        if key in value and value[key] is not None and not isinstance(value[key], str):
            raise SettingsError(f"{source}: {key} of plan {name!r} must be a string")
    return Plan(name, **value)


def plans_from_env(env: Mapping[str, str]) -> tuple[Plan, ...]:
    """MEDCODE_PLANS (JSON) or the file MEDCODE_PLANS_FILE names; the defaults otherwise."""
    raw, source = env.get("MEDCODE_PLANS"), "MEDCODE_PLANS"
    if not raw and env.get("MEDCODE_PLANS_FILE"):
        source = "MEDCODE_PLANS_FILE"
        try:
            raw = Path(env["MEDCODE_PLANS_FILE"]).read_text()
        except OSError as exc:
            raise SettingsError(f"MEDCODE_PLANS_FILE cannot be read: {exc}") from None
    if not raw:
        return DEFAULT_PLANS
    try:
        data = json.loads(raw)
    except ValueError:
        raise SettingsError(f'{source} must be a JSON object like {{"pro": null}}') from None
    if not isinstance(data, dict) or not {"guest", "free"} <= data.keys():
        raise SettingsError(f"{source} must be a JSON object with at least 'guest' and 'free'")
    return tuple(plan_from(source, str(name), value) for name, value in data.items())


@dataclass(frozen=True)
class AccountsSettings:
    plans: tuple[Plan, ...] = DEFAULT_PLANS
    # Sessions: how long one lasts (and its cookie), and guest sessions started from one
    # client address per UTC day (0 = no cap).
    session_ttl_seconds: int = 30 * 24 * 3600
    guest_sessions_per_address_per_day: int = 20
    # Login throttling per email: failures before a lock, the lock (doubling with each
    # further lock, up to the maximum), and a delay per recent failure before answering.
    login_max_failures: int = 5
    login_lock_seconds: int = 60
    login_lock_max_seconds: int = 3600
    login_failure_delay_ms: int = 200
    # Registrations from one client address (IPv4, or IPv6 /64) per UTC day; 0 = no cap.
    registrations_per_address_per_day: int = 10
    # Failed logins from one client address per UTC day before it is refused; 0 = no cap.
    login_failures_per_address_per_day: int = 100
    # Emailed tokens: how long they work, and how soon a verification mail can be resent.
    email_token_hours: int = 24
    verification_resend_seconds: int = 60
    # Billing: the secret Stripe signs webhooks with (whsec_...); unset = webhook refused.
    stripe_webhook_secret: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AccountsSettings:
        env = os.environ if env is None else env

        def integer(name: str, default: int) -> int:
            return integer_setting(env, name, default)

        return cls(
            plans=plans_from_env(env),
            session_ttl_seconds=integer("SESSION_TTL_SECONDS", 30 * 24 * 3600),
            guest_sessions_per_address_per_day=integer("GUEST_SESSIONS_PER_ADDRESS_PER_DAY", 20),
            login_max_failures=integer("LOGIN_MAX_FAILURES", 5),
            login_lock_seconds=integer("LOGIN_LOCK_SECONDS", 60),
            login_lock_max_seconds=integer("LOGIN_LOCK_MAX_SECONDS", 3600),
            login_failure_delay_ms=integer("LOGIN_FAILURE_DELAY_MS", 200),
            registrations_per_address_per_day=integer("REGISTRATIONS_PER_ADDRESS_PER_DAY", 10),
            login_failures_per_address_per_day=integer("LOGIN_FAILURES_PER_ADDRESS_PER_DAY",
                                                       100),
            email_token_hours=integer("EMAIL_TOKEN_HOURS", 24),
            verification_resend_seconds=integer("VERIFICATION_RESEND_SECONDS", 60),
            stripe_webhook_secret=env.get("STRIPE_WEBHOOK_SECRET") or None,
        )
