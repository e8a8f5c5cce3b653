"""The accounts domain: viewers, their sessions, metered code pages. No I/O here.

Every rule that must hold under concurrency (a view spent once, an email claimed once,
a cap on guest sessions, a login guess counted before it is checked) lives on one
aggregate, so the event store's optimistic concurrency (one writer per aggregate
version) is what makes it exact.

Personal data never enters an event in clear: the application seals the email and the
password hash with the viewer's own key (see keys.py) before the aggregate records
them, and aggregates found by an email are keyed by a keyed digest of it (HMAC with the
server secret), so that destroying the key on deletion leaves nothing to read.

Longer than 400 lines on purpose: it holds the aggregates only (failures are in
failures.py, input checks in inputs.py), and each stored event's topic is this module's
path, which the event log and the public catalogue's topic filters read, so they stay.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from services.accounts.failures import (
    AccountsFailure,
    AlreadyRegistered,
    AlreadyVerified,
    EmailTaken,
    LoginLocked,
    NotRegistered,
    NoViewsLeft,
    QuotaExceeded,
    ResendTooSoon,
    TokenExpired,
    TokenInvalid,
    TokenUsed,
    UnknownRole,
)
from services.accounts.plans import FREE, GUEST, PlanCatalogue

NAMESPACE = UUID("3c0f6a47-7d0e-4b7e-9a55-1f2de0c4b8a3")

Kind = Literal["guest", "member"]
Role = Literal["expert", "admin"]
ROLES: tuple[Role, ...] = ("expert", "admin")
Purpose = Literal["verify-email", "reset-password"]


# --- values -------------------------------------------------------------------------

# Mails one account may ask for in a UTC day (verification resends, password resets), on
# top of the cooldown between two: nobody can turn medcode into a mail bomb for an inbox.
MAILS_PER_DAY = 10


def _day(moment: datetime) -> str:
    return (moment.astimezone(UTC) if moment.tzinfo else moment).date().isoformat()


def page_key(system: str, code: str) -> str:
    return f"{system}:{code}"


# --- aggregates ---------------------------------------------------------------------


class Viewer(Aggregate):
    """Someone reading code pages: a guest until registered, then a member.

    Registration changes this same aggregate, so the pages a guest unlocked stay
    unlocked and keep counting against the quota ("keeps its history"). Fields named
    ``sealed_*`` hold ciphertext under the viewer's key; the application opens them.
    """

    class GuestStarted(Aggregate.Created):
        plan: str

    class Registered(Aggregate.Event):
        sealed_email: str
        sealed_password: str  # an argon2id hash, sealed; never published
        plan: str

    class VerificationRequested(Aggregate.Event):
        request_id: UUID  # the mailed token is derived from it (see tokens.py)
        requested_at: datetime
        expires_at: datetime
        reason: str

    class EmailVerified(Aggregate.Event):
        request_id: UUID

    class EmailChanged(Aggregate.Event):
        sealed_email: str

    class PasswordResetRequested(Aggregate.Event):
        request_id: UUID
        requested_at: datetime
        expires_at: datetime

    class PasswordChanged(Aggregate.Event):
        sealed_password: str
        reason: str  # "changed" (signed in) or "reset" (by mail)

    class SessionsRevoked(Aggregate.Event):
        generation: int
        reason: str

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
        sealed_password: str

    class RoleGranted(Aggregate.Event):
        role: str

    class RoleRevoked(Aggregate.Event):
        role: str

    class Deleted(Aggregate.Event):
        reason: str

    @event(GuestStarted)
    def __init__(self, plan: str) -> None:
        self.kind: Kind = "guest"
        self.plan = plan
        self.sealed_email: str | None = None
        self.sealed_password: str | None = None
        self.email_verified = False
        self.verification_request: UUID | None = None  # only the newest mail's token works
        self.verification_requested_at: datetime | None = None
        self.reset_request: UUID | None = None
        self.reset_requested_at: datetime | None = None
        self.mail_day: str | None = None  # the UTC day of the last mail asked for...
        self.mails_that_day = 0  # ...and how many were asked for that day
        self.session_generation = 0  # sessions of older generations are revoked
        self.roles: list[str] = []
        self.deleted = False
        self.unlocked: dict[str, bool] = {}  # page_key -> True; a dict keeps snapshots JSON
        self.applied_refs: list[str] = []  # external references of plan changes applied

    @property
    def used(self) -> int:
        return len(self.unlocked)

    @property
    def member(self) -> bool:
        return self.kind == "member" and not self.deleted

    def code_page_limit(self, plans: PlanCatalogue) -> int | None:
        """Views this viewer may use in total. A member on the free plan has the guest's
        views until the email is verified: the free plan's extra views are granted on
        verification, so a throwaway address gains nothing."""
        if self.plan == FREE and not self.email_verified:
            return plans.limit(GUEST)
        return plans.limit(self.plan)

    def remaining(self, limit: int | None) -> int | None:
        return None if limit is None else max(limit - self.used, 0)

    def has_unlocked(self, system: str, code: str) -> bool:
        return page_key(system, code) in self.unlocked

    def register(self, sealed_email: str, sealed_password: str, plan: str) -> None:
        if self.kind == "member":
            raise AlreadyRegistered("This session already belongs to a registered account.")
        self._registered(sealed_email=sealed_email, sealed_password=sealed_password,
                         plan=plan)

    def request_verification(
        self, request_id: UUID, now: datetime, ttl: timedelta, cooldown: timedelta, reason: str
    ) -> None:
        """Ask for a (new) verification mail; the newest mail's token is the only valid one."""
        self._must_be_member()
        if self.email_verified:
            raise AlreadyVerified("Your email address is verified already.")
        last = self.verification_requested_at
        if reason == "resent" and last is not None and now < last + cooldown:
            wait = int((last + cooldown - now).total_seconds()) + 1
            raise ResendTooSoon(f"A verification email was sent just now: try again in "
                                f"{wait} seconds.")
        if reason == "resent" and self.mails_on(now) >= MAILS_PER_DAY:
            raise ResendTooSoon("Enough verification emails were sent today: use the newest "
                                "one, or ask again tomorrow.")
        self._verification_requested(request_id=request_id, requested_at=now,
                                     expires_at=now + ttl, reason=reason)

    def mails_on(self, now: datetime) -> int:
        """Mails asked for on the UTC day of ``now``."""
        return self.mails_that_day if self.mail_day == _day(now) else 0

    def _count_mail(self, at: datetime) -> None:
        self.mails_that_day = self.mails_on(at) + 1
        self.mail_day = _day(at)

    def verify_email(self, request_id: UUID) -> None:
        self._must_be_member()
        if self.email_verified:
            raise AlreadyVerified("Your email address is verified already.")
        if request_id != self.verification_request:
            raise TokenInvalid("This link is not valid any more: use the newest email we "
                               "sent, or ask for a new one.")
        self._email_verified(request_id=request_id)

    def change_email(self, sealed_email: str) -> None:
        self._must_be_member()
        self._email_changed(sealed_email=sealed_email)

    def request_password_reset(
        self, request_id: UUID, now: datetime, ttl: timedelta, cooldown: timedelta
    ) -> bool:
        """False (and nothing recorded) within the cooldown of the last request, or past
        the day's mails."""
        if not self.member:
            return False
        last = self.reset_requested_at
        if (last is not None and now < last + cooldown) or self.mails_on(now) >= MAILS_PER_DAY:
            return False
        self._password_reset_requested(request_id=request_id, requested_at=now,
                                       expires_at=now + ttl)
        return True

    def reset_password(self, request_id: UUID, sealed_password: str) -> None:
        self._must_be_member()
        if request_id != self.reset_request:
            raise TokenInvalid("This link is not valid any more: ask for a new one.")
        self._password_changed(sealed_password=sealed_password, reason="reset")
        self.revoke_sessions("password reset")

    def change_password(self, sealed_password: str) -> None:
        self._must_be_member()
        self._password_changed(sealed_password=sealed_password, reason="changed")
        self.revoke_sessions("password changed")

    def revoke_sessions(self, reason: str) -> None:
        self._sessions_revoked(generation=self.session_generation + 1, reason=reason)

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
        self._must_be_member("Only registered accounts can change plan.")
        if external_ref is not None and external_ref in self.applied_refs:
            return False
        if plan == self.plan and external_ref is None:
            return False
        self._plan_changed(from_plan=self.plan, to_plan=plan, reason=reason,
                           external_ref=external_ref)
        return True

    def grant_role(self, role: str) -> bool:
        self._must_be_member("Only registered accounts can hold a role.")
        if role not in ROLES:
            raise UnknownRole(f"There is no role {role!r}; roles: {', '.join(ROLES)}.")
        if role in self.roles:
            return False
        self._role_granted(role=role)
        return True

    def revoke_role(self, role: str) -> bool:
        if role not in self.roles:
            return False
        self._role_revoked(role=role)
        return True

    def rehash_password(self, sealed_password: str) -> None:
        self._password_rehashed(sealed_password=sealed_password)

    def delete(self, reason: str) -> None:
        self._must_be_member()
        self._deleted(reason=reason)

    def _must_be_member(self, message: str = "Log in to your account first.") -> None:
        if not self.member:
            raise NotRegistered(message)

    @event(Registered)
    def _registered(self, sealed_email: str, sealed_password: str, plan: str) -> None:
        self.kind = "member"
        self.sealed_email = sealed_email
        self.sealed_password = sealed_password
        self.plan = plan

    @event(VerificationRequested)
    def _verification_requested(self, request_id: UUID, requested_at: datetime,
                                expires_at: datetime, reason: str) -> None:
        self.verification_request = request_id
        self.verification_requested_at = requested_at
        self._count_mail(requested_at)

    @event(EmailVerified)
    def _email_verified(self, request_id: UUID) -> None:
        self.email_verified = True
        self.verification_request = None

    @event(EmailChanged)
    def _email_changed(self, sealed_email: str) -> None:
        self.sealed_email = sealed_email
        self.email_verified = False
        self.verification_request = None

    @event(PasswordResetRequested)
    def _password_reset_requested(self, request_id: UUID, requested_at: datetime,
                                  expires_at: datetime) -> None:
        self.reset_request = request_id
        self.reset_requested_at = requested_at
        self._count_mail(requested_at)

    @event(PasswordChanged)
    def _password_changed(self, sealed_password: str, reason: str) -> None:
        self.sealed_password = sealed_password
        self.reset_request = None

    @event(SessionsRevoked)
    def _sessions_revoked(self, generation: int, reason: str) -> None:
        self.session_generation = generation

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
    def _password_rehashed(self, sealed_password: str) -> None:
        self.sealed_password = sealed_password

    @event(RoleGranted)
    def _role_granted(self, role: str) -> None:
        self.roles.append(role)

    @event(RoleRevoked)
    def _role_revoked(self, role: str) -> None:
        self.roles.remove(role)

    @event(Deleted)
    def _deleted(self, reason: str) -> None:
        self.deleted = True
        self.sealed_email = None
        self.sealed_password = None
        self.roles = []
        self.session_generation += 1


