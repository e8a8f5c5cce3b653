"""The accounts service's configurable rules: session length, per-address caps, login
locks, mail token lifetimes, and the plan catalogue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from services.accounts.plans import PlanCatalogue
from services.accounts.settings import AccountsSettings


@dataclass(frozen=True)
class AccountsPolicy:
    """The configurable rules of the service (see the settings for their variables)."""

    plans: PlanCatalogue
    session_ttl: timedelta = timedelta(days=30)
    guest_sessions_per_address_per_day: int = 20  # 0 = no cap
    registrations_per_address_per_day: int = 10  # 0 = no cap
    login_max_failures: int = 5
    login_lock: timedelta = timedelta(minutes=1)
    login_lock_max: timedelta = timedelta(hours=1)
    login_failure_delay: float = 0.2  # seconds per recent failure
    login_failures_per_address_per_day: int = 100  # 0 = no cap
    token_ttl: timedelta = timedelta(hours=24)
    resend_cooldown: timedelta = timedelta(seconds=60)

    @classmethod
    def from_settings(cls, accounts: AccountsSettings) -> AccountsPolicy:
        return cls(
            plans=PlanCatalogue(accounts.plans),
            session_ttl=timedelta(seconds=accounts.session_ttl_seconds),
            guest_sessions_per_address_per_day=accounts.guest_sessions_per_address_per_day,
            registrations_per_address_per_day=accounts.registrations_per_address_per_day,
            login_max_failures=max(accounts.login_max_failures, 1),
            login_lock=timedelta(seconds=accounts.login_lock_seconds),
            login_lock_max=timedelta(seconds=accounts.login_lock_max_seconds),
            login_failure_delay=accounts.login_failure_delay_ms / 1000,
            login_failures_per_address_per_day=accounts.login_failures_per_address_per_day,
            token_ttl=timedelta(hours=accounts.email_token_hours),
            resend_cooldown=timedelta(seconds=accounts.verification_resend_seconds),
        )
