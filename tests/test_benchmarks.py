"""The RPC benchmark's measuring function, run briefly on the py_py pair (real server process)."""

from __future__ import annotations

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
