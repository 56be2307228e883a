"""The contracts' caps are the columns' lengths: a value the contract accepts fits its row."""

from __future__ import annotations

from typing import Any

from vidmesh.contracts import strings

from vidmesh_video.models import StoredVideo, Upload


def length_of(column: Any) -> int:
    return int(column.property.columns[0].type.length)


def test_the_video_columns_are_as_long_as_the_contracts_caps() -> None:
    assert length_of(StoredVideo.title) == strings.MAX_TITLE_LENGTH
    assert length_of(StoredVideo.user_id) == strings.MAX_ID_LENGTH
    assert length_of(StoredVideo.filename) == strings.MAX_FILENAME_LENGTH
    assert length_of(StoredVideo.etag) == strings.MAX_ETAG_LENGTH
    assert length_of(Upload.user_id) == strings.MAX_ID_LENGTH
    assert length_of(Upload.filename) == strings.MAX_FILENAME_LENGTH