class EmailClaim(Aggregate):
    """One per email: its id is derived from a keyed digest of the normalised email, so
    the event store's uniqueness of (aggregate id, version 1) makes two registrations of
    one email impossible, even concurrently, and the store holds no readable address.
    A deleted account (or a changed email) releases its claim."""

    @staticmethod
    def id_for(digest: str) -> UUID:
        return uuid5(NAMESPACE, f"email:{digest}")

    @event("Claimed")
    def __init__(self, id: UUID, viewer_id: UUID) -> None:
        self.viewer_id: UUID | None = viewer_id

    def claim(self, viewer_id: UUID) -> None:
        """Claim a released email again."""
        if self.viewer_id is not None:
            raise EmailTaken("An account with this email already exists: log in instead.")
        self._reclaimed(viewer_id=viewer_id)

    def release(self, reason: str) -> None:
        if self.viewer_id is not None:
            self._released(reason=reason)

    @event("Reclaimed")
    def _reclaimed(self, viewer_id: UUID) -> None:
        self.viewer_id = viewer_id

    @event("Released")
    def _released(self, reason: str) -> None:
        self.viewer_id = None


class BillingCustomer(Aggregate):
    """A payment provider's customer and the viewer it pays for (id derived from the
    provider's customer id, so a subscription event finds its viewer with one get)."""

    @staticmethod
    def id_for(customer: str) -> UUID:
        return uuid5(NAMESPACE, f"billing-customer:{customer}")

    @event("Linked")
    def __init__(self, id: UUID, viewer_id: UUID) -> None:
        self.viewer_id = viewer_id

    def relink(self, viewer_id: UUID) -> None:
        if viewer_id != self.viewer_id:
            self._relinked(viewer_id=viewer_id)

    @event("Relinked")
    def _relinked(self, viewer_id: UUID) -> None:
        self.viewer_id = viewer_id


