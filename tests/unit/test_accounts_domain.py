"""The accounts domain on its own: no store, no clock but the one passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.accounts.domain import (
    AlreadyRegistered,
    EmailClaim,
    GuestQuota,
    GuestSessionLimit,
    InvalidEmail,
    LoginGuard,
    NotRegistered,
    NoViewsLeft,
    PasswordTooLong,
    PlanCatalogue,
    Session,
    Viewer,
    WeakPassword,
    check_password,
    client_key,
    normalise_email,
)

NOW = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
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
    viewer.register(email="ann@example.org", password_hash="$argon2id$x", plan="free")
    limit = PLANS.limit("free")
    assert (viewer.kind, viewer.plan, viewer.used, viewer.remaining(limit)) == (
        "member", "free", 1, 5)
    assert viewer.has_unlocked("ICD10CM", "I21.9")
    with pytest.raises(AlreadyRegistered):
        viewer.register(email="b@example.org", password_hash="$argon2id$y", plan="free")


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
    member.register(email="ann@example.org", password_hash="h", plan="free")
    member.collect_events()
    assert member.change_plan("pro", "subscription_created", "evt_1") is True
    assert member.change_plan("pro", "subscription_created", "evt_1") is False  # redelivered
    assert member.change_plan("free", "subscription_deleted", "evt_2") is True
    assert member.change_plan("free", "support", None) is False  # already on it
    assert event_names(member) == ["PlanChanged", "PlanChanged"]
    assert member.plan == "free"


def test_failed_logins_lock_for_a_growing_time_then_unlock() -> None:
    guard = LoginGuard(id=LoginGuard.id_for("ann@example.org"))
    lock, cap = timedelta(minutes=1), timedelta(minutes=3)
    durations = []
    now = NOW
    for _ in range(3):
        locked = [guard.fail(now, None, 5, lock, cap) for _ in range(5)]
        assert locked == [False, False, False, False, True]
        assert guard.locked(now)
        assert guard.locked_until is not None
        durations.append(guard.locked_until - now)
        now = guard.locked_until
        assert not guard.locked(now)
        guard.expire_lock(now)
        assert guard.locked_until is None
    assert durations == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=3)]
    names = event_names(guard)
    assert names.count("Locked") == 3 and names.count("Unlocked") == 3
    guard.succeed()  # a successful login resets the growth
    assert (guard.failures, guard.locks) == (0, 0)


def test_an_unexpired_lock_is_not_lifted_by_expire() -> None:
    guard = LoginGuard(id=LoginGuard.id_for("x@example.org"))
    guard.fail(NOW, None, 1, timedelta(minutes=1), timedelta(hours=1))
    guard.expire_lock(NOW + timedelta(seconds=59))
    assert guard.locked(NOW + timedelta(seconds=59))
    guard.unlock("operator")
    assert not guard.locked(NOW)


def test_guest_quota_caps_starts() -> None:
    quota = GuestQuota(id=GuestQuota.id_for("10.0.0.1", "2026-04-01"), day="2026-04-01")
    for _ in range(3):
        quota.count_guest(3)
    with pytest.raises(GuestSessionLimit, match="limit is 3"):
        quota.count_guest(3)
    unlimited = GuestQuota(id=GuestQuota.id_for("10.0.0.2", "2026-04-01"), day="2026-04-01")
    for _ in range(100):
        unlimited.count_guest(0)


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
    assert EmailClaim.id_for(normalise_email(raw)) == EmailClaim.id_for(normal)


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
    assert PLANS.registration_bonus == 5 and PLANS.has_upgrade
    assert PLANS.limit("retired-plan") == 6  # falls back to free, never to more
    with pytest.raises(ValueError, match="free"):
        PlanCatalogue({"guest": 1})
    assert not PlanCatalogue({"guest": 1, "free": 6}).has_upgrade
