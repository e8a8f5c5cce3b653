"""Starting the accounts product in either mode, from the shared infrastructure."""

from __future__ import annotations

from services.accounts.application import Accounts, AccountsPolicy
from services.accounts.client import HttpAccounts, LocalAccounts
from services.accounts.events import CATALOGUE
from services.shared.product import Infrastructure, Running


async def start(infra: Infrastructure) -> Running:
    settings = infra.settings
    url = settings.service_url("accounts")
    if url:
        remote = HttpAccounts(url, token=settings.service_token)
        return Running(client=remote, closers=[remote.close])
    app = Accounts(env=settings.event_store_env("accounts"),
                   policy=AccountsPolicy.from_settings(settings))
    return Running(client=LocalAccounts(app), app=app, catalogue=CATALOGUE)
