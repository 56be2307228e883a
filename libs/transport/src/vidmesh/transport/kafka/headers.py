"""The header names of Nest's Kafka transporter (Spring's ``KafkaHeaders``), in one place."""

from __future__ import annotations

from typing import Final

CORRELATION_ID: Final = "kafka_correlationId"
REPLY_TOPIC: Final = "kafka_replyTopic"
REPLY_PARTITION: Final = "kafka_replyPartition"
NEST_ERR: Final = "kafka_nest-err"
NEST_IS_DISPOSED: Final = "kafka_nest-is-disposed"

# Dead-letter headers: Spring's names, which Nest's KafkaHeaders enum also carries.
DLT_ORIGINAL_TOPIC: Final = "kafka_dlt-original-topic"
DLT_ORIGINAL_PARTITION: Final = "kafka_dlt-original-partition"
DLT_ORIGINAL_OFFSET: Final = "kafka_dlt-original-offset"
DLT_EXCEPTION_FQCN: Final = "kafka_dlt-exception-fqcn"
DLT_EXCEPTION_MESSAGE: Final = "kafka_dlt-exception-message"
DLT_ATTEMPTS: Final = "kafka_dlt-attempts"

REPLY_SUFFIX: Final = ".reply"
DEAD_LETTER_SUFFIX: Final = ".dlq"


def reply_topic_of(topic: str) -> str:
    """Nest's reply topic for requests sent to ``topic``."""
    return topic + REPLY_SUFFIX


def dead_letter_topic_of(topic: str) -> str:
    return topic + DEAD_LETTER_SUFFIX
