"""The accounts service's commands: sessions, registration, login, metered code pages.

Every command that changes state loads its aggregates, decides, and saves them in one
transaction. When another writer saved one of those aggregates first, the event store
refuses the save (IntegrityError on the aggregate version) and the command runs again
on fresh state. That is what makes quotas exact under any concurrency: the count is
checked in the write model, never in a read model.
"""

from __future__ import annotations

import random
import secrets
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from services.accounts.domain import (
    FREE,
    GUEST,
    AlreadyRegistered,
    Contention,
    EmailClaim,
    EmailTaken,
    GuestQuota,
    InvalidCredentials,
    LoginGuard,
    LoginLocked,
    NoViewsLeft,
    PlanCatalogue,
    Session,
    UnknownPlan,
    UnknownViewer,
    Viewer,
    check_password,
    client_key,
    normalise_email,
)
from services.accounts.passwords import Passwords
from services.shared.settings import Settings

T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)

Clock = Callable[[], datetime]
ViewerKind = Literal["ANONYMOUS", "GUEST", "MEMBER"]

MAX_ATTEMPTS = 100  # a loser retries; with N writers on one aggregate, at most N-1 times
MAX_TOKEN = 256
ANONYMOUS_STEP = "Start a guest session or log in to view this code page."


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AccountsPolicy:
    """The configurable rules of the service (see Settings for their variables)."""

    plans: PlanCatalogue
    session_ttl: timedelta = timedelta(days=30)
    guest_sessions_per_address_per_day: int = 20  # 0 = no cap
    login_max_failures: int = 5
    login_lock: timedelta = timedelta(minutes=1)
    login_lock_max: timedelta = timedelta(hours=1)
    login_failure_delay: float = 0.2  # seconds per recent failure

    @classmethod
    def from_settings(cls, settings: Settings) -> AccountsPolicy:
        return cls(
            plans=PlanCatalogue(dict(settings.plans)),
            session_ttl=timedelta(seconds=settings.session_ttl_seconds),
            guest_sessions_per_address_per_day=settings.guest_sessions_per_address_per_day,
            login_max_failures=max(settings.login_max_failures, 1),
            login_lock=timedelta(seconds=settings.login_lock_seconds),
            login_lock_max=timedelta(seconds=settings.login_lock_max_seconds),
            login_failure_delay=settings.login_failure_delay_ms / 1000,
        )


@dataclass(frozen=True)
class ViewerInfo:
    """Who is asking, as everyone outside this service sees it."""

    kind: ViewerKind
    plan: str  # "none" for anonymous callers
    used: int
    limit: int | None  # None = unlimited
    email: str | None = None
    id: str | None = None

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(self.limit - self.used, 0)


ANONYMOUS = ViewerInfo(kind="ANONYMOUS", plan="none", used=0, limit=0)


@dataclass(frozen=True)
class SessionInfo:
    token: str  # shown once; only its hash is stored
    expires_at: datetime
    viewer: ViewerInfo


@dataclass(frozen=True)
class PageAccess:
    """The decision on one code page for one viewer."""

    locked: bool
    spent: bool  # a view was spent on this request (first unlock of this page)
    remaining: int | None  # after this request; None = unlimited
    next_step: str | None = None  # what unlocks the page, when locked


