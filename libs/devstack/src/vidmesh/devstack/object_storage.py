"""The system's object storage: the S3 store ``System`` runs the video service against (an embedded
``SeaweedStore``, its data in ``<data_dir>/objectstore``, or a store named by ``VIDMESH_S3_*``),
the video service's bucket, and the ``VIDMESH_VIDEO_S3_*`` settings it gets.

The bucket is not made here: the video service's ``migrate`` makes it (and sets its CORS rules
and lifecycle), as it would against a production store.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Final

from vidmesh.devstack.objectstore import SeaweedStore
from vidmesh.devstack.s3 import ObjectStore, ObjectStoreError

DEFAULT_BUCKET: Final = "vidmesh-videos"
STORE_DIR: Final = "objectstore"
"""The embedded store's data folder, under the system's data folder."""


class ObjectStorage:
    """One system's store (``external``, or embedded in ``data_dir / STORE_DIR`` with the keys
    given to ``start``) and bucket. ``public_endpoint``: the endpoint in URLs handed to
    browsers, if not the store's own."""

    def __init__(
        self,
        data_dir: Path,
        *,
        external: ObjectStore | None,
        bucket: str,
        public_endpoint: str | None = None,
    ) -> None:
        self.folder = data_dir / STORE_DIR
        self.bucket = bucket
        self._external = external
        self._public_endpoint = public_endpoint
        self._store: SeaweedStore | None = None
        self._port: int | None = None

    @property
    def embedded(self) -> bool:
        return self._external is None

    @property
    def access(self) -> ObjectStore:
        """Endpoint, region and keys of the store in use."""
        if self._external is not None:
            return self._external
        if self._store is None or self._port is None:
            raise ObjectStoreError("the object store is not running")
        store = self._store
        endpoint = f"http://127.0.0.1:{self._port}"
        return ObjectStore(endpoint, store.region, store.access_key_id, store.secret_access_key)

    @property
    def public_endpoint(self) -> str:
        return self._public_endpoint or self.access.endpoint

    @property
    def pid(self) -> int | None:
        """The embedded store's pid; None for an external one or while it is stopped."""
        store = self._store
        return store.pid if store is not None and store.running else None

    async def start(self, access_key_id: str, secret_access_key: str) -> str:
        """Start the embedded store (an external one is left alone); returns a progress line."""
        if self._external is not None:
            return f"using the S3 store at {self._external.endpoint} (bucket {self.bucket})"
        self._store = SeaweedStore(
            self.folder, access_key_id=access_key_id, secret_access_key=secret_access_key
        )
        await asyncio.to_thread(self._store.start)
        self._port = self._store.port
        return f"object store (SeaweedFS) ready on port {self._port} (data in {self.folder})"

    async def stop(self) -> None:
        """Stop the embedded store; it can be started again on the same port and data."""
        if self._store is not None:
            await asyncio.to_thread(self._store.stop)

    async def restart(self) -> None:
        """Start the stopped embedded store again on its port, with its data and keys."""
        if self._store is None or self._port is None:
            raise ObjectStoreError("the object store is external or was never started")
        stopped = self._store
        self._store = SeaweedStore(
            self.folder,
            port=self._port,
            access_key_id=stopped.access_key_id,
            secret_access_key=stopped.secret_access_key,
        )
        await asyncio.to_thread(self._store.start)

    def video_env(self, prefix: str, *, cors_origins: list[str]) -> dict[str, str]:
        """The video service's ``<prefix>S3_*`` settings (``prefix``: ``VIDMESH_VIDEO_``)."""
        access = self.access
        return {
            f"{prefix}S3_ENDPOINT": access.endpoint,
            f"{prefix}S3_PUBLIC_ENDPOINT": self.public_endpoint,
            f"{prefix}S3_REGION": access.region,
            f"{prefix}S3_BUCKET": self.bucket,
            f"{prefix}S3_ACCESS_KEY_ID": access.access_key_id,
            f"{prefix}S3_SECRET_ACCESS_KEY": access.secret_access_key,
            f"{prefix}S3_CORS_ORIGINS": json.dumps(cors_origins),
        }
