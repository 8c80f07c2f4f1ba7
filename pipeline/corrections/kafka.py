"""The corrections service's way into Kafka: the same producer settings as ingest."""

from __future__ import annotations

import asyncio
import threading

from confluent_kafka import KafkaError, Message, Producer

from pipeline.corrections.rules import Refused


class KafkaSender:
    """An idempotent producer polled by its own thread; `send` waits for the broker."""

    def __init__(self, bootstrap: str, *, timeout_s: float) -> None:
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 0,
                "message.timeout.ms": int(timeout_s * 1000),
            }
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="kafka-poll", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.05)

    async def send(self, topic: str, key: bytes, value: bytes, headers: dict[str, str]) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def settle(error: KafkaError | None) -> None:
            if done.done():
                return
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(Refused("UNAVAILABLE", "kafka_unavailable", str(error)))

        def delivered(error: KafkaError | None, _message: Message) -> None:
            loop.call_soon_threadsafe(settle, error)

        self.producer.produce(
            topic,
            key=key,
            value=value,
            on_delivery=delivered,
            headers=[(k, v.encode()) for k, v in headers.items()],
        )
        await done

    def close(self) -> None:
        self.producer.flush(5)
        self._stop.set()
        self._thread.join(2)
