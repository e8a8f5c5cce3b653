"""The lookup product's operator commands: ``medcode import`` and ``medcode projections``,
and the preparation ``medcode serve`` runs first (import the shipped code sets into an
empty store, then index them)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from services.lookup.application import CodeSets, ImportSummary
from services.lookup.client import LocalLookup
from services.lookup.cpt import import_cpt
from services.lookup.domain import ReleaseAlreadyImported, ReleaseFileError
from services.lookup.events import CATALOGUE as LOOKUP_EVENTS
from services.lookup.hcpcs import import_hcpcs
from services.lookup.icd10pcs import import_icd10pcs
from services.lookup.importers import import_icd10cm
from services.lookup.projections import SearchProjection
from services.lookup.search.documents import CodeDocument
from services.shared.commands import (
    Command,
    CommandContext,
    CommandError,
    Started,
    catch_up,
    local_client,
)
from services.shared.consumer import Consumer
from services.shared.rebuild import replay_bus
from services.shared.search.model import SearchIndex
from services.shared.threads import run_in_threadpool


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


def _lookup(platform: Started) -> LocalLookup:
    lookup: LocalLookup = local_client(platform, "lookup", LocalLookup)
    return lookup


async def _index_until_current(platform: Started, lookup: LocalLookup) -> None:
    target = LOOKUP_EVENTS.last_position(lookup.app)
    consumer = next(c for c in platform.consumers if c.source == LOOKUP_EVENTS.source)
    stored = await consumer.projection.checkpoint(consumer.source)
    if target and (stored is None or stored.position < target):
        for relay in platform.relays:
            await relay.run_until_idle()
        await catch_up(consumer, target, "indexing for search")
        if stored is None:  # a first import: the whole index written at once
            await _compact(await lookup.catalog.live())


async def _compact(index: SearchIndex[CodeDocument]) -> None:
    """The index in one segment after a bulk load (SearchIndex.compact): seconds."""
    print(f"compacting search index {index.name}...", file=sys.stderr, flush=True)
    started = time.monotonic()
    await index.compact()
    print(f"compacted {index.name} in {time.monotonic() - started:.1f} s", file=sys.stderr)


async def prepare(platform: Started) -> None:
    """Before serving: import the shipped releases into an empty store, index them."""
    if platform.settings.service_url("lookup"):
        return  # the lookup service runs (and imports) elsewhere
    lookup = _lookup(platform)
    for system in SHIPPED:
        if not lookup.app.releases(system.upper()):
            label = IMPORTERS[system][0]
            print(f"Importing the {label} release shipped with medcode...", file=sys.stderr)
            print(run_import(lookup.app, system), file=sys.stderr)
    await _index_until_current(platform, lookup)


async def import_release(
    context: CommandContext, system: str, path: Path | None, release: str | None = None
) -> str:
    if system not in IMPORTERS:
        raise CommandError(f"no importer for {system!r}; available: {', '.join(IMPORTERS)}")
    async with context.platform() as platform:
        lookup = _lookup(platform)
        return await run_in_threadpool(run_import, lookup.app, system, path, release)


async def rebuild_search(context: CommandContext) -> str:
    """Build a new index version from the log, then swap the alias; searches go on."""
    async with context.platform() as platform:
        lookup = _lookup(platform)
        for relay in platform.relays:
            await relay.run_until_idle()
        fresh = await lookup.catalog.create_version()
        projection = SearchProjection(lookup.catalog, pinned=fresh)
        target = LOOKUP_EVENTS.last_position(lookup.app)
        source, where = await replay_bus(platform.bus, lookup.app, LOOKUP_EVENTS)
        if target:
            await catch_up(Consumer(projection, source, LOOKUP_EVENTS.source), target,
                           f"building {fresh.name}")
            await _compact(fresh)
        await lookup.catalog.promote(fresh)
        return (f"search index {fresh.name} is live with {await fresh.count()} entries,"
                f" read from {where}")


def _configure_import(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("system", choices=list(IMPORTERS))
    parser.add_argument("--file", type=Path, help="release file (default: the shipped release)")
    parser.add_argument("--release", help="the release's effective date, when the file lacks it")


async def _run_import(context: CommandContext, args: argparse.Namespace) -> str:
    return await import_release(context, args.system, args.file, args.release)


def _configure_projections(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="projections_command", required=True)
    rebuild = verbs.add_parser("rebuild", help="rebuild a projection from the log")
    rebuild.add_argument("projection", choices=["search"])


async def _run_projections(context: CommandContext, args: argparse.Namespace) -> str:
    return await rebuild_search(context)


commands = [
    Command("import", "import a code-set release", _configure_import, _run_import),
    Command("projections", "read models and indexes", _configure_projections,
            _run_projections),
]
