"""Bucket names, the ``VIDMESH_S3_*`` variables, deleting a bucket, and the ``object_store`` and
``unique_bucket`` fixtures (on the session's store)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from vidmesh.devstack.objectstore import store_from_env_or_embedded
from vidmesh.devstack.s3 import (
    ObjectStore,
    ObjectStoreError,
    bucket_name,
    delete_bucket,
    object_store_from_env,
    s3_client,
)


@pytest.fixture
def client(object_store: ObjectStore) -> Iterator[Any]:
    s3 = s3_client(object_store)
    yield s3
    s3.close()


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("e2e_ab12cd34_", "vidmesh-videos"), "e2e-ab12cd34-vidmesh-videos"),
        (("test", "Test_Upload[mp4]", "0a1b"), "test-test-upload-mp4-0a1b"),
    ],
)
def test_bucket_names_are_valid(parts: tuple[str, ...], expected: str) -> None:
    assert bucket_name(*parts) == expected


def test_a_too_long_bucket_name_is_refused() -> None:
    with pytest.raises(ObjectStoreError):
        bucket_name("x" * 64)


def test_unique_bucket_is_a_valid_name_of_its_test(unique_bucket: str) -> None:
    assert unique_bucket == bucket_name(unique_bucket)
    assert unique_bucket.startswith("test-test-unique-bucket-is-a-valid-name")


def test_unique_bucket_can_be_created_and_written(unique_bucket: str, client: Any) -> None:
    client.create_bucket(Bucket=unique_bucket)
    client.put_object(Bucket=unique_bucket, Key="left/behind", Body=b"deleted after the test")
    assert client.head_bucket(Bucket=unique_bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_delete_bucket_removes_it_with_its_objects_and_uploads(
    object_store: ObjectStore, unique_bucket: str, client: Any
) -> None:
    client.create_bucket(Bucket=unique_bucket)
    client.put_object(Bucket=unique_bucket, Key="x", Body=b"x")
    client.create_multipart_upload(Bucket=unique_bucket, Key="unfinished")
    delete_bucket(object_store, unique_bucket)
    delete_bucket(object_store, unique_bucket)  # already gone: no error
    names = [entry["Name"] for entry in client.list_buckets().get("Buckets", [])]
    assert unique_bucket not in names


def test_the_environments_store_is_used_and_left_alone() -> None:
    environ = {
        "VIDMESH_S3_ENDPOINT": "http://s3.example.test:9000/",
        "VIDMESH_S3_ACCESS_KEY_ID": "KEY",
        "VIDMESH_S3_SECRET_ACCESS_KEY": "SECRET",
    }
    with store_from_env_or_embedded(environ=environ) as external:
        assert external == ObjectStore("http://s3.example.test:9000", "us-east-1", "KEY", "SECRET")


def test_an_endpoint_without_keys_is_refused() -> None:
    with pytest.raises(ObjectStoreError, match="VIDMESH_S3_ACCESS_KEY_ID"):
        object_store_from_env({"VIDMESH_S3_ENDPOINT": "http://127.0.0.1:9000"})
