"""``medcode``: the operational commands (serve, import, events, projections)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from starlette.concurrency import run_in_threadpool
from tqdm import tqdm

from gateway.bootstrap import Platform
from services.lookup.application import CodeSets, ImportSummary
from services.lookup.client import LocalLookup
from services.lookup.cpt import import_cpt
from services.lookup.domain import ReleaseAlreadyImported, ReleaseFileError
from services.lookup.events import CATALOGUE as LOOKUP_EVENTS
from services.lookup.hcpcs import import_hcpcs
from services.lookup.icd10pcs import import_icd10pcs
from services.lookup.importers import import_icd10cm
from services.lookup.projections import SearchProjection
from services.shared.consumer import Consumer
from services.shared.rpc import ServiceAuth
from services.shared.settings import Settings, SettingsError


class CommandError(Exception):
    """A failure the operator can act on; the message says what to do next."""


def _progress() -> tuple[Callable[[str, int, int], None], Callable[[], None]]:
    bars: dict[str, tqdm] = {}  # type: ignore[type-arg]
    labels = {"parse": "parsing entries", "read": "reading the log", "compare": "comparing",
              "record": "recording events"}

    def report(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total or None, desc=labels.get(stage, stage),
                                     unit=" entries", file=sys.stderr, leave=True)
        if total:
            bar.total = total
        bar.update(done - bar.n)

    def close() -> None:
        for bar in bars.values():
            bar.close()

    return report, close


IMPORTERS: dict[str, tuple[str, Callable[..., ImportSummary]]] = {
    "icd10cm": ("ICD-10-CM", import_icd10cm),
    "icd10pcs": ("ICD-10-PCS", import_icd10pcs),
    "hcpcs": ("HCPCS", import_hcpcs),
    "cpt": ("CPT", import_cpt),
}
SHIPPED = ("icd10cm", "icd10pcs")  # the others come from files an operator obtains


def run_import(
    app: CodeSets, system: str, path: Path | None = None, release: str | None = None
) -> str:
    label, importer = IMPORTERS[system]
    if system not in SHIPPED and path is None:
        raise CommandError(f"{label} data is not shipped with medcode; pass --file with the "
                           "release file you obtained")
    if system == "cpt" and release is None:
        raise CommandError("CPT files carry no edition date; pass --release YYYY-MM-DD")
    report, close = _progress()
    try:
        kwargs: dict[str, Any] = {"release": release} if release and system not in SHIPPED else {}
        summary = importer(app, path, progress=report, **kwargs)
    except (ReleaseFileError, OSError) as exc:
        raise CommandError(f"{exc}") from None
    except ReleaseAlreadyImported as exc:
        return str(exc)
    finally:
        close()
    return (f"{label} {summary.release}: {summary.added} added, {summary.revised} revised, "
            f"{summary.deleted} deleted, {summary.unchanged} unchanged")


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


async def _lookup(platform: Platform) -> LocalLookup:
    await platform.start()
    client = platform.running["lookup"].client
    if not isinstance(client, LocalLookup):
        raise CommandError("the lookup service runs elsewhere (MEDCODE_LOOKUP_URL is set); "
                           "run this command where it runs")
    return client


async def _index_until_current(platform: Platform, lookup: LocalLookup) -> None:
    target = LOOKUP_EVENTS.last_position(lookup.app)
    consumer = next(c for c in platform.consumers if c.source == LOOKUP_EVENTS.source)
    stored = await consumer.projection.checkpoint(consumer.source)
    if target and (stored is None or stored.position < target):
        for relay in platform.relays:
            await relay.run_until_idle()
        await catch_up(consumer, target, "indexing for search")


def serve(settings: Settings) -> None:
    import uvicorn

    from gateway.app import create_app

    async def prepare() -> None:
        if settings.service_url("lookup"):
            return  # the lookup service runs (and imports) elsewhere
        platform = Platform(settings)
        try:
            lookup = await _lookup(platform)
            for system in SHIPPED:
                if not lookup.app.releases(system.upper()):
                    label = IMPORTERS[system][0]
                    print(f"Importing the {label} release shipped with medcode...",
                          file=sys.stderr)
                    print(run_import(lookup.app, system), file=sys.stderr)
            await _index_until_current(platform, lookup)
        finally:
            await platform.stop()

    asyncio.run(prepare())
    where = f"http://{settings.host}:{settings.port}/graphql"
    print(f"medcode ({settings.mode}, {settings.environment}) serving {where}", file=sys.stderr)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


async def worker(settings: Settings) -> None:
    """Relays and consumers without HTTP: the distributed mode's background process."""
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


