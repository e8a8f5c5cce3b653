"""Envelope ids are uuid5(namespace, "<source>:<position>"): a re-published event keeps
its id, and consumers and analysts may recompute it."""

from __future__ import annotations

import pickle
from uuid import UUID, uuid5

from services.shared.publishing import ENVELOPE_NAMESPACE, envelope_id


def test_envelope_ids_are_the_uuid5_of_source_and_position() -> None:
    for source in ("lookup", "accounts", "consult", "médecine"):
        for position in (0, 1, 9, 10, 4096, 98_765, 2**40):
            made = envelope_id(source, position)
            expected = uuid5(ENVELOPE_NAMESPACE, f"{source}:{position}")
            assert made == expected and str(made) == str(expected)
            assert hash(made) == hash(expected) and made.version == 5
            assert pickle.loads(pickle.dumps(made)) == expected
            assert UUID(str(made)) == made
    assert envelope_id("lookup", 1) != envelope_id("lookup", 2) != envelope_id("accounts", 2)
