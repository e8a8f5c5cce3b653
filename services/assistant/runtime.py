"""Starting CasePilot in either mode, from the shared infrastructure."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from services.assistant.application import Assistant, Conversations
from services.assistant.citations import ReleaseBook
from services.assistant.client import HttpAssistant, LocalAssistant
from services.assistant.composer import OfflineComposer
from services.assistant.events import CATALOGUE
from services.assistant.llm import ChatClient, ModelComposer, ModelSettings
from services.assistant.metering import AccountsMetering
from services.shared.product import Infrastructure, Running


async def start(infra: Infrastructure) -> Running:
    settings = infra.settings
    url = settings.service_url("assistant")
    if url:
        remote = HttpAssistant(url, token=settings.service_token)
        return Running(client=remote, closers=[remote.close])
    lookup = infra.client("lookup")
    book = ReleaseBook(lookup)
    model_settings = ModelSettings.from_env(dict(settings.environ))
    closers: list[Callable[[], Awaitable[None]]] = []
    model = None
    if model_settings is not None:
        chat = ChatClient(model_settings)
        model = ModelComposer(chat, lookup, book)
        closers.append(chat.close)
    app = Conversations(env=settings.event_store_env("assistant"))
    assistant = Assistant(app, AccountsMetering(infra.client("accounts")),
                          OfflineComposer(lookup, book), model)

    async def warm() -> None:
        """The GEMs are read once, before the first ICD-9 question needs them."""
        for system in ("ICD10CM", "ICD10PCS"):
            await lookup.gems(system, "0")

    return Running(client=LocalAssistant(assistant), app=app, catalogue=CATALOGUE,
                   closers=closers, warmups=[warm])
