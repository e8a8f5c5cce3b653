"""The accounts service against real stores: the embedded SQLite file and PostgreSQL.

The concurrency proofs start their threads on a barrier so that every request races
for the same aggregate version; only the event store's optimistic concurrency keeps
the counts exact.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import httpx
import pytest

from services.accounts.api import create_app as create_api
from services.accounts.application import Accounts
from services.accounts.client import HttpAccounts, LocalAccounts
from services.accounts.domain import PlanCatalogue
from services.accounts.events import CATALOGUE
from services.accounts.failures import AccountsFailure
from services.accounts.passwords import Passwords
from services.accounts.plans import DEFAULT_PLANS
from services.accounts.policy import AccountsPolicy
from services.accounts.tokens import derive_token
from services.accounts.values import (
    PageAccess,
    QuestionAllowed,
    QuestionRefused,
    Quota,
    SessionInfo,
)
from services.shared.event_schemas import validate_envelope
from services.shared.settings import Settings
from tests.servers.postgres import fresh_database

pytestmark = pytest.mark.integration

T = TypeVar("T")


class Clock:
    """A clock the test moves by hand (sessions, locks and guest days depend on it)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[str]:
    """One fresh database for this module; tests keep apart by unique emails/addresses."""
    with fresh_database() as name:
        yield name


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "sqlite":
        return Settings(data_dir=tmp_path).event_store_env("accounts")
    dbname = request.getfixturevalue("postgres_database")
    return Settings(mode="distributed", postgres_dbname=dbname).event_store_env("accounts")


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_app(store: dict[str, str], clock: Clock, **policy: Any) -> Accounts:
    return Accounts(
        env=store,
        policy=AccountsPolicy(
            PlanCatalogue(DEFAULT_PLANS),  # views: guest 1, free 6, pro unlimited
            login_failure_delay=0.0,
            **policy,
        ),
        clock=clock,
    )


@pytest.fixture
def app(store: dict[str, str], clock: Clock) -> Iterator[Accounts]:
    accounts = make_app(store, clock)
    yield accounts
    accounts.close()


def address() -> str:
    return f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(256)}"


def email(name: str = "ann") -> str:
    return f"{name}.{secrets.token_hex(4)}@Example.org"


