"""Systems of a test module's own, beside the session's shared ``system`` (conftest.py): for a
setting the shared one must not have, or a failure that must not spill into other tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import pytest
from vidmesh.devstack.databases import drop_database
from vidmesh.devstack.system import SERVICES, RunningSystem, running_system


@contextmanager
def own_system(
    postgres_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    *,
    extra_env: Mapping[str, str] | None = None,
    kafka_bootstrap: str | None = None,
) -> Iterator[RunningSystem]:
    """A running system on the session's PostgreSQL under databases of its own (``e2e_<name>_
    <8 hex>_...``), dropped afterwards, as conftest.py does for the shared one; ``kafka_bootstrap``
    names a broker of the test's own instead of an embedded one."""
    data_dir = tmp_path_factory.mktemp(f"vidmesh-{name}")
    prefix = f"e2e_{name}_{uuid.uuid4().hex[:8]}_"
    try:
        with running_system(
            data_dir,
            postgres_url=postgres_url,
            database_prefix=prefix,
            extra_env=extra_env,
            kafka_bootstrap=kafka_bootstrap,
        ) as handle:
            yield handle
    finally:
        for service in SERVICES:
            asyncio.run(drop_database(postgres_url, prefix + service.database, role=True))
