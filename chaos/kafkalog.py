"""What Kafka, the source of truth, holds for one match: read back after a drill.

The drill's match has its own id, so its records are the ones keyed by that id written
since the drill began (found with offsets-for-times, not by reading the whole topic).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaException, TopicPartition

from pipeline.model import InvalidEvent, MatchEvent


@dataclass
class KafkaLog:
    """Each record of the match: its event id, seq and where it came from (header)."""

    records: list[tuple[str, int, str]] = field(default_factory=list)

    def compare(self, source: Sequence[MatchEvent]) -> dict[str, list[str]]:
        """`lost`: source events not in Kafka; `duplicated`: events in it more than once
        (with the origin of every copy: ingest's feed, or the scorekeeper's gap fill)."""
        counts = Counter(event_id for event_id, _, _ in self.records)
        origins: dict[str, list[str]] = {}
        for event_id, seq, origin in self.records:
            origins.setdefault(event_id, []).append(f"seq {seq} from {origin}")
        return {
            "lost": [e.event_id for e in source if e.event_id not in counts],
            "duplicated": [
                f"{event_id}: {', '.join(origins[event_id])}"
                for event_id, n in counts.items()
                if n > 1
            ],
        }


def read_match(
    bootstrap: str, topic: str, match_id: str, since: float, *, timeout_s: float = 20.0
) -> KafkaLog:
    """Every record keyed `match_id` written to `topic` since `since` (unix seconds)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"gameday-check-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    log = KafkaLog()
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        wanted = [TopicPartition(topic, p, int(since * 1000)) for p in partitions]
        starts = consumer.offsets_for_times(wanted, timeout=10)
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
        todo = {tp.partition for tp in starts if 0 <= tp.offset < ends[tp.partition]}
        consumer.assign([tp for tp in starts if tp.partition in todo])
        deadline = time.monotonic() + timeout_s
        while todo and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            partition, offset = message.partition(), message.offset()
            if partition is None or offset is None:
                continue
            if offset + 1 >= ends[partition]:
                todo.discard(partition)
            if message.key() != match_id.encode():
                continue
            headers = dict(message.headers() or [])
            origin = headers.get("source") or b"?"
            try:
                event = MatchEvent.parse(message.value() or b"")
            except InvalidEvent:
                continue
            text = origin.decode() if isinstance(origin, bytes) else str(origin)
            log.records.append((event.event_id, event.seq, text))
        if todo:
            raise TimeoutError(f"partitions {sorted(todo)} not read within {timeout_s:g}s")
    except KafkaException as exc:
        raise RuntimeError(f"cannot read {topic} at {bootstrap}: {exc}") from None
    finally:
        consumer.close()
    return log
