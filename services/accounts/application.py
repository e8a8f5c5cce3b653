"""The accounts service's commands: sessions, registration, login, mail tokens, plans.

Every command that changes state loads its aggregates, decides, and saves them in one
transaction. When another writer saved one of those aggregates first, the event store
refuses the save (IntegrityError on the aggregate version) and the command runs again
on fresh state. That is what makes quotas exact under any concurrency: the count is
checked in the write model, never in a read model.

Longer than 400 lines on purpose: it is the one Accounts application, whose commands all
share its retry-and-save loop and private helpers (sealing, sessions, quotas); its
answers are in values.py, its rules in policy.py.
"""

from __future__ import annotations

import os
import secrets
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit, urlunsplit
from uuid import UUID, uuid4

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from services.accounts.domain import (
    FREE,
    GUEST,
    AddressQuota,
    BillingCustomer,
    EmailClaim,
    LoginGuard,
    MailedToken,
    PlanCatalogue,
    QuestionAllowance,
    Session,
    Viewer,
)
from services.accounts.failures import (
    AlreadyRegistered,
    Contention,
    EmailTaken,
    GuestSessionLimit,
    InvalidCredentials,
    InvalidEmail,
    LoginAddressLimit,
    LoginLocked,
    NoCheckout,
    NotRegistered,
    NoViewsLeft,
    QuotaExceeded,
    RegistrationLimit,
    SignInRequired,
    TokenInvalid,
    UnknownPlan,
    UnknownViewer,
)
from services.accounts.inputs import check_password, client_key, normalise_email
from services.accounts.keys import PersonalData, key_store_for
from services.accounts.passwords import Passwords
from services.accounts.plans import DEFAULT_PLANS, Plan
from services.accounts.policy import AccountsPolicy
from services.accounts.tokens import derive_token, keyed_digest
from services.accounts.values import (
    ANONYMOUS,
    MailRequest,
    Member,
    PageAccess,
    QuestionAllowed,
    QuestionOutcome,
    QuestionRefused,
    Quota,
    SessionInfo,
    ViewerInfo,
)
from services.shared.aggregates import Retrier, get_aggregate

T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)

Clock = Callable[[], datetime]

MAX_ATTEMPTS = 100  # a loser retries; with N writers on one aggregate, at most N-1 times
MAX_TOKEN = 256
ANONYMOUS_STEP = "Start a guest session or log in to view this code page."
VERIFY = "verify-email"
RESET = "reset-password"


def utcnow() -> datetime:
    return datetime.now(UTC)