class Accounts(Application[UUID]):
    """Viewers, sessions and their metered access to code pages."""

    name = "accounts"
    # A paid viewer can unlock thousands of pages; a snapshot every 50 events keeps
    # loading a viewer cheap.
    snapshotting_intervals = {Viewer: 50}

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        policy: AccountsPolicy | None = None,
        passwords: Passwords | None = None,
        clock: Clock = utcnow,
    ) -> None:
        super().__init__(env=env)
        self.policy = policy or AccountsPolicy(PlanCatalogue(dict(Settings().plans)))
        self.passwords = passwords or Passwords()
        self.clock = clock
        self._jitter = random.Random()  # noqa: S311 - back-off jitter, not a secret

    # --- commands -------------------------------------------------------------------

    def start_guest_session(self, client_address: str | None) -> SessionInfo:
        """A new guest with its own quota; capped per client address and UTC day."""
        token = secrets.token_urlsafe(32)
        cap = self.policy.guest_sessions_per_address_per_day

        def attempt() -> SessionInfo:
            now = self.clock()
            day = now.astimezone(UTC).date().isoformat()
            quota_id = GuestQuota.id_for(client_key(client_address), day)
            quota = self._get(GuestQuota, quota_id) or GuestQuota(id=quota_id, day=day)
            quota.count_guest(cap)
            viewer = Viewer(plan=GUEST)
            session = self._new_session(token, viewer.id, now)
            self.save(quota, viewer, session)
            return SessionInfo(token, session.expires_at, self._info(viewer))

        return self._retry(attempt)

    def register(self, token: str | None, email: str, password: str) -> SessionInfo:
        """Make the caller's guest a member (a new viewer when there is no session).

        The guest's token is revoked and a new one issued: a privilege change gets a
        fresh session, so a token captured before registration is worth nothing after.
        """
        email = normalise_email(email)
        password = check_password(password)
        claim_id = EmailClaim.id_for(email)
        if self._get(EmailClaim, claim_id) is not None:
            raise EmailTaken("An account with this email already exists: log in instead.")
        password_hash = self.passwords.hash(password)
        new_token = secrets.token_urlsafe(32)

        def attempt() -> SessionInfo:
            now = self.clock()
            found = self._session_viewer(token, now)
            guest_session, viewer = found if found else (None, Viewer(plan=GUEST))
            if viewer.kind == "member":
                raise AlreadyRegistered("You are logged in to an account already.")
            viewer.register(email=email, password_hash=password_hash, plan=FREE)
            claim = EmailClaim(id=claim_id, email=email, viewer_id=viewer.id)
            session = self._new_session(new_token, viewer.id, now)
            changed: list[Aggregate] = [claim, viewer, session]
            if guest_session is not None:
                guest_session.revoke("registered")
                changed.append(guest_session)
            try:
                self.save(*changed)
            except IntegrityError:
                if self._get(EmailClaim, claim_id) is not None:
                    raise EmailTaken(
                        "An account with this email already exists: log in instead."
                    ) from None
                raise
            return SessionInfo(new_token, session.expires_at, self._info(viewer))

        return self._retry(attempt)

    def login(self, email: str, password: str) -> SessionInfo:
        """A new session for the account, or one error for any wrong email or password.

        Failures are counted per email, registered or not: after ``login_max_failures``
        the email is locked for a time that doubles with each consecutive lock.
        """
        email = normalise_email(email)
        password = unicodedata.normalize("NFKC", password)
        now = self.clock()
        guard_id = LoginGuard.id_for(email)
        guard = self._get(LoginGuard, guard_id)
        if guard is not None and guard.locked(now):
            raise LoginLocked(self._locked_message(guard))
        claim = self._get(EmailClaim, EmailClaim.id_for(email))
        viewer = self._get(Viewer, claim.viewer_id) if claim else None
        # Always verify (a decoy hash when the email is unknown): equal answer times.
        if not self.passwords.verify(viewer.password_hash if viewer else None, password):
            raise self._login_failed(guard_id, viewer.id if viewer else None, now)

        token = secrets.token_urlsafe(32)
        assert viewer is not None

        def succeeded() -> SessionInfo:
            member = self._get(Viewer, viewer.id)
            assert member is not None and member.password_hash is not None
            changed: list[Aggregate] = [member]
            current = self._get(LoginGuard, guard_id)
            if current is not None:
                if current.locked(now):  # locked by a concurrent attempt meanwhile
                    raise LoginLocked(self._locked_message(current))
                current.expire_lock(now)
                current.succeed()
                changed.append(current)
            if self.passwords.needs_rehash(member.password_hash):
                member.rehash_password(self.passwords.hash(password))
            session = self._new_session(token, member.id, now)
            self.save(*changed, session)
            return SessionInfo(token, session.expires_at, self._info(member))

        return self._retry(succeeded)

    def logout(self, token: str | None) -> bool:
        """Revoke the session of ``token``; False when there was no live session."""
        if not token or len(token) > MAX_TOKEN:
            return False

        def attempt() -> bool:
            session = self._get(Session, Session.id_for(token))
            if session is None or not session.active(self.clock()):
                return False
            session.revoke("logout")
            self.save(session)
            return True

        return self._retry(attempt)

    def open_code_page(self, token: str | None, system: str, code: str) -> PageAccess:
        """Unlock a code page for the caller, spending a view the first time only."""
        found = self._session_viewer(token, self.clock())
        if found is None:
            return PageAccess(locked=True, spent=False, remaining=0, next_step=ANONYMOUS_STEP)
        loaded = [found[1]]  # the first attempt uses it; a retry reloads

        def attempt() -> PageAccess:
            viewer = loaded.pop() if loaded else self._get(Viewer, found[1].id)
            assert viewer is not None
            limit = self.policy.plans.limit(viewer.plan)
            try:
                spent = viewer.open_code_page(system, code, limit)
            except NoViewsLeft:
                return PageAccess(locked=True, spent=False, remaining=0,
                                  next_step=self._next_step(viewer))
            if spent:
                self.save(viewer)
            return PageAccess(locked=False, spent=spent, remaining=viewer.remaining(limit))

        return self._retry(attempt)

    def change_plan(
        self, viewer_id: UUID | str, plan: str, reason: str, external_ref: str | None = None
    ) -> ViewerInfo:
        """Move a member to a plan of the catalogue.

        Shaped for a payment provider's webhook: ``external_ref`` (e.g. the provider's
        event id) makes redelivered webhooks change nothing the second time.
        """
        if plan not in self.policy.plans or plan == GUEST:
            raise UnknownPlan(f"There is no plan {plan!r} to move to.")
        try:
            uid = UUID(str(viewer_id))
        except ValueError:
            raise UnknownViewer(f"No viewer {viewer_id!r}.") from None

        def attempt() -> ViewerInfo:
            viewer = self._get(Viewer, uid)
            if viewer is None:
                raise UnknownViewer(f"No viewer {viewer_id!r}.")
            if viewer.change_plan(plan, reason, external_ref):
                self.save(viewer)
            return self._info(viewer)

        return self._retry(attempt)

    def unlock_account(self, email: str, reason: str = "operator") -> bool:
        """Lift a login lock early (support desk); False when the email is not locked."""
        guard_id = LoginGuard.id_for(normalise_email(email))

        def attempt() -> bool:
            guard = self._get(LoginGuard, guard_id)
            if guard is None or guard.locked_until is None:
                return False
            guard.unlock(reason)
            self.save(guard)
            return True

        return self._retry(attempt)

    # --- queries --------------------------------------------------------------------

    def viewer(self, token: str | None) -> ViewerInfo:
        found = self._session_viewer(token, self.clock())
        return ANONYMOUS if found is None else self._info(found[1])

    # --- helpers --------------------------------------------------------------------

    def _login_failed(self, guard_id: UUID, viewer_id: UUID | None, now: datetime) -> Exception:
        policy = self.policy

        def attempt() -> LoginGuard:
            guard = self._get(LoginGuard, guard_id) or LoginGuard(id=guard_id)
            guard.expire_lock(now)
            if not guard.locked(now):  # else a concurrent attempt locked it already
                guard.fail(now, viewer_id, policy.login_max_failures, policy.login_lock,
                           policy.login_lock_max)
                self.save(guard)
            return guard

        guard = self._retry(attempt)
        if guard.locked(now):
            return LoginLocked(self._locked_message(guard))
        return InvalidCredentials("The email or password is not right.",
                                  delay=policy.login_failure_delay * guard.failures)

    @staticmethod
    def _locked_message(guard: LoginGuard) -> str:
        until = guard.locked_until.astimezone(UTC) if guard.locked_until else None
        when = until.strftime("%H:%M:%S UTC") if until else "later"
        return f"Too many failed logins for this email: try again after {when}."

    def _next_step(self, viewer: Viewer) -> str:
        plans = self.policy.plans
        if viewer.kind == "guest":
            bonus = plans.registration_bonus
            more = "unlimited" if bonus is None else f"{bonus} more"
            return f"Register a free account to get {more} code page views."
        if plans.has_upgrade:
            return "Upgrade to a paid plan to see more code pages."
        return "You have used every code page view of your plan."

    def _info(self, viewer: Viewer) -> ViewerInfo:
        return ViewerInfo(
            kind="MEMBER" if viewer.kind == "member" else "GUEST",
            plan=viewer.plan,
            used=viewer.used,
            limit=self.policy.plans.limit(viewer.plan),
            email=viewer.email,
            id=str(viewer.id),
        )

    def _new_session(self, token: str, viewer_id: UUID, now: datetime) -> Session:
        return Session(id=Session.id_for(token), viewer_id=viewer_id,
                       expires_at=now + self.policy.session_ttl)

    def _session_viewer(self, token: str | None, now: datetime) -> tuple[Session, Viewer] | None:
        """The live session of ``token`` and its viewer; None when anonymous."""
        if not token or len(token) > MAX_TOKEN:
            return None
        session = self._get(Session, Session.id_for(token))
        if session is None or not session.active(now):
            return None
        viewer = self._get(Viewer, session.viewer_id)
        return None if viewer is None else (session, viewer)

    def _get(self, cls: type[A], aggregate_id: UUID) -> A | None:
        try:
            found: Any = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, cls) else None

    def _retry(self, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` until its save is not beaten by a concurrent writer."""
        for n in range(MAX_ATTEMPTS):
            try:
                return attempt()
            except IntegrityError:
                # Jittered back-off so losers do not collide again in lockstep.
                time.sleep(self._jitter.uniform(0, min(0.001 * 2 ** min(n, 6), 0.05)))
        raise Contention("Too many simultaneous changes to this account: please try again.")
