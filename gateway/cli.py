"""``medcode``: the platform's commands (serve, worker, service, events) and every
product's own (found through the ``medcode.commands`` entry-point group)."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from gateway.bootstrap import Platform, make_dead_letters
from services.shared import logs
from services.shared.commands import (
    Command,
    CommandContext,
    CommandError,
    Started,
    discover_commands,
)
from services.shared.export import FORMATS, Selection, select, write_jsonl, write_parquet
from services.shared.memory import limit_arenas, settle_heap
from services.shared.product import discover
from services.shared.rpc import ServiceAuth
from services.shared.settings import Settings, SettingsError
from services.shared.threads import run_in_threadpool


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


async def _prepare(settings: Settings) -> None:
    """Each product's preparation (lookup imports its shipped code sets on a first start)."""
    async with started(settings) as platform:
        for product in discover():
            if product.prepare is not None:
                await product.prepare(platform)


def serve(settings: Settings) -> None:
    from gateway.workers import worker_count

    asyncio.run(_prepare(settings))
    workers = worker_count(settings)
    where = f"http://{settings.host}:{settings.port}"
    print(f"medcode ({settings.mode}, {settings.environment}) serving {where}/ "
          f"(GraphQL at {where}/graphql) from {workers} process{'es' if workers > 1 else ''}",
          file=sys.stderr, flush=True)
    if workers == 1:
        import uvicorn

        from gateway.app import create_app

        uvicorn.run(create_app(settings, serving=True), host=settings.host, port=settings.port,
                    log_config=None)
        return
    # The serving processes' supervisor answers nothing: this process, which holds what
    # the started platform loaded (the stores, what preparing read), becomes one that
    # has only imported the app (gateway.supervisor), keeping its process id, environment
    # and terminal; the serving processes are forked from it.
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", "gateway.supervisor"])  # noqa: S606 - ours


async def worker(settings: Settings) -> None:
    """Relays, consumers and mail delivery: the distributed mode's background process.

    It serves only /healthz, /readyz and /metrics (on HOST:PORT), for probes and
    Prometheus; relays and consumers restart themselves after errors, and the process
    exits (non-zero) only when one stops for good.
    """
    import uvicorn
    from starlette.applications import Starlette

    from gateway import telemetry

    platform = Platform(settings)
    await platform.start()
    platform.run_background()
    health = uvicorn.Server(uvicorn.Config(
        Starlette(routes=telemetry.routes(platform)), host=settings.host, port=settings.port,
        log_config=None, lifespan="off",
    ))
    serving = asyncio.create_task(health.serve())
    print(f"medcode worker: {len(platform.relays)} relays, {len(platform.consumers)} consumers;"
          f" health on {settings.host}:{settings.port}", file=sys.stderr)
    try:
        while platform.healthy and not serving.done():
            await asyncio.sleep(1)
        if serving.done():
            serving.result()
            if not health.should_exit:
                raise CommandError(f"the worker's health server on {settings.host}:"
                                   f"{settings.port} stopped; is the port free?")
            return  # SIGTERM / SIGINT: a clean stop
        raise CommandError("a relay or consumer stopped: " + "; ".join(platform.failures))
    finally:
        health.should_exit = True
        await asyncio.gather(serving, return_exceptions=True)
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

    from gateway import telemetry

    warning = service_guard(settings)
    if warning:
        print(warning, file=sys.stderr)
    module = importlib.import_module(f"services.{name}.api")
    platform = Platform(settings)

    async def lifespan(app: Starlette) -> Any:
        await platform.start()
        platform.warm(settle_heap)
        platform.serve()
        api.mount("/", module.create_app(platform.running[name].client))
        yield
        await platform.stop()

    api = Starlette(routes=telemetry.routes(platform), lifespan=asynccontextmanager(lifespan))
    served: Any = ServiceAuth(api, settings.service_token) if settings.service_token else api
    uvicorn.run(served, host=settings.host, port=settings.port, log_config=None)


async def export_events(
    settings: Settings,
    selection: Selection,
    fmt: str = "jsonl",
    output: Path | None = None,
    out: TextIO | None = None,
) -> int:
    """Write the selected envelopes in log order to ``output`` (or ``out``, or standard
    output, for JSON Lines); returns how many were written."""
    if fmt == "parquet" and output is None:
        raise CommandError("Parquet is a file format: pass --output FILE.parquet")
    async with started(settings) as platform:
        sources = [(r.app, r.catalogue) for r in platform.running.values()
                   if r.app is not None and r.catalogue is not None]
        if selection.service and selection.service not in {c.source for _, c in sources}:
            known = ", ".join(sorted(c.source for _, c in sources))
            raise CommandError(f"no service {selection.service!r} records events here;"
                               f" known: {known}")
        envelopes = select(sources, selection)
        if fmt == "parquet":
            assert output is not None
            return await run_in_threadpool(write_parquet, envelopes, output)
        if output is None:
            return await run_in_threadpool(write_jsonl, envelopes, out or sys.stdout)
        with output.open("w") as file:
            return await run_in_threadpool(write_jsonl, envelopes, file)


async def list_dead_letters(settings: Settings, consumer: str | None, out: TextIO) -> int:
    """Print the events consumers set aside, one JSON object a line; how many."""
    letters = await run_in_threadpool(make_dead_letters(settings).list, consumer)
    for letter in letters:
        out.write(json.dumps(letter.as_dict(), separators=(",", ":")) + "\n")
    return len(letters)


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
    export = events_cmd.add_parser(
        "export", help="write envelopes in log order (JSON Lines, or Parquet for analysts)")
    export.add_argument("--format", choices=FORMATS, default="jsonl")
    export.add_argument("--service")
    export.add_argument("--type")
    export.add_argument("--since", type=_since)
    export.add_argument("--limit", type=int)
    export.add_argument("--output", type=Path,
                        help="file to write (default: standard output; required for parquet)")
    dead = events_cmd.add_parser(
        "dead-letters", help="list events consumers set aside after repeated failures")
    dead.add_argument("--consumer", help="only this consumer's (e.g. search:lookup)")
    for command in discover_commands() if products is None else products:
        if command.name in PLATFORM_COMMANDS:
            raise ValueError(f"a product may not redefine `medcode {command.name}`")
        command.configure(commands.add_parser(command.name, help=command.help))
    return root


def main(argv: list[str] | None = None) -> int:
    products = {command.name: command for command in discover_commands()}
    args = parser(list(products.values())).parse_args(argv)
    logs.configure()
    if args.command in ("serve", "worker", "service"):  # long-lived: a small heap
        limit_arenas()
    try:
        settings = Settings.from_env()
        if args.command == "serve":
            serve(settings)
        elif args.command == "worker":
            asyncio.run(worker(settings))
        elif args.command == "service":
            run_service(settings, args.name)
        elif args.command == "events" and args.events_command == "dead-letters":
            count = asyncio.run(list_dead_letters(settings, args.consumer, sys.stdout))
            print(f"{count} dead letters", file=sys.stderr)
        elif args.command == "events":
            selection = Selection(args.service, args.type, args.since, args.limit)
            count = asyncio.run(export_events(settings, selection, args.format, args.output))
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