class Session(Aggregate):
    """A bearer token's session. Only a hash of the token is kept: the id is derived
    from it, so looking a token up is a repository get and a leaked database yields
    no usable tokens. ``generation`` is the viewer's at the start: revoking every
    session of a viewer (a password reset) is one event on the viewer."""

    @staticmethod
    def id_for(token: str) -> UUID:
        return uuid5(NAMESPACE, f"session:{hashlib.sha256(token.encode()).hexdigest()}")

    @event("Started")
    def __init__(self, id: UUID, viewer_id: UUID, expires_at: datetime,
                 generation: int = 0) -> None:
        self.viewer_id = viewer_id
        self.expires_at = expires_at
        self.generation = generation
        self.revoked = False

    def active(self, now: datetime) -> bool:
        return not self.revoked and now < self.expires_at

    def revoke(self, reason: str) -> None:
        if not self.revoked:
            self._revoked(reason=reason)

    @event("Revoked")
    def _revoked(self, reason: str) -> None:
        self.revoked = True


class MailedToken(Aggregate):
    """A single-use token sent by mail (verify an email, reset a password).

    Its id is derived from a hash of the token, as a session's: the store never holds
    the token. The token itself is derived from the viewer's request id and the server
    secret when the mail is written (tokens.py), so no event carries it either.
    """

    class Issued(Aggregate.Created):
        viewer_id: UUID
        purpose: str
        request_id: UUID
        expires_at: datetime

    class Used(Aggregate.Event):
        pass

    @staticmethod
    def id_for(token: str) -> UUID:
        return uuid5(NAMESPACE, f"mailed-token:{hashlib.sha256(token.encode()).hexdigest()}")

    @event(Issued)
    def __init__(self, id: UUID, viewer_id: UUID, purpose: str, request_id: UUID,
                 expires_at: datetime) -> None:
        self.viewer_id = viewer_id
        self.purpose = purpose
        self.request_id = request_id
        self.expires_at = expires_at
        self.used = False

    def use(self, purpose: str, now: datetime) -> None:
        if purpose != self.purpose:
            raise TokenInvalid("This link is not valid.")
        if self.used:
            raise TokenUsed("This link was used already.")
        if now >= self.expires_at:
            raise TokenExpired("This link has expired: ask for a new one.")
        self._used()

    @event(Used)
    def _used(self) -> None:
        self.used = True


