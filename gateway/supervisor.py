"""The supervisor of ``medcode serve``'s serving processes (``MEDCODE_WORKERS`` of them,
one per core by default): it starts them, restarts one that dies and stops them all.

``medcode serve`` prepares the products, then replaces itself with this module, which
imports no product: a process that answers no request need not hold what a started
platform loads (a few tens of MB, kept for the server's lifetime).
"""

from __future__ import annotations

import uvicorn

from gateway.workers import share_metrics, worker_count
from services.shared import logs
from services.shared.settings import Settings


def main() -> None:
    logs.configure()
    settings = Settings.from_env()
    share_metrics(settings)  # before the serving processes start: they inherit it
    uvicorn.run("gateway.app:serving_app", factory=True, workers=worker_count(settings),
                host=settings.host, port=settings.port, log_config=None)


if __name__ == "__main__":
    main()
