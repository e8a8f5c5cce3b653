"""Running the fault worker, writing work for it, and checking what it left behind."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from dataclasses import dataclass, replace
from datetime import date, timedelta

from starlette.concurrency import run_in_threadpool

from services.lookup.application import CodeSets
from services.lookup.domain import CodeEntry
from services.lookup.events import CATALOGUE
from services.shared.settings import Settings
from tests.e2e.test_distributed import expected_documents, indexed_position
from tests.faults.counting import SOURCE, CountingProjection


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "MEDCODE_MODE": settings.mode,
        "DATA_DIR": str(settings.data_dir),
        "LOG_LEVEL": "WARNING",
        "WORKER_BACKOFF_INITIAL_MS": "50",
        "WORKER_BACKOFF_MAX_MS": "500",
        **extra,
    }
    env.pop("MEDCODE_FAULTS", None)
    if settings.mode == "distributed":
        env.update({
            "POSTGRES_DBNAME": settings.postgres_dbname,
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "KAFKA_IDEMPOTENCE": "false",
            "KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
            "OPENSEARCH_URL": settings.opensearch_url,
            **settings.environ,  # products' own settings (lookup's SEARCH_ALIAS)
        })
    env.update(extra)
    return env


def start_worker(settings: Settings, **extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tests.faults.worker"],
                            env=worker_env(settings, **extra),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class Workload:
    """Releases of one chapter, each revising and dropping a few codes: ~50 events each."""

    def __init__(self, app: CodeSets, entries: list[CodeEntry], rng: random.Random) -> None:
        self.app = app
        self.base = entries
        self.rng = rng
        self.day = date(2027, 1, 1)
        self.round = 0

    def write(self) -> None:
        self.round += 1
        entries = list(self.base)
        if self.round > 1:
            revised = set(self.rng.sample(range(len(entries)), 40))
            dropped = set(self.rng.sample(sorted(set(range(len(entries))) - revised), 10))
            entries = [replace(e, title=f"{e.title} [round {self.round}]") if i in revised
                       else e for i, e in enumerate(entries) if i not in dropped]
        self.day += timedelta(days=1)
        self.app.import_release("ICD10CM", self.day.isoformat(), "fault test", entries)

    def target(self) -> int:
        return CATALOGUE.last_position(self.app)


async def converged(settings: Settings, counting: CountingProjection, target: int) -> bool:
    stored = await counting.checkpoint(SOURCE)
    return bool(stored and stored.position >= target
                and await indexed_position(settings) >= target)


@dataclass
class Outcome:
    plan: str
    fired: bool  # the process died at the fault point (else it was killed from outside)


async def run_until_killed(
    settings: Settings, counting: CountingProjection, target: int, plan: str,
    timeout: float = 90,
) -> Outcome:
    """Run the worker with a fault plan until it kills itself, or until it has caught up
    (then kill -9 it from outside, which is a crash too)."""
    worker = start_worker(settings, MEDCODE_FAULTS=plan)
    try:
        async with asyncio.timeout(timeout):
            while worker.poll() is None:
                if await converged(settings, counting, target):
                    break
                await asyncio.sleep(0.05)
        fired = worker.poll() is not None
        if not fired:
            worker.send_signal(signal.SIGKILL)
        code = worker.wait(10)
        if code not in (-signal.SIGKILL,):
            err = worker.stderr.read().decode() if worker.stderr else ""
            raise AssertionError(f"worker with {plan} exited {code}: {err[-3000:]}")
        return Outcome(plan, fired)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)


async def run_until_converged(
    settings: Settings, counting: CountingProjection, target: int, timeout: float = 120,
) -> None:
    worker = start_worker(settings)
    try:
        async with asyncio.timeout(timeout):
            while not await converged(settings, counting, target):
                if worker.poll() is not None:
                    err = worker.stderr.read().decode() if worker.stderr else ""
                    raise AssertionError(f"the worker stopped ({worker.returncode}): {err}")
                await asyncio.sleep(0.1)
    finally:
        worker.terminate()
        worker.wait(10)


def count_problems(counts: dict[int, int], positions: list[int]) -> list[str]:
    """What is wrong with the counts: each public position must be applied exactly once."""
    problems = []
    missing = sorted(set(positions) - set(counts))
    if missing:
        problems.append(f"{len(missing)} events never applied (lost), e.g. {missing[:5]}")
    twice = sorted(p for p, n in counts.items() if n > 1)
    if twice:
        problems.append(f"{len(twice)} events applied more than once, e.g. "
                        f"{[(p, counts[p]) for p in twice[:5]]}")
    extra = sorted(set(counts) - set(positions))
    if extra:
        problems.append(f"{len(extra)} positions applied that are no public event: {extra[:5]}")
    return problems


async def state_problems(settings: Settings, app: CodeSets,
                         counting: CountingProjection) -> list[str]:
    """Counts, and the search index against the log folded independently."""
    from dataclasses import asdict

    from services.lookup.runtime import search_catalog

    positions = [e.position for e in await run_in_threadpool(lambda: list(CATALOGUE.iterate(app)))]
    problems = count_problems(await run_in_threadpool(counting.counts), positions)
    catalog = search_catalog(settings)
    try:
        held = [asdict(d) for d in await (await catalog.live()).documents()]
    finally:
        await catalog.close()
    expected = [asdict(d) for d in await run_in_threadpool(expected_documents, app)]
    if held != expected:
        first = next(((h, e) for h, e in zip(held, expected, strict=False) if h != e), None)
        problems.append(f"the search index holds {len(held)} documents, the log says"
                        f" {len(expected)}; first difference: {first}")
    return problems
