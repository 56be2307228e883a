"""Topic creation, for setup scripts, tests and services that must not rely on auto-creation."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code
from vidmesh.transport.kafka.security import KafkaSecurity, client_kwargs


async def create_topics(
    bootstrap: str,
    names: Iterable[str],
    partitions: int = 1,
    *,
    replication_factor: int = 1,
    exist_ok: bool = False,
    security: KafkaSecurity | None = None,
) -> None:
    """Create topics (CreateTopics). Raises the broker's error for a topic it refused;
    ``exist_ok`` lets topics that already exist pass."""
    topics = [NewTopic(name, partitions, replication_factor) for name in names]
    if not topics:
        return
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="vidmesh-admin", **client_kwargs(security)
    )
    await admin.start()
    try:
        response = await admin.create_topics(topics)
    finally:
        await admin.close()
    for topic, error_code, *rest in response.topic_errors:
        if error_code == 0:
            continue
        error = for_code(error_code)
        if exist_ok and error is TopicAlreadyExistsError:
            continue
        message = rest[0] if rest and rest[0] else error.__name__
        raise error(f"creating topic {topic!r}: {message}")