def in_parallel(calls: list[Callable[[], T]]) -> list[T | AccountsFailure]:
    """Run every call in its own thread, released together; failures are returned."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T | AccountsFailure:
        barrier.wait()
        try:
            return call()
        except AccountsFailure as failure:
            return failure

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def opens(app: Accounts, token: str, codes: list[str]) -> list[PageAccess]:
    results = in_parallel([
        (lambda c=c: app.open_code_page(token, "ICD10CM", c)) for c in codes  # type: ignore[misc]
    ])
    assert all(isinstance(r, PageAccess) for r in results), results
    return results  # type: ignore[return-value]


def published(app: Accounts, type_: str, aggregate: str | None = None) -> list[dict[str, Any]]:
    return [
        e.payload for e in CATALOGUE.iterate(app)
        if e.type == type_ and (aggregate is None or str(e.aggregate_id) == aggregate)
    ]


def mailed_token(app: Accounts, viewer_id: str | None, type_: str = "EmailVerificationRequested",
                 purpose: str = "verify-email") -> str:
    """The token the mail policy would mail for the viewer's newest request: derived from
    the published request id and the server secret, exactly as mail.py does."""
    request_id = published(app, type_, viewer_id)[-1]["request_id"]
    return derive_token(app.secret, purpose, UUID(request_id))


def verified(app: Accounts, session: SessionInfo) -> SessionInfo:
    app.verify_email(mailed_token(app, session.viewer.id))
    return session


def failure_of(call: Callable[[], object]) -> AccountsFailure:
    with pytest.raises(AccountsFailure) as raised:
        call()
    return raised.value


# -- metering under concurrency -------------------------------------------------------------


def test_guest_then_member_parallel_opens_are_exact(app: Accounts) -> None:
    """The issue's Done: 20 parallel opens with 1 view unlock 1 page; after registering,
    19 parallel opens unlock exactly 5 more; the viewer then has 0 left."""
    guest = app.start_guest_session(address())
    first = opens(app, guest.token, [f"A00.{n:02d}" for n in range(20)])
    assert sum(not r.locked for r in first) == 1
    assert sum(r.spent for r in first) == 1
    assert all(r.remaining == 0 for r in first)
    assert all(r.next_step and "Register" in r.next_step for r in first if r.locked)

    member = app.register(guest.token, email(), "correct horse battery")
    # Registered but unverified: still the guest's one view; verifying adds five.
    assert (member.viewer.kind, member.viewer.used, member.viewer.remaining) == ("MEMBER", 1, 0)
    assert app.open_code_page(member.token, "ICD10CM", "A01.99").next_step.startswith(
        "Verify your email")  # type: ignore[union-attr]
    verified(app, member)
    second = opens(app, member.token, [f"A01.{n:02d}" for n in range(19)])
    assert sum(not r.locked for r in second) == 5
    assert all(r.next_step and "Upgrade" in r.next_step for r in second if r.locked)

    viewer = app.viewer(member.token)
    assert (viewer.used, viewer.limit, viewer.remaining) == (6, 6, 0)
    assert viewer.id is not None
    assert len(published(app, "CodePageUnlocked", viewer.id)) == 6


def test_parallel_opens_of_one_page_spend_one_view(app: Accounts) -> None:
    guest = app.start_guest_session(address())
    results = opens(app, guest.token, ["I21.9"] * 20)
    assert all(not r.locked for r in results)  # the page is this viewer's: all see it
    assert sum(r.spent for r in results) == 1


def test_unlimited_plan_parallel_opens_all_unlock(app: Accounts) -> None:
    member = app.register(None, email(), "correct horse battery")
    assert member.viewer.id is not None
    app.change_plan(member.viewer.id, "pro", "subscription_created", "evt_" + secrets.token_hex(4))
    results = opens(app, member.token, [f"B00.{n:02d}" for n in range(20)])
    assert all(not r.locked and r.spent and r.remaining is None for r in results)
    assert app.viewer(member.token).used == 20


def test_busy_viewers_load_from_snapshots(app: Accounts) -> None:
    member = app.register(None, email(), "correct horse battery")
    assert member.viewer.id is not None
    app.change_plan(member.viewer.id, "pro", "subscription_created", None)
    for n in range(60):
        app.open_code_page(member.token, "ICD10CM", f"C00.{n:02d}")
    assert app.snapshots is not None
    snapshots = list(app.snapshots.get(UUID(member.viewer.id)))
    assert [s.originator_version for s in snapshots] == [50]
    assert app.open_code_page(member.token, "ICD10CM", "C00.07").spent is False
    assert app.viewer(member.token).used == 60


def test_one_email_registers_once_even_concurrently(app: Accounts) -> None:
    base = email("race").lower()
    spellings = [base.upper(), base, base.title(), f"  {base} "] * 2
    guests = [app.start_guest_session(address()) for _ in spellings]
    results = in_parallel([
        (lambda g=g, e=e: app.register(g.token, e, "correct horse battery"))  # type: ignore[misc]
        for g, e in zip(guests, spellings, strict=True)
    ])
    winners = [r for r in results if isinstance(r, SessionInfo)]
    assert len(winners) == 1
    assert {r.code for r in results if isinstance(r, AccountsFailure)} == {"EMAIL_TAKEN"}


def test_guest_sessions_are_capped_per_address_per_day(
    store: dict[str, str], clock: Clock
) -> None:
    app = make_app(store, clock, guest_sessions_per_address_per_day=5)
    try:
        here = address()
        results = in_parallel([lambda: app.start_guest_session(here)] * 12)
        assert sum(isinstance(r, SessionInfo) for r in results) == 5
        refused = [r for r in results if isinstance(r, AccountsFailure)]
        assert {r.code for r in refused} == {"GUEST_SESSION_LIMIT"}
        assert "limit is 5 a day" in str(refused[0])
        app.start_guest_session(address())  # another network is not affected
        clock.advance(days=1)
        app.start_guest_session(here)  # nor is the next UTC day
    finally:
        app.close()


# -- identity and sessions -------------------------------------------------------------------


def test_registration_errors_are_typed(app: Accounts) -> None:
    taken = email()
    app.register(None, taken, "correct horse battery")
    guest = app.start_guest_session(address()).token
    assert failure_of(lambda: app.register(guest, taken.upper(), "another password")).code == (
        "EMAIL_TAKEN")
    assert failure_of(lambda: app.register(guest, email(), "abc")).code == "WEAK_PASSWORD"
    assert failure_of(lambda: app.register(guest, "not-an-email", "correct horse")).code == (
        "INVALID_EMAIL")
    assert failure_of(lambda: app.register(guest, email(), "x" * 2000)).code == (
        "PASSWORD_TOO_LONG")
    assert app.register(guest, email(), "x" * 128).viewer.kind == "MEMBER"  # 128 is fine


def test_wrong_password_and_unknown_email_fail_alike(app: Accounts) -> None:
    known = email()
    app.register(None, known, "correct horse battery")
    wrong = failure_of(lambda: app.login(known, "wrong horse battery"))
    unknown = failure_of(lambda: app.login(email("nobody"), "wrong horse battery"))
    assert (wrong.code, str(wrong)) == (unknown.code, str(unknown))
    assert wrong.code == "INVALID_CREDENTIALS"
    session = app.login(known.upper(), "correct horse battery")
    assert session.viewer.email == known.lower()


def test_repeated_failures_lock_for_a_growing_time(app: Accounts, clock: Clock) -> None:
    known = email()
    member = app.register(None, known, "correct horse battery")
    for _ in range(4):
        assert failure_of(lambda: app.login(known, "guess")).code == "INVALID_CREDENTIALS"
    assert failure_of(lambda: app.login(known, "guess")).code == "ACCOUNT_LOCKED"
    # Locked: even the right password is refused, per account whatever the address.
    assert failure_of(lambda: app.login(known, "correct horse battery")).code == (
        "ACCOUNT_LOCKED")
    clock.advance(seconds=61)
    for _ in range(5):
        failure_of(lambda: app.login(known, "guess"))
    clock.advance(seconds=61)  # the second lock lasts two minutes
    assert failure_of(lambda: app.login(known, "correct horse battery")).code == (
        "ACCOUNT_LOCKED")
    clock.advance(seconds=60)
    assert app.login(known, "correct horse battery").viewer.id == member.viewer.id

    locks = published(app, "AccountLocked")
    mine = [p for p in locks if p["viewer_id"] == member.viewer.id]
    assert [p["lock_number"] for p in mine] == [1, 2]
    ends = [datetime.fromisoformat(p["until"]) for p in mine]
    # The first lock ran 60 s; the second started 1 s after it ended and ran 120 s.
    assert ends[1] - ends[0] == timedelta(seconds=1 + 120)
    unlocks = [p for p in published(app, "AccountUnlocked")
               if p["viewer_id"] == member.viewer.id]
    assert [p["reason"] for p in unlocks] == ["expired", "expired"]


def test_an_unknown_email_locks_exactly_like_a_known_one(app: Accounts) -> None:
    known, unknown = email(), email("ghost")
    app.register(None, known, "correct horse battery")
    answers = {}
    for who in (known, unknown):
        answers[who] = [(f.code, str(f)) for f in
                        (failure_of(lambda who=who: app.login(who, "guess")) for _ in range(6))]
    assert answers[known] == answers[unknown]
    assert answers[known][-1][0] == "ACCOUNT_LOCKED"


def test_logout_revokes_and_sessions_expire(app: Accounts, clock: Clock) -> None:
    guest = app.start_guest_session(address())
    assert app.viewer(guest.token).kind == "GUEST"
    assert app.logout(guest.token) is True
    assert app.logout(guest.token) is False
    assert app.viewer(guest.token).kind == "ANONYMOUS"
    assert app.open_code_page(guest.token, "ICD10CM", "I21.9").locked

    other = app.start_guest_session(address())
    clock.advance(days=30, seconds=1)
    assert app.viewer(other.token).kind == "ANONYMOUS"
    assert app.viewer("forged-" + secrets.token_urlsafe(32)).kind == "ANONYMOUS"
    assert app.viewer(None).kind == "ANONYMOUS"


def test_registering_rotates_the_token(app: Accounts) -> None:
    guest = app.start_guest_session(address())
    member = app.register(guest.token, email(), "correct horse battery")
    assert member.token != guest.token
    assert app.viewer(guest.token).kind == "ANONYMOUS"
    assert app.viewer(member.token).id == guest.viewer.id  # same viewer, same history
    assert failure_of(
        lambda: app.register(member.token, email(), "correct horse battery")
    ).code == "ALREADY_REGISTERED"


def test_plan_changes_are_idempotent_per_webhook_event(app: Accounts) -> None:
    member = app.register(None, email(), "correct horse battery")
    viewer_id = member.viewer.id
    assert viewer_id is not None
    ref = "evt_" + secrets.token_hex(6)
    assert app.change_plan(viewer_id, "pro", "subscription_created", ref).limit is None
    app.change_plan(viewer_id, "pro", "subscription_created", ref)  # redelivered
    changes = published(app, "PlanChanged", viewer_id)
    assert changes == [{"from_plan": "free", "to_plan": "pro",
                        "reason": "subscription_created", "external_ref": ref}]
    assert failure_of(lambda: app.change_plan(viewer_id, "platinum", "x")).code == (
        "UNKNOWN_PLAN")
    guest = app.start_guest_session(address())
    assert guest.viewer.id is not None
    assert failure_of(lambda: app.change_plan(guest.viewer.id, "pro", "x")).code == (
        "NOT_REGISTERED")


def test_published_payloads_match_their_schemas_and_hold_no_secrets(
    app: Accounts, clock: Clock
) -> None:
    """Every event type, from a life with every command in it: each payload validates,
    and no email, password hash, session token or mailed token is in any of them."""
    known, changed = email(), email("moved")
    guest = app.start_guest_session(address())
    app.open_code_page(guest.token, "ICD10CM", "I21.9")
    member = app.register(guest.token, known, "correct horse battery")
    viewer_id = member.viewer.id
    assert viewer_id is not None
    tokens = [mailed_token(app, viewer_id)]
    app.verify_email(tokens[-1])
    app.change_plan(viewer_id, "pro", "subscription_created", "evt_schema")
    app.grant_role(viewer_id, "expert")
    app.revoke_role(viewer_id, "expert")
    assert isinstance(app.take_assistant_question(member.token), QuestionAllowed)
    for _ in range(5):
        failure_of(lambda: app.login(known, "guess"))
    clock.advance(hours=1)
    session = app.login(known, "correct horse battery")
    app.request_password_reset(known)
    tokens.append(mailed_token(app, viewer_id, "PasswordResetRequested", "reset-password"))
    app.reset_password(tokens[-1], "another horse battery")
    session = app.login(known, "another horse battery")
    session = app.change_password(session.token, "another horse battery", "third horse battery")
    app.change_email(session.token, "third horse battery", changed)
    app.delete_account(session.token, "third horse battery")

    envelopes = [json.loads(e.to_json()) for e in CATALOGUE.iterate(app)]
    assert {e["type"] for e in envelopes} >= {p.type for p in CATALOGUE.events.values()}
    for envelope in envelopes:
        validate_envelope(envelope)
    text = json.dumps(envelopes).lower()
    secrets_ = [known, changed, guest.token, member.token, session.token, *tokens]
    assert "argon2" not in text and not [s for s in secrets_ if s.lower() in text]


# -- distributed: the HTTP client against the service's own API ---------------------------


async def test_http_client_behaves_like_the_local_one(app: Accounts) -> None:
    api = create_api(LocalAccounts(app))
    remote = HttpAccounts("http://accounts")
    await remote._rpc._http.aclose()
    remote._rpc._http = httpx.AsyncClient(transport=httpx.ASGITransport(app=api),
                                          base_url="http://accounts")
    try:
        guest = await remote.start_guest_session(address())
        assert guest.viewer.kind == "GUEST" and guest.expires_at.tzinfo is not None
        access = await remote.open_code_page(guest.token, "ICD10CM", "I21.9")
        assert (access.locked, access.spent, access.remaining) == (False, True, 0)
        known = email()
        member = await remote.register(guest.token, known, "correct horse battery")
        assert (await remote.viewer(member.token)).remaining == 0
        await remote.verify_email(mailed_token(app, member.viewer.id))
        viewer = await remote.viewer(member.token)
        assert viewer.remaining == 5 and viewer.email_verified and viewer.roles == ()
        found = await remote.member_by_email(known.upper())
        assert found is not None and found.plan.name == "free" and found.email_verified
        assert found.plan.assistant_questions_per_day == 10
        assert await remote.member_by_email("nobody@example.org") is None
        outcome = await remote.take_assistant_question(member.token)
        assert outcome == QuestionAllowed(Quota(1, 10))
        refused = await remote.take_assistant_question(guest.token)
        assert isinstance(refused, QuestionRefused) and refused.code == "SIGN_IN_REQUIRED"
        assert member.viewer.id is not None
        on_behalf = await remote.take_member_assistant_question(member.viewer.id)
        assert on_behalf == QuestionAllowed(Quota(2, 10))
        refused = await remote.take_member_assistant_question("nobody")
        assert isinstance(refused, QuestionRefused) and refused.code == "SIGN_IN_REQUIRED"
        with pytest.raises(AccountsFailure) as raised:
            await remote.login(known, "wrong horse battery")
        assert raised.value.code == "INVALID_CREDENTIALS"
        with pytest.raises(AccountsFailure) as raised:
            await remote.register(None, known.upper(), "correct horse battery")
        assert raised.value.code == "EMAIL_TAKEN"
        assert member.viewer.id is not None
        assert (await remote.change_plan(member.viewer.id, "pro", "test")).limit is None
        assert await remote.logout(member.token) is True
        assert (await remote.viewer(member.token)).kind == "ANONYMOUS"
    finally:
        await remote.close()


# -- abuse limits, mail tokens, the assistant's allowance ---------------------------------


class CountingPasswords(Passwords):
    """Counts the argon2 work the service does (hashes and checks)."""

    def __init__(self) -> None:
        super().__init__()
        self.hashed = self.checked = 0
        self._lock = threading.Lock()

    def hash(self, password: str) -> str:
        with self._lock:
            self.hashed += 1
        return super().hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        with self._lock:
            self.checked += 1
        return super().verify(stored, password)


def test_parallel_guesses_cannot_outrun_the_lock(store: dict[str, str], clock: Clock) -> None:
    """20 wrong guesses at once, 5 allowed: the count and the lock check are one write,
    so exactly 5 passwords are checked and 15 attempts are refused unchecked; then the
    right password is refused too, until the lock ends. (The right password is not among
    the parallel guesses: checked early, its success would rightly lift the lock.)"""
    passwords = CountingPasswords()
    app = Accounts(env=store, policy=AccountsPolicy(PlanCatalogue(DEFAULT_PLANS),
                                                    login_failure_delay=0.0),
                   passwords=passwords, clock=clock)
    try:
        known = email()
        app.register(None, known, "correct horse battery")
        passwords.checked = 0
        guesses = [f"guess number {n}" for n in range(20)]
        results = in_parallel([(lambda g=g: app.login(known, g, address()))  # type: ignore[misc]
                               for g in guesses])
        codes = [r.code if isinstance(r, AccountsFailure) else "OK" for r in results]
        assert passwords.checked == 5
        # A checked guess that meets the lock is answered as locked as well.
        assert codes.count("ACCOUNT_LOCKED") >= 15
        assert codes.count("ACCOUNT_LOCKED") + codes.count("INVALID_CREDENTIALS") == 20
        assert failure_of(lambda: app.login(known, "correct horse battery")).code == (
            "ACCOUNT_LOCKED")
        assert passwords.checked == 5
    finally:
        app.close()


def test_failed_logins_are_capped_per_address(store: dict[str, str], clock: Clock) -> None:
    app = make_app(store, clock, login_failures_per_address_per_day=3)
    try:
        known, here = email(), address()
        app.register(None, known, "correct horse battery")
        app.login(known, "correct horse battery", here)  # a success is not counted
        for n in range(3):  # three different accounts: no per-account lock applies
            failure_of(lambda n=n: app.login(email(f"x{n}"), "guess", here))
        assert failure_of(lambda: app.login(known, "correct horse battery", here)).code == (
            "TOO_MANY_ATTEMPTS")
        assert app.login(known, "correct horse battery", address()).viewer.kind == "MEMBER"
        clock.advance(days=1)
        assert app.login(known, "correct horse battery", here).viewer.kind == "MEMBER"
    finally:
        app.close()


def test_registrations_are_capped_before_any_hashing(store: dict[str, str],
                                                     clock: Clock) -> None:
    """The issue's hole: registering with no session from one address gave 6 views every
    time. Now each new member has the guest's 1 view until verified, and the address is
    capped before an argon2 hash is spent."""
    passwords = CountingPasswords()
    app = Accounts(env=store, policy=AccountsPolicy(
        PlanCatalogue(DEFAULT_PLANS), registrations_per_address_per_day=3,
        login_failure_delay=0.0), passwords=passwords, clock=clock)
    try:
        here = address()
        members = [app.register(None, email(), "correct horse battery", here)
                   for _ in range(3)]
        assert [m.viewer.remaining for m in members] == [1, 1, 1]
        assert passwords.hashed == 3
        results = in_parallel([(lambda: app.register(None, email(), "correct horse battery",
                                                     here))] * 6)
        assert {r.code for r in results if isinstance(r, AccountsFailure)} == {
            "REGISTRATION_LIMIT"}
        assert passwords.hashed == 3 and all(isinstance(r, AccountsFailure) for r in results)
        assert app.register(None, email(), "correct horse battery", address()).viewer.kind == (
            "MEMBER")
    finally:
        app.close()


def test_mailed_tokens_expire_after_a_day(app: Accounts, clock: Clock) -> None:
    member = app.register(None, email(), "correct horse battery")
    token = mailed_token(app, member.viewer.id)
    clock.advance(hours=24)
    assert failure_of(lambda: app.verify_email(token)).code == "TOKEN_EXPIRED"
    clock.advance(minutes=2)  # past the resend cooldown
    app.resend_verification(member.token)
    app.verify_email(mailed_token(app, member.viewer.id))
    assert app.viewer(member.token).email_verified


def test_assistant_questions_per_utc_day_exact_under_concurrency(app: Accounts,
                                                                 clock: Clock) -> None:
    guest = app.start_guest_session(address())
    refused = app.take_assistant_question(guest.token)
    assert isinstance(refused, QuestionRefused) and refused.code == "SIGN_IN_REQUIRED"
    assert app.take_assistant_question(None) == refused
    member = app.register(None, email(), "correct horse battery")
    results = in_parallel([lambda: app.take_assistant_question(member.token)] * 16)
    allowed = [r for r in results if isinstance(r, QuestionAllowed)]
    assert sorted(r.quota.used for r in allowed) == list(range(1, 11))  # free: 10 a day
    over = [r for r in results if isinstance(r, QuestionRefused)]
    assert len(over) == 6 and {r.code for r in over} == {"QUOTA_EXCEEDED"}
    assert app.viewer(member.token).assistant_questions == Quota(10, 10)
    clock.advance(days=1)
    assert app.take_assistant_question(member.token) == QuestionAllowed(Quota(1, 10))
    assert member.viewer.id is not None
    app.change_plan(member.viewer.id, "pro", "test")
    assert app.take_assistant_question(member.token) == QuestionAllowed(Quota(2, 200))


def test_a_trusted_service_takes_a_members_question_from_the_same_allowance(
        app: Accounts) -> None:
    """By viewer id (a consult mailed in) and by session count against one allowance."""
    member = app.register(None, email(), "correct horse battery")
    viewer_id = member.viewer.id
    assert viewer_id is not None
    assert app.take_member_assistant_question(viewer_id) == QuestionAllowed(Quota(1, 10))
    assert app.take_assistant_question(member.token) == QuestionAllowed(Quota(2, 10))
    results = in_parallel([lambda: app.take_member_assistant_question(viewer_id)] * 10)
    assert sorted(r.quota.used for r in results if isinstance(r, QuestionAllowed)) == \
        list(range(3, 11))
    over = app.take_member_assistant_question(viewer_id)
    assert isinstance(over, QuestionRefused) and over.code == "QUOTA_EXCEEDED"
    assert over.quota == Quota(10, 10) and "all 10 questions" in over.message
    assert app.viewer(member.token).assistant_questions == Quota(10, 10)
    guest = app.start_guest_session(address())
    for nobody in (guest.viewer.id, "not-a-viewer-id", "00000000-0000-0000-0000-000000000000"):
        refused = app.take_member_assistant_question(str(nobody))
        assert isinstance(refused, QuestionRefused) and refused.code == "SIGN_IN_REQUIRED"


def test_member_by_email_for_other_services(app: Accounts) -> None:
    known = email()
    member = app.register(None, known, "correct horse battery")
    assert member.viewer.id is not None
    found = app.member_by_email(known.upper())
    assert found is not None and not found.email_verified and found.roles == ()
    assert (found.viewer_id, found.email, found.plan.name) == (member.viewer.id,
                                                               known.lower(), "free")
    app.grant_role(member.viewer.id, "expert")
    found = app.member_by_email(known)
    assert found is not None and found.roles == ("expert",)
    assert app.member_by_email("not an email") is None
    assert app.member_by_email(email("nobody")) is None
    assert app.member_by_email(app.viewer(app.start_guest_session(address()).token).email
                               or "guest@example.org") is None


def test_a_stolen_session_cannot_guess_the_password(app: Accounts) -> None:
    """Changing the password or deleting the account asks for the current password,
    counted and locked like logins."""
    member = app.register(None, email(), "correct horse battery")
    codes = [failure_of(lambda n=n: app.change_password(member.token, f"guess {n}",
                                                        "new horse battery")).code
             for n in range(5)]
    assert codes == ["INVALID_CREDENTIALS"] * 4 + ["ACCOUNT_LOCKED"]
    assert failure_of(lambda: app.delete_account(member.token, "correct horse battery")
                      ).code == "ACCOUNT_LOCKED"
    assert app.viewer(member.token).kind == "MEMBER"
