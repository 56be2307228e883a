"""The Kafka transport: events and Nest-style request-reply over a consumer group."""

from vidmesh.transport.kafka.admin import create_topics
from vidmesh.transport.kafka.client import KafkaClient
from vidmesh.transport.kafka.retry import RetryPolicy
from vidmesh.transport.kafka.security import KafkaSecurity
from vidmesh.transport.kafka.transport import KafkaTransport

__all__ = ["KafkaClient", "KafkaSecurity", "KafkaTransport", "RetryPolicy", "create_topics"]