class LoginGuard(Aggregate):
    """Login attempts for one email (or one client address), and its lock.

    An attempt is counted BEFORE its password is checked and the lock is checked in the
    same write, so parallel guesses cannot slip past the limit: at most
    ``max_failures`` guesses run before the lock, however many arrive at once. A
    success clears the count. Keyed by the email's digest rather than by account, so
    that an unknown email slows down and locks exactly like a registered one.
    """

    class Created(Aggregate.Created):
        pass

    class Attempted(Aggregate.Event):
        attempts: int

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
    def id_for(digest: str) -> UUID:
        return uuid5(NAMESPACE, f"login:{digest}")

    @event(Created)
    def __init__(self, id: UUID) -> None:
        self.failures = 0  # attempts since the last lock or success (counted up front)
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

    def attempt(
        self,
        now: datetime,
        viewer_id: UUID | None,
        max_failures: int,
        lock: timedelta,
        max_lock: timedelta,
    ) -> None:
        """Count one attempt before it is checked; LoginLocked when locked.

        The attempt that reaches ``max_failures`` locks the guard for later ones (it
        still gets its own check, and a success lifts the lock).
        """
        self.expire_lock(now)
        if self.locked(now):
            raise LoginLocked(self.locked_message())
        self._attempted(attempts=self.failures + 1)
        if self.failures >= max_failures:
            duration = min(lock * (2**self.locks), max_lock)
            self._locked(viewer_id=viewer_id, until=now + duration,
                         lock_number=self.locks + 1, failures=self.failures)

    def fail(self, viewer_id: UUID | None) -> None:
        """Record that a counted attempt failed (for the log: it was counted already)."""
        self._login_failed(viewer_id=viewer_id, failures=max(self.failures, 1))

    def succeed(self) -> None:
        self.unlock("login succeeded")
        if self.failures or self.locks:
            self._cleared()

    def locked_message(self) -> str:
        until = self.locked_until
        when = until.strftime("%H:%M:%S UTC") if until else "later"
        return f"Too many failed logins: try again after {when}."

    @event(Attempted)
    def _attempted(self, attempts: int) -> None:
        self.failures = attempts

    @event(LoginFailed)
    def _login_failed(self, viewer_id: UUID | None, failures: int) -> None:
        self.viewer_id = viewer_id or self.viewer_id

    @event(Locked)
    def _locked(
        self, viewer_id: UUID | None, until: datetime, lock_number: int, failures: int
    ) -> None:
        self.locked_until = until
        self.locks = lock_number
        self.failures = 0
        self.viewer_id = viewer_id or self.viewer_id

    @event(Unlocked)
    def _unlocked(self, reason: str, locked_until: datetime, viewer_id: UUID | None) -> None:
        self.locked_until = None

    @event(Cleared)
    def _cleared(self) -> None:
        self.failures = 0
        self.locks = 0


