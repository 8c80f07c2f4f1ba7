"""The pipeline's way into Kafka: an idempotent producer (acks=all, no linger) whose
delivery callbacks run on a poll thread of its own, so no event loop has to poll it."""

from __future__ import annotations

import threading
from collections.abc import Callable

from confluent_kafka import KafkaError, Message, Producer

Delivered = Callable[[KafkaError | None, Message], None]


class PolledProducer:
    def __init__(self, bootstrap: str, *, message_timeout_ms: int) -> None:
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 0,
                "message.timeout.ms": message_timeout_ms,
            }
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="kafka-poll", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.05)

    def produce(
        self, topic: str, key: bytes, value: bytes, headers: dict[str, str], on_delivery: Delivered
    ) -> None:
        """Queue one message; `on_delivery` runs on the poll thread with the outcome."""
        self.producer.produce(
            topic,
            key=key,
            value=value,
            on_delivery=on_delivery,
            headers=[(k, v.encode()) for k, v in headers.items()],
        )

    def close(self, flush_s: float) -> None:
        """Deliver what is queued (up to `flush_s`), then stop the poll thread."""
        self.producer.flush(flush_s)
        self._stop.set()
        self._thread.join(2)
