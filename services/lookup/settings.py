"""The lookup product's own settings, read from the environment at start-up.

Platform settings (mode, stores, the OpenSearch server, service URLs) stay in
services/shared/settings.py; these concern code search only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from services.shared.settings import integer_setting


@dataclass(frozen=True)
class LookupSettings:
    # The OpenSearch alias (and index-name prefix) of the code search index.
    search_alias: str = "medcode-codes"
    # Recent search answers kept in memory (0 entries: none), and for how long at most.
    search_cache_entries: int = 2048
    search_cache_seconds: int = 60

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LookupSettings:
        env = os.environ if env is None else env
        return cls(
            search_alias=env.get("SEARCH_ALIAS") or "medcode-codes",
            search_cache_entries=integer_setting(env, "SEARCH_CACHE_ENTRIES", 2048),
            search_cache_seconds=integer_setting(env, "SEARCH_CACHE_SECONDS", 60),
        )