def utc_day(now: datetime) -> str:
    return now.astimezone(UTC).date().isoformat()


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
        secret: bytes | None = None,
        personal: PersonalData | None = None,
    ) -> None:
        super().__init__(env=env)
        self.policy = policy or AccountsPolicy(PlanCatalogue(DEFAULT_PLANS))
        self.passwords = passwords or Passwords()
        self.clock = clock
        # Without a secret (tools, tests) tokens and digests only hold for this process.
        self.secret = secret or os.urandom(32)
        self.personal = personal or PersonalData(key_store_for(dict(env or {})))
        self._retrier = Retrier(lambda: Contention(
            "Too many simultaneous changes to this account: please try again."), MAX_ATTEMPTS)

    def close(self) -> None:
        super().close()
        self.personal.close()

    # --- sessions and registration ----------------------------------------------------

    def start_guest_session(self, client_address: str | None) -> SessionInfo:
        """A new guest with its own quota; capped per client address and UTC day."""
        token = secrets.token_urlsafe(32)
        cap = self.policy.guest_sessions_per_address_per_day

        def attempt() -> SessionInfo:
            now = self.clock()
            quota = self._address_quota("guests", client_address, now)
            quota.count(cap, GuestSessionLimit(
                f"Too many guest sessions from your network today (the limit is {cap} a "
                "day). Register a free account or log in to keep reading."))
            viewer = Viewer(plan=GUEST)
            session = self._new_session(token, viewer, now)
            self.save(quota, viewer, session)
            return SessionInfo(token, session.expires_at, self._info(viewer))

        return self._retry(attempt)

    def register(self, token: str | None, email: str, password: str,
                 client_address: str | None = None) -> SessionInfo:
        """Make the caller's guest a member (a new viewer when there is no session).

        The new member keeps the guest's views until the email is verified (a mail with
        a link is on its way): only a verified address earns the free plan's extra
        views. Registrations are capped per client address and day, counted before the
        password is hashed, so a flood of them cannot buy argon2 time either. The
        guest's token is revoked and a new one issued: a privilege change gets a fresh
        session, so a token captured before registration is worth nothing after.
        """
        email = normalise_email(email)
        password = check_password(password)
        claim_id = EmailClaim.id_for(self._digest(email))
        self._ensure_unclaimed(claim_id)
        cap = self.policy.registrations_per_address_per_day

        def count() -> None:
            quota = self._address_quota("registrations", client_address, self.clock())
            quota.count(cap, RegistrationLimit(
                f"Too many registrations from your network today (the limit is {cap} a "
                "day). Try again tomorrow, or log in."))
            self.save(quota)

        self._retry(count)
        password_hash = self.passwords.hash(password)
        new_token = secrets.token_urlsafe(32)

        def attempt() -> SessionInfo:
            now = self.clock()
            found = self._session_viewer(token, now)
            guest_session, viewer = found if found else (None, Viewer(plan=GUEST))
            if viewer.kind == "member":
                raise AlreadyRegistered("You are logged in to an account already.")
            viewer.register(sealed_email=self._seal(viewer, "email", email),
                            sealed_password=self._seal(viewer, "password", password_hash),
                            plan=FREE)
            changed: list[Aggregate] = [self._claim(claim_id, viewer.id), viewer]
            changed.extend(self._verification(viewer, now, "registered"))
            session = self._new_session(new_token, viewer, now)
            changed.append(session)
            if guest_session is not None:
                guest_session.revoke("registered")
                changed.append(guest_session)
            self._save_claiming(claim_id, *changed)
            return SessionInfo(new_token, session.expires_at, self._info(viewer))

        return self._retry(attempt)

    def login(self, email: str, password: str, client_address: str | None = None
              ) -> SessionInfo:
        """A new session for the account, or one error for any wrong email or password.

        Each attempt is counted (per email, and per client address and day) and the
        lock checked in ONE write before the password is: parallel guesses cannot get
        past the limit. After ``login_max_failures`` the email is locked for a time
        that doubles with each consecutive lock; unknown emails lock alike.
        """
        email = normalise_email(email)
        password = unicodedata.normalize("NFKC", password)
        digest = self._digest(email)
        claim = self._get(EmailClaim, EmailClaim.id_for(digest))
        viewer_id = claim.viewer_id if claim else None
        guard_id = LoginGuard.id_for(digest)
        address_id = self._address_quota_id("login-failures", client_address, self.clock())

        self._begin_attempt(guard_id, viewer_id, address_id)
        viewer = self._get(Viewer, viewer_id) if viewer_id else None
        if viewer is not None and not viewer.member:
            viewer = None
        stored = self._open(viewer, "password") if viewer else None
        # Always verify (a decoy hash when the email is unknown): equal answer times.
        if not self.passwords.verify(stored, password):
            raise self._login_failed(guard_id, viewer.id if viewer else None)
        assert viewer is not None and stored is not None
        token = secrets.token_urlsafe(32)

        def succeeded() -> SessionInfo:
            now = self.clock()
            member = self._get(Viewer, viewer.id)
            if member is None or not member.member:
                raise InvalidCredentials("The email or password is not right.")
            changed: list[Aggregate] = [member]
            guard = self._get(LoginGuard, guard_id)
            if guard is not None:
                guard.succeed()
                changed.append(guard)
            address = self._get(AddressQuota, address_id)
            if address is not None:
                address.refund()
                changed.append(address)
            if self.passwords.needs_rehash(stored):
                member.rehash_password(self._seal(member, "password",
                                                  self.passwords.hash(password)))
            session = self._new_session(token, member, now)
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
            limit = viewer.code_page_limit(self.policy.plans)
            try:
                spent = viewer.open_code_page(system, code, limit)
            except NoViewsLeft:
                return PageAccess(locked=True, spent=False, remaining=0,
                                  next_step=self._next_step(viewer))
            if spent:
                self.save(viewer)
            return PageAccess(locked=False, spent=spent, remaining=viewer.remaining(limit))

        return self._retry(attempt)

    # --- email verification, password reset, changes ----------------------------------

    def verify_email(self, token: str) -> ViewerInfo:
        """Mark the email verified (granting the free plan's extra views); single use."""

        def attempt() -> ViewerInfo:
            mailed, viewer = self._use_token(token, VERIFY)
            viewer.verify_email(mailed.request_id)
            self.save(viewer, mailed)
            return self._info(viewer)

        return self._retry(attempt)

    def resend_verification(self, token: str | None) -> ViewerInfo:
        """A new verification mail (the older links stop working), at most one a minute."""

        def attempt() -> ViewerInfo:
            viewer = self._signed_in(token)
            self.save(viewer, *self._verification(viewer, self.clock(), "resent"))
            return self._info(viewer)

        return self._retry(attempt)

    def request_password_reset(self, email: str) -> None:
        """Mail a reset link when the address has an account; the caller learns nothing
        either way (the same answer, no error for an unknown or malformed address)."""
        try:
            email = normalise_email(email)
        except InvalidEmail:
            return
        claim = self._get(EmailClaim, EmailClaim.id_for(self._digest(email)))
        if claim is None or claim.viewer_id is None:
            return
        viewer_id = claim.viewer_id

        def attempt() -> None:
            viewer = self._get(Viewer, viewer_id)
            if viewer is None:
                return
            now = self.clock()
            request_id = uuid4()
            if viewer.request_password_reset(request_id, now, self.policy.token_ttl,
                                             self.policy.resend_cooldown):
                self.save(viewer, self._mailed_token(viewer, RESET, request_id, now))

        self._retry(attempt)

    def reset_password(self, token: str, new_password: str) -> ViewerInfo:
        """Set a new password from a mailed link; every session of the account ends."""
        password_hash = self.passwords.hash(check_password(new_password))

        def attempt() -> ViewerInfo:
            mailed, viewer = self._use_token(token, RESET)
            viewer.reset_password(mailed.request_id,
                                  self._seal(viewer, "password", password_hash))
            changed: list[Aggregate] = [viewer, mailed]
            # Owning the inbox proves it is the owner: lift a login lock on the email.
            email = self._open(viewer, "email")
            if email:
                guard = self._get(LoginGuard, LoginGuard.id_for(self._digest(email)))
                if guard is not None:
                    guard.succeed()
                    changed.append(guard)
            self.save(*changed)
            return self._info(viewer)

        return self._retry(attempt)

    def change_password(self, token: str | None, current: str, new_password: str
                        ) -> SessionInfo:
        """Change the password (the current one is asked again); every other session
        ends and the caller gets a new token."""
        viewer = self._signed_in(token)
        self._check_password(viewer, current)
        password_hash = self.passwords.hash(check_password(new_password))
        new_token = secrets.token_urlsafe(32)

        def attempt() -> SessionInfo:
            member = self._signed_in(token)
            member.change_password(self._seal(member, "password", password_hash))
            session = self._new_session(new_token, member, self.clock())
            self.save(member, session)
            return SessionInfo(new_token, session.expires_at, self._info(member))

        return self._retry(attempt)

    def change_email(self, token: str | None, password: str, new_email: str) -> ViewerInfo:
        """Move the account to another address, which must be verified again (a mail
        goes there; the old address is told)."""
        email = normalise_email(new_email)
        viewer = self._signed_in(token)
        self._check_password(viewer, password)
        claim_id = EmailClaim.id_for(self._digest(email))
        self._ensure_unclaimed(claim_id)

        def attempt() -> ViewerInfo:
            member = self._signed_in(token)
            previous = self._open(member, "email") or ""
            old = self._get(EmailClaim, EmailClaim.id_for(self._digest(previous)))
            member.change_email(self._seal(member, "email", email))
            changed: list[Aggregate] = [self._claim(claim_id, member.id), member]
            if old is not None:
                old.release("email changed")
                changed.append(old)
            changed.extend(self._verification(member, self.clock(), "email changed"))
            self._save_claiming(claim_id, *changed)
            return self._info(member)

        return self._retry(attempt)

    # --- leaving ----------------------------------------------------------------------

    def export_data(self, token: str | None) -> dict[str, Any]:
        """Everything this service holds about the caller, readable (GDPR art. 15, 20)."""
        viewer = self._signed_in(token, members_only=False)
        history = []
        for stored in self.repository.event_store.get(viewer.id):
            domain_event: Any = stored
            name = type(domain_event).__name__
            entry: dict[str, Any] = {"event": name,
                                     "at": domain_event.timestamp.isoformat()}
            for key, value in vars(domain_event).items():
                if key.startswith("originator") or key == "timestamp":
                    continue
                if key.startswith("sealed_"):
                    name = key[len("sealed_"):]
                    entry[name] = ("(an argon2id hash, not shown)" if name == "password"
                                   else self.personal.open(viewer.id, name, value))
                elif isinstance(value, datetime):
                    entry[key] = value.isoformat()
                else:
                    entry[key] = value if isinstance(value, (str, int, float, bool, type(None))
                                                     ) else str(value)
            history.append(entry)
        info = self._info(viewer)
        return {
            "id": str(viewer.id),
            "kind": info.kind.lower(),
            "email": info.email,
            "email_verified": viewer.email_verified,
            "plan": viewer.plan,
            "roles": list(viewer.roles),
            "code_pages_unlocked": sorted(viewer.unlocked),
            "history": history,
        }

    def delete_account(self, token: str | None, password: str) -> None:
        """Delete the caller's account: its sessions end, its email is released, and its
        key is destroyed, so the email and every other sealed field in the event log
        can never be read again."""
        viewer = self._signed_in(token)
        self._check_password(viewer, password)

        def attempt() -> UUID:
            member = self._signed_in(token)
            email = self._open(member, "email") or ""
            claim = self._get(EmailClaim, EmailClaim.id_for(self._digest(email)))
            member.delete("by the member")
            changed: list[Aggregate] = [member]
            if claim is not None:
                claim.release("account deleted")
                changed.append(claim)
            self.save(*changed)
            return member.id

        self.personal.forget(self._retry(attempt))

    # --- plans, roles, billing --------------------------------------------------------

    def change_plan(
        self, viewer_id: UUID | str, plan: str, reason: str, external_ref: str | None = None
    ) -> ViewerInfo:
        """Move a member to a plan of the catalogue.

        Shaped for a payment provider's webhook: ``external_ref`` (e.g. the provider's
        event id) makes redelivered webhooks change nothing the second time.
        """
        if plan not in self.policy.plans or plan == GUEST:
            raise UnknownPlan(f"There is no plan {plan!r} to move to; plans: "
                              f"{', '.join(p.name for p in self.policy.plans)}.")
        uid = self._viewer_id(viewer_id)

        def attempt() -> ViewerInfo:
            viewer = self._get(Viewer, uid)
            if viewer is None:
                raise UnknownViewer(f"No viewer {viewer_id!r}.")
            if viewer.change_plan(plan, reason, external_ref):
                self.save(viewer)
            return self._info(viewer)

        return self._retry(attempt)

    def grant_role(self, viewer_id: UUID | str, role: str) -> ViewerInfo:
        return self._change_viewer(viewer_id, lambda v: v.grant_role(role))

    def revoke_role(self, viewer_id: UUID | str, role: str) -> ViewerInfo:
        return self._change_viewer(viewer_id, lambda v: v.revoke_role(role))

    def link_billing(self, viewer_id: UUID | str, customer: str) -> None:
        """Remember which viewer a payment provider's customer is (from checkout), so
        that later subscription events find the account."""
        uid = self._viewer_id(viewer_id)

        def attempt() -> None:
            billing_id = BillingCustomer.id_for(customer)
            found = self._get(BillingCustomer, billing_id)
            if found is None:
                self.save(BillingCustomer(id=billing_id, viewer_id=uid))
            elif found.viewer_id != uid:
                found.relink(uid)
                self.save(found)

        self._retry(attempt)

    def viewer_by_billing_customer(self, customer: str) -> str | None:
        found = self._get(BillingCustomer, BillingCustomer.id_for(customer))
        return str(found.viewer_id) if found else None

    def upgrade(self, token: str | None, plan: str) -> str:
        """The checkout page for ``plan``, naming the caller (the webhook reads it back)."""
        viewer = self._signed_in(token)
        if plan not in self.policy.plans:
            raise UnknownPlan(f"There is no plan {plan!r}.")
        target = self.policy.plans.get(plan)
        if not target.checkout_url:
            raise NoCheckout(f"The {plan} plan cannot be bought online; contact us.")
        parts = urlsplit(target.checkout_url)
        query = "&".join(q for q in (parts.query, urlencode({
            "client_reference_id": str(viewer.id),
            "prefilled_email": self._open(viewer, "email") or "",
        })) if q)
        return urlunsplit(parts._replace(query=query))

    def unlock_account(self, email: str, reason: str = "operator") -> bool:
        """Lift a login lock early (support desk); False when the email is not locked."""
        guard_id = LoginGuard.id_for(self._digest(normalise_email(email)))

        def attempt() -> bool:
            guard = self._get(LoginGuard, guard_id)
            if guard is None or guard.locked_until is None:
                return False
            guard.unlock(reason)
            self.save(guard)
            return True

        return self._retry(attempt)

    # --- other services ---------------------------------------------------------------

    def member_by_email(self, email: str) -> Member | None:
        try:
            email = normalise_email(email)
        except InvalidEmail:
            return None
        claim = self._get(EmailClaim, EmailClaim.id_for(self._digest(email)))
        viewer = self._get(Viewer, claim.viewer_id) if claim and claim.viewer_id else None
        if viewer is None or not viewer.member:
            return None
        return self._member(viewer)

    def member(self, viewer_id: UUID | str) -> Member | None:
        viewer = self._get(Viewer, self._viewer_id(viewer_id))
        return self._member(viewer) if viewer is not None and viewer.member else None

    def take_assistant_question(self, token: str | None) -> QuestionOutcome:
        """Count one assistant question against the plan's daily limit (UTC days)."""
        found = self._session_viewer(token, self.clock())
        if found is None or found[1].kind != "member":
            return QuestionRefused("SIGN_IN_REQUIRED",
                                   "Register or log in to ask the assistant.")
        return self._take_question(found[1])

    def take_member_assistant_question(self, viewer_id: UUID | str) -> QuestionOutcome:
        """The same count for a member another service acts for (a consult mailed in):
        no session, the member named by viewer id. For trusted service callers only."""
        try:
            viewer = self._get(Viewer, self._viewer_id(viewer_id))
        except UnknownViewer:
            viewer = None
        if viewer is None or not viewer.member:
            return QuestionRefused("SIGN_IN_REQUIRED", "Only members may ask the assistant.")
        return self._take_question(viewer)

    def _take_question(self, viewer: Viewer) -> QuestionOutcome:
        limit = self.policy.plans.get(viewer.plan).assistant_questions_per_day

        def attempt() -> QuestionOutcome:
            allowance = self._allowance(viewer.id, self.clock())
            try:
                allowance.take(limit)
            except QuotaExceeded as refused:
                return QuestionRefused("QUOTA_EXCEEDED", str(refused),
                                       Quota(allowance.used, limit))
            self.save(allowance)
            return QuestionAllowed(Quota(allowance.used, limit))

        return self._retry(attempt)

    def mail_request(self, viewer_id: UUID, purpose: str, request_id: UUID | None,
                     version: int) -> MailRequest | None:
        """For the mail policy: where the mail for the event at ``version`` of the viewer
        goes (the address of that moment: an email change later does not redirect it;
        for "email-changed", the address before the change) and the token it carries.
        None when the account is gone (deleted: nothing to mail, nothing readable)."""
        latest = self._get(Viewer, viewer_id)
        if latest is None or not latest.member:
            return None
        at = version - 1 if purpose == "email-changed" else version
        then = self._viewer_at(viewer_id, at)
        to = self._open(then, "email") if then is not None else None
        if not to:
            return None
        if request_id is None:
            return MailRequest(to)
        current = {VERIFY: latest.verification_request, RESET: latest.reset_request}
        return MailRequest(to, derive_token(self.secret, purpose, request_id),
                           current.get(purpose) == request_id)

    # --- queries ----------------------------------------------------------------------

    def viewer(self, token: str | None) -> ViewerInfo:
        found = self._session_viewer(token, self.clock())
        return ANONYMOUS if found is None else self._info(found[1])

    def find_by_email(self, email: str) -> ViewerInfo | None:
        """An operator's look-up (``medcode accounts show``)."""
        member = self.member_by_email(email)
        viewer = self._get(Viewer, UUID(member.viewer_id)) if member else None
        return self._info(viewer) if viewer else None

    def plans(self) -> list[Plan]:
        return list(self.policy.plans)

    # --- helpers ----------------------------------------------------------------------

    def _digest(self, email: str) -> str:
        return keyed_digest(self.secret, "email", email)

    def _seal(self, viewer: Viewer, name: str, value: str) -> str:
        return self.personal.seal(viewer.id, name, value)

    def _open(self, viewer: Viewer, name: str) -> str | None:
        sealed = viewer.sealed_password if name == "password" else viewer.sealed_email
        return self.personal.open(viewer.id, name, sealed)

    def _viewer_at(self, viewer_id: UUID, version: int) -> Viewer | None:
        """The viewer as it was at ``version`` (which exists: the viewer does)."""
        found: Any = self.repository.get(viewer_id, version=version)
        return found if isinstance(found, Viewer) else None

    def _check_password(self, viewer: Viewer, password: str) -> None:
        """The current password, asked again before a sensitive change: counted and
        locked like a login, so a stolen session cannot guess it at leisure."""
        guard_id = LoginGuard.id_for(self._digest(self._open(viewer, "email") or ""))
        self._begin_attempt(guard_id, viewer.id, None)
        stored = self._open(viewer, "password")
        if not self.passwords.verify(stored, unicodedata.normalize("NFKC", password)):
            raise self._login_failed(guard_id, viewer.id)

        def succeeded() -> None:
            guard = self._get(LoginGuard, guard_id)
            if guard is not None:
                guard.succeed()
                self.save(guard)

        self._retry(succeeded)

    def _begin_attempt(self, guard_id: UUID, viewer_id: UUID | None,
                       address_id: UUID | None) -> None:
        """Count a password attempt (and, for logins, one more for the client address)
        and check the lock, in one write before the password is checked."""
        policy = self.policy

        def begin() -> None:
            now = self.clock()
            guard = self._get(LoginGuard, guard_id) or LoginGuard(id=guard_id)
            changed: list[Aggregate] = [guard]
            if address_id is not None:
                address = self._get(AddressQuota, address_id) or AddressQuota(
                    id=address_id, day=utc_day(now))
                address.count(policy.login_failures_per_address_per_day, LoginAddressLimit(
                    "Too many failed logins from your network today: try again tomorrow, "
                    "or reset your password."))
                changed.append(address)
            try:
                guard.attempt(now, viewer_id, policy.login_max_failures, policy.login_lock,
                              policy.login_lock_max)
            except LoginLocked:
                self.save(guard)  # an expired lock's Unlocked, if any
                raise
            self.save(*changed)

        self._retry(begin)

    def _ensure_unclaimed(self, claim_id: UUID) -> None:
        claim = self._get(EmailClaim, claim_id)
        if claim is not None and claim.viewer_id is not None:
            raise EmailTaken("An account with this email already exists: log in instead.")

    def _claim(self, claim_id: UUID, viewer_id: UUID) -> EmailClaim:
        claim = self._get(EmailClaim, claim_id)
        if claim is None:
            return EmailClaim(id=claim_id, viewer_id=viewer_id)
        claim.claim(viewer_id)
        return claim

    def _save_claiming(self, claim_id: UUID, *changed: Aggregate) -> None:
        try:
            self.save(*changed)
        except IntegrityError:
            self._ensure_unclaimed(claim_id)  # EmailTaken when another claim won
            raise

    def _verification(self, viewer: Viewer, now: datetime, reason: str) -> list[Aggregate]:
        request_id = uuid4()
        viewer.request_verification(request_id, now, self.policy.token_ttl,
                                    self.policy.resend_cooldown, reason)
        return [self._mailed_token(viewer, VERIFY, request_id, now)]

    def _mailed_token(self, viewer: Viewer, purpose: str, request_id: UUID,
                      now: datetime) -> MailedToken:
        token = derive_token(self.secret, purpose, request_id)
        return MailedToken(id=MailedToken.id_for(token), viewer_id=viewer.id, purpose=purpose,
                           request_id=request_id, expires_at=now + self.policy.token_ttl)

    def _use_token(self, token: str, purpose: str) -> tuple[MailedToken, Viewer]:
        if not token or len(token) > MAX_TOKEN:
            raise TokenInvalid("This link is not valid.")
        mailed = self._get(MailedToken, MailedToken.id_for(token.strip()))
        if mailed is None:
            raise TokenInvalid("This link is not valid.")
        viewer = self._get(Viewer, mailed.viewer_id)
        if viewer is None or not viewer.member:
            raise TokenInvalid("This link is not valid.")
        mailed.use(purpose, self.clock())
        return mailed, viewer

    def _signed_in(self, token: str | None, members_only: bool = True) -> Viewer:
        found = self._session_viewer(token, self.clock())
        if found is None:
            raise SignInRequired("Log in first.")
        if members_only and found[1].kind != "member":
            raise NotRegistered("Register or log in to your account first.")
        return found[1]

    def _change_viewer(self, viewer_id: UUID | str, change: Callable[[Viewer], bool]
                       ) -> ViewerInfo:
        uid = self._viewer_id(viewer_id)

        def attempt() -> ViewerInfo:
            viewer = self._get(Viewer, uid)
            if viewer is None or viewer.deleted:
                raise UnknownViewer(f"No viewer {viewer_id!r}.")
            if change(viewer):
                self.save(viewer)
            return self._info(viewer)

        return self._retry(attempt)

    @staticmethod
    def _viewer_id(viewer_id: UUID | str) -> UUID:
        try:
            return UUID(str(viewer_id))
        except ValueError:
            raise UnknownViewer(f"No viewer {viewer_id!r}.") from None

    def _member(self, viewer: Viewer) -> Member:
        return Member(viewer_id=str(viewer.id), email=self._open(viewer, "email") or "",
                      email_verified=viewer.email_verified,
                      plan=self.policy.plans.get(viewer.plan), roles=tuple(viewer.roles))

    def _address_quota_id(self, purpose: str, client_address: str | None,
                          now: datetime) -> UUID:
        client = keyed_digest(self.secret, "client", client_key(client_address))
        return AddressQuota.id_for(purpose, client, utc_day(now))

    def _address_quota(self, purpose: str, client_address: str | None,
                       now: datetime) -> AddressQuota:
        quota_id = self._address_quota_id(purpose, client_address, now)
        return self._get(AddressQuota, quota_id) or AddressQuota(id=quota_id,
                                                                 day=utc_day(now))

    def _allowance(self, viewer_id: UUID, now: datetime) -> QuestionAllowance:
        day = utc_day(now)
        allowance_id = QuestionAllowance.id_for(viewer_id, day)
        return self._get(QuestionAllowance, allowance_id) or QuestionAllowance(
            id=allowance_id, viewer_id=viewer_id, day=day)

    def _login_failed(self, guard_id: UUID, viewer_id: UUID | None) -> Exception:
        def attempt() -> LoginGuard:
            guard = self._get(LoginGuard, guard_id) or LoginGuard(id=guard_id)
            guard.fail(viewer_id)
            self.save(guard)
            return guard

        guard = self._retry(attempt)
        if guard.locked(self.clock()):
            return LoginLocked(guard.locked_message())
        return InvalidCredentials("The email or password is not right.",
                                  delay=self.policy.login_failure_delay * guard.failures)

    def _next_step(self, viewer: Viewer) -> str:
        plans = self.policy.plans
        if viewer.kind == "guest":
            bonus = plans.verification_bonus
            more = "unlimited" if bonus is None else f"{bonus} more"
            return f"Register a free account to get {more} code page views."
        if viewer.plan == FREE and not viewer.email_verified:
            bonus = plans.verification_bonus
            more = "unlimited" if bonus is None else f"{bonus} more"
            return (f"Verify your email address (follow the link we mailed you) to get "
                    f"{more} code page views.")
        if plans.has_upgrade:
            return "Upgrade to a paid plan to see more code pages."
        return "You have used every code page view of your plan."

    def _info(self, viewer: Viewer) -> ViewerInfo:
        plan = self.policy.plans.get(viewer.plan)
        questions = 0
        if viewer.kind == "member":
            allowance = self._get(QuestionAllowance,
                                  QuestionAllowance.id_for(viewer.id, utc_day(self.clock())))
            questions = allowance.used if allowance else 0
        return ViewerInfo(
            kind="MEMBER" if viewer.kind == "member" else "GUEST",
            plan=viewer.plan,
            used=viewer.used,
            limit=viewer.code_page_limit(self.policy.plans),
            email=self._open(viewer, "email"),
            id=str(viewer.id),
            email_verified=viewer.email_verified,
            roles=tuple(viewer.roles),
            questions_used=questions,
            questions_limit=plan.assistant_questions_per_day if viewer.kind == "member"
            else 0,
        )

    def _new_session(self, token: str, viewer: Viewer, now: datetime) -> Session:
        return Session(id=Session.id_for(token), viewer_id=viewer.id,
                       expires_at=now + self.policy.session_ttl,
                       generation=viewer.session_generation)

    def _session_viewer(self, token: str | None, now: datetime) -> tuple[Session, Viewer] | None:
        """The live session of ``token`` and its viewer; None when anonymous."""
        if not token or len(token) > MAX_TOKEN:
            return None
        session = self._get(Session, Session.id_for(token))
        if session is None or not session.active(now):
            return None
        viewer = self._get(Viewer, session.viewer_id)
        if viewer is None or viewer.deleted or session.generation < viewer.session_generation:
            return None
        return session, viewer

    def _get(self, cls: type[A], aggregate_id: UUID) -> A | None:
        return get_aggregate(self, cls, aggregate_id)

    def _retry(self, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` until its save is not beaten by a concurrent writer."""
        return self._retrier(attempt)

