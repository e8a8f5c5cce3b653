"""Each product owns its settings: the shared Settings holds the platform's only."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from services.accounts.settings import AccountsSettings
from services.assistant.llm import ModelSettings
from services.consult.settings import ConsultSettings
from services.lookup.runtime import search_candidates, search_catalog, search_turns
from services.lookup.search.engine import CANDIDATES, EMBEDDED_CANDIDATES
from services.lookup.settings import LookupSettings
from services.shared.settings import Settings, SettingsError
from services.shared.turns import Turns


def test_lookup_reads_its_own_settings_from_the_environment_the_platform_read() -> None:
    settings = Settings.from_env({"SEARCH_ALIAS": "codes-blue", "SEARCH_CACHE_ENTRIES": "7"})
    own = LookupSettings.from_env(settings.environ)
    assert (own.search_alias, own.search_cache_entries, own.search_cache_seconds) == (
        "codes-blue", 7, 60)
    assert LookupSettings.from_env({}) == LookupSettings()
    with pytest.raises(SettingsError, match="SEARCH_CACHE_SECONDS"):
        LookupSettings.from_env({"SEARCH_CACHE_SECONDS": "soon"})


def test_accounts_read_sessions_and_login_throttling_from_the_platforms_environment() -> None:
    settings = Settings.from_env({"SESSION_TTL_SECONDS": "3600", "LOGIN_MAX_FAILURES": "9",
                                  "LOGIN_FAILURE_DELAY_MS": "0",
                                  "GUEST_SESSIONS_PER_ADDRESS_PER_DAY": "0"})
    own = AccountsSettings.from_env(settings.environ)
    assert (own.session_ttl_seconds, own.login_max_failures, own.login_failure_delay_ms,
            own.guest_sessions_per_address_per_day, own.login_lock_seconds) == (3600, 9, 0, 0, 60)
    assert AccountsSettings.from_env(Settings().with_environ(LOGIN_LOCK_SECONDS="5").environ
                                     ).login_lock_seconds == 5
    with pytest.raises(SettingsError, match="SESSION_TTL_SECONDS"):
        AccountsSettings.from_env({"SESSION_TTL_SECONDS": "a month"})


PRODUCT_SETTINGS: list[Callable[[Any], object]] = [
    LookupSettings.from_env, AccountsSettings.from_env, ConsultSettings.from_env,
    ModelSettings.from_env]


def test_no_setting_is_both_the_platforms_and_a_products() -> None:
    shared = {f.name for f in fields(Settings)}
    for product in (LookupSettings, AccountsSettings, ConsultSettings, ModelSettings):
        assert not shared & {f.name for f in fields(product)}, product


class _Recording(dict[str, str]):
    """An empty environment that notes every variable asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.asked.add(key)
        return super().__contains__(key)


def _variables(read: Callable[[Any], object]) -> set[str]:
    env = _Recording()
    read(env)
    return env.asked


def _sources(root: Path) -> Iterator[tuple[Path, str]]:
    for folder in ("services/shared", "gateway"):
        for path in (root / folder).rglob("*.py"):
            yield path, path.read_text(encoding="utf-8")


def test_shared_code_and_the_gateway_name_no_products_variable() -> None:
    """A product's variables are read in the product only: a new product's settings need
    no edit in services/shared or gateway/."""
    root = Path(__file__).parents[2]
    variables = set().union(*(_variables(read) for read in PRODUCT_SETTINGS))
    assert {"SESSION_TTL_SECONDS", "SEARCH_ALIAS", "SMTP_PORT", "ASSISTANT_LLM_URL"} <= variables
    platform = _variables(Settings.from_env)
    assert not variables & platform
    found = [(str(path.relative_to(root)), name) for path, text in _sources(root)
             for name in variables if f'"{name}"' in text]
    assert found == []


async def test_the_distributed_catalog_uses_lookups_alias() -> None:
    settings = Settings(mode="distributed", environ={"SEARCH_ALIAS": "codes-green"})
    catalog = search_catalog(settings)
    try:
        assert "codes-green" in repr(vars(catalog))
    finally:
        await catalog.close()


def test_searches_take_turns_only_where_they_hold_the_event_loop() -> None:
    """The embedded engine searches on the serving process's loop: its searches take
    turns. OpenSearch's wait on the network, and must not wait for one another."""
    assert isinstance(search_turns(Settings(mode="embedded")), Turns)
    assert search_turns(Settings(mode="distributed")) is None


def test_each_backend_ranks_the_candidates_its_development_runs_chose() -> None:
    assert search_candidates(Settings(mode="embedded")) == EMBEDDED_CANDIDATES == 120
    assert search_candidates(Settings(mode="distributed")) == CANDIDATES == 150
