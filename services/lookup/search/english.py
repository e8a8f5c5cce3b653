"""The common words of English, which spelling keeps as typed.

The index's vocabulary is clinical: a sentence's everyday words ("greasy", "dinner",
"boy", "better") are unknown to it, and a slip or two away from a word it has ("grey",
"inner", "body", "battery"). Spelt right, they are words the person meant, not typos of
clinical ones. Typos of clinical words are rare words or none ("diabetis", "prostrate").

The source is the English word frequency list shipped in the pyspellchecker wheel
(counts from subtitles of films and television: how people talk), read from the
installed package, never downloaded.
"""

from __future__ import annotations

import gzip
import importlib.resources
import re
from functools import lru_cache

# A word said at least this often in the list's corpus is common: "greasy" (about
# 5,000), "tugging" (940) are; "prostrate" (666), "infraction" (517) and "planter" (428),
# typed for "prostate", "infarction" and "plantar", are not.
COMMON = 900
_PACKAGE, _LIST = "spellchecker", ("resources", "en.json.gz")
# One entry of the list's JSON object: "word": count.
_ENTRY = re.compile(r'"([^"\\]+)":\s*(\d+)')


@lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """Every common word (``COMMON``), lower case.

    The list's entries are read one at a time rather than as one JSON object: its
    160,000 counts, held at once, leave a serving process about 16 MB larger for good;
    read so, about 3 MB (the words kept)."""
    source = importlib.resources.files(_PACKAGE).joinpath(*_LIST)
    with source.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as text:
        listed = text.read()
    return frozenset(
        m.group(1) for m in _ENTRY.finditer(listed)
        if int(m.group(2)) >= COMMON and m.group(1).isalpha()
    )
