"""Each product owns its settings: the shared Settings holds the platform's only."""

from __future__ import annotations

from dataclasses import fields

import pytest

from services.accounts.settings import AccountsSettings
from services.lookup.runtime import search_catalog
from services.lookup.settings import LookupSettings
from services.shared.settings import Settings, SettingsError


def test_lookup_reads_its_own_settings_from_the_environment_the_platform_read() -> None:
    settings = Settings.from_env({"SEARCH_ALIAS": "codes-blue", "SEARCH_CACHE_ENTRIES": "7"})
    own = LookupSettings.from_env(settings.environ)
    assert (own.search_alias, own.search_cache_entries, own.search_cache_seconds) == (
        "codes-blue", 7, 60)
    assert LookupSettings.from_env({}) == LookupSettings()
    with pytest.raises(SettingsError, match="SEARCH_CACHE_SECONDS"):
        LookupSettings.from_env({"SEARCH_CACHE_SECONDS": "soon"})


def test_no_setting_is_both_the_platforms_and_a_products() -> None:
    shared = {f.name for f in fields(Settings)}
    for product in (LookupSettings, AccountsSettings):
        assert not shared & {f.name for f in fields(product)}, product


async def test_the_distributed_catalog_uses_lookups_alias() -> None:
    settings = Settings(mode="distributed", environ={"SEARCH_ALIAS": "codes-green"})
    catalog = search_catalog(settings)
    try:
        assert "codes-green" in repr(vars(catalog))
    finally:
        await catalog.close()
