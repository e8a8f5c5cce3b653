"""``KafkaBus``: the distributed ``Bus``, one Kafka topic per producing service.

Layout and guarantees:

* Each service publishes to ``topic_for(source)``, a topic with exactly **one
  partition**. A single partition keeps the whole service log in one total order,
  so a consumer sees events in ``position`` order across aggregates (projections
  and cross-aggregate process managers depend on that). Event volume per service
  is small; if one ever outgrows a partition, partition by aggregate and relax the
  ordering contract to per-aggregate, deliberately.
* Records are keyed by ``aggregate_id`` (so a future repartitioning or log
  compaction keeps an aggregate together) and carry ``type`` / ``schema_version``
  headers so routers can filter without parsing the JSON body.
* ``cursor`` is the Kafka offset. Offsets are never committed to Kafka: a consumer
  stores the cursor in the same transaction as its own writes and hands it back as
  ``after_cursor``, which makes resume exact and keeps "processed" and "recorded"
  atomic. Delivery is still at-least-once (a publish can be retried after a partial
  failure), so consumers dedupe by ``(source, position)``.

Longer than 400 lines on purpose: it is one class, the Bus contract over Kafka, whose
publish, delivery and log checks share its producer, its consumers and the topic layout.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    ConsumerStoppedError,
    OffsetOutOfRangeError,
    TopicAlreadyExistsError,
    for_code,
)

from services.shared.bus import Delivery, topic_for
from services.shared.envelope import Envelope
from services.shared.supervision import Fatal

__all__ = ["CursorOutOfRange", "KafkaBus", "TopicRetentionError"]

log = logging.getLogger(__name__)

# Only partition of every service topic (see module docstring).
_PARTITION = 0
_MAX_RECORDS = 500
_POLL_TIMEOUT_MS = 1000


class CursorOutOfRange(LookupError):
    """A stored cursor does not exist in the topic: replaying would be wrong either way."""


class BusLostLog(LookupError):
    """The topic lost records this bus had published (the relay republishes them)."""


class TopicRetentionError(Fatal):
    """A service topic may delete records: it cannot be trusted to hold the whole log."""


# Every service topic keeps every record: consumers and rebuilds may read it from the
# start. (Compaction would keep one record per aggregate: also not the log.)
TOPIC_CONFIG = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}
_REQUIRED = {"retention.ms": "-1", "retention.bytes": "-1"}


class KafkaBus:
    """``Bus`` over Kafka (or any Kafka-protocol broker such as Tansu).

    Constructing it does no I/O: the producer is started on the first ``publish``
    and a consumer per ``deliveries`` call, so the bus can be built at import or
    wiring time, outside any running event loop.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        idempotent: bool = True,
        client_id: str = "medcode",
        replication_factor: int = 1,
        topic_prefix: str = "medcode",
    ) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._topic_prefix = topic_prefix
        self._idempotent = idempotent
        self._client_id = client_id
        # 1 suits a single dev/test broker; production passes its cluster's factor.
        self._replication_factor = replication_factor
        self._producer: AIOKafkaProducer | None = None
        self._consumers: set[AIOKafkaConsumer] = set()
        self._known_topics: set[str] = set()
        self._end_offsets: dict[str, int] = {}  # last offset this bus produced, per topic
        # Topics whose unlimited retention the broker confirmed (a broker that reports no
        # topic configs at all, like Tansu for auto-created topics, proves nothing).
        self._retention_proven: set[str] = set()
        # Created lazily too: asyncio primitives belong to the loop that uses them.
        self._lock: asyncio.Lock | None = None
        self._closed = False

    async def publish(self, source: str, envelopes: Sequence[Envelope]) -> None:
        """Produce ``envelopes`` in order; return once the broker acknowledged all.

        Every record is handed to the producer before awaiting any acknowledgement,
        so they are batched into few requests. Order is kept because aiokafka has at
        most one in-flight request per broker, and the topic has a single partition.
        If this raises, a prefix may already be on the bus; callers retry the whole
        batch and consumers dedupe by ``(source, position)``.
        """
        if not envelopes:
            return
        topic = topic_for(source, self._topic_prefix)
        producer = await self._get_producer()
        await self._ensure_topic(topic)
        acks = []
        for envelope in envelopes:
            acks.append(
                await producer.send(
                    topic,
                    value=envelope.to_json(),
                    key=str(envelope.aggregate_id).encode(),
                    partition=_PARTITION,
                    headers=[
                        ("type", envelope.type.encode()),
                        ("schema_version", str(envelope.schema_version).encode()),
                    ],
                )
            )
        delivered = await asyncio.gather(*acks)
        first, last = delivered[0].offset, delivered[-1].offset
        before = self._end_offsets.get(topic)
        self._end_offsets[topic] = last
        if before is not None and first <= before:
            self._known_topics.discard(topic)
            raise BusLostLog(
                f"{topic} took this publish at offset {first}, but already held offset"
                f" {before}: the broker lost the topic (restarted without its storage, or"
                " the topic was deleted). The relay restarts and republishes what is missing."
            )

    async def deliveries(
        self,
        source: str,
        *,
        group: str,
        after_cursor: int | None,
        after_position: int | None = None,
    ) -> AsyncGenerator[list[Delivery], None]:
        """Yield batches of deliveries after ``after_cursor`` (all when ``None``), forever.

        The partition is assigned manually (no group membership, so no rebalances and
        no committed offsets); ``group`` only labels the client for broker-side
        observability. When idle the generator simply keeps polling; it ends when the
        caller cancels it or calls ``close()``.

        With ``after_position`` the record at ``after_cursor`` must be that event; when
        it is not (the broker lost the topic and the relay republished it, or the
        checkpoint came from a rebuild that read the event store), the cursor means
        nothing here and the deliveries start again from the beginning of the topic.
        """
        self._check_open()
        topic = topic_for(source, self._topic_prefix)
        await self._ensure_topic(topic)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap_servers,
            client_id=f"{self._client_id}.{group}",
            group_id=None,
            enable_auto_commit=False,
            # A cursor outside the log means the topic was recreated or truncated:
            # fail loudly rather than silently skip or replay events.
            auto_offset_reset="none",
        )
        self._consumers.add(consumer)
        try:
            await consumer.start()
            partition = TopicPartition(topic, _PARTITION)
            consumer.assign([partition])
            verify = after_cursor is not None and after_position is not None
            next_offset = 0 if after_cursor is None else after_cursor + 1
            if after_cursor is None:
                await consumer.seek_to_beginning(partition)
            else:
                consumer.seek(partition, after_cursor if verify else after_cursor + 1)
            start_checked = after_cursor is None
            while True:
                try:
                    fetched = await consumer.getmany(
                        partition, timeout_ms=_POLL_TIMEOUT_MS, max_records=_MAX_RECORDS
                    )
                except ConsumerStoppedError:
                    return  # close() was called
                except OffsetOutOfRangeError:
                    if not verify:
                        raise
                    fetched, records = {}, None
                    consumer.seek(partition, 0)
                    verify, start_checked, next_offset = False, True, 0
                    log.warning("%s: cursor %s is not in %s; reading it from the start",
                                group, after_cursor, topic)
                    continue
                records = fetched.get(partition)
                if verify and after_cursor is not None:
                    highwater = consumer.highwater(partition)
                    if not records and (highwater is None or highwater > after_cursor):
                        continue  # nothing fetched yet: cannot tell
                    first = records[0] if records else None
                    if (first is not None and first.offset == after_cursor and first.value
                            and Envelope.from_json(first.value).position == after_position):
                        records = records[1:]
                    else:
                        log.warning(
                            "%s: the record at offset %s of %s is not position %s (the topic"
                            " was rewritten, or the checkpoint came from the event store);"
                            " reading the topic from the start", group, after_cursor, topic,
                            after_position)
                        await consumer.seek_to_beginning(partition)
                        records, next_offset = [], 0
                    verify, start_checked = False, True
                if not start_checked and after_cursor is not None:
                    start_checked = self._check_start(consumer, partition, after_cursor)
                if not records:
                    highwater = consumer.highwater(partition)
                    if highwater is not None and highwater < next_offset:
                        # Kafka would answer OFFSET_OUT_OF_RANGE; Tansu answers nothing.
                        raise CursorOutOfRange(
                            f"{topic} now ends at offset {highwater}, before {next_offset}:"
                            " the broker lost the log (restarted without its storage?)")
                    continue
                next_offset = records[-1].offset + 1
                batch: list[Delivery] = []
                for record in records:
                    if record.value is None:
                        raise ValueError(f"empty record in {topic} at offset {record.offset}")
                    batch.append(
                        Delivery(envelope=Envelope.from_json(record.value), cursor=record.offset)
                    )
                yield batch
        finally:
            self._consumers.discard(consumer)
            await consumer.stop()

    async def close(self) -> None:
        """Stop the producer and every consumer; live ``deliveries`` generators end."""
        self._closed = True
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()
        for consumer in list(self._consumers):
            await consumer.stop()

    @staticmethod
    def _check_start(
        consumer: AIOKafkaConsumer, partition: TopicPartition, after_cursor: int
    ) -> bool:
        """Fail if ``after_cursor`` lies past the log end; ``False`` while still unknown.

        Kafka answers such a fetch with OFFSET_OUT_OF_RANGE (raised by aiokafka, as
        ``auto_offset_reset="none"``), but Tansu just returns nothing, so also compare
        with the high watermark of the first fetch response. (Tansu's ListOffsets
        "latest" is wrong for multi-record batches, hence not ``end_offsets``.)
        """
        highwater = consumer.highwater(partition)
        if highwater is None:
            return False
        if after_cursor >= highwater:
            raise CursorOutOfRange(
                f"{partition.topic}: cursor {after_cursor} is past the log end"
                f" ({highwater} records); the topic was recreated or truncated"
            )
        return True

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("KafkaBus is closed")

    def _get_lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def _get_producer(self) -> AIOKafkaProducer:
        self._check_open()
        if self._producer is not None:
            return self._producer
        async with self._get_lock():
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._bootstrap_servers,
                    client_id=self._client_id,
                    acks="all",
                    enable_idempotence=self._idempotent,
                    # Bigger batches than the 16 KiB default: publishes are bursts.
                    max_batch_size=512 * 1024,
                    linger_ms=5,
                )
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()  # release its connections; the next publish retries
                    raise
                self._producer = producer
            return self._producer

    async def _ensure_topic(self, topic: str) -> None:
        """Create ``topic`` with one partition unless this bus already saw it.

        Explicit creation instead of broker auto-create, which production clusters
        usually disable and which would pick the broker's default partition count.
        """
        if topic in self._known_topics:
            return
        async with self._get_lock():
            if topic in self._known_topics:
                return
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self._bootstrap_servers, client_id=self._client_id
            )
            try:
                await admin.start()
                new_topic = NewTopic(
                    name=topic, num_partitions=1, replication_factor=self._replication_factor,
                    topic_configs=TOPIC_CONFIG,
                )
                response = await admin.create_topics([new_topic])
                for topic_error in response.topic_errors:
                    name, code = topic_error[0], topic_error[1]
                    if code not in (0, TopicAlreadyExistsError.errno):
                        message = topic_error[2] if len(topic_error) > 2 else None
                        raise for_code(code)(f"creating topic {name}: {message}")
                await self._check_retention(admin, topic)
            finally:
                await admin.close()
            self._known_topics.add(topic)

    async def _check_retention(self, admin: AIOKafkaAdminClient, topic: str) -> None:
        """Fail unless the topic keeps every record (checked at every start).

        A topic created by an older medcode, by hand or by broker auto-creation gets the
        broker's default retention (often 7 days): a consumer or rebuild reading it from
        the start would silently miss everything older.
        """
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, configs=None)]
        )
        found: dict[str, str] = {}
        for response in responses:
            for resource in response.resources:
                for entry in resource[4]:
                    found[entry[0]] = entry[1]
        if not found:
            # Kafka always reports a topic's effective configs; a broker that reports none
            # cannot prove retention either way: rebuilds will read the event store.
            log.warning("%s: the broker reports no topic configs; retention unproven", topic)
            self._retention_proven.discard(topic)
            return
        wrong = {k: found.get(k, "(broker default)") for k, v in _REQUIRED.items()
                 if found.get(k) != v}
        if found.get("cleanup.policy", "delete") != "delete":
            wrong["cleanup.policy"] = found["cleanup.policy"]
        if not wrong:
            self._retention_proven.add(topic)
            return
        if wrong:
            settings = ", ".join(f"{k}={v}" for k, v in wrong.items())
            raise TopicRetentionError(
                f"topic {topic} may delete records ({settings}); medcode needs the whole log"
                " there. Set it with: kafka-configs.sh --bootstrap-server"
                f" {self._bootstrap_servers} --alter --entity-type topics --entity-name"
                f" {topic} --add-config retention.ms=-1,retention.bytes=-1,"
                "cleanup.policy=delete"
            )

    @asynccontextmanager
    async def _reader(self, source: str) -> AsyncIterator[tuple[AIOKafkaConsumer,
                                                                TopicPartition]]:
        """A short-lived consumer assigned to the source's partition (for probes)."""
        self._check_open()
        topic = topic_for(source, self._topic_prefix)
        await self._ensure_topic(topic)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap_servers, client_id=f"{self._client_id}.probe",
            group_id=None, enable_auto_commit=False, auto_offset_reset="none",
        )
        try:
            await consumer.start()
            partition = TopicPartition(topic, _PARTITION)
            consumer.assign([partition])
            yield consumer, partition
        finally:
            await consumer.stop()

    @staticmethod
    async def _first_at(
        consumer: AIOKafkaConsumer, partition: TopicPartition, offset: int
    ) -> tuple[int | None, Envelope | None]:
        """The high watermark and the record at ``offset`` (None past the end)."""
        consumer.seek(partition, offset)
        for _ in range(5):  # the first fetch may come back empty while metadata settles
            fetched = await consumer.getmany(partition, timeout_ms=_POLL_TIMEOUT_MS,
                                             max_records=1)
            records = fetched.get(partition)
            highwater = consumer.highwater(partition)
            if records:
                record = records[0]
                found = Envelope.from_json(record.value) if record.value else None
                return highwater, found if record.offset == offset else None
            if highwater is not None and highwater <= offset:
                return highwater, None
        return consumer.highwater(partition), None

    async def last_position(self, source: str) -> int | None:
        """Position of the newest record on the topic (0 when it holds none).

        Asked when a relay starts, so it also re-creates (and re-checks) the topic: a
        broker that restarted without its storage has forgotten it.
        """
        self._known_topics.discard(topic_for(source, self._topic_prefix))
        async with self._reader(source) as (consumer, partition):
            try:
                highwater, _ = await self._first_at(consumer, partition, 0)
            except OffsetOutOfRangeError:
                return 0  # its start was deleted: the relay republishes, consumers dedupe
            if not highwater:
                return 0
            _, last = await self._first_at(consumer, partition, highwater - 1)
            return last.position if last else 0

    async def holds_whole_log(self, source: str, first_position: int) -> bool:
        """True only when retention is unlimited (checked when the topic is first used)
        and the topic's offset 0 still holds the store's first public event."""
        topic = topic_for(source, self._topic_prefix)
        await self._ensure_topic(topic)
        if topic not in self._retention_proven:
            return False
        async with self._reader(source) as (consumer, partition):
            try:
                _, first = await self._first_at(consumer, partition, 0)
            except OffsetOutOfRangeError:
                return False  # offset 0 was deleted
            return first is not None and first.position == first_position
