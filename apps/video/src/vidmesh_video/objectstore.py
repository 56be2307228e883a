"""The video bytes' home: one S3 bucket, reached with aiobotocore.

The service itself moves bytes only for the tutorial's small ``upload``/``download`` and the
move of old PostgreSQL chunks; everything else is control: multipart uploads created,
listed, completed and aborted, and presigned URLs so that the gateway and browsers move the
bytes straight to and from the store. URLs handed to browsers are signed for the *public*
endpoint (a presigned URL signs its host), URLs the gateway uses for the internal one.

aiobotocore because it is the one client that presigns any S3 call with its parameters
(UploadPart's ``uploadId``/``partNumber``, GetObject's response overrides); obstore signs
plain GETs and PUTs only (docs/benchmarks.md has the measurement).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import structlog
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from vidmesh_video.errors import StoreUnavailable
from vidmesh_video.settings import Settings

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

logger = structlog.get_logger("vidmesh_video.objectstore")

MISSING: Final = frozenset({"NoSuchKey", "NoSuchUpload", "404", "NotFound"})
"""Error codes of an object or upload that is not there (SeaweedFS and AWS differ)."""
ABORT_INCOMPLETE_AFTER_DAYS: Final = 1
"""The bucket's lifecycle rule: multipart uploads the sweeper missed are aborted by the store."""


@dataclass(frozen=True, slots=True)
class Part:
    number: int
    size: int
    etag: str


@dataclass(frozen=True, slots=True)
class Head:
    """An object's first bytes, its whole size and its ETag (quotes stripped)."""

    data: bytes
    size: int
    etag: str


class ObjectMissing(Exception):
    """The object or multipart upload is not in the store."""


def key_of(video_id: object) -> str:
    """Where a video (and the upload that becomes it) lives in the bucket."""
    return f"videos/{video_id}"


