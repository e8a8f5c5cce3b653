"""The accounts product's settings: the typed plan catalogue from configuration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.accounts.plans import DEFAULT_PLANS, Plan, PlanCatalogue
from services.accounts.settings import AccountsSettings
from services.shared.settings import SettingsError


def test_the_default_catalogue() -> None:
    plans = PlanCatalogue(AccountsSettings.from_env({}).plans)
    assert [p.name for p in plans] == ["guest", "free", "pro"]
    guest, free, pro = plans.get("guest"), plans.get("free"), plans.get("pro")
    assert (guest.code_page_views, guest.assistant_questions_per_day) == (1, 0)
    assert (free.code_page_views, free.assistant_questions_per_day) == (6, 10)
    assert pro.code_page_views is None and pro.consult_answer_hours == 24
    assert plans.get("retired") == free  # a dropped plan falls back to free, never more


def test_plans_as_objects_or_as_view_counts(tmp_path: Path) -> None:
    config = {"guest": 1, "free": {"code_page_views": 6, "assistant_questions_per_day": 10},
              "team": {"price": "$99 a month", "code_page_views": None,
                       "assistant_questions_per_day": None, "consults_per_month": 50,
                       "consult_answer_hours": 4,
                       "checkout_url": "https://buy.example.com/team",
                       "stripe_price": "price_team"}}
    path = tmp_path / "plans.json"
    path.write_text(json.dumps(config))
    for env in ({"MEDCODE_PLANS": json.dumps(config)}, {"MEDCODE_PLANS_FILE": str(path)}):
        plans = PlanCatalogue(AccountsSettings.from_env(env).plans)
        assert plans.get("guest") == Plan("guest", code_page_views=1)
        team = plans.get("team")
        assert (team.price, team.consult_answer_hours, team.paid) == ("$99 a month", 4, True)
        assert plans.by_price("price_team") == team


@pytest.mark.parametrize(("raw", "says"), [
    ('{"free": 6}', "at least 'guest' and 'free'"),
    ("not json", "JSON object"),
    ('{"guest": 1, "free": -1}', "whole number"),
    ('{"guest": 1, "free": {"views": 6}}', "unknown fields ['views']"),
    ('{"guest": 1, "free": {"price": 5}}', "price of plan 'free' must be a string"),
    ('{"guest": 1, "free": {"consult_answer_hours": "soon"}}', "whole number"),
])
def test_bad_catalogues_say_what_to_fix(raw: str, says: str) -> None:
    with pytest.raises(SettingsError, match=says.replace("[", r"\[").replace("]", r"\]")):
        AccountsSettings.from_env({"MEDCODE_PLANS": raw})


def test_defaults_are_the_catalogue_of_record() -> None:
    assert AccountsSettings().plans == DEFAULT_PLANS
    settings = AccountsSettings.from_env({"REGISTRATIONS_PER_ADDRESS_PER_DAY": "3",
                                          "STRIPE_WEBHOOK_SECRET": "whsec_x"})
    assert settings.registrations_per_address_per_day == 3
    assert settings.stripe_webhook_secret == "whsec_x"
    with pytest.raises(SettingsError, match="REGISTRATIONS_PER_ADDRESS_PER_DAY"):
        AccountsSettings.from_env({"REGISTRATIONS_PER_ADDRESS_PER_DAY": "many"})
