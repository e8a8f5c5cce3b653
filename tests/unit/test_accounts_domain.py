"""The accounts domain on its own: no store, no clock but the one passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from services.accounts.domain import (
    MAILS_PER_DAY,
    AddressQuota,
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
    AlreadyVerified,
    EmailTaken,
    GuestSessionLimit,
    InvalidEmail,
    LoginLocked,
    NotRegistered,
    NoViewsLeft,
    PasswordTooLong,
    QuotaExceeded,
    ResendTooSoon,
    TokenExpired,
    TokenInvalid,
    TokenUsed,
    UnknownRole,
    WeakPassword,
)
from services.accounts.inputs import check_password, client_key, normalise_email

NOW = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
TTL, COOLDOWN = timedelta(hours=24), timedelta(seconds=60)
PLANS = PlanCatalogue({"guest": 1, "free": 6, "pro": None})


def event_names(aggregate: object) -> list[str]:
    return [type(e).__name__ for e in aggregate.collect_events()]  # type: ignore[attr-defined]


def test_a_guest_spends_its_one_view_and_reopening_is_free() -> None:
    viewer = Viewer(plan="guest")
    assert viewer.open_code_page("ICD10CM", "I21.9", PLANS.limit("guest")) is True
    assert viewer.open_code_page("ICD10CM", "I21.9", PLANS.limit("guest")) is False
    with pytest.raises(NoViewsLeft):
        viewer.open_code_page("ICD10CM", "I21.0", PLANS.limit("guest"))
    assert viewer.used == 1 and viewer.remaining(1) == 0
    assert event_names(viewer) == ["GuestStarted", "CodePageUnlocked"]


def test_registering_keeps_the_guest_history_and_adds_views() -> None:
    viewer = Viewer(plan="guest")
    viewer.open_code_page("ICD10CM", "I21.9", 1)
    viewer.register(sealed_email="sealed-a", sealed_password="sealed-h", plan="free")
    # Unverified: the guest's views still; the free plan's extra views come with
    # the verified email.
    assert viewer.code_page_limit(PLANS) == 1
    viewer.request_verification(uuid4(), NOW, TTL, COOLDOWN, "registered")
    viewer.verify_email(viewer.verification_request)  # type: ignore[arg-type]
    limit = viewer.code_page_limit(PLANS)
    assert (viewer.kind, viewer.plan, viewer.used, viewer.remaining(limit)) == (
        "member", "free", 1, 5)
    assert viewer.has_unlocked("ICD10CM", "I21.9")
    with pytest.raises(AlreadyRegistered):
        viewer.register(sealed_email="sealed-b", sealed_password="sealed-h", plan="free")


def test_the_same_code_in_another_system_is_another_page() -> None:
    viewer = Viewer(plan="free")
    assert viewer.open_code_page("HCPCS", "J1100", 6)
    assert viewer.open_code_page("CPT", "J1100", 6)
    assert viewer.used == 2


def test_unlimited_plans_never_run_out() -> None:
    viewer = Viewer(plan="pro")
    for n in range(50):
        assert viewer.open_code_page("ICD10CM", f"A00.{n:02d}", None)
    assert viewer.remaining(None) is None


def test_plan_changes_are_for_members_and_idempotent_per_reference() -> None:
    guest = Viewer(plan="guest")
    with pytest.raises(NotRegistered):
        guest.change_plan("pro", "subscription_created", "evt_1")
    member = Viewer(plan="guest")
    member.register(sealed_email="e", sealed_password="h", plan="free")
    member.collect_events()
    assert member.change_plan("pro", "subscription_created", "evt_1") is True
    assert member.change_plan("pro", "subscription_created", "evt_1") is False  # redelivered
    assert member.change_plan("free", "subscription_deleted", "evt_2") is True
    assert member.change_plan("free", "support", None) is False  # already on it
    assert event_names(member) == ["PlanChanged", "PlanChanged"]
    assert member.plan == "free"


def test_failed_logins_lock_for_a_growing_time_then_unlock() -> None:
    guard = LoginGuard(id=LoginGuard.id_for("digest-ann"))
    lock, cap = timedelta(minutes=1), timedelta(minutes=3)
    durations = []
    now = NOW
    for _ in range(3):
        for _ in range(5):  # each attempt is counted before its password is checked
            assert not guard.locked(now)
            guard.attempt(now, None, 5, lock, cap)
            guard.fail(None)
        assert guard.locked(now)
        with pytest.raises(LoginLocked):
            guard.attempt(now, None, 5, lock, cap)
        assert guard.locked_until is not None
        durations.append(guard.locked_until - now)
        now = guard.locked_until
        assert not guard.locked(now)
        guard.expire_lock(now)
        assert guard.locked_until is None
    assert durations == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=3)]
    names = event_names(guard)
    assert names.count("Locked") == 3 and names.count("Unlocked") == 3
    assert names.count("Attempted") == 15 and names.count("LoginFailed") == 15
    guard.succeed()  # a successful login resets the growth
    assert (guard.failures, guard.locks) == (0, 0)


def test_the_attempt_that_reaches_the_limit_still_gets_its_check() -> None:
    guard = LoginGuard(id=LoginGuard.id_for("digest-bob"))
    for _ in range(3):
        guard.attempt(NOW, None, 3, timedelta(minutes=1), timedelta(hours=1))
    assert guard.locked(NOW)  # the third attempt locked the guard for later ones...
    guard.succeed()  # ...and its own success lifts the lock
    assert not guard.locked(NOW) and (guard.failures, guard.locks) == (0, 0)


def test_an_unexpired_lock_is_not_lifted_by_expire() -> None:
    guard = LoginGuard(id=LoginGuard.id_for("digest-x"))
    guard.attempt(NOW, None, 1, timedelta(minutes=1), timedelta(hours=1))
    guard.expire_lock(NOW + timedelta(seconds=59))
    assert guard.locked(NOW + timedelta(seconds=59))
    guard.unlock("operator")
    assert not guard.locked(NOW)


def test_address_quotas_cap_and_refund() -> None:
    quota = AddressQuota(id=AddressQuota.id_for("guests", "10.0.0.1", "2026-04-01"),
                         day="2026-04-01")
    refusal = GuestSessionLimit("the limit is 3 a day")
    for _ in range(3):
        quota.count(3, refusal)
    with pytest.raises(GuestSessionLimit, match="limit is 3"):
        quota.count(3, refusal)
    quota.refund()
    quota.count(3, refusal)
    unlimited = AddressQuota(id=AddressQuota.id_for("guests", "10.0.0.2", "2026-04-01"),
                             day="2026-04-01")
    for _ in range(100):
        unlimited.count(0, refusal)
    assert AddressQuota.id_for("guests", "a", "d") != AddressQuota.id_for("registrations",
                                                                        "a", "d")


def test_verification_tokens_are_single_use_newest_only_and_expire() -> None:
    viewer = Viewer(plan="guest")
    viewer.register(sealed_email="e", sealed_password="h", plan="free")
    first, second = uuid4(), uuid4()
    viewer.request_verification(first, NOW, TTL, COOLDOWN, "registered")
    with pytest.raises(ResendTooSoon):
        viewer.request_verification(second, NOW + timedelta(seconds=30), TTL, COOLDOWN,
                                    "resent")
    viewer.request_verification(second, NOW + timedelta(seconds=61), TTL, COOLDOWN, "resent")
    with pytest.raises(TokenInvalid):
        viewer.verify_email(first)  # superseded by the resend
    viewer.verify_email(second)
    assert viewer.email_verified
    with pytest.raises(AlreadyVerified):
        viewer.verify_email(second)

    token = MailedToken(id=MailedToken.id_for("t"), viewer_id=viewer.id,
                        purpose="verify-email", request_id=second, expires_at=NOW + TTL)
    with pytest.raises(TokenInvalid):
        token.use("reset-password", NOW)  # a verification token resets nothing
    with pytest.raises(TokenExpired):
        token.use("verify-email", NOW + TTL)
    token.use("verify-email", NOW)
    with pytest.raises(TokenUsed):
        token.use("verify-email", NOW)


def test_an_email_change_needs_a_new_verification() -> None:
    viewer = Viewer(plan="guest")
    viewer.register(sealed_email="e", sealed_password="h", plan="free")
    request = uuid4()
    viewer.request_verification(request, NOW, TTL, COOLDOWN, "registered")
    viewer.verify_email(request)
    viewer.change_email("e2")
    assert not viewer.email_verified and viewer.code_page_limit(PLANS) == 1


def test_password_reset_and_change_revoke_every_session() -> None:
    viewer = Viewer(plan="guest")
    viewer.register(sealed_email="e", sealed_password="h", plan="free")
    before = viewer.session_generation
    request = uuid4()
    assert viewer.request_password_reset(request, NOW, TTL, COOLDOWN)
    assert not viewer.request_password_reset(uuid4(), NOW, TTL, COOLDOWN)  # cooldown
    viewer.reset_password(request, "h2")
    assert viewer.sealed_password == "h2" and viewer.session_generation == before + 1
    with pytest.raises(TokenInvalid):
        viewer.reset_password(request, "h3")  # used: the request is gone
    viewer.change_password("h4")
    assert viewer.session_generation == before + 2
    assert not Viewer(plan="guest").request_password_reset(uuid4(), NOW, TTL, COOLDOWN)


def test_roles_and_deletion() -> None:
    viewer = Viewer(plan="guest")
    with pytest.raises(NotRegistered):
        viewer.grant_role("expert")
    viewer.register(sealed_email="e", sealed_password="h", plan="free")
    assert viewer.grant_role("expert") and not viewer.grant_role("expert")
    with pytest.raises(UnknownRole):
        viewer.grant_role("superuser")
    assert viewer.revoke_role("expert") and not viewer.revoke_role("expert")
    viewer.grant_role("admin")
    viewer.delete("by the member")
    assert viewer.deleted and viewer.sealed_email is None and viewer.roles == []
    assert not viewer.member
    with pytest.raises(NotRegistered):
        viewer.delete("again")


def test_email_claims_are_released_and_claimed_again() -> None:
    first, second = uuid4(), uuid4()
    claim = EmailClaim(id=EmailClaim.id_for("digest"), viewer_id=first)
    with pytest.raises(EmailTaken):
        claim.claim(second)
    claim.release("account deleted")
    claim.claim(second)
    assert claim.viewer_id == second


def test_assistant_questions_per_day() -> None:
    viewer = uuid4()
    allowance = QuestionAllowance(id=QuestionAllowance.id_for(viewer, "2026-04-01"),
                                  viewer_id=viewer, day="2026-04-01")
    for _ in range(10):
        allowance.take(10)
    with pytest.raises(QuotaExceeded):
        allowance.take(10)
    assert allowance.used == 10
    assert QuestionAllowance.id_for(viewer, "2026-04-01") != QuestionAllowance.id_for(
        viewer, "2026-04-02")


def test_sessions_expire_and_revoke() -> None:
    viewer = Viewer(plan="guest")
    session = Session(id=Session.id_for("token"), viewer_id=viewer.id,
                      expires_at=NOW + timedelta(days=1))
    assert session.active(NOW)
    assert not session.active(NOW + timedelta(days=1))
    session.revoke("logout")
    session.revoke("logout")  # once only
    assert not session.active(NOW)
    assert event_names(session) == ["Started", "Revoked"]
    assert Session.id_for("token") != Session.id_for("token2")


@pytest.mark.parametrize(
    ("raw", "normal"),
    [("Ann@Example.ORG", "ann@example.org"), ("  ann@example.org\n", "ann@example.org"),
     ("a.b+tag@sub.example.co.uk", "a.b+tag@sub.example.co.uk")],
)
def test_emails_are_normalised(raw: str, normal: str) -> None:
    assert normalise_email(raw) == normal


@pytest.mark.parametrize(
    "raw", ["", "ann", "ann@", "@example.org", "ann@example", "ann@@example.org",
            "an n@example.org", "ann@exa mple.org", "ann..b@example.org",
            "a" * 65 + "@example.org", "ann@" + "a" * 250 + ".org"],
)
def test_malformed_emails_are_refused(raw: str) -> None:
    with pytest.raises(InvalidEmail):
        normalise_email(raw)


def test_password_length_rules() -> None:
    with pytest.raises(WeakPassword):
        check_password("abc")
    with pytest.raises(WeakPassword):
        check_password("1234567")
    assert check_password("12345678") == "12345678"
    assert check_password("x" * 128) == "x" * 128
    assert check_password("x" * 1024)
    with pytest.raises(PasswordTooLong):
        check_password("x" * 1025)
    assert check_password("ｐａｓｓｗｏｒｄ") == "password"  # NFKC


def test_client_keys_group_ipv6_by_64() -> None:
    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff::9")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key("::ffff:192.0.2.7") == client_key("192.0.2.7") == "192.0.2.7"
    assert client_key(None) == client_key("not an address") == "unknown"


def test_plan_catalogue() -> None:
    assert PLANS.verification_bonus == 5 and PLANS.has_upgrade
    assert PLANS.limit("retired-plan") == 6  # falls back to free, never to more
    with pytest.raises(ValueError, match="free"):
        PlanCatalogue({"guest": 1})
    assert not PlanCatalogue({"guest": 1, "free": 6}).has_upgrade


def test_mails_an_account_asks_for_are_capped_per_day() -> None:
    viewer = Viewer(plan="guest")
    viewer.register(sealed_email="e", sealed_password="h", plan="free")
    now = NOW
    viewer.request_verification(uuid4(), now, TTL, COOLDOWN, "registered")
    for _ in range(MAILS_PER_DAY - 1):
        now += timedelta(minutes=2)
        viewer.request_verification(uuid4(), now, TTL, COOLDOWN, "resent")
    with pytest.raises(ResendTooSoon, match="Enough"):
        viewer.request_verification(uuid4(), now + timedelta(minutes=2), TTL, COOLDOWN,
                                    "resent")
    assert not viewer.request_password_reset(uuid4(), now + timedelta(minutes=4), TTL,
                                             COOLDOWN)
    tomorrow = NOW + timedelta(days=1)
    assert viewer.request_password_reset(uuid4(), tomorrow, TTL, COOLDOWN)
    viewer.request_verification(uuid4(), tomorrow + timedelta(minutes=2), TTL, COOLDOWN,
                                "resent")
    assert viewer.mails_on(tomorrow) == 2
