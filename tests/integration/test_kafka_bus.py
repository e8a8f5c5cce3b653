"""KafkaBus against a real Kafka-protocol broker (Tansu, memory storage)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from services.shared.bus import Bus, Delivery, topic_for
from services.shared.envelope import Envelope
from services.shared.kafka_bus import CursorOutOfRange, KafkaBus
from tests.servers.kafka import start_tansu

pytestmark = pytest.mark.integration

TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    with start_tansu() as servers:
        yield servers


@pytest.fixture
async def bus(bootstrap: str) -> AsyncIterator[KafkaBus]:
    bus = KafkaBus(bootstrap, idempotent=False)
    yield bus
    await bus.close()


@pytest.fixture
def source() -> str:
    """A fresh source per test, so each test owns its topic."""
    return f"test{uuid4().hex[:12]}"


def make_envelopes(source: str, start: int, count: int, aggregates: list[UUID]) -> list[Envelope]:
    return [
        Envelope(
            id=uuid4(),
            type="CodeViewed" if position % 2 else "CodeSearched",
            schema_version=1 + position % 3,
            source=source,
            position=position,
            aggregate_id=aggregates[position % len(aggregates)],
            aggregate_version=position // len(aggregates) + 1,
            occurred_at=datetime(2026, 4, 1, 12, 0, position % 60, tzinfo=UTC),
            payload={"code": f"A{position:02d}.1", "nested": {"n": position, "ok": True}},
            correlation_id=uuid4() if position % 2 else None,
        )
        for position in range(start, start + count)
    ]


async def take(generator: AsyncIterator[list[Delivery]], count: int) -> list[Delivery]:
    """Read batches until ``count`` deliveries arrived (more would be a test failure)."""

    async def collect() -> list[Delivery]:
        received: list[Delivery] = []
        while len(received) < count:
            received.extend(await anext(generator))
        return received

    return await asyncio.wait_for(collect(), TIMEOUT_S)


async def test_roundtrip_in_order_from_start_and_from_cursor(
    bus: KafkaBus, bootstrap: str, source: str
) -> None:
    aggregates = [uuid4(), uuid4()]
    sent = (
        make_envelopes(source, 1, 3, aggregates)
        + make_envelopes(source, 4, 4, aggregates)
        + make_envelopes(source, 8, 2, aggregates)
    )
    await bus.publish(source, sent[:3])
    await bus.publish(source, sent[3:7])
    await bus.publish(source, sent[7:])

    everything = bus.deliveries(source, group="g1", after_cursor=None)
    received = await take(everything, len(sent))
    assert [d.envelope for d in received] == sent
    assert [d.cursor for d in received] == list(range(len(sent)))
    await everything.aclose()

    resumed = bus.deliveries(source, group="g2", after_cursor=received[3].cursor)
    tail = await take(resumed, len(sent) - 4)
    assert [d.envelope for d in tail] == sent[4:]
    await resumed.aclose()

    # Keys and headers, as seen by any plain Kafka client.
    raw = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await raw.start()
    try:
        partition = TopicPartition(topic_for(source), 0)
        raw.assign([partition])
        await raw.seek_to_beginning(partition)
        records: list[ConsumerRecord[bytes, bytes]] = []
        while len(records) < len(sent):
            batch = await asyncio.wait_for(raw.getmany(partition, timeout_ms=1000), TIMEOUT_S)
            records.extend(batch.get(partition, []))
    finally:
        await raw.stop()
    for record, envelope in zip(records, sent, strict=True):
        assert record.key == str(envelope.aggregate_id).encode()
        assert record.value == envelope.to_json()
        assert dict(record.headers) == {
            "type": envelope.type.encode(),
            "schema_version": str(envelope.schema_version).encode(),
        }


async def test_new_bus_resumes_exactly_after_stored_cursor(bootstrap: str, source: str) -> None:
    aggregates = [uuid4()]
    first = make_envelopes(source, 1, 5, aggregates)
    second = make_envelopes(source, 6, 3, aggregates)

    bus = KafkaBus(bootstrap, idempotent=False)
    await bus.publish(source, first)
    consumed = await take(bus.deliveries(source, group="proj", after_cursor=None), 3)
    stored_cursor = consumed[2].cursor  # as if written with the projection's own update
    await bus.close()

    restarted = KafkaBus(bootstrap, idempotent=False)
    try:
        await restarted.publish(source, second)
        generator = restarted.deliveries(source, group="proj", after_cursor=stored_cursor)
        rest = await take(generator, 5)
        assert [d.envelope.position for d in rest] == [4, 5, 6, 7, 8]
        assert [d.cursor for d in rest] == list(range(stored_cursor + 1, stored_cursor + 6))
        # Nothing more: no duplicates after the tail.
        pending = asyncio.ensure_future(anext(generator))
        done, _ = await asyncio.wait({pending}, timeout=1.5)
        assert not done
        pending.cancel()
    finally:
        await restarted.close()


async def test_idle_consumer_waits_then_receives(bus: KafkaBus, source: str) -> None:
    generator = bus.deliveries(source, group="idle", after_cursor=None)
    pending = asyncio.ensure_future(anext(generator))
    done, _ = await asyncio.wait({pending}, timeout=2.5)  # > one poll timeout
    assert not done, "an idle consumer must keep waiting, not end"

    envelope = make_envelopes(source, 1, 1, [uuid4()])[0]
    await bus.publish(source, [envelope])
    batch = await asyncio.wait_for(pending, TIMEOUT_S)
    assert [d.envelope for d in batch] == [envelope]
    await generator.aclose()


async def test_close_ends_live_generators(bootstrap: str, source: str) -> None:
    bus = KafkaBus(bootstrap, idempotent=False)
    generator = bus.deliveries(source, group="closing", after_cursor=None)
    pending = asyncio.ensure_future(anext(generator))
    await asyncio.sleep(0.5)  # let the consumer start and block in its poll
    await bus.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, TIMEOUT_S)


async def test_publish_10k_keeps_log_order(bus: KafkaBus, source: str) -> None:
    # How fast is bench's business (bench/throughput.py); here only what arrives, in order.
    sent = make_envelopes(source, 1, 10_000, [uuid4() for _ in range(50)])
    await bus.publish(source, sent)

    generator = bus.deliveries(source, group="bulk", after_cursor=None)
    received = await take(generator, len(sent))
    assert [d.envelope.position for d in received] == list(range(1, 10_001))
    await generator.aclose()


async def test_cursor_past_log_end_fails_loudly(bus: KafkaBus, source: str) -> None:
    await bus.publish(source, make_envelopes(source, 1, 2, [uuid4()]))
    generator = bus.deliveries(source, group="lost", after_cursor=5)
    with pytest.raises(CursorOutOfRange, match="past the log end"):
        await asyncio.wait_for(anext(generator), TIMEOUT_S)
    # The last delivered cursor itself is fine (nothing new yet, so it just waits).
    at_end = bus.deliveries(source, group="lost", after_cursor=1)
    pending = asyncio.ensure_future(anext(at_end))
    done, _ = await asyncio.wait({pending}, timeout=1.0)
    assert not done
    pending.cancel()


def test_construction_does_no_io_and_satisfies_bus() -> None:
    bus: Bus = KafkaBus("127.0.0.1:1")  # nothing listens there; mypy checks the protocol
    assert bus is not None
