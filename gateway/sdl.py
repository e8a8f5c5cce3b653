"""Write the composed public schema's SDL to ``schema/graphql/schema.graphql``.

Run ``python -m gateway.sdl`` after changing any product's GraphQL part; a unit test
fails while the checked-in file is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

from gateway.schema import build_schema
from services.shared.product import discover
from services.shared.settings import Settings

SDL_PATH = Path(__file__).resolve().parents[1] / "schema" / "graphql" / "schema.graphql"


def composed_sdl() -> str:
    """The SDL of the schema composed from every installed product, newline-terminated."""
    return str(build_schema(discover(), Settings())).rstrip("\n") + "\n"


def main(path: Path = SDL_PATH) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(composed_sdl(), encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
