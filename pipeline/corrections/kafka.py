"""The corrections service's way into Kafka: the pipeline's producer, as ingest's."""

from __future__ import annotations

import asyncio

from confluent_kafka import KafkaError, Message

from pipeline.corrections.rules import Refused
from pipeline.producer import PolledProducer


class KafkaSender:
    """An idempotent producer polled by its own thread; `send` waits for the broker."""

    def __init__(self, bootstrap: str, *, timeout_s: float) -> None:
        self.producer = PolledProducer(bootstrap, message_timeout_ms=int(timeout_s * 1000))

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

        self.producer.produce(topic, key, value, headers, delivered)
        await done

    def close(self) -> None:
        self.producer.close(flush_s=5)
