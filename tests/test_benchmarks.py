"""The benchmarks' measuring functions, run briefly on their py_py pairs (real peer processes)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from datetime import UTC, datetime

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
from benchmarks.platform import _paced_events, _percentile, _ratio
from benchmarks.platform_load import HttpConnection, _summarise, multipart_upload
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


def test_platform_percentiles_are_nearest_rank_in_ms_and_rates_per_second() -> None:
    latencies = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    assert _percentile(latencies, 0.50) == 51.0
    assert _percentile(latencies, 0.99) == 100.0
    assert _percentile([], 0.99) == 0.0
    row = _summarise(latencies, errors=2, seconds=4.0)
    assert row == {"count": 100, "rps": 25.0, "p50_ms": 51.0, "p99_ms": 100.0, "errors": 2}
    assert _ratio(220.0, 11.0) == 20.0
    assert _ratio(1.0, 0.0) == 0.0


def test_platform_lag_keeps_only_the_events_stamped_in_the_paced_window() -> None:
    def row(event_id: str, at: datetime) -> dict[str, str]:
        event = {"id": "v", "eventId": event_id, "downloadedAt": at.isoformat()}
        return {"event": json.dumps(event)}

    window = {"wall_start": 1000.0, "wall_end": 1010.0}
    inside = datetime.fromtimestamp(1005.0, UTC)
    rows = [row("in", inside), row("before", datetime.fromtimestamp(999.0, UTC))]
    assert _paced_events(rows, window) == {"in": inside}  # type: ignore[arg-type]


def test_platform_load_client_reads_a_whole_response_from_the_wire() -> None:
    body = b"x" * 100_000
    head = f"HTTP/1.1 206 Partial Content\r\nContent-Length: {len(body)}\r\n\r\n".encode()

    async def two_requests() -> list[tuple[int, int]]:
        served = asyncio.Event()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(asyncio.IncompleteReadError):
                while await reader.readuntil(b"\r\n\r\n"):
                    writer.write(head + body)
            writer.close()
            served.set()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        connection = await HttpConnection.open("127.0.0.1", port)
        answers = []
        for _ in range(2):  # the same keep-alive connection twice
            status = await connection.request(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            answers.append((status, connection.body_bytes))
        connection.close()
        await served.wait()
        server.close()
        await server.wait_closed()
        return answers

    assert asyncio.run(two_requests()) == [(206, len(body)), (206, len(body))]


def test_platform_load_upload_body_is_a_multipart_form_the_gateway_parses() -> None:
    from python_multipart.multipart import MultipartParser

    boundary, body = multipart_upload(b"\x00\x01video", title="bench")
    parts: dict[str, bytes] = {}
    current = bytearray()
    parser = MultipartParser(
        boundary.encode(),
        callbacks={
            "on_part_begin": current.clear,
            "on_part_data": lambda data, start, end: current.extend(data[start:end]),
            "on_part_end": lambda: parts.setdefault(f"part{len(parts)}", bytes(current)),
        },
    )
    parser.write(body)
    parser.finalize()
    assert parts == {"part0": b"bench", "part1": b"\x00\x01video"}
