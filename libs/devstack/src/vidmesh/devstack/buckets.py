"""Buckets in a store of ``objectstore.py``: valid names, a client, emptying and deleting one.

The platform makes its bucket itself (the video service's ``migrate``); these are for tests and
for systems that share a store, each under a bucket name of its own.
"""

from __future__ import annotations

import re
from typing import Any, Final, Literal

from vidmesh.devstack.objectstore import ObjectStore, ObjectStoreError

_BUCKET_NAME: Final = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_DELETE_BATCH: Final = 1000  # the most keys one DeleteObjects request takes


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
