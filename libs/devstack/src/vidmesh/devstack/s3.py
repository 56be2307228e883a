"""Talking to an S3 store: ``ObjectStore`` (endpoint, region, keys), the ``VIDMESH_S3_*``
variables that name an external one, valid bucket names, a client, deleting a bucket, and a
signed request for probes. The embedded store itself: ``objectstore.py``.

The platform makes its bucket itself (the video service's ``migrate``); the bucket helpers are
for tests and for systems that share a store, each under a bucket name of its own.
"""

from __future__ import annotations

import os
import re
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

S3_ENDPOINT_ENV: Final = "VIDMESH_S3_ENDPOINT"
S3_PUBLIC_ENDPOINT_ENV: Final = "VIDMESH_S3_PUBLIC_ENDPOINT"
S3_REGION_ENV: Final = "VIDMESH_S3_REGION"
S3_BUCKET_ENV: Final = "VIDMESH_S3_BUCKET"
S3_ACCESS_KEY_ID_ENV: Final = "VIDMESH_S3_ACCESS_KEY_ID"
S3_SECRET_ACCESS_KEY_ENV: Final = "VIDMESH_S3_SECRET_ACCESS_KEY"
DEFAULT_REGION: Final = "us-east-1"
_BUCKET_NAME: Final = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_DELETE_BATCH: Final = 1000  # the most keys one DeleteObjects request takes


class ObjectStoreError(RuntimeError):
    """An S3 store could not be started or reached, or its settings are incomplete."""


@dataclass(frozen=True)
class ObjectStore:
    """How to reach an S3 store: its endpoint (``http://127.0.0.1:PORT``), region and keys."""

    endpoint: str
    region: str
    access_key_id: str
    secret_access_key: str


def object_store_from_env(environ: Mapping[str, str] | None = None) -> ObjectStore | None:
    """The store named by ``VIDMESH_S3_ENDPOINT`` (with ``..._REGION``, ``..._ACCESS_KEY_ID``
    and ``..._SECRET_ACCESS_KEY``), or None when that variable is unset or empty."""
    env = os.environ if environ is None else environ
    endpoint = env.get(S3_ENDPOINT_ENV, "").strip()
    if not endpoint:
        return None
    key_id = env.get(S3_ACCESS_KEY_ID_ENV, "").strip()
    secret = env.get(S3_SECRET_ACCESS_KEY_ENV, "").strip()
    if not key_id or not secret:
        raise ObjectStoreError(
            f"{S3_ENDPOINT_ENV} is set: {S3_ACCESS_KEY_ID_ENV} and {S3_SECRET_ACCESS_KEY_ENV} "
            "must be too"
        )
    region = env.get(S3_REGION_ENV, "").strip() or DEFAULT_REGION
    return ObjectStore(endpoint.rstrip("/"), region, key_id, secret)


def bucket_name(*parts: str) -> str:
    """A valid S3 bucket name from ``parts``: each lower-cased, every run of other characters
    than letters and digits made one ``-``, joined by ``-``. ObjectStoreError unless the result
    has 3 to 63 characters."""
    cleaned = (re.sub(r"[^a-z0-9]+", "-", part.lower()).strip("-") for part in parts)
    text = "-".join(part for part in cleaned if part)
    if not _BUCKET_NAME.match(text):
        raise ObjectStoreError(f"{text!r} is not a valid S3 bucket name")
    return text


def s3_client(store: ObjectStore, *, path_style: bool = True, connections: int = 10) -> Any:
    """A blocking (thread-safe) botocore S3 client for ``store``, with up to ``connections``
    open at once. ``Any``: botocore types its clients only through a generated stubs package."""
    import botocore.session
    from botocore.config import Config

    style: Literal["path", "virtual"] = "path" if path_style else "virtual"
    return botocore.session.get_session().create_client(
        "s3",
        endpoint_url=store.endpoint,
        region_name=store.region,
        aws_access_key_id=store.access_key_id,
        aws_secret_access_key=store.secret_access_key,
        config=Config(
            s3={"addressing_style": style},
            retries={"max_attempts": 2},
            max_pool_connections=connections,
        ),
    )


def delete_bucket(store: ObjectStore, bucket: str) -> None:
    """Abort the bucket's unfinished multipart uploads, delete its objects, then the bucket.
    A bucket that does not exist is no error."""
    from botocore.exceptions import ClientError

    client = s3_client(store)
    try:
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
            for upload in page.get("Uploads", []):
                client.abort_multipart_upload(
                    Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, PaginationConfig={"PageSize": _DELETE_BATCH}
        ):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        client.delete_bucket(Bucket=bucket)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "NoSuchBucket":
            raise
    finally:
        client.close()


def signed_request(store: ObjectStore, method: str, path: str = "/") -> urllib.request.Request:
    """A bodiless request to ``store`` signed with AWS Signature Version 4, for urllib (a probe
    needs no client; botocore's signer is imported only here)."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = store.endpoint + path
    request = AWSRequest(method=method, url=url)
    credentials = Credentials(store.access_key_id, store.secret_access_key)
    S3SigV4Auth(credentials, "s3", store.region).add_auth(request)
    return urllib.request.Request(url, method=method, headers=dict(request.headers.items()))
