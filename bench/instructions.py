"""Instructions a first-time search costs, counted by valgrind's callgrind: prints
figures, asserts nothing.

Wall time on a shared machine drifts: in session 29 this machine's speed moved by a
third within minutes, more than most changes to the search move it. Instructions do not
drift, so this compares two commits of the search on the same index: lookup's whole
search in one process, no HTTP, as bench/throughput.py's "engine alone". Warm-up is not
counted (callgrind starts with counting off and is told to count once it is over); then
--queries first-time queries are. It prints the instructions a query, and the shares
of the parts that cost most: the backend's searches and document reads, the decoding of
stored documents, the ranker. The index's periodic recounts (RECOUNTS) are printed apart
and left out of both: figures printed before session 31 counted them in (0.5-0.7M).

Usage: python bench/instructions.py --data-dir DIR [--queries 300]

DIR holds the imports (bench/throughput.py --data-dir DIR, or the ``var`` of ``make
serve``). Needs valgrind (Debian's package: ``apt-get install valgrind``). About 2
minutes for 300 queries: callgrind runs a program some 50 times slower.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.throughput import warmed_engine  # noqa: E402
from bench.traffic import first_time_queries  # noqa: E402

TOOLS = ("valgrind", "callgrind_control", "callgrind_annotate")
# What the shares are of: a substring of the function's name in callgrind's report.
SEARCHES = "Searcher>::__pymethod_search__"
PARTS = (
    ("tantivy: searches", SEARCHES),
    ("tantivy: stored documents read", "Searcher>::__pymethod_doc__"),
    ("orjson: stored documents decoded", "???:loads ["),
    ("documents made (CodeDocuments.load)", "documents___CodeDocuments___load "),
    ("the ranker (scoring.rank)", "scoring___rank "),
)


def count_on() -> None:
    """Tell callgrind to start counting, and wait until it has: it reads the request
    while this process sleeps."""
    asking = subprocess.Popen(["callgrind_control", "-i", "on", str(os.getpid())],
                              stdout=subprocess.DEVNULL)
    while asking.poll() is None:
        time.sleep(0.1)


def counted(data_dir: Path, n: int) -> None:
    """The run callgrind watches."""
    from services.lookup.search.engine import EMBEDDED_CANDIDATES, search

    queries = first_time_queries(30_000)

    async def run() -> None:
        catalog = await warmed_engine(data_dir, queries)
        count_on()
        for q in queries[:n]:
            await search(catalog, q, candidates=EMBEDDED_CANDIDATES)

    asyncio.run(run())


# Not the searches' work: what is derived from a whole index (services.shared.search.
# versions) checks every 30 s whether the index changed, by counting its documents. Under
# callgrind those 30 s pass every 30-40 queries, a count walks every document (26M
# instructions), and how many fall in a run depends on how fast the machine ran it.
RECOUNTS = "FastFieldExistsWeight as tantivy::query::weight::Weight>::for_each"


def report(out: Path, n: int) -> None:
    annotated = subprocess.run(["callgrind_annotate", "--inclusive=yes", str(out)],
                               capture_output=True, text=True, check=True).stdout
    lines = annotated.splitlines()
    total = next(int(line.split()[0].replace(",", "")) for line in lines
                 if "PROGRAM TOTALS" in line)
    recounts = next((int(line.split()[0].replace(",", "")) for line in lines
                     if RECOUNTS in line), 0)
    total -= recounts
    print(f"{'instructions a first-time search':<40} {total / n / 1e6:7.2f} M"
          f"   ({n:,} queries, engine alone, warm-up not counted)")
    print(f"  {'and the index recounts meanwhile':<38} {recounts / n / 1e6:7.2f} M"
          "   (every 30 s of callgrind's slowed clock: not a search's; left out above)")
    for label, name in PARTS:
        found = next((line for line in lines if name in line), None)
        if found is None:
            print(f"  {label:<38}    n/a (not in the report: is it compiled? make compiled)")
            continue
        part = int(found.split()[0].replace(",", ""))
        if name == SEARCHES:  # the recounts are searches too
            part -= recounts
        print(f"  {label:<38} {part / total:6.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True,
                        help="a data directory holding the imports")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--counted", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.counted:
        counted(options.data_dir, options.queries)
        return
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        sys.exit(f"{', '.join(missing)} not found: install valgrind "
                 "(Debian: apt-get install valgrind), then run this again")
    if not (options.data_dir / "search").is_dir():
        sys.exit(f"{options.data_dir} holds no search index: import first "
                 f"(python bench/throughput.py --data-dir {options.data_dir})")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        print(f"counting {options.queries:,} first-time searches under callgrind "
              "(about 2 minutes for 300)...", flush=True)
        run = subprocess.run(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no",
             f"--callgrind-out-file={out}", sys.executable, __file__, "--counted",
             "--data-dir", str(options.data_dir), "--queries", str(options.queries)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if run.returncode != 0:
            sys.exit("the counted run failed; the end of what it printed:\n"
                     + "\n".join(run.stderr.splitlines()[-20:]))
        report(out, options.queries)


if __name__ == "__main__":
    main()