def run_service(settings: Settings, name: str) -> None:
    """One product's own HTTP API (distributed mode), without relays or consumers."""
    import importlib

    import uvicorn
    from starlette.applications import Starlette

    if not settings.service_token and not settings.development:
        raise CommandError("set MEDCODE_SERVICE_TOKEN (the same secret on the gateway): "
                           "a service's own API answers internal commands")
    module = importlib.import_module(f"services.{name}.api")
    platform = Platform(settings)

    async def lifespan(app: Starlette) -> Any:
        await platform.start()
        platform.warm()
        platform.serve()
        api.mount("/", module.create_app(platform.running[name].client))
        yield
        await platform.stop()

    from contextlib import asynccontextmanager

    api = Starlette(lifespan=asynccontextmanager(lifespan))
    served: Any = ServiceAuth(api, settings.service_token) if settings.service_token else api
    uvicorn.run(served, host=settings.host, port=settings.port, log_level="info")


async def import_command(
    settings: Settings, system: str, path: Path | None, release: str | None = None
) -> str:
    if system not in IMPORTERS:
        raise CommandError(f"no importer for {system!r}; available: {', '.join(IMPORTERS)}")
    platform = Platform(settings)
    try:
        lookup = await _lookup(platform)
        return await run_in_threadpool(run_import, lookup.app, system, path, release)
    finally:
        await platform.stop()


async def export_events(
    settings: Settings,
    out: TextIO,
    service: str | None,
    type_: str | None,
    since: datetime | None,
    limit: int | None,
) -> int:
    """Write envelopes as JSON Lines in log order; returns how many were written."""
    platform = Platform(settings)
    written = 0
    try:
        await platform.start()
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
    finally:
        await platform.stop()
    return written


async def rebuild_search(settings: Settings) -> str:
    """Build a new index version from the log, then swap the alias; searches go on."""
    platform = Platform(settings)
    try:
        lookup = await _lookup(platform)
        for relay in platform.relays:
            await relay.run_until_idle()
        fresh = await lookup.catalog.create_version()
        projection = SearchProjection(lookup.catalog, pinned=fresh)
        target = LOOKUP_EVENTS.last_position(lookup.app)
        if target:
            await catch_up(Consumer(projection, platform.bus, LOOKUP_EVENTS.source), target,
                           f"building {fresh.name}")
        await lookup.catalog.promote(fresh)
        return f"search index {fresh.name} is live with {await fresh.count()} entries"
    finally:
        await platform.stop()


def _since(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 date or time") from None
    if parsed.tzinfo is None:
        from datetime import UTC

        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="medcode", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the GraphQL API (imports ICD-10-CM when empty)")
    commands.add_parser("worker", help="run relays and consumers (distributed mode)")
    service = commands.add_parser("service", help="run one product's own HTTP API")
    service.add_argument("name")
    imp = commands.add_parser("import", help="import a code-set release")
    imp.add_argument("system", choices=list(IMPORTERS))
    imp.add_argument("--file", type=Path, help="release file (default: the shipped release)")
    imp.add_argument("--release", help="the release's effective date, when the file lacks it")
    events = commands.add_parser("events", help="the event log")
    events_cmd = events.add_subparsers(dest="events_command", required=True)
    export = events_cmd.add_parser("export", help="write envelopes as JSON Lines in log order")
    export.add_argument("--service")
    export.add_argument("--type")
    export.add_argument("--since", type=_since)
    export.add_argument("--limit", type=int)
    export.add_argument("--output", type=Path, help="file to write (default: standard output)")
    projections = commands.add_parser("projections", help="read models and indexes")
    projections_cmd = projections.add_subparsers(dest="projections_command", required=True)
    rebuild = projections_cmd.add_parser("rebuild", help="rebuild a projection from the log")
    rebuild.add_argument("projection", choices=["search"])
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.command == "serve":
            serve(settings)
            return 0
        if args.command == "worker":
            asyncio.run(worker(settings))
        elif args.command == "service":
            run_service(settings, args.name)
        elif args.command == "import":
            print(asyncio.run(import_command(settings, args.system, args.file, args.release)))
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
        elif args.command == "projections":
            print(asyncio.run(rebuild_search(settings)))
    except (CommandError, SettingsError) as exc:
        print(f"medcode: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
