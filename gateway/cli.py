"""``medcode``: the platform's commands (serve, worker, service, events) and every
product's own (found through the ``medcode.commands`` entry-point group)."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from gateway.bootstrap import Platform
from services.shared.commands import (
    Command,
    CommandContext,
    CommandError,
    Started,
    discover_commands,
)
from services.shared.product import discover
from services.shared.rpc import ServiceAuth
from services.shared.settings import Settings, SettingsError


@asynccontextmanager
async def started(settings: Settings) -> AsyncIterator[Started]:
    """Every product started on the store ``settings`` name; stopped on leaving."""
    platform = Platform(settings)
    try:
        await platform.start()
        yield platform
    finally:
        await platform.stop()


def context(settings: Settings) -> CommandContext:
    return CommandContext(settings, lambda: started(settings))


def _log_to_stderr() -> None:
    """INFO and above from medcode's own loggers (e.g. where mail is written)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("services", "gateway"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)


def serve(settings: Settings) -> None:
    import uvicorn

    from gateway.app import create_app

    async def prepare() -> None:
        async with started(settings) as platform:
            for product in discover():
                if product.prepare is not None:
                    await product.prepare(platform)

    asyncio.run(prepare())
    where = f"http://{settings.host}:{settings.port}"
    print(f"medcode ({settings.mode}, {settings.environment}) serving {where}/ "
          f"(GraphQL at {where}/graphql)", file=sys.stderr)
    _log_to_stderr()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


async def worker(settings: Settings) -> None:
    """Relays, consumers and mail delivery without HTTP: the distributed background process."""
    _log_to_stderr()
    platform = Platform(settings)
    await platform.start()
    platform.run_background()
    print(f"medcode worker: {len(platform.relays)} relays, {len(platform.consumers)} consumers",
          file=sys.stderr)
    try:
        while platform.healthy:
            await asyncio.sleep(1)
        raise CommandError("a relay or consumer stopped: " + "; ".join(platform.failures))
    finally:
        await platform.stop()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def service_guard(settings: Settings) -> str | None:
    """Fail closed: a service's own API answers internal commands (a plan change), so it
    needs MEDCODE_SERVICE_TOKEN, except on loopback in development, which it says."""
    if settings.service_token:
        return None
    if settings.development and _loopback(settings.host):
        return (f"medcode service: no MEDCODE_SERVICE_TOKEN: the API on {settings.host} "
                "answers anyone on this machine (development only; set a token to share "
                "it with the gateway)")
    raise CommandError(
        "set MEDCODE_SERVICE_TOKEN (the same secret on the gateway): a service's own API "
        "answers internal commands; without a token it may only listen on loopback "
        f"(HOST=127.0.0.1) in development, and HOST is {settings.host!r}"
        + ("" if settings.development else " in production"))


def run_service(settings: Settings, name: str) -> None:
    """One product's own HTTP API (distributed mode), without relays or consumers."""
    import importlib

    import uvicorn
    from starlette.applications import Starlette

    warning = service_guard(settings)
    if warning:
        print(warning, file=sys.stderr)
    module = importlib.import_module(f"services.{name}.api")
    platform = Platform(settings)

    async def lifespan(app: Starlette) -> Any:
        await platform.start()
        platform.warm()
        platform.serve()
        api.mount("/", module.create_app(platform.running[name].client))
        yield
        await platform.stop()

    api = Starlette(lifespan=asynccontextmanager(lifespan))
    served: Any = ServiceAuth(api, settings.service_token) if settings.service_token else api
    uvicorn.run(served, host=settings.host, port=settings.port, log_level="info")


async def export_events(
    settings: Settings,
    out: TextIO,
    service: str | None,
    type_: str | None,
    since: datetime | None,
    limit: int | None,
) -> int:
    """Write envelopes as JSON Lines in log order; returns how many were written."""
    written = 0
    async with started(settings) as platform:
        for name, running in platform.running.items():
            if service and name != service:
                continue
            if running.app is None or running.catalogue is None:
                continue
            for envelope in running.catalogue.iterate(running.app):
                if type_ and envelope.type != type_:
                    continue
                if since and envelope.occurred_at < since:
                    continue
                out.write(json.dumps(envelope.to_dict(), separators=(",", ":")) + "\n")
                written += 1
                if limit is not None and written >= limit:
                    return written
    return written


def _since(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 date or time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


PLATFORM_COMMANDS = ("serve", "worker", "service", "events")


def parser(products: list[Command] | None = None) -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="medcode", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the GraphQL API (imports ICD-10-CM when empty)")
    commands.add_parser("worker", help="run relays, consumers and mail delivery (distributed)")
    service = commands.add_parser("service", help="run one product's own HTTP API")
    service.add_argument("name")
    events = commands.add_parser("events", help="the event log")
    events_cmd = events.add_subparsers(dest="events_command", required=True)
    export = events_cmd.add_parser("export", help="write envelopes as JSON Lines in log order")
    export.add_argument("--service")
    export.add_argument("--type")
    export.add_argument("--since", type=_since)
    export.add_argument("--limit", type=int)
    export.add_argument("--output", type=Path, help="file to write (default: standard output)")
    for command in discover_commands() if products is None else products:
        if command.name in PLATFORM_COMMANDS:
            raise ValueError(f"a product may not redefine `medcode {command.name}`")
        command.configure(commands.add_parser(command.name, help=command.help))
    return root


def main(argv: list[str] | None = None) -> int:
    products = {command.name: command for command in discover_commands()}
    args = parser(list(products.values())).parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.command == "serve":
            serve(settings)
        elif args.command == "worker":
            asyncio.run(worker(settings))
        elif args.command == "service":
            run_service(settings, args.name)
        elif args.command == "events":
            out: Any = args.output.open("w") if args.output else sys.stdout
            try:
                count = asyncio.run(
                    export_events(settings, out, args.service, args.type, args.since, args.limit)
                )
            finally:
                if args.output:
                    out.close()
            print(f"{count} events exported", file=sys.stderr)
        else:
            said = asyncio.run(products[args.command].run(context(settings), args))
            if said:
                print(said)
    except (CommandError, SettingsError) as exc:
        print(f"medcode: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
