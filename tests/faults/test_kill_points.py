"""kill -9 at chosen and at seeded random fault points, in both modes; nothing may be lost
or applied twice (counted by a test-only projection) and the search index must equal the
log folded independently. The seed is printed in the run's header and summary."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from starlette.concurrency import run_in_threadpool

from services.lookup.application import CodeSets
from services.lookup.domain import CodeEntry
from services.shared.settings import Settings
from tests.conftest import chapters
from tests.faults.counting import CountingProjection
from tests.faults.harness import (
    Outcome,
    Workload,
    count_problems,
    run_until_converged,
    run_until_killed,
    state_problems,
)
from tests.faults.seed import SEED, banner

pytestmark = [pytest.mark.integration]

CONSUMER_POINTS = ("consumer.before_apply", "projection.mid_batch", "projection.after_write")
RELAY_POINTS = ("relay.after_publish",)
RANDOM_KILLS = {"embedded": 10, "distributed": 10}  # 20 a run


@pytest.fixture(params=["embedded", "distributed"])
def mode_settings(request: pytest.FixtureRequest) -> Iterator[Settings]:
    name = "embedded_settings" if request.param == "embedded" else "distributed_settings"
    yield request.getfixturevalue(name)


def kill_plans(mode: str, rng: random.Random) -> list[str]:
    points = CONSUMER_POINTS + (RELAY_POINTS if mode == "distributed" else ())
    chosen = [f"{point}:1" for point in points]
    # Which point, and at which of its hits: two consumers (search and counting) share the
    # consumer points, so a round's first batch alone reaches each of them twice.
    drawn = [f"{rng.choice(points)}:{rng.randint(1, 2)}" for _ in range(RANDOM_KILLS[mode])]
    return chosen + drawn


async def test_kill_9_at_fault_points_loses_and_duplicates_nothing(
    mode_settings: Settings, icd10cm_release: tuple[str, list[CodeEntry]]
) -> None:
    settings = mode_settings
    rng = random.Random(f"{SEED}:{settings.mode}")
    app = CodeSets(env=settings.event_store_env("lookup"))
    counting = await run_in_threadpool(CountingProjection, settings)
    workload = Workload(app, chapters(icd10cm_release[1], "3"), rng)
    outcomes: list[Outcome] = []
    try:
        for plan in kill_plans(settings.mode, rng):
            await run_in_threadpool(workload.write)
            target = await run_in_threadpool(workload.target)
            outcomes.append(await run_until_killed(settings, counting, target, plan))
        await run_until_converged(settings, counting, await run_in_threadpool(workload.target))
        problems = await state_problems(settings, app, counting)
        fired = [o.plan for o in outcomes if o.fired]
        assert not problems, f"{banner()}; kills {fired}: {problems}"
        # Most planned points must really be reached, or the test proves little.
        assert len(fired) >= len(outcomes) // 2, f"{banner()}; only {fired} fired"
    finally:
        app.close()


async def test_the_counting_check_catches_a_projection_that_commits_before_its_checkpoint(
    embedded_settings: Settings, icd10cm_release: tuple[str, list[CodeEntry]]
) -> None:
    """The negative control: rows and checkpoint in two transactions, killed between."""
    settings = embedded_settings
    app = CodeSets(env=settings.event_store_env("lookup"))
    counting = await run_in_threadpool(CountingProjection, settings)
    workload = Workload(app, chapters(icd10cm_release[1], "3"), random.Random(SEED))
    try:
        await run_in_threadpool(workload.write)
        target = await run_in_threadpool(workload.target)
        from tests.faults import harness

        worker = harness.start_worker(settings, MEDCODE_FAULTS="projection.after_write:1",
                                      COUNTING_ATOMIC="false")
        assert worker.wait(60) == -9
        await run_until_converged(settings, counting, target)
        positions = list(range(1, target + 1))
        counts = await run_in_threadpool(counting.counts)
        problems = count_problems(counts, [p for p in positions if p in counts])
        assert any("more than once" in p for p in problems), counts
    finally:
        app.close()
