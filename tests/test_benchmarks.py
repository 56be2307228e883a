"""The benchmarks' measuring functions, run briefly on their py_py pairs (real peer processes)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest
from vidmesh.devstack.broker import TansuBroker
from vidmesh.transport.kafka import create_topics

from benchmarks.kafka_measure import (
    fresh_consumer,
    latency_summary,
    measure_latency,
    measure_throughput,
    watch,
)
from benchmarks.kafka_peers import start_producer, tansu_process
from benchmarks.rpc import measure_row, python_server
from benchmarks.rpc_clients import measure_python_client


def test_py_py_row_counts_requests_and_orders_percentiles() -> None:
    with python_server() as server:
        row = measure_row(measure_python_client, server, concurrency=8, duration=0.3, warmup=0.1)
        assert server.process.is_running()
    assert not server.process.is_running()
    assert row["count"] > 0
    assert row["rps"] == round(row["count"] / 0.3, 1)
    assert 0 < row["p50_ms"] <= row["p99_ms"]
    assert row["client_cpu_pct"] > 0
    assert row["server_cpu_pct"] > 0
    assert row["other_cpu_pct"] >= 0


def test_kafka_py_py_measurements_see_every_event_and_order_percentiles() -> None:
    topic = f"bench.test.{uuid.uuid4().hex[:8]}"
    with TansuBroker() as broker, contextlib.ExitStack() as stack:
        asyncio.run(create_topics(broker.bootstrap, [topic], partitions=2))
        producer = stack.enter_context(start_producer("py_py", broker.bootstrap))
        consumer = stack.enter_context(
            fresh_consumer(
                "py_py",
                producer,
                broker.bootstrap,
                topic,
                max_wait_ms=10,
                warmup_events=50,
                window=50,
            )
        )
        machine = watch(producer, consumer, tansu_process(broker))
        throughput = measure_throughput(producer, consumer, topic, 1000, 100, machine)
        latency = measure_latency(producer, consumer, topic, 0.3, machine)
        peers = [producer.process, consumer.process]
        assert all(process.is_running() for process in peers)
    assert not any(process.is_running() for process in peers)

    assert throughput["events"] == 1000
    assert throughput["throughput_eps"] == pytest.approx(1000 / throughput["seconds"], rel=0.01)
    assert throughput["emit_eps"] > 0
    assert throughput["producer_cpu_pct"] >= 0  # CPU times tick every 10 ms: may read 0 here

    summary = latency_summary([latency])
    assert summary["count"] == 300  # every event of the run, each once
    assert 0 < summary["p50_ms"] <= summary["p99_ms"] <= summary["max_ms"] < 5000
    assert summary["p50_ms_rounds"] == [summary["p50_ms"]]
    assert 700 < summary["rate_eps"] < 1300  # paced at 1000/s
    assert summary["producer_cpu_pct"] > 0
    assert summary["consumer_cpu_pct"] > 0
    assert summary["tansu_cpu_pct"] > 0