class AddressQuota(Aggregate):
    """How often one client address did something on one UTC day (guest sessions
    started, registrations, failed logins), against a daily cap."""

    @staticmethod
    def id_for(purpose: str, client: str, day: str) -> UUID:
        return uuid5(NAMESPACE, f"{purpose}:{client}|{day}")

    @event("Opened")
    def __init__(self, id: UUID, day: str) -> None:
        self.day = day
        self.started = 0

    def count(self, cap: int, refusal: AccountsFailure) -> None:
        """Count one more; cap 0 means no cap; ``refusal`` is raised at the cap."""
        if cap and self.started >= cap:
            raise refusal
        self._counted(started=self.started + 1)

    def refund(self) -> None:
        """Take one back (a login attempt that succeeded)."""
        if self.started:
            self._counted(started=self.started - 1)

    @event("Counted")
    def _counted(self, started: int) -> None:
        self.started = started


class QuestionAllowance(Aggregate):
    """Assistant questions one viewer asked on one UTC day, against the plan's limit."""

    class Opened(Aggregate.Created):
        viewer_id: UUID
        day: str

    class QuestionTaken(Aggregate.Event):
        used: int
        limit: int | None

    @staticmethod
    def id_for(viewer_id: UUID, day: str) -> UUID:
        return uuid5(NAMESPACE, f"questions:{viewer_id}|{day}")

    @event(Opened)
    def __init__(self, id: UUID, viewer_id: UUID, day: str) -> None:
        self.viewer_id = viewer_id
        self.day = day
        self.used = 0

    def take(self, limit: int | None) -> None:
        if limit is not None and self.used >= limit:
            raise QuotaExceeded(f"You have asked all {limit} questions of your plan today; "
                                "the count starts again at midnight UTC.")
        self._question_taken(used=self.used + 1, limit=limit)

    @event(QuestionTaken)
    def _question_taken(self, used: int, limit: int | None) -> None:
        self.used = used
