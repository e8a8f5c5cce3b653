"""Operator commands that products contribute: ``medcode <name> ...``.

Products list their commands under the ``medcode.commands`` entry-point group (one
``Command`` or a list of them per entry), exactly as they list their GraphQL part under
``medcode.products``: the ``medcode`` CLI names none of them. A command runs against the
same store as the running system: it asks ``CommandContext.platform()`` for the
platform started from the same settings (embedded: the same ``$DATA_DIR``).

A product can also prepare itself before ``medcode serve`` answers requests
(``Product.prepare``, e.g. lookup importing the shipped code sets into an empty store).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Protocol

from tqdm import tqdm

from services.shared.bus import Bus
from services.shared.consumer import Consumer
from services.shared.mail import Mail
from services.shared.product import Running
from services.shared.relay import Relay
from services.shared.settings import Settings

ENTRY_POINT_GROUP = "medcode.commands"


class CommandError(Exception):
    """A failure the operator can act on; the message says what to do next."""


class Started(Protocol):
    """The running platform as commands and ``prepare`` hooks see it."""

    settings: Settings
    bus: Bus
    relays: list[Relay]
    consumers: list[Consumer]
    mail: Mail | None

    @property
    def running(self) -> dict[str, Running]: ...


@dataclass(frozen=True)
class CommandContext:
    settings: Settings
    # Starts every product on this mode's store; stops them on leaving the block.
    platform: Callable[[], AbstractAsyncContextManager[Started]]


@dataclass(frozen=True)
class Command:
    name: str  # the word after ``medcode``
    help: str
    configure: Callable[[argparse.ArgumentParser], None]  # its arguments and sub-commands
    # What it prints (None: nothing).
    run: Callable[[CommandContext, argparse.Namespace], Coroutine[Any, Any, str | None]]


def discover_commands() -> list[Command]:
    found: dict[str, Command] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        loaded: Any = ep.load()
        commands: Iterable[Any] = loaded if isinstance(loaded, (list, tuple)) else [loaded]
        for command in commands:
            if not isinstance(command, Command):
                raise TypeError(f"entry point {ep.name!r} ({ep.value}) is not a Command")
            if command.name in found:
                raise ValueError(f"two products contribute the command {command.name!r}")
            found[command.name] = command
    return [found[name] for name in sorted(found)]


def local_client(platform: Started, product: str, cls: type[Any]) -> Any:
    """The in-process client of ``product``, or a CommandError saying where to run."""
    client = platform.running[product].client
    if not isinstance(client, cls):
        raise CommandError(f"the {product} service runs elsewhere (MEDCODE_{product.upper()}"
                           "_URL is set); run this command where it runs")
    return client


async def catch_up(consumer: Consumer, target: int, label: str) -> None:
    """Run a consumer until it has applied ``target``, with a progress bar."""
    bar = tqdm(total=target, desc=label, unit=" events", file=sys.stderr)
    task = asyncio.create_task(consumer.run_until(target, timeout=1800))
    try:
        while not task.done():
            bar.update(consumer.position - bar.n)
            await asyncio.sleep(0.2)
        task.result()
        bar.update(consumer.position - bar.n)
    finally:
        bar.close()
