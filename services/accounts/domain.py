"""The accounts domain: viewers, their sessions, metered code pages. No I/O here.

Every rule that must hold under concurrency (a view spent once, an email claimed once,
a cap on guest sessions) lives on one aggregate, so the event store's optimistic
concurrency (one writer per aggregate version) is what makes it exact.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

NAMESPACE = UUID("3c0f6a47-7d0e-4b7e-9a55-1f2de0c4b8a3")

GUEST = "guest"  # the plan every guest starts on
FREE = "free"  # the plan registration moves a guest to

Kind = Literal["guest", "member"]


class AccountsFailure(Exception):
    """An expected failure; ``code`` is stable and machine-readable (GraphQL AuthError)."""

    code = "ACCOUNTS_FAILURE"


class InvalidEmail(AccountsFailure):
    code = "INVALID_EMAIL"


class WeakPassword(AccountsFailure):
    code = "WEAK_PASSWORD"


class PasswordTooLong(AccountsFailure):
    code = "PASSWORD_TOO_LONG"


class EmailTaken(AccountsFailure):
    code = "EMAIL_TAKEN"


class InvalidCredentials(AccountsFailure):
    """Wrong password or unknown email: deliberately one error for both."""

    code = "INVALID_CREDENTIALS"

    def __init__(self, message: str, delay: float = 0.0) -> None:
        super().__init__(message)
        self.delay = delay  # seconds to hold the answer back (slows guessing down)


class LoginLocked(AccountsFailure):
    code = "ACCOUNT_LOCKED"


class AlreadyRegistered(AccountsFailure):
    code = "ALREADY_REGISTERED"


class NotRegistered(AccountsFailure):
    code = "NOT_REGISTERED"


class UnknownViewer(AccountsFailure):
    code = "UNKNOWN_VIEWER"


class UnknownPlan(AccountsFailure):
    code = "UNKNOWN_PLAN"


class NoViewsLeft(AccountsFailure):
    code = "NO_VIEWS_LEFT"


class GuestSessionLimit(AccountsFailure):
    code = "GUEST_SESSION_LIMIT"


class Contention(AccountsFailure):
    """Too many concurrent writers on one aggregate; the caller may simply retry."""

    code = "BUSY"


# --- values -------------------------------------------------------------------------

MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # NIST asks for at least 64; the issue for at least 128
MAX_EMAIL = 254
_EMAIL = re.compile(r"[^@\s\"(),:;<>\[\]\\]{1,64}@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
                    r"(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})")


def normalise_email(raw: str) -> str:
    """The canonical form of an email (trimmed, lower case); InvalidEmail when malformed.

    The whole address is lower-cased: mail providers treat local parts case-insensitively
    in practice, and "Ann@x.org" and "ann@x.org" must be one account.
    """
    email = unicodedata.normalize("NFKC", raw).strip().lower()
    if len(email) > MAX_EMAIL or not _EMAIL.fullmatch(email) or ".." in email:
        raise InvalidEmail("Enter a valid email address, like name@example.com.")
    return email


def check_password(raw: str) -> str:
    """The password to hash (NFKC-normalised, as NIST 800-63B advises), or a typed error.

    Length is the only rule: composition rules make passwords weaker, not stronger.
    """
    password = unicodedata.normalize("NFKC", raw)
    if len(password) < MIN_PASSWORD:
        raise WeakPassword(f"Use at least {MIN_PASSWORD} characters for your password.")
    if len(password) > MAX_PASSWORD:
        raise PasswordTooLong(f"Use at most {MAX_PASSWORD} characters for your password.")
    return password


def client_key(address: str | None) -> str:
    """Who a guest-session cap counts against: an IPv4 address or an IPv6 /64.

    One IPv6 subscriber usually holds a whole /64, so counting single IPv6 addresses
    would let a client reset its quota just by changing address.
    """
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


def page_key(system: str, code: str) -> str:
    return f"{system}:{code}"


@dataclass(frozen=True)
class PlanCatalogue:
    """Views each plan grants in total (None = unlimited), from configuration."""

    views: Mapping[str, int | None]

    def __post_init__(self) -> None:
        missing = {GUEST, FREE} - set(self.views)
        if missing:
            raise ValueError(f"the plan catalogue lacks {sorted(missing)}")

    def __contains__(self, plan: object) -> bool:
        return plan in self.views

    def limit(self, plan: str) -> int | None:
        """A plan dropped from the catalogue falls back to the free plan, never to more."""
        return self.views[plan] if plan in self.views else self.views[FREE]

    @property
    def registration_bonus(self) -> int | None:
        guest, free = self.views[GUEST], self.views[FREE]
        return None if guest is None or free is None else max(free - guest, 0)

    @property
    def has_upgrade(self) -> bool:
        free = self.views[FREE]
        return free is not None and any(v is None or v > free for v in self.views.values())


# --- aggregates ---------------------------------------------------------------------


class Viewer(Aggregate):
    """Someone reading code pages: a guest until registered, then a member.

    Registration changes this same aggregate, so the pages a guest unlocked stay
    unlocked and keep counting against the quota ("keeps its history").
    """

    class GuestStarted(Aggregate.Created):
        plan: str

    class Registered(Aggregate.Event):
        email: str
        password_hash: str  # stays in this service's store: never published
        plan: str

    class CodePageUnlocked(Aggregate.Event):
        system: str
        code: str
        used: int
        limit: int | None

    class PlanChanged(Aggregate.Event):
        from_plan: str
        to_plan: str
        reason: str
        external_ref: str | None

    class PasswordRehashed(Aggregate.Event):
        password_hash: str

    @event(GuestStarted)
    def __init__(self, plan: str) -> None:
        self.kind: Kind = "guest"
        self.plan = plan
        self.email: str | None = None
        self.password_hash: str | None = None
        self.unlocked: dict[str, bool] = {}  # page_key -> True; a dict keeps snapshots JSON
        self.applied_refs: list[str] = []  # external references of plan changes applied

    @property
    def used(self) -> int:
        return len(self.unlocked)

    def remaining(self, limit: int | None) -> int | None:
        return None if limit is None else max(limit - self.used, 0)

    def has_unlocked(self, system: str, code: str) -> bool:
        return page_key(system, code) in self.unlocked

    def register(self, email: str, password_hash: str, plan: str) -> None:
        if self.kind == "member":
            raise AlreadyRegistered("This session already belongs to a registered account.")
        self._registered(email=email, password_hash=password_hash, plan=plan)

    def open_code_page(self, system: str, code: str, limit: int | None) -> bool:
        """Unlock a page for this viewer; True when a view was spent on it just now.

        Re-opening an unlocked page is free; a new page with no views left raises.
        """
        if self.has_unlocked(system, code):
            return False
        if limit is not None and self.used >= limit:
            raise NoViewsLeft(f"No code page views left ({self.used} of {limit} used).")
        self._code_page_unlocked(system=system, code=code, used=self.used + 1, limit=limit)
        return True

    def change_plan(self, plan: str, reason: str, external_ref: str | None) -> bool:
        """Move to ``plan``; idempotent per ``external_ref`` (webhooks are redelivered)."""
        if self.kind != "member":
            raise NotRegistered("Only registered accounts can change plan.")
        if external_ref is not None and external_ref in self.applied_refs:
            return False
        if plan == self.plan and external_ref is None:
            return False
        self._plan_changed(from_plan=self.plan, to_plan=plan, reason=reason,
                           external_ref=external_ref)
        return True

    def rehash_password(self, password_hash: str) -> None:
        self._password_rehashed(password_hash=password_hash)

    @event(Registered)
    def _registered(self, email: str, password_hash: str, plan: str) -> None:
        self.kind = "member"
        self.email = email
        self.password_hash = password_hash
        self.plan = plan

    @event(CodePageUnlocked)
    def _code_page_unlocked(self, system: str, code: str, used: int, limit: int | None) -> None:
        self.unlocked[page_key(system, code)] = True

    @event(PlanChanged)
    def _plan_changed(
        self, from_plan: str, to_plan: str, reason: str, external_ref: str | None
    ) -> None:
        self.plan = to_plan
        if external_ref is not None:
            self.applied_refs.append(external_ref)

    @event(PasswordRehashed)
    def _password_rehashed(self, password_hash: str) -> None:
        self.password_hash = password_hash


class EmailClaim(Aggregate):
    """One per normalised email: its id is derived from the email, so the event store's
    uniqueness of (aggregate id, version 1) makes two registrations of one email
    impossible, even concurrently."""

    @staticmethod
    def id_for(email: str) -> UUID:
        return uuid5(NAMESPACE, f"email:{email}")

    @event("Claimed")
    def __init__(self, id: UUID, email: str, viewer_id: UUID) -> None:
        self.email = email
        self.viewer_id = viewer_id


class Session(Aggregate):
    """A bearer token's session. Only a hash of the token is kept: the id is derived
    from it, so looking a token up is a repository get and a leaked database yields
    no usable tokens."""

    @staticmethod
    def id_for(token: str) -> UUID:
        return uuid5(NAMESPACE, f"session:{hashlib.sha256(token.encode()).hexdigest()}")

    @event("Started")
    def __init__(self, id: UUID, viewer_id: UUID, expires_at: datetime) -> None:
        self.viewer_id = viewer_id
        self.expires_at = expires_at
        self.revoked = False

    def active(self, now: datetime) -> bool:
        return not self.revoked and now < self.expires_at

    def revoke(self, reason: str) -> None:
        if not self.revoked:
            self._revoked(reason=reason)

    @event("Revoked")
    def _revoked(self, reason: str) -> None:
        self.revoked = True


class LoginGuard(Aggregate):
    """Failed logins for one normalised email, and its lock.

    Keyed by email rather than by account so that an unknown email fails, slows down
    and locks exactly like a registered one: the lock must not reveal who has an
    account. ``viewer_id`` is recorded when the email belongs to one.
    """

    class Created(Aggregate.Created):
        pass

    class LoginFailed(Aggregate.Event):
        viewer_id: UUID | None
        failures: int

    class Locked(Aggregate.Event):
        viewer_id: UUID | None
        until: datetime
        lock_number: int
        failures: int

    class Unlocked(Aggregate.Event):
        reason: str
        locked_until: datetime
        viewer_id: UUID | None

    class Cleared(Aggregate.Event):
        pass

    @staticmethod
    def id_for(email: str) -> UUID:
        return uuid5(NAMESPACE, f"login:{email}")

    @event(Created)
    def __init__(self, id: UUID) -> None:
        self.failures = 0  # since the last lock or success
        self.locks = 0  # consecutive locks: each lasts twice as long as the one before
        self.locked_until: datetime | None = None
        self.viewer_id: UUID | None = None  # the account behind the email, once seen

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def expire_lock(self, now: datetime) -> None:
        """Record the unlock of a lock whose time has passed (unlocks happen on use)."""
        if self.locked_until is not None and now >= self.locked_until:
            self._unlocked(reason="expired", locked_until=self.locked_until,
                           viewer_id=self.viewer_id)

    def unlock(self, reason: str) -> None:
        if self.locked_until is not None:
            self._unlocked(reason=reason, locked_until=self.locked_until,
                           viewer_id=self.viewer_id)

    def fail(
        self,
        now: datetime,
        viewer_id: UUID | None,
        max_failures: int,
        lock: timedelta,
        max_lock: timedelta,
    ) -> bool:
        """Count a failure; True when it locked the account."""
        self._login_failed(viewer_id=viewer_id, failures=self.failures + 1)
        if self.failures < max_failures:
            return False
        duration = min(lock * (2**self.locks), max_lock)
        self._locked(viewer_id=viewer_id, until=now + duration, lock_number=self.locks + 1,
                     failures=self.failures)
        return True

    def succeed(self) -> None:
        if self.failures or self.locks:
            self._cleared()

    @event(LoginFailed)
    def _login_failed(self, viewer_id: UUID | None, failures: int) -> None:
        self.failures = failures
        self.viewer_id = viewer_id or self.viewer_id

    @event(Locked)
    def _locked(
        self, viewer_id: UUID | None, until: datetime, lock_number: int, failures: int
    ) -> None:
        self.locked_until = until
        self.locks = lock_number
        self.failures = 0

    @event(Unlocked)
    def _unlocked(self, reason: str, locked_until: datetime, viewer_id: UUID | None) -> None:
        self.locked_until = None

    @event(Cleared)
    def _cleared(self) -> None:
        self.failures = 0
        self.locks = 0


class GuestQuota(Aggregate):
    """Guest sessions started from one client address on one UTC day."""

    @staticmethod
    def id_for(client: str, day: str) -> UUID:
        return uuid5(NAMESPACE, f"guests:{client}|{day}")

    @event("Opened")
    def __init__(self, id: UUID, day: str) -> None:
        self.day = day
        self.started = 0

    def count_guest(self, cap: int) -> None:
        """Count one more guest session; cap 0 means no cap."""
        if cap and self.started >= cap:
            raise GuestSessionLimit(
                f"Too many guest sessions from your network today (the limit is {cap} a "
                "day). Register a free account or log in to keep reading."
            )
        self._counted(started=self.started + 1)

    @event("Counted")
    def _counted(self, started: int) -> None:
        self.started = started
