"""What a product plugs into the platform: its GraphQL part and how to start it.

Products are found through the ``medcode.products`` entry-point group, so the gateway
never names one. A product's ``start`` receives the shared infrastructure and returns
what runs: its client (for resolvers), its Application and event catalogue (for the
bus and the relay), and its consumers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from eventsourcing.application import Application
from starlette.routing import BaseRoute

from services.shared.bus import Bus
from services.shared.consumer import Consumer
from services.shared.mail import Mail
from services.shared.publishing import EventCatalogue
from services.shared.settings import Settings
from services.shared.web.part import WebPart

ENTRY_POINT_GROUP = "medcode.products"


@dataclass
class Infrastructure:
    settings: Settings
    bus: Bus
    products: dict[str, Running] = field(default_factory=dict)  # started so far
    mail: Mail | None = None  # the outgoing-mail outbox (services.shared.mail)

    def client(self, product: str) -> Any:
        return self.products[product].client


@dataclass
class Running:
    client: Any
    app: Application[Any] | None = None
    catalogue: EventCatalogue | None = None
    consumers: list[Consumer] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # HTTP routes the product serves beside GraphQL (e.g. a payment provider's webhook).
    routes: list[BaseRoute] = field(default_factory=list)
    # Run once in the background where requests are served: what is worth having in
    # memory before the first request needs it.
    warmups: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
    # Outboxes this product delivers from (e.g. mail), by name: how many items wait.
    # Exposed as medcode_outbox_depth{outbox=name}.
    outboxes: dict[str, Callable[[], Awaitable[int]]] = field(default_factory=dict)
    # Long-running tasks of the processes that serve requests (`medcode serve`,
    # `medcode service <name>`; not the worker): a network listener besides HTTP such
    # as inbound SMTP, a gauge kept fresh. Each runs until cancelled.
    serving: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)

    async def close(self) -> None:
        for close in self.closers:
            await close()
        if self.app is not None:
            self.app.close()


@dataclass(frozen=True)
class Product:
    name: str
    query: type | None
    mutation: type | None
    start: Callable[[Infrastructure], Awaitable[Running]]
    # Products started before this one (e.g. metering needs accounts before lookup);
    # one that is not installed is skipped (a product may use another when present).
    after: tuple[str, ...] = ()
    # Its web pages, served by the gateway (see services.shared.web).
    web: WebPart | None = None
    # Its GraphQL subscriptions, served over the graphql-transport-ws protocol.
    subscription: type | None = None
    # Run by ``medcode serve`` on the started platform before it answers requests (it
    # receives a services.shared.commands.Started), e.g. importing the shipped data.
    prepare: Callable[[Any], Awaitable[None]] | None = None


def discover() -> list[Product]:
    """Every installed product, ordered so each starts after those it needs."""
    found: dict[str, Product] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        product = ep.load()
        if not isinstance(product, Product):
            raise TypeError(f"entry point {ep.name!r} ({ep.value}) is not a Product")
        found[product.name] = product
    ordered: list[Product] = []

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if name in trail:
            raise ValueError(f"products depend on each other in a cycle: {' -> '.join(trail)}")
        product = found[name]
        if product in ordered:
            return
        for needed in product.after:
            if needed in found:
                visit(needed, (*trail, name))
        ordered.append(product)

    for name in sorted(found):
        visit(name, ())
    return ordered