class ObjectStore:
    """The bucket. ``async with store:`` opens its clients (one per endpoint) and closes them;
    a store that does not answer makes each call raise :class:`StoreUnavailable` (503)."""

    def __init__(self, settings: Settings) -> None:
        self.bucket = settings.s3_bucket
        self._settings = settings
        self._stack = contextlib.AsyncExitStack()
        self._opened: tuple[S3Client, S3Client] | None = None

    async def __aenter__(self) -> ObjectStore:
        settings = self._settings
        config = AioConfig(
            region_name=settings.s3_region,
            signature_version="s3v4",
            s3={"addressing_style": "path" if settings.s3_path_style else "virtual"},
            # A store that is down must give a 503 quickly, not hold a call for a minute.
            connect_timeout=2,
            read_timeout=15,
            retries={"max_attempts": 2, "mode": "standard"},
            max_pool_connections=64,
        )
        key_id, secret = settings.s3_access_key_id, settings.s3_secret_access_key
        session = get_session()
        public_endpoint = settings.s3_public_endpoint or settings.s3_endpoint
        client = await self._stack.enter_async_context(
            session.create_client(
                "s3",
                endpoint_url=settings.s3_endpoint,
                config=config,
                aws_access_key_id=None if key_id is None else key_id.get_secret_value(),
                aws_secret_access_key=None if secret is None else secret.get_secret_value(),
            )
        )
        public = client
        if public_endpoint != settings.s3_endpoint:
            public = await self._stack.enter_async_context(
                session.create_client(
                    "s3",
                    endpoint_url=public_endpoint,
                    config=config,
                    aws_access_key_id=None if key_id is None else key_id.get_secret_value(),
                    aws_secret_access_key=None if secret is None else secret.get_secret_value(),
                )
            )
        self._opened = (client, public)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._opened = None
        await self._stack.aclose()

    @property
    def _client(self) -> S3Client:
        assert self._opened is not None, "use the store inside `async with store:`"
        return self._opened[0]

    @property
    def _public(self) -> S3Client:
        assert self._opened is not None, "use the store inside `async with store:`"
        return self._opened[1]

    # -- the bucket ---------------------------------------------------------------------------

    async def ensure_bucket(self, *, cors_origins: Sequence[str]) -> None:
        """Create the bucket if missing; set its CORS (browsers PUT parts, GET videos) and a
        rule that aborts forgotten multipart uploads. Idempotent."""
        with _store_errors("create the bucket"):
            try:
                await self._client.head_bucket(Bucket=self.bucket)
            except ClientError as error:
                if _code(error) not in MISSING:
                    raise
                await self._client.create_bucket(Bucket=self.bucket)
                logger.info("bucket_created", bucket=self.bucket)
            if cors_origins:
                await self._client.put_bucket_cors(
                    Bucket=self.bucket,
                    CORSConfiguration={
                        "CORSRules": [
                            {
                                "AllowedOrigins": list(cors_origins),
                                "AllowedMethods": ["GET", "HEAD", "PUT"],
                                "AllowedHeaders": ["*"],
                                # The browser reads each part's ETag; players read the ranges.
                                "ExposeHeaders": ["ETag", "Content-Range", "Content-Length"],
                                "MaxAgeSeconds": 3600,
                            }
                        ]
                    },
                )
            await self._client.put_bucket_lifecycle_configuration(
                Bucket=self.bucket,
                LifecycleConfiguration={
                    "Rules": [
                        {
                            "ID": "abort-forgotten-uploads",
                            "Status": "Enabled",
                            "Filter": {"Prefix": ""},
                            "AbortIncompleteMultipartUpload": {
                                "DaysAfterInitiation": ABORT_INCOMPLETE_AFTER_DAYS
                            },
                        }
                    ]
                },
            )

    async def ping(self) -> bool:
        """The bucket answers (the health check)."""
        try:
            await self._client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError):
            return False
        return True

    # -- uploads ------------------------------------------------------------------------------

    async def create_multipart(self, key: str) -> str:
        with _store_errors("start an upload"):
            answer = await self._client.create_multipart_upload(Bucket=self.bucket, Key=key)
        return answer["UploadId"]

    async def part_url(self, key: str, upload_id: str, number: int, ttl: timedelta) -> str:
        return await self._public.generate_presigned_url(
            "upload_part",
            Params={"Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": number},
            ExpiresIn=int(ttl.total_seconds()),
        )

    async def put_url(self, key: str, ttl: timedelta) -> str:
        return await self._public.generate_presigned_url(
            "put_object",
            Params={"Bucket": self.bucket, "Key": key},
            ExpiresIn=int(ttl.total_seconds()),
        )

    async def parts(self, key: str, upload_id: str) -> list[Part]:
        """The parts the store holds, in order (ObjectMissing: no such upload)."""
        found: list[Part] = []
        marker = 0
        with _store_errors("list the parts"), _missing():
            while True:
                answer = await self._client.list_parts(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumberMarker=marker
                )
                found += [
                    Part(part["PartNumber"], part["Size"], part["ETag"].strip('"'))
                    for part in answer.get("Parts", [])
                ]
                if not answer.get("IsTruncated"):
                    return found
                marker = answer["NextPartNumberMarker"]

    async def complete(self, key: str, upload_id: str, parts: Sequence[Part]) -> None:
        with _store_errors("complete the upload"), _missing():
            await self._client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [{"PartNumber": p.number, "ETag": f'"{p.etag}"'} for p in parts]
                },
            )

    async def abort(self, key: str, upload_id: str) -> None:
        """Drop a multipart upload and its parts (gone already: nothing to do)."""
        with _store_errors("abort the upload"), contextlib.suppress(ObjectMissing), _missing():
            await self._client.abort_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id
            )

    # -- objects ------------------------------------------------------------------------------

    async def head(self, key: str, size: int) -> Head:
        """The first ``size`` bytes of an object, with its size and ETag (ObjectMissing)."""
        with _store_errors("read the object"), _missing():
            answer = await self._client.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes=0-{size - 1}"
            )
            async with answer["Body"] as body:
                data = await body.read()
        content_range = answer.get("ContentRange", "")  # "bytes 0-63/12345"
        total = int(content_range.rpartition("/")[2]) if content_range else len(data)
        return Head(data, total, answer["ETag"].strip('"'))

    async def get(self, key: str) -> bytes:
        """A whole (small) object."""
        with _store_errors("read the object"), _missing():
            answer = await self._client.get_object(Bucket=self.bucket, Key=key)
            async with answer["Body"] as body:
                data: bytes = await body.read()
        return data

    async def stream(self, key: str, chunk_size: int) -> AsyncIterator[bytes]:
        """An object's bytes, ``chunk_size`` at a time."""
        with _store_errors("read the object"), _missing():
            answer = await self._client.get_object(Bucket=self.bucket, Key=key)
            async with answer["Body"] as body:
                while piece := await body.read(chunk_size):
                    yield piece

    async def put(self, key: str, data: bytes, content_type: str) -> str:
        """Store ``data`` as one object; its ETag."""
        with _store_errors("store the object"):
            answer = await self._client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type
            )
        return answer["ETag"].strip('"')

    async def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> Part:
        with _store_errors("store a part"), _missing():
            answer = await self._client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
            )
        return Part(number, len(data), answer["ETag"].strip('"'))

    async def delete(self, key: str) -> None:
        with _store_errors("delete the object"):
            await self._client.delete_object(Bucket=self.bucket, Key=key)

    async def get_url(
        self, key: str, ttl: timedelta, *, public: bool, overrides: dict[str, str] | None = None
    ) -> tuple[str, datetime]:
        """A presigned GET and when it expires; ``overrides`` (``ResponseContentType``,
        ``ResponseContentDisposition``) become the headers the store answers it with."""
        client = self._public if public else self._client
        params = {"Bucket": self.bucket, "Key": key, **(overrides or {})}
        url = await client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=int(ttl.total_seconds())
        )
        return url, datetime.now(UTC) + ttl


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@contextlib.contextmanager
def _missing() -> Any:
    """A missing object or upload as :class:`ObjectMissing` (inside ``_store_errors``)."""
    try:
        yield
    except ClientError as error:
        if _code(error) in MISSING:
            raise ObjectMissing(_code(error)) from error
        raise


@contextlib.contextmanager
def _store_errors(doing: str) -> Any:
    """Any other failure of the store as a 503 the caller can retry."""
    try:
        yield
    except ObjectMissing:
        raise
    except (BotoCoreError, ClientError) as error:
        logger.warning("store_failed", doing=doing, error=repr(error))
        raise StoreUnavailable(f"The video store is unavailable (could not {doing})") from None
