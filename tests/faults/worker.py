"""``python -m tests.faults.worker``: the medcode worker plus the counting projection.

The fault tests run this process and kill it (with MEDCODE_FAULTS, or from outside):
everything but the extra projection is the real worker's code path.
"""

from __future__ import annotations

import asyncio
import sys

from gateway.bootstrap import Platform
from services.shared import logs
from services.shared.product import discover
from services.shared.settings import Settings
from tests.faults.counting import product


async def main() -> int:
    logs.configure()
    platform = Platform(Settings.from_env(), [*discover(), product])
    await platform.start()
    platform.run_background()
    try:
        while platform.healthy:
            await asyncio.sleep(0.2)
        print("stopped: " + "; ".join(platform.failures), file=sys.stderr)
        return 1
    finally:
        await platform.stop()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
