"""The consumer group behind KafkaTransport, on the real broker: at-least-once delivery across a
crash, no redelivery after a graceful restart, partitions split between members, order per key,
and a drain that finishes the handler in flight.

Fixture ``kafka`` (conftest.py) makes the topics, groups, clients and services.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from vidmesh.transport import Context, Router, ServiceState
from vidmesh.transport.kafka import RetryPolicy


def recording_router(topic: str, seen: list[Any]) -> Router:
    router = Router()

    @router.event(topic)
    async def record(data: Any) -> None:
        seen.append(data)

    return router


async def test_a_consumer_killed_before_its_commit_gets_the_message_again(kafka: Any) -> None:
    topic = await kafka.topic("crash")
    group = kafka.group()
    first: list[Any] = []
    never = asyncio.Event()
    router = Router()

    @router.event(topic)
    async def stuck_on_the_second(data: str) -> None:
        first.append(data)
        if data == "stuck":
            await never.wait()  # the process dies in the middle of this handler

    _, doomed = await kafka.serve(router, group)
    client = await kafka.client()
    await client.emit(topic, "done")
    await client.emit(topic, "stuck")
    await kafka.eventually(lambda: first == ["done", "stuck"])
    await kafka.eventually_committed(group, topic, 1)  # "done" is committed once handled
    await asyncio.sleep(0.3)  # a few more fetch rounds, each followed by a commit
    await kafka.crash(doomed)
    assert await kafka.committed(group, topic) == 1  # and "stuck" is not

    # (The next join costs about 4 s on tansu: it still names the member that left as the
    # group's leader and holds the SyncGroup 2 s before it rebalances.)
    second: list[Any] = []
    await kafka.serve(recording_router(topic, second), group)
    await kafka.eventually(lambda: second == ["stuck"])


async def test_committed_messages_are_not_redelivered_after_a_graceful_restart(
    kafka: Any,
) -> None:
    topic = await kafka.topic("restart")
    group = kafka.group()
    client = await kafka.client()
    first: list[Any] = []
    service, _ = await kafka.serve(recording_router(topic, first), group)
    await client.emit(topic, "before")
    await kafka.eventually(lambda: first == ["before"])
    await service.stop()
    assert await kafka.committed(group, topic) == 1

    await client.emit(topic, "after")
    second: list[Any] = []
    await kafka.serve(recording_router(topic, second), group)
    # One partition, in order: had "before" come again, it would arrive ahead of "after".
    await kafka.eventually(lambda: "after" in second)
    assert second == ["after"]
    assert first == ["before"]


async def test_two_members_of_a_group_split_the_partitions_and_see_each_message_once(
    kafka: Any,
) -> None:
    topic = await kafka.topic("split", partitions=4)
    group = kafka.group()
    seen: dict[str, list[tuple[int, Any]]] = {"a": [], "b": []}

    def member_router(name: str) -> Router:
        router = Router()

        @router.event(topic)
        async def record(data: Any, context: Context) -> None:
            seen[name].append((context.record.partition, data))

        return router

    _, a = await kafka.serve(member_router("a"), group)
    _, b = await kafka.serve(member_router("b"), group)

    def split_settled() -> bool:
        mine, theirs = kafka.assigned_partitions(a), kafka.assigned_partitions(b)
        return bool(mine) and bool(theirs) and not mine & theirs and mine | theirs == {0, 1, 2, 3}

    await kafka.eventually(split_settled)
    client = await kafka.client()
    for n in range(40):
        await client.emit(topic, {"n": n}, partition=n % 4)
    await kafka.eventually(lambda: len(seen["a"]) + len(seen["b"]) >= 40)

    everything = sorted(data["n"] for _, data in seen["a"] + seen["b"])
    assert everything == list(range(40))  # each exactly once
    partitions_a = {partition for partition, _ in seen["a"]}
    partitions_b = {partition for partition, _ in seen["b"]}
    assert partitions_a == kafka.assigned_partitions(a)
    assert partitions_b == kafka.assigned_partitions(b)
    assert partitions_a | partitions_b == {0, 1, 2, 3}
    assert not partitions_a & partitions_b


async def test_a_rebalance_hands_partitions_over_mid_stream_without_loss_or_repeats(
    kafka: Any,
) -> None:
    topic = await kafka.topic("rebalance", partitions=4)
    group = kafka.group()
    total = 4 * 120
    seen: dict[str, list[int]] = {"a": [], "b": []}

    def member_router(name: str) -> Router:
        router = Router()

        @router.event(topic)
        async def slow(n: int) -> None:
            await asyncio.sleep(0.02)  # about 2.4 s of work per partition
            seen[name].append(n)

        return router

    client = await kafka.client()
    await asyncio.gather(*(client.emit(topic, n, partition=n % 4) for n in range(total)))
    await kafka.serve(member_router("a"), group)
    await kafka.eventually(lambda: len(seen["a"]) > 0)
    # b joins while a is busy: a finishes the records in hand, commits, hands partitions over
    await kafka.serve(member_router("b"), group)
    await kafka.eventually(lambda: len(seen["a"]) + len(seen["b"]) >= total)

    assert seen["b"], "the handover happened only after a had finished"
    assert sorted(seen["a"] + seen["b"]) == list(range(total))


async def test_messages_with_one_key_are_handled_in_the_order_they_were_produced(
    kafka: Any,
) -> None:
    topic = await kafka.topic("order", partitions=4)
    seen: list[int] = []
    router = Router()

    @router.event(topic)
    async def record(n: int) -> None:
        await asyncio.sleep(0.001 * (n % 3))  # uneven handling times
        seen.append(n)

    await kafka.serve(router, kafka.group())
    client = await kafka.client()
    for n in range(100):
        await client.emit(topic, n, key="video-1")
    await kafka.eventually(lambda: len(seen) == 100)
    assert seen == list(range(100))


async def test_order_is_kept_per_key_with_several_keys_spread_over_partitions(
    kafka: Any,
) -> None:
    topic = await kafka.topic("order-keys", partitions=4)
    keys = [f"user-{i}" for i in range(8)]
    seen: dict[str, list[int]] = defaultdict(list)
    partitions: dict[str, set[int]] = defaultdict(set)
    router = Router()

    @router.event(topic)
    async def record(data: dict[str, Any], context: Context) -> None:
        await asyncio.sleep(0.001 * (data["n"] % 3))  # partitions interleave
        seen[data["key"]].append(data["n"])
        partitions[data["key"]].add(context.record.partition)

    await kafka.serve(router, kafka.group())
    client = await kafka.client()
    for n in range(25):
        for key in keys:
            await client.emit(topic, {"key": key, "n": n}, key=key)
    await kafka.eventually(lambda: sum(map(len, seen.values())) == 25 * len(keys))

    assert {key: seen[key] for key in keys} == {key: list(range(25)) for key in keys}
    assert all(len(partitions[key]) == 1 for key in keys)  # a key stays on its partition
    assert len(set().union(*partitions.values())) > 1  # and the keys were spread


async def test_a_graceful_stop_finishes_the_handler_in_flight_and_commits_what_it_did(
    kafka: Any,
) -> None:
    topic = await kafka.topic("drain")
    group = kafka.group()
    started: list[str] = []
    finished: list[str] = []
    release = asyncio.Event()
    router = Router()

    @router.event(topic)
    async def slow(data: str) -> None:
        started.append(data)
        await release.wait()
        finished.append(data)

    service, _ = await kafka.serve(router, group)
    client = await kafka.client()
    await client.emit(topic, "in flight")
    await client.emit(topic, "waiting")
    await kafka.eventually(lambda: started == ["in flight"])

    stopping = asyncio.create_task(service.stop())
    await kafka.eventually(lambda: service.state is ServiceState.DRAINING)
    await asyncio.sleep(0.2)  # time for a wrong stop to cut the handler off and finish
    assert not stopping.done()
    release.set()
    await stopping

    assert service.state is ServiceState.STOPPED
    assert finished[:1] == ["in flight"]
    # What was handled is committed, and nothing more ("waiting" may have been handled too
    # if it came up before the drain reached its partition).
    assert await kafka.committed(group, topic) == len(finished)


async def test_a_stop_interrupts_a_retry_backoff_without_committing_or_dead_lettering(
    kafka: Any,
) -> None:
    topic = await kafka.topic("backoff", dead_letter=True)
    group = kafka.group()
    attempts: list[Any] = []
    router = Router()

    @router.event(topic)
    async def failing(data: Any) -> None:
        attempts.append(data)
        raise RuntimeError("downstream is down")

    patient = RetryPolicy(max_attempts=5, initial_backoff=60.0, max_backoff=60.0)
    service, _ = await kafka.serve(router, group, retry=patient)
    client = await kafka.client()
    await client.emit(topic, "retry me later")
    await kafka.eventually(lambda: attempts == ["retry me later"])

    async with asyncio.timeout(5):  # not the 60 s backoff, nor the 5 s drain timeout
        await service.stop()
    assert attempts == ["retry me later"]
    assert await kafka.committed(group, topic) is None  # delivered again after a restart
    assert await kafka.end_offset(f"{topic}.dlq") == 0


async def test_a_partition_with_a_long_backlog_is_paused_then_resumed_losing_nothing(
    kafka: Any,
) -> None:
    topic = await kafka.topic("backlog")
    seen: list[int] = []
    paused: list[bool] = []
    router = Router()

    @router.event(topic)
    async def record(n: int) -> None:
        await asyncio.sleep(0.002)
        seen.append(n)
        paused.append(0 in kafka.paused_partitions(transport))

    client = await kafka.client()
    for n in range(60):  # one fetch brings them all: far more than max_buffered
        await client.emit(topic, n)
    _, transport = await kafka.serve(router, kafka.group(), max_buffered=10)
    await kafka.eventually(lambda: len(seen) > 0)
    for n in range(60, 120):  # produced while the partition is paused
        await client.emit(topic, n)
    await kafka.eventually(lambda: len(seen) >= 120)

    # The second 60 came in after the first 60 had paused the partition: it was resumed.
    assert seen == list(range(120))
    assert paused[0], "the partition was not paused with 60 records waiting"
