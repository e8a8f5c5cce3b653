"""CasePilot's answer quality and speed on tests/assistant/questions.tsv, offline.

For each kind of question: how often an acceptable code is cited (cited), how often the
first code the answer adds beyond those the question names is acceptable (first), how
often the yes/no verdict is right where the set gives one (verdict), how often it
refuses or says it is unsure (refused), and the latency p50/p99 of composing the answer
(lookup in process, no model). The held-out part is printed first and apart: it was
written before the composer and is never tuned on.

The store is DATA_DIR's (lookup.sqlite and the search/ index, as `make serve` leaves them);
with --build, the shipped ICD-10-CM and ICD-10-PCS releases are imported and indexed
into DATA_DIR first when it is empty (about a minute).

Usage: DATA_DIR=var python bench/assistant.py [--build] [--misses] [--set heldout|dev|all]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.assistant.composer import OfflineComposer  # noqa: E402
from services.assistant.domain import Answer  # noqa: E402
from services.assistant.reading import CM_TOKEN, PCS_TOKEN  # noqa: E402
from services.lookup.application import CodeSets  # noqa: E402
from services.lookup.client import LocalLookup  # noqa: E402
from services.lookup.search.documents import CODES  # noqa: E402
from services.lookup.search.engine import EMBEDDED_CANDIDATES  # noqa: E402
from services.shared.search.embedded import TantivyCatalog  # noqa: E402

QUESTIONS = ROOT / "tests" / "assistant" / "questions.tsv"


@dataclass(frozen=True)
class Question:
    set: str
    kind: str
    text: str
    acceptable: frozenset[str]
    expect: str


@dataclass(frozen=True)
class Outcome:
    question: Question
    answer: Answer
    ms: float

    @property
    def cited(self) -> list[str]:
        return [c.code for c in self.answer.citations]

    @property
    def hit(self) -> bool:
        return bool(self.question.acceptable & set(self.cited))

    @property
    def first(self) -> bool:
        """The first citation, skipping codes the question itself names unless they are
        what it asks for ("what does E11 exclude" is answered by what E11 excludes)."""
        named = {m.group(1).upper() for p in (CM_TOKEN, PCS_TOKEN)
                 for m in p.finditer(self.question.text)}
        for code in self.cited:
            if code in self.question.acceptable:
                return True
            if code.replace(".", "") not in {n.replace(".", "") for n in named}:
                return False
        return False

    @property
    def refused(self) -> bool:
        return self.answer.refusal is not None or self.answer.unsure

    @property
    def verdict(self) -> bool | None:
        expect = self.question.expect
        if not expect:
            return None
        said_yes = self.answer.text.startswith("Yes")
        wanted_yes = expect in ("yes", "valid", "excludes2", "none")
        return said_yes == wanted_yes


def questions() -> list[Question]:
    with QUESTIONS.open() as f:
        rows = csv.DictReader((line for line in f if not line.startswith("#")), delimiter="\t")
        return [Question(r["set"], r["kind"], r["question"], frozenset(r["acceptable"].split()),
                         r["expect"] or "") for r in rows]


def lookup_for(data_dir: Path, build: bool) -> LocalLookup:
    store, index = data_dir / "lookup.sqlite", data_dir / "search"
    app = CodeSets(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                        "SQLITE_DBNAME": str(store)})
    if not app.releases("ICD10CM"):
        if not build:
            raise SystemExit(f"{store} holds no ICD-10-CM release: run `make serve` once "
                             "with this DATA_DIR, or pass --build")
        asyncio.run(_build(app, index))
    return LocalLookup(app, TantivyCatalog(index, CODES), candidates=EMBEDDED_CANDIDATES)


async def _build(app: CodeSets, index: Path) -> None:
    from services.lookup.icd10pcs import import_icd10pcs
    from services.lookup.importers import import_icd10cm
    from tests.assistant.conftest import index_store

    print("importing ICD-10-CM and ICD-10-PCS...", file=sys.stderr)
    import_icd10cm(app)
    import_icd10pcs(app)
    print("indexing for search...", file=sys.stderr)
    await index_store(app, index)


async def run(lookup: LocalLookup, asked: list[Question]) -> list[Outcome]:
    composer = OfflineComposer(lookup)
    await lookup.warm()
    for system in ("ICD10CM", "ICD10PCS"):  # what the platform's warm-up reads too
        await lookup.gems(system, "0")
    outcomes = []
    for question in asked:
        started = time.perf_counter()
        answer = await composer.compose(question.text, None, [])
        outcomes.append(Outcome(question, answer, (time.perf_counter() - started) * 1000))
    return outcomes


def _rate(values: list[bool]) -> str:
    return f"{sum(values) / len(values):.2f}" if values else "   -"


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def report(title: str, outcomes: list[Outcome], misses: bool) -> None:
    print(f"\n== {title}: {len(outcomes)} questions")
    print(f"{'kind':<11}{'n':>4}{'cited':>7}{'first':>7}{'verdict':>9}{'refused':>9}"
          f"{'p50 ms':>9}{'p99 ms':>9}")
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        groups[o.question.kind].append(o)
    for kind, group in [*sorted(groups.items()), ("ALL", outcomes)]:
        ms = [o.ms for o in group]
        verdicts = [v for o in group if (v := o.verdict) is not None]
        print(f"{kind:<11}{len(group):>4}{_rate([o.hit for o in group]):>7}"
              f"{_rate([o.first for o in group]):>7}{_rate(verdicts):>9}"
              f"{_rate([o.refused for o in group]):>9}{statistics.median(ms):>9.1f}"
              f"{_percentile(ms, 99):>9.1f}")
    if misses:
        for o in outcomes:
            if not o.hit or not o.first or o.verdict is False:
                print(f"  MISS [{o.question.kind}] {o.question.text!r}: cited {o.cited[:6]}, "
                      f"wanted {sorted(o.question.acceptable)[:6]} {o.question.expect}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", action="store_true",
                        help="import and index the shipped releases when DATA_DIR is empty")
    parser.add_argument("--misses", action="store_true", help="list the questions missed")
    parser.add_argument("--set", choices=("heldout", "dev", "all"), default="all")
    args = parser.parse_args()
    data_dir = Path(os.environ.get("DATA_DIR", "var"))
    lookup = lookup_for(data_dir, args.build)
    asked = [q for q in questions() if args.set in ("all", q.set)]
    outcomes = asyncio.run(run(lookup, asked))
    for part in ("heldout", "dev"):
        chosen = [o for o in outcomes if o.question.set == part]
        if chosen:
            report("held-out (written before the composer, never tuned on)"
                   if part == "heldout" else "dev", chosen, args.misses)


if __name__ == "__main__":
    main()
